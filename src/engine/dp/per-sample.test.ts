/**
 * Per-sample gradient norms and clipped sums of the DP engine against PyTorch per-sample gradients (functorch
 * vmap of grad on the generated PyTorch plan, Debian torch 1.13), on conv 2D/3D (bias + fused ReLU, strides,
 * padding), max and average pools, dense layers, group norm and a two-branch model, to 1e-5: on the wasm backend with
 * the native kernels (as a node trains), with the pure wasm kernels, and on the CPU backend.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../backend';
import { kernelsInUse, KernelImplementation, useKernels } from '../kernels';
import { DP_CONV_PER_SAMPLE } from '../kernels/dp-native';
import { makeLoss } from '../losses';
import { clippedGradientSum } from './per-sample';
import { definePlan } from '../../plan/define';
import type { PlanSpec } from '../../plan/spec';
import { buildModel, PlanModel } from '../../plan/tfjs-model';
import { exportWeights } from '../../plan/weights';
import { generateTorchPlan } from '../../plan/pytorch';
import { trainingSettings } from '../../plan/training';
import { findTorchPython, STANDIN_DIR } from '../../plan/testing/python';
import { cnn2dPlan, groupNormPlan } from '../../plan/testing/plans';
import { SeededRandom } from '../prng';

jest.setTimeout(120_000);

let implementations: KernelImplementation[] = ['wasm'];

beforeAll(async () => {
  await initBackend(() => undefined);
  // Both paths: the native per-sample kernels, and the slice-by-slice fallback of the pure wasm kernels.
  if (kernelsInUse() === 'native') implementations = ['native', 'wasm'];
});

afterAll(() => {
  useKernels(implementations[0]);
});

const conv2dWithClinical = (): PlanSpec => definePlan({
  name: 'DpConv2d',
  inputs: { image: { modalities: ['T1', 'FLAIR'], dims: 2, size: [9, 8] }, tabular: { columns: ['age', 'kps'] } },
  target: { column: 'responder' },
  model: {
    image: [
      { type: 'conv2d', outChannels: 4, kernelSize: 3, padding: 'same' },
      { type: 'relu' }, // fused with the conv's bias
      { type: 'max_pool2d', kernelSize: 2 },
      { type: 'conv2d', outChannels: 3, kernelSize: [2, 3], stride: [1, 2], bias: false },
      { type: 'leaky_relu' },
      { type: 'avg_pool2d', kernelSize: [2, 1] },
      { type: 'flatten' },
    ],
    tabular: [{ type: 'dense', outFeatures: 3 }, { type: 'sigmoid' }],
    head: [{ type: 'dense', outFeatures: 4 }, { type: 'relu' }, { type: 'dense', outFeatures: 1 }],
  },
  loss: { type: 'bce', fromLogits: true },
  optimizer: { type: 'sgd', lr: 0.1 },
  metrics: ['accuracy'],
});

const conv3d = (): PlanSpec => definePlan({
  name: 'DpConv3d',
  inputs: { image: { modalities: ['T1'], dims: 3, size: [5, 6, 6] } },
  target: { column: 'grade' },
  model: {
    image: [
      { type: 'conv3d', outChannels: 3, kernelSize: 3, padding: [1, 1, 0] },
      { type: 'leaky_relu' },
      { type: 'max_pool3d', kernelSize: 2 },
      { type: 'conv3d', outChannels: 2, kernelSize: [1, 2, 2] },
      { type: 'relu' },
      { type: 'flatten' },
    ],
    head: [{ type: 'dense', outFeatures: 3 }],
  },
  loss: { type: 'cross_entropy' },
  optimizer: { type: 'sgd', lr: 0.1 },
  metrics: ['accuracy'],
});

interface Oracle {
  norms: number[];
  /** Between the two middle norms. */
  clip: number;
  clipped: Record<string, number[]>;
  summed: Record<string, number[]>;
}

interface Case {
  model: PlanModel;
  inputs: Record<string, tf.Tensor>;
  target: tf.Tensor;
  torchInputs: Record<string, { shape: number[]; data: number[] }>;
  torchTarget: { shape: number[]; data: number[]; dtype: string };
}

