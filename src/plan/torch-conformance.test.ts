/**
 * The TS model of a plan and the PyTorch plan generated from it are the same network, checked against real
 * PyTorch: for each example plan, the generated module (imported as a Fed-BioMed v4.5 node imports it, against
 * the stand-in `fedbiomed` package described in testing/python/README.md) has exactly the state_dict keys, shapes
 * and dtypes the TS model exports; with the same weights and input, eval outputs agree within 1e-4; two training
 * steps (training_step + backward + the plan's optimizer on the Python side, the engine's trainModel on ours) give
 * the same losses, weights and batch-norm buffers within 1e-4. One Python process runs every case.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs'; // registers the CPU backend and every gradient; the CPU backend is the exact oracle
import { SeededRandom } from '../engine/prng';
import { trainModel } from '../engine/train';
import { TorchTensor } from '../serialize';
import { planDependencies, generateTorchPlan, TORCH_PLAN_DEFAULT_DEPENDENCIES } from './pytorch';
import { initialWeights } from './init';
import { isGraphModel, isImageTarget, LossSpec, PlanSpec } from './spec';
import { unet } from './unet';
import { validatePlan } from './validate';
import { definePlan } from './define';
import { buildModel, PlanModel } from './tfjs-model';
import { trainingSettings } from './training';
import {
  cnn2dPlan, cnn3dPlan, cnnTabularPlan, groupNormPlan, imageLayersGraphPlan, inception3dGraphPlan, mlpPlan, norms2dPlan, normsGraphPlan,
  regressionPlan, resnetGraphPlan, severalHeadsGraphPlan, unetGraphPlan, upsample3dGraphPlan, convTranspose3dGraphPlan,
} from './testing/plans';
import { findTorchPython, pythonSide, runTorchConformance, TorchPython } from './testing/python';
import { imageInputChannels, sliceSelection } from './preprocess';
import { exportWeights } from './weights';
import { planMetrics } from './metrics';
import { makeBatch, PlanBatch, PlanSample } from './batch';
import { planHeads } from './heads';

const TOLERANCE = 1e-4;
const BATCH = 6;
const STEPS = 2;

/** Dropout masks are random on each side, so training checks use the plan with dropout rates set to 0. */
function withoutDropout(spec: PlanSpec): PlanSpec {
  const copy = JSON.parse(JSON.stringify(spec)) as PlanSpec;
  const m = copy.model;
  const layers = isGraphModel(m) ? m.nodes : [...(m.image ?? []), ...(m.tabular ?? []), ...m.head];
  for (const layer of layers) if (layer.type === 'dropout' || layer.type === 'dropout2d' || layer.type === 'dropout3d') layer.rate = 0;
  return copy;
}

interface RawSpec {
  file: string;
  dtype: 'float32' | 'int64';
  shape: number[];
}

interface CaseData {
  name: string;
  spec: PlanSpec;
  steps: number;
  weights0: Record<string, TorchTensor>;
  /** torch layout [N, C, ...] */
  image?: { data: Float32Array; shape: number[] };
  tabular?: { data: Float32Array; shape: number[] };
  target: { data: Float32Array | BigInt64Array; shape: number[] };
  tsEval: Float32Array;
  tsEvalShape: number[];
  tsLosses: number[];
  tsMetrics: Record<string, number>;
  tsUpdated: Record<string, TorchTensor>;
  tsStateDict: [string, string, number[]][];
}

/** A conditioned U-Net with an image target of two mask channels (one modality), trained with `loss`. */
function unetTargetPlan(loss: LossSpec): PlanSpec {
  return definePlan({
    name: 'UnetImageTarget',
    inputs: { image: { modalities: ['T1', 'dose'], dims: 2, size: [8, 8] }, tabular: { columns: ['rt_a', 'rt_b'] } },
    target: { channels: [{ modality: 'seg', labels: [1, 4] }, { modality: 'seg', labels: [1] }] },
    model: unet({ size: [8, 8], baseChannels: 3, depth: 1, outChannels: 2, condition: 'tabular' }),
    loss,
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 },
  });
}

