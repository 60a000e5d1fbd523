/**
 * The plan layers' gradients on the project's training engine (wasm backend with the native / wasm kernels, as
 * nodes train) equal those of the pure-JS CPU backend, the exact oracle, for plans using every layer family: the
 * graph merges (add, concat), instance / layer norm, global max pool, channel dropout (eval: identity), and the
 * losses with options. PyTorch agreement of the same plans: torch-conformance.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../engine/backend';
import { restoreDefaultKernels, useKernelConfig } from '../engine/testing/conv-gradient-suite';
import { makeLoss } from '../engine/losses';
import { TorchTensor } from '../serialize';
import { initialWeights } from './init';
import { PlanSpec } from './spec';
import { buildModel } from './tfjs-model';
import { engineLoss } from './training';
import { inception3dGraphPlan, norms2dPlan, normsGraphPlan, resnetGraphPlan, unetGraphPlan, upsample3dGraphPlan } from './testing/plans';
import { validatePlan } from './validate';

let engine: string;
beforeAll(async () => {
  engine = (await initBackend(() => undefined)).name;
});
afterAll(async () => {
  await tf.setBackend(engine === 'node' ? 'tensorflow' : engine);
});

function inputs(spec: PlanSpec, n: number): Record<string, tf.Tensor> {
  const { graph } = validatePlan(spec);
  const out: Record<string, tf.Tensor> = {};
  for (const [name, shape] of Object.entries(graph.inputShapes)) {
    const last = shape.length > 1 ? [...shape.slice(1), shape[0]] : shape;
    const size = n * last.reduce((a, b) => a * b, 1);
    out[name] = tf.tensor(Float32Array.from({ length: size }, (_, i) => Math.sin(0.7 * i + name.length)), [n, ...last]);
  }
  return out;
}

function gradients(spec: PlanSpec, weights: Record<string, TorchTensor>): Map<string, Float32Array> {
  const model = buildModel(spec, { weights });
  const n = 4;
  const x = inputs(spec, n);
  const target = spec.loss.type === 'cross_entropy' ? tf.tensor1d([0, 1, 2, 1], 'int32') : tf.tensor1d([1, 0, 1, 0]);
  const loss = makeLoss(engineLoss(spec.loss));
  const trainable = model.parameters().filter((p) => p.trainable);
  const { grads } = tf.variableGrads(() => loss(model.forward(x, true), target), trainable.map((p) => p.variable));
  const out = new Map<string, Float32Array>();
  for (const p of trainable) out.set(p.name, Float32Array.from(grads[p.variable.name].dataSync() as Float32Array));
  tf.dispose([...Object.values(grads), ...Object.values(x), target]);
  model.dispose();
  return out;
}

// The wasm backend with the native kernels (1 thread; thread counts are the kernel tests' business) and with the
// pure wasm ones (no addon): both are what a node may train with.
describe.each([['native kernels', 'native'], ['wasm kernels', 'wasm']] as const)('%s', (_label, kernels) => {
  beforeAll(() => useKernelConfig(kernels, 1));
  afterAll(restoreDefaultKernels);
  test.each([
    ['resnet graph', resnetGraphPlan],
    ['inception 3d graph', inception3dGraphPlan],
    ['norms graph 3d', normsGraphPlan],
    ['norms 2d', norms2dPlan],
    ['u-net 2d (upsample, skip concat)', unetGraphPlan],
    ['upsample 3d', upsample3dGraphPlan],
  ])('%s: engine gradients equal the CPU oracle', async (_name, make) => {
    const spec = make() as PlanSpec;
    // no dropout in a gradient comparison: masks differ between backends
    const plain = JSON.parse(JSON.stringify(spec).replace(/"type":"dropout(2d|3d)?","rate":[0-9.]+/g, '"type":"dropout$1","rate":0')) as PlanSpec;
    const weights = initialWeights(plain, 5);
    await tf.setBackend(engine === 'node' ? 'tensorflow' : engine);
    const onEngine = gradients(plain, weights);
    await tf.setBackend('cpu');
    const onCpu = gradients(plain, weights);
    let worst = 0;
    let norm = 0;
    for (const [name, g] of onCpu) {
      const e = onEngine.get(name)!;
      for (let i = 0; i < g.length; i++) {
        worst = Math.max(worst, Math.abs(g[i] - e[i]));
        norm = Math.max(norm, Math.abs(g[i]));
      }
    }
    expect(norm).toBeGreaterThan(1e-3);
    expect(worst).toBeLessThan(1e-4 * Math.max(1, norm));
  });
});
