/**
 * The plan layers' gradients on the project's training engine (wasm backend with the native / wasm kernels, as
 * nodes train) equal those of the pure-JS CPU backend, the exact oracle, for plans using every layer family: the
 * graph merges (add, concat), instance / layer / group norm (native kernels: bn.c), global max pool, channel dropout (eval: identity), and the
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
import { engineLoss, planLoss } from './training';
import { convTranspose3dGraphPlan, groupNormPlan, inception3dGraphPlan, norms2dPlan, normsGraphPlan, resnetGraphPlan, severalHeadsGraphPlan, unetGraphPlan, upsample3dGraphPlan } from './testing/plans';
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
    ['group norm (conv and dense features)', groupNormPlan],
    ['u-net 2d (upsample, skip concat)', unetGraphPlan],
    ['upsample 3d', upsample3dGraphPlan],
    ['3-d transposed convolutions', convTranspose3dGraphPlan],
  ])('%s: engine gradients equal the CPU oracle', async (_name, make) => {
    const spec = make();
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

test('several heads: the gradient of Σ weight · loss equals finite differences, on the engine and the CPU oracle', async () => {
  const spec = severalHeadsGraphPlan();
  const weights = initialWeights(spec, 9);
  const n = 4;
  // responder, pfs (regression), grade (class index): one column per head
  const targetRows = [[1, 0.5, 0], [0, -1.2, 2], [1, 2.0, 1], [0, 0.3, 2]];
  const run = (backend: string) => {
    const model = buildModel(spec, { weights });
    const x = inputs(spec, n);
    const target = tf.tensor2d(targetRows);
    const loss = makeLoss(planLoss(spec));
    const lossAt = (): number => tf.tidy(() => loss(model.forward(x, true), target).dataSync()[0]);
    const probes = ['trunk_0.weight', 'pfs.weight', 'grade.bias', 'response.weight', 'stem_0.weight'];
    const variables = probes.map((name) => model.parameter(name)!.variable);
    const { grads } = tf.variableGrads(() => loss(model.forward(x, true), target), variables);
    const checks = probes.map((name, k) => {
      const v = variables[k];
      // the entry with the largest gradient (entries feeding a dead ReLU unit have none)
      const all = grads[v.name].dataSync();
      let at0 = 0;
      for (let i = 1; i < all.length; i++) if (Math.abs(all[i]) > Math.abs(all[at0])) at0 = i;
      const g = all[at0];
      const values = v.dataSync().slice() as Float32Array;
      const h = 3e-3;
      const at = (delta: number): number => {
        const moved = values.slice();
        moved[at0] += delta;
        v.assign(tf.tensor(moved, v.shape));
        return lossAt();
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      v.assign(tf.tensor(values, v.shape));
      return { name, g, numeric };
    });
    tf.dispose([...Object.values(grads), ...Object.values(x), target]);
    model.dispose();
    return { backend, checks };
  };
  await tf.setBackend(engine === 'node' ? 'tensorflow' : engine);
  const onEngine = run(engine);
  await tf.setBackend('cpu');
  const onCpu = run('cpu');
  for (const { checks } of [onEngine, onCpu]) {
    for (const { g, numeric } of checks) expect(Math.abs(g - numeric)).toBeLessThan(5e-4 + 1e-3 * Math.abs(numeric));
  }
  // the probes are not all flat, and both backends agree
  for (const c of onCpu.checks) expect(Math.abs(c.g)).toBeGreaterThan(1e-3);
  onCpu.checks.forEach((c, k) => expect(Math.abs(c.g - onEngine.checks[k].g)).toBeLessThan(1e-4));
});