function normals(rng: SeededRandom, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rng.next(), 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  }
  return out;
}

function writeRaw(file: string, data: Float32Array | BigInt64Array, shape: number[]): RawSpec {
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  return { file, dtype: data instanceof BigInt64Array ? 'int64' : 'float32', shape };
}

function readRaw(spec: RawSpec): Float32Array | BigInt64Array {
  const bytes = fs.readFileSync(spec.file);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return spec.dtype === 'int64' ? new BigInt64Array(copy.buffer) : new Float32Array(copy.buffer);
}

function maxAbsDiff(a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(Number(a[i]) - Number(b[i])));
  return worst;
}

/** The case's batch through makeBatch (channels-first samples → channels-last tensors, target dtype per loss). */
function batchOf(c: CaseData): PlanBatch {
  const samples: PlanSample[] = [];
  for (let i = 0; i < BATCH; i++) {
    const perTarget = c.target.data.length / BATCH;
    const h = c.target.shape[1] ?? 1; // several heads: one target column each
    const sample: PlanSample = {
      target: isImageTarget(c.spec.target)
        ? { data: (c.target.data as Float32Array).slice(i * perTarget, (i + 1) * perTarget), shape: c.target.shape.slice(1) }
        : Number(c.target.data[i * h]),
    };
    if (!isImageTarget(c.spec.target) && h > 1) sample.headTargets = Array.from(c.target.data.slice(i * h + 1, (i + 1) * h), Number);
    if (c.image) {
      const per = c.image.data.length / BATCH;
      sample.image = { data: c.image.data.slice(i * per, (i + 1) * per), shape: c.image.shape.slice(1) };
    }
    if (c.tabular) {
      const per = c.tabular.data.length / BATCH;
      sample.tabular = c.tabular.data.slice(i * per, (i + 1) * per);
    }
    samples.push(sample);
  }
  return makeBatch(c.spec, samples);
}

async function prepareCase(name: string, spec: PlanSpec, steps: number, seed: number): Promise<CaseData> {
  const rng = new SeededRandom(seed);
  const weights0 = initialWeights(spec, seed);
  const c: Partial<CaseData> = { name, spec, steps, weights0 };
  if (spec.inputs.image) {
    const shape = [BATCH, imageInputChannels(spec), ...spec.inputs.image.size];
    c.image = { data: normals(rng, shape.reduce((a, b) => a * b, 1)), shape };
  }
  if (spec.inputs.tabular) {
    const shape = [BATCH, spec.inputs.tabular.columns.length];
    c.tabular = { data: normals(rng, BATCH * shape[1]), shape };
  }
  if (spec.heads) {
    // responder (0/1), a regression value, a class index: one column per head
    const columns = planHeads(spec).map((head, h) => (i: number) => head.loss.type === 'mse' ? normals(rng, 1)[0] : i % validatePlan(spec).graph.outputShapes[h][0] === 1 ? 1 : i % Math.max(2, validatePlan(spec).graph.outputShapes[h][0]));
    const data = new Float32Array(BATCH * columns.length);
    for (let i = 0; i < BATCH; i++) columns.forEach((column, h) => (data[i * columns.length + h] = column(i)));
    c.target = { data, shape: [BATCH, columns.length] };
  } else if (isImageTarget(spec.target)) {
    // Masks on the output's grid, torch layout [N, C, ...size].
    const shape = [BATCH, ...validatePlan(spec).graph.outputShape];
    c.target = { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rng.next() < 0.3 ? 1 : 0)), shape };
  } else if (spec.loss.type === 'cross_entropy') {
    const classes = validatePlan(spec).graph.outputShape[0];
    c.target = { data: BigInt64Array.from({ length: BATCH }, (_, i) => BigInt(i % classes)), shape: [BATCH] };
  } else if (spec.loss.type === 'bce') {
    c.target = { data: Float32Array.from({ length: BATCH }, (_, i) => (i % 2 === 0 ? 1 : 0)), shape: [BATCH] };
  } else {
    c.target = { data: normals(rng, BATCH), shape: [BATCH] };
  }
  const data = c as CaseData;

  const model: PlanModel = buildModel(spec, { weights: weights0 });
  data.tsStateDict = Object.entries(exportWeights(model)).map(([k, t]) => [k, t.dtype, t.shape]);
  const { inputs, target } = batchOf(data);
  const output = model.forward(inputs, false);
  // An image output is channels last in tfjs: compared in torch's channels-first layout.
  const torchLayout = output.rank > 2 ? tf.transpose(output, [0, output.rank - 1, ...Array.from({ length: output.rank - 2 }, (_, a) => a + 1)]) : output;
  data.tsEval = Float32Array.from(torchLayout.dataSync() as Float32Array);
  data.tsEvalShape = torchLayout.shape;
  if (torchLayout !== output) torchLayout.dispose();
  // The node's own metric code, checked against the generated plan's testing_step in PyTorch.
  data.tsMetrics = planMetrics(spec, output, target);
  output.dispose();

  const settings = trainingSettings(spec);
  const losses: number[] = [];
  await trainModel(
    model,
    {
      size: BATCH,
      batch: (indices) => {
        expect(indices).toEqual(Array.from({ length: BATCH }, (_, i) => i));
        return batchOf(data);
      },
    },
    {
      loader: { batchSize: BATCH, shuffle: false },
      loss: settings.loss,
      optimizer: settings.optimizer,
      numUpdates: steps,
      logInterval: 1,
      seed: 0,
      onProgress: (r) => losses.push(r.loss),
    },
  );
  data.tsLosses = losses;
  data.tsUpdated = exportWeights(model);
  for (const t of Object.values(inputs)) t.dispose();
  target.dispose();
  model.dispose();
  return data;
}