/** A random batch in both layouts: PyTorch channels-first for the oracle, tfjs channels-last for the model. */
function makeCase(spec: PlanSpec, n: number, classes: number | null, seed: number): Case {
  const rng = new SeededRandom(seed);
  const model = buildModel(spec, { seed });
  const inputs: Record<string, tf.Tensor> = {};
  const torchInputs: Case['torchInputs'] = {};
  const image = spec.inputs.image;
  if (image) {
    const channels = image.modalities.length;
    const shape = [n, channels, ...image.size];
    const data = Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.next() * 2 - 1);
    torchInputs['image'] = { shape, data };
    const perm = [0, ...image.size.map((_, i) => i + 2), 1];
    inputs['image'] = tf.transpose(tf.tensor(data, shape), perm);
  }
  const tabular = spec.inputs.tabular;
  if (tabular) {
    const shape = [n, tabular.columns.length];
    const data = Array.from({ length: n * shape[1] }, () => rng.next() * 3 - 1);
    torchInputs['tabular'] = { shape, data };
    inputs['tabular'] = tf.tensor(data, shape);
  }
  const labels = Array.from({ length: n }, () => (classes === null ? rng.nextInt(2) : rng.nextInt(classes)));
  return {
    model, inputs, target: tf.tensor(labels, [n], classes === null ? 'float32' : 'int32'),
    torchInputs, torchTarget: { shape: [n], data: labels, dtype: classes === null ? 'float32' : 'int64' },
  };
}