interface PythonCaseResult {
  error?: string;
  dependencies: string[];
  optimizer: string;
  state_dict: [string, string, number[]][];
  loaded_exactly: boolean;
  eval_output: RawSpec;
  metrics: Record<string, number>;
  train_mode_after_testing: boolean;
  losses: number[];
  updated: Record<string, RawSpec>;
}

const cnnTabularPlanNoDropout = (): PlanSpec => withoutDropout(cnnTabularPlan());

const PLANS: [string, () => PlanSpec, number][] = [
  ['mlp', mlpPlan, STEPS],
  ['cnn2d_batchnorm', cnn2dPlan, STEPS],
  ['cnn_tabular', () => withoutDropout(cnnTabularPlan()), STEPS],
  ['cnn_tabular_dropout_eval', cnnTabularPlan, 0],
  ['cnn3d', cnn3dPlan, STEPS],
  ['regression', regressionPlan, STEPS],
  ['resnet_graph', resnetGraphPlan, STEPS],
  ['inception3d_graph', inception3dGraphPlan, STEPS],
  ['image_layers_graph', imageLayersGraphPlan, STEPS],
  // two-class cross-entropy: AUC from logit₁ − logit₀, class-1 precision / recall
  // losses with options and AdamW, on the same networks
  ['bce_pos_weight_adamw', () => definePlan({ ...cnnTabularPlanNoDropout(), loss: { type: 'bce', fromLogits: true, posWeight: 2.5 }, optimizer: { type: 'adamw', lr: 0.01 } }), STEPS],
  ['focal', () => definePlan({ ...cnnTabularPlanNoDropout(), loss: { type: 'focal', gamma: 1.5, alpha: 0.3 }, optimizer: { type: 'adamw', lr: 0.01, weightDecay: 0.1 } }), STEPS],
  ['weighted_cross_entropy', () => definePlan({ ...cnn3dPlan(), loss: { type: 'cross_entropy', classWeights: [0.2, 1, 3] } }), STEPS],
  ['norms_graph', () => withoutDropout(normsGraphPlan()), STEPS],
  ['norms_graph_dropout_eval', normsGraphPlan, 0],
  ['norms_2d', () => withoutDropout(norms2dPlan()), STEPS],
  ['unet_graph', unetGraphPlan, STEPS],
  ['upsample_3d_graph', upsample3dGraphPlan, STEPS],
  ['conv_transpose_3d_graph', convTranspose3dGraphPlan, STEPS],
  ['mlp_binary_metrics', () => ({ ...mlpPlan(), metrics: ['loss', 'auc', 'recall', 'specificity', 'balanced_accuracy', 'precision', 'f1_score', 'dice'] }), 0],
  ['group_norm', groupNormPlan, STEPS],
  // three heads (bce + mse + cross-entropy), weighted sum of their losses, metrics per head
  ['several_heads', severalHeadsGraphPlan, STEPS],
  // image targets with the plan's image losses: BCE + soft Dice (weighted sum), L1
  ['unet_image_target_bce_dice', () => unetTargetPlan({ type: 'weighted', terms: [
    { weight: 0.6, loss: { type: 'bce', fromLogits: true } }, { weight: 0.4, loss: { type: 'soft_dice', fromLogits: true } },
    { weight: 0.5, loss: { type: 'soft_dice', channel: 1, fromLogits: true, smooth: 0.5 } },
  ] }), STEPS],
  ['unet_image_target_l1', () => unetTargetPlan({ type: 'l1' }), STEPS],
];

let python: TorchPython;
let work: string;
const cases = new Map<string, CaseData>();
let results: { torch: string; cases: Record<string, PythonCaseResult> };

beforeAll(async () => {
  await tf.setBackend('cpu');
  python = findTorchPython();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-plan-torch-'));
  const planDir = path.join(work, 'plans');
  fs.mkdirSync(planDir);
  const manifest: { plan_dir: string; cases: unknown[] } = { plan_dir: planDir, cases: [] };
  let seed = 11;
  for (const [name, make, steps] of PLANS) {
    const c = await prepareCase(name, make(), steps, seed++);
    cases.set(name, c);
    const dir = path.join(work, name);
    fs.mkdirSync(dir);
    const module = `training_plan_${name}`;
    fs.writeFileSync(path.join(planDir, `${module}.py`), generateTorchPlan(c.spec));
    const weights = Object.entries(c.weights0).map(([wname, t], i) => ({
      name: wname,
      ...writeRaw(path.join(dir, `w${i}.bin`), t.data as Float32Array | BigInt64Array, t.shape),
    }));
    const batch = {
      image: c.image ? writeRaw(path.join(dir, 'image.bin'), c.image.data, c.image.shape) : null,
      tabular: c.tabular ? writeRaw(path.join(dir, 'tabular.bin'), c.tabular.data, c.tabular.shape) : null,
      target: writeRaw(path.join(dir, 'target.bin'), c.target.data, c.target.shape),
      modalities: c.spec.inputs.image?.modalities ?? [],
      slices: sliceSelection(c.spec)?.count ?? 1,
      // An image target travels as its modality's volume batch (one modality here: channels in plan order).
      ...(isImageTarget(c.spec.target) ? { target_modality: c.spec.target.channels[0].modality } : {}),
    };
    manifest.cases.push({ name, module, class_name: c.spec.name, model_args: c.spec.modelArgs, weights, batch, steps, out_dir: dir });
  }
  results = runTorchConformance(python, manifest, work);
}, 240000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function pythonCase(name: string): PythonCaseResult {
  return pythonSide(results.cases, name);
}

describe.each(PLANS.map(([name]) => name))('plan %s against PyTorch', (name) => {
  test('the generated module imports like on a node and declares the v4.5 dependency lines', () => {
    const r = pythonCase(name);
    const c = cases.get(name)!;
    expect(r.dependencies).toEqual([...TORCH_PLAN_DEFAULT_DEPENDENCIES, ...planDependencies(c.spec)]);
    expect(r.optimizer).toBe({ sgd: 'SGD', adam: 'Adam', adamw: 'AdamW' }[c.spec.optimizer.type]);
  });

  test('state_dict keys, order, shapes and dtypes equal the TS export', () => {
    const r = pythonCase(name);
    expect(r.state_dict).toEqual(cases.get(name)!.tsStateDict);
    expect(r.loaded_exactly).toBe(true);
  });

  test('same weights and input give the same eval output and metrics', () => {
    const r = pythonCase(name);
    const c = cases.get(name)!;
    expect(r.eval_output.shape).toEqual(c.tsEvalShape);
    expect(maxAbsDiff(readRaw(r.eval_output), c.tsEval)).toBeLessThan(TOLERANCE);
    expect(Object.keys(r.metrics).sort()).toEqual(Object.keys(c.tsMetrics).sort());
    for (const [metric, value] of Object.entries(c.tsMetrics)) expect(Math.abs(r.metrics[metric] - value)).toBeLessThan(TOLERANCE);
    expect(r.train_mode_after_testing).toBe(true);
  });

  test('training steps give the same losses, weights and batch-norm buffers', () => {
    const r = pythonCase(name);
    const c = cases.get(name)!;
    expect(r.losses).toHaveLength(c.steps);
    expect(c.tsLosses).toHaveLength(c.steps);
    r.losses.forEach((loss, i) => expect(Math.abs(loss - c.tsLosses[i])).toBeLessThan(TOLERANCE));
    expect(Object.keys(r.updated)).toEqual(Object.keys(c.tsUpdated));
    let moved = 0;
    for (const [key, tensor] of Object.entries(c.tsUpdated)) {
      const theirs = r.updated[key];
      expect([key, theirs.dtype, theirs.shape]).toEqual([key, tensor.dtype, tensor.shape]);
      const diff = maxAbsDiff(readRaw(theirs), tensor.data);
      if (diff >= TOLERANCE) throw new Error(`${name}: ${key} differs from PyTorch by ${diff}`);
      moved += maxAbsDiff(tensor.data, c.weights0[key].data);
    }
    // The comparison means something only if training changed the weights.
    if (c.steps > 0) expect(moved).toBeGreaterThan(1e-3);
  });
});

test('the clinical metrics are really compared (present on both sides, not all trivial)', () => {
  for (const name of ['resnet_graph', 'mlp_binary_metrics']) {
    const r = pythonCase(name);
    expect(Object.keys(r.metrics)).toEqual(expect.arrayContaining(['AUC', 'RECALL', 'SPECIFICITY', 'BALANCED_ACCURACY', 'F1_SCORE', 'DICE']));
  }
  const values = Object.values(pythonCase('mlp_binary_metrics').metrics);
  expect(values.some((v) => v > 0 && v < 1)).toBe(true);
  expect(Object.keys(pythonCase('inception3d_graph').metrics).sort()).toEqual(['ACCURACY', 'BALANCED_ACCURACY', 'F1_SCORE', 'PRECISION', 'RECALL']);
});

test('several heads: metrics per head under <node>_<METRIC>, LOSS the weighted sum of the head losses', () => {
  const r = pythonCase('several_heads');
  const ts = cases.get('several_heads')!.tsMetrics;
  expect(Object.keys(r.metrics).sort()).toEqual([
    'LOSS', 'grade_ACCURACY', 'grade_BALANCED_ACCURACY', 'grade_LOSS', 'pfs_LOSS', 'pfs_MAE', 'response_ACCURACY', 'response_AUC', 'response_LOSS',
  ]);
  for (const m of [r.metrics, ts]) {
    expect(m.LOSS).toBeCloseTo(m.response_LOSS + 0.5 * m.pfs_LOSS + 0.3 * m.grade_LOSS, 5);
    expect(Math.min(m.response_LOSS, m.pfs_LOSS, m.grade_LOSS)).toBeGreaterThan(0);
  }
});