/** PyTorch per-sample results for every case, from one Python process. */
function torchOracles(cases: { spec: PlanSpec; c: Case }[]): Oracle[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-dp-oracle-'));
  try {
    const requests = cases.map(({ spec, c }) => {
      const module = `plan_${spec.name.toLowerCase()}`;
      fs.writeFileSync(path.join(dir, `${module}.py`), generateTorchPlan(spec));
      const state = Object.fromEntries(Object.entries(exportWeights(c.model))
        .map(([k, t]) => [k, { shape: t.shape, data: Array.from(t.data as Float32Array) }]));
      return { module_dir: dir, module, class_name: spec.name, state, inputs: c.torchInputs, target: c.torchTarget };
    });
    const run = spawnSync(findTorchPython().executable, [path.join(__dirname, 'testing', 'per_sample_oracle.py')], {
      input: JSON.stringify(requests), encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000,
      env: { ...process.env, PYTHONPATH: STANDIN_DIR, PYTHONDONTWRITEBYTECODE: '1', OMP_NUM_THREADS: '1' },
    });
    if (run.status !== 0) throw new Error(`per_sample_oracle.py failed: ${run.stderr}`);
    return JSON.parse(run.stdout) as Oracle[];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The engine's clipped sums in PyTorch layout and names (through a second model's variables and exportWeights). */
function sumsInTorchLayout(spec: PlanSpec, sums: Map<string, tf.Tensor>): Record<string, Float32Array> {
  const holder = buildModel(spec, { seed: 0 });
  try {
    for (const p of holder.parameters()) {
      const s = sums.get(p.name);
      if (s) p.variable.assign(s);
    }
    const torch = exportWeights(holder);
    return Object.fromEntries([...sums.keys()].map((k) => [k, torch[k].data as Float32Array]));
  } finally {
    holder.dispose();
  }
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  if (worst > 1e-5) throw new Error(`${what}: differs from PyTorch by ${worst}`);
}

const CASES = [
  ['2D conv + pools + clinical dense branch, BCE with logits', conv2dWithClinical, null, 7],
  ['3D conv + max pool, cross-entropy', conv3d, 3, 5],
  ['group norm on conv maps and on dense features', groupNormPlan, null, 6],
] as const;

describe('per-sample clipping against PyTorch', () => {
  const prepared: { spec: PlanSpec; c: Case }[] = [];
  let oracles: Oracle[] = [];

  beforeAll(() => {
    for (const [, planOf, classes, n] of CASES) {
      const spec = planOf();
      prepared.push({ spec, c: makeCase(spec, n, classes, 11) });
    }
    oracles = torchOracles(prepared);
  });

  afterAll(() => {
    for (const { c } of prepared) {
      c.model.dispose();
      Object.values(c.inputs).forEach((t) => t.dispose());
      c.target.dispose();
    }
  });

  it.each(CASES.map(([title], i) => [title, i] as const))('%s: same per-sample norms, sums and clipped sums', async (_title, i) => {
    const { spec, c } = prepared[i];
    const want = oracles[i];
    const trainable = c.model.parameters().filter((p) => p.trainable).map((p) => p.name);
    const lossFn = makeLoss(trainingSettings(spec).loss);
    // The clip really bites: some samples are scaled down, some are not.
    expect(want.norms.filter((v) => v > want.clip).length).toBeGreaterThan(0);
    expect(want.norms.filter((v) => v < want.clip).length).toBeGreaterThan(0);
    try {
      for (const implementation of [...implementations, 'cpu backend'] as const) {
        // Last, the CPU backend: a node without wasm runs the same code on tfjs's stock kernels.
        if (implementation === 'cpu backend') await tf.setBackend('cpu');
        else useKernels(implementation);
        // The native path is the fused per-sample kernel (dp.c), not the slice-by-slice fallback.
        expect(tf.getKernel(DP_CONV_PER_SAMPLE, 'wasm') !== undefined).toBe(implementation === 'native');
        const at = implementation === 'cpu backend' ? implementation : `${implementation} kernels`;
        // Without clipping (a huge bound): the norms, and the plain sum of per-sample gradients.
        const free = clippedGradientSum(c.model, { inputs: c.inputs, target: c.target }, lossFn, 1e9, trainable);
        const freeSums = sumsInTorchLayout(spec, free.sums);
        free.sums.forEach((t) => t.dispose());
        for (const name of trainable) expectClose(freeSums[name], want.summed[name], `${at}: sum of ${name}`);
        expectClose(free.norms, want.norms, `${at}: per-sample norms`);

        const clipped = clippedGradientSum(c.model, { inputs: c.inputs, target: c.target }, lossFn, want.clip, trainable);
        const sums = sumsInTorchLayout(spec, clipped.sums);
        clipped.sums.forEach((t) => t.dispose());
        expect(Object.keys(sums).sort()).toEqual([...trainable].sort());
        for (const name of trainable) expectClose(sums[name], want.clipped[name], `${at}: clipped sum of ${name}`);
      }
    } finally {
      await tf.setBackend('wasm');
    }
  });
});

it('refuses a model with batch norm (per-sample gradients undefined), naming its parameters', () => {
  const spec = cnn2dPlan();
  const c = makeCase(spec, 3, null, 3);
  const trainable = c.model.parameters().filter((p) => p.trainable).map((p) => p.name);
  try {
    expect(() => clippedGradientSum(c.model, { inputs: c.inputs, target: c.target }, makeLoss('BCELoss'), 1, trainable))
      .toThrow(/not defined for the layer\(s\) of image\.1\.weight, image\.1\.bias/);
  } finally {
    c.model.dispose();
    Object.values(c.inputs).forEach((t) => t.dispose());
    c.target.dispose();
  }
});

it('leaves no tensor behind', () => {
  const spec = conv2dWithClinical();
  const c = makeCase(spec, 4, null, 2);
  const trainable = c.model.parameters().filter((p) => p.trainable).map((p) => p.name);
  const lossFn = makeLoss('BCEWithLogitsLoss');
  const warm = clippedGradientSum(c.model, { inputs: c.inputs, target: c.target }, lossFn, 1, trainable);
  warm.sums.forEach((t) => t.dispose());
  const before = tf.memory().numTensors;
  const again = clippedGradientSum(c.model, { inputs: c.inputs, target: c.target }, lossFn, 1, trainable);
  expect(tf.memory().numTensors).toBe(before + trainable.length);
  again.sums.forEach((t) => t.dispose());
  c.model.dispose();
  Object.values(c.inputs).forEach((t) => t.dispose());
  c.target.dispose();
});
