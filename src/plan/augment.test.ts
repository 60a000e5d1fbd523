/**
 * Training-batch augmentation: the generated PyTorch plan's `_fbts_augment_batch` and the TS `augmentBatch` give
 * the same batch for the same seed (2D and 3D, every step), a seed gives the same batch on every run, different
 * seeds differ, validation batches are never augmented, and bad steps are refused.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SeededRandom } from '../engine/prng';
import { augmentBatch, augmentImage, sampleRandom } from './augment';
import { PlanSample } from './batch';
import type { DenseVolume } from './pipeline';
import { definePlan } from './define';
import { generateTorchPlan } from './pytorch';
import { AugmentStep, PlanSpec } from './spec';
import { findTorchPython, pythonSide, runTorchConformance } from './testing/python';
import { checkPlan } from './validate';

const STEPS_2D: AugmentStep[] = [
  { op: 'flip', axes: [1], p: 0.5 },
  { op: 'rotate90', axes: [0, 1], p: 0.7 },
  { op: 'affine', axes: [0, 1], rotate: 15, scale: 0.1, translate: 1, p: 0.9 },
  { op: 'scale_intensity', factor: 0.2, p: 0.8 },
  { op: 'shift_intensity', offset: 0.5, p: 0.8 },
  { op: 'gaussian_noise', std: 0.1, p: 0.6 },
];
const STEPS_3D: AugmentStep[] = [
  { op: 'flip', axes: [0, 2], p: 0.5 },
  { op: 'rotate90', axes: [1, 2], p: 0.9 },
  { op: 'affine', axes: [0, 2], rotate: 10, scale: 0.05, translate: 0.5, p: 1 },
  { op: 'gaussian_noise', std: 0.05, p: 0.9 },
];

function plan(dims: 2 | 3, augmentation: AugmentStep[]): PlanSpec {
  return definePlan({
    name: `Augment${dims}d`,
    inputs: { image: { modalities: ['T1', 'FLAIR'], dims, size: dims === 2 ? [5, 5] : [3, 4, 4] } },
    target: { column: 'y' },
    augmentation,
    model: { image: [{ type: 'flatten' }], head: [{ type: 'dense', outFeatures: 1 }] },
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'sgd', lr: 0.1 },
  });
}

function samples(spec: PlanSpec, n: number): PlanSample[] {
  const size = spec.inputs.image!.size;
  const shape = [2, ...size];
  const per = shape.reduce((a, b) => a * b, 1);
  const rng = new SeededRandom(3);
  return Array.from({ length: n }, () => ({ image: { data: Float32Array.from({ length: per }, () => rng.next() * 4 - 2), shape }, target: 1 }));
}

interface AugmentResult {
  error?: string;
  augmented: { file: string; shape: number[] };
  /** Image-target plans: the targets augmented with the images. */
  augmented_targets?: { file: string; shape: number[] };
  torch_seeded_repeatable: boolean;
  /** torch.set_num_threads(1) and (3) give the same augmented batch (the TS side draws in plain JS, no threads). */
  thread_count_independent: boolean;
  training_step_augments: boolean;
  testing_step_augments: boolean;
}

/** An image-to-image plan: the same image, a target of 3 label channels on its grid. */
function targetPlan(dims: 2 | 3, augmentation: AugmentStep[]): PlanSpec {
  const base = plan(dims, augmentation);
  const { format: _format, version: _version, ...init } = base;
  return definePlan({
    ...init,
    name: `AugmentTarget${dims}d`,
    target: { channels: [{ modality: 'seg', labels: [1] }, { modality: 'seg', labels: [2] }, { modality: 'injury', labels: [1] }] },
    model: { nodes: [{ name: 'conv', type: dims === 2 ? 'conv2d' : 'conv3d', outChannels: 3, kernelSize: 3, padding: 1, input: 'image' }], output: 'conv' },
  });
}

/** Samples with a 0/1 target of 3 channels: blobs, so that turns and shifts move something visible. */
function targetSamples(spec: PlanSpec, n: number): PlanSample[] {
  const rng = new SeededRandom(8);
  return samples(spec, n).map((s) => {
    const shape = [3, ...s.image!.shape.slice(1)];
    return { ...s, target: { data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rng.next() < 0.4 ? 1 : 0)), shape } };
  });
}

const CASES = [
  { name: 'augment_2d', spec: plan(2, STEPS_2D), seeds: [1, 77, 4242] },
  { name: 'augment_3d', spec: plan(3, STEPS_3D), seeds: [9, 123456789] },
];
const TARGET_CASES = [
  { name: 'augment_target_2d', spec: targetPlan(2, STEPS_2D), seeds: [1, 77, 4242] },
  { name: 'augment_target_3d', spec: targetPlan(3, STEPS_3D), seeds: [9, 123456789] },
];

/** A batch's arrays one after the other, as one file (the Python side reads it as [N, ...shape]). */
function writeBatch(file: string, arrays: DenseVolume[]): { file: string; dtype: string; shape: number[] } {
  const data = new Float32Array(arrays.length * arrays[0].data.length);
  arrays.forEach((a, i) => data.set(a.data, i * a.data.length));
  fs.writeFileSync(file, Buffer.from(data.buffer));
  return { file, dtype: 'float32', shape: [arrays.length, ...arrays[0].shape] };
}

function readBatch(file: string): Float32Array {
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

let work: string;
let results: Record<string, AugmentResult>;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-augment-'));
  const planDir = path.join(work, 'plans');
  fs.mkdirSync(planDir);
  const augmentCases: unknown[] = [];
  for (const c of CASES) {
    fs.writeFileSync(path.join(planDir, `${c.name}.py`), generateTorchPlan(c.spec));
    const batch = samples(c.spec, 6);
    const data = new Float32Array(batch.length * batch[0].image!.data.length);
    batch.forEach((s, i) => data.set(s.image!.data, i * s.image!.data.length));
    const images = { file: path.join(work, `${c.name}.bin`), dtype: 'float32', shape: [batch.length, ...batch[0].image!.shape] };
    fs.writeFileSync(images.file, Buffer.from(data.buffer));
    for (const seed of c.seeds) {
      const dir = path.join(work, `${c.name}_${seed}`);
      fs.mkdirSync(dir);
      augmentCases.push({ name: `${c.name}_${seed}`, module: c.name, class_name: c.spec.name, images, seed, out_dir: dir });
    }
  }
  for (const c of TARGET_CASES) {
    fs.writeFileSync(path.join(planDir, `${c.name}.py`), generateTorchPlan(c.spec));
    const batch = targetSamples(c.spec, 6);
    const images = writeBatch(path.join(work, `${c.name}.bin`), batch.map((b) => b.image!));
    const targets = writeBatch(path.join(work, `${c.name}_targets.bin`), batch.map((b) => b.target as DenseVolume));
    for (const seed of c.seeds) {
      const dir = path.join(work, `${c.name}_${seed}`);
      fs.mkdirSync(dir);
      augmentCases.push({ name: `${c.name}_${seed}`, module: c.name, class_name: c.spec.name, images, targets, seed, out_dir: dir });
    }
  }
  results = runTorchConformance<{ augment_cases: Record<string, AugmentResult> }>(findTorchPython(), { plan_dir: planDir, cases: [], augment_cases: augmentCases }, work).augment_cases;
}, 120000);

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test.each(CASES.flatMap((c) => c.seeds.map((seed) => [c.name, seed] as const)))('%s seed %d: PyTorch plan and TS give the same batch', (name, seed) => {
  const c = CASES.find((x) => x.name === name)!;
  const r = pythonSide(results, `${name}_${seed}`);
  const bytes = fs.readFileSync(r.augmented.file);
  const theirs = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const ours = augmentBatch(c.spec.augmentation!, samples(c.spec, 6), seed);
  const flat = new Float32Array(theirs.length);
  ours.forEach((s, i) => flat.set(s.image!.data, i * s.image!.data.length));
  expect(r.augmented.shape).toEqual([6, ...ours[0].image!.shape]);
  let worst = 0;
  for (let i = 0; i < flat.length; i++) worst = Math.max(worst, Math.abs(flat[i] - theirs[i]));
  expect(worst).toBeLessThan(1e-6);
  // and the batch was really changed
  const original = samples(c.spec, 6);
  expect(ours.some((s, i) => s.image!.data.some((v, j) => v !== original[i].image!.data[j]))).toBe(true);
});

test.each(TARGET_CASES.flatMap((c) => c.seeds.map((seed) => [c.name, seed] as const)))('%s seed %d: image and image target, PyTorch plan and TS give the same batch', (name, seed) => {
  const c = TARGET_CASES.find((x) => x.name === name)!;
  const r = pythonSide(results, `${name}_${seed}`);
  const original = targetSamples(c.spec, 6);
  const ours = augmentBatch(c.spec.augmentation!, original, seed);
  const flat = (arrays: DenseVolume[]) => {
    const out = new Float32Array(arrays.length * arrays[0].data.length);
    arrays.forEach((a, i) => out.set(a.data, i * a.data.length));
    return out;
  };
  const worst = (a: Float32Array, b: Float32Array) => {
    expect(a.length).toBe(b.length);
    return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  };
  expect(worst(flat(ours.map((s) => s.image!)), readBatch(r.augmented.file))).toBeLessThan(1e-6);
  const targets = ours.map((s) => s.target as DenseVolume);
  expect(r.augmented_targets!.shape).toEqual([6, ...targets[0].shape]);
  expect(worst(flat(targets), readBatch(r.augmented_targets!.file))).toBe(0);
  // the targets moved (labels kept: nearest, zero outside), and the images are those of the same batch without targets
  expect(targets.some((t, i) => t.data.some((v, j) => v !== (original[i].target as DenseVolume).data[j]))).toBe(true);
  expect(targets.every((t) => t.data.every((v) => v === 0 || v === 1))).toBe(true);
  const withoutTargets = augmentBatch(c.spec.augmentation!, original.map((s) => ({ ...s, target: 0 })), seed);
  expect(flat(withoutTargets.map((s) => s.image!))).toEqual(flat(ours.map((s) => s.image!)));
});

test('flips and quarter turns move a target voxel for voxel with the image; intensity steps leave it', () => {
  const spec = targetPlan(2, [
    { op: 'flip', axes: [0], p: 0.5 },
    { op: 'rotate90', axes: [0, 1], p: 0.8 },
    { op: 'scale_intensity', factor: 0.3, p: 1 },
    { op: 'shift_intensity', offset: 0.01, p: 1 },
  ]);
  // target channel c = (image channel 0 > 0): scaling by 1 ± 0.3 and a shift of ±0.01 keep that sign
  const batch = samples(spec, 8).map((s) => {
    const per = s.image!.data.length / 2;
    const mask = Float32Array.from(s.image!.data.subarray(0, per), (v) => (Math.abs(v) > 0.05 && v > 0 ? 1 : 0));
    const image = { ...s.image!, data: Float32Array.from(s.image!.data, (v) => (Math.abs(v) <= 0.05 ? 1 : v)) };
    return { ...s, image, target: { data: Float32Array.from([...mask, ...mask, ...mask]), shape: [3, ...s.image!.shape.slice(1)] } };
  });
  let moved = 0;
  for (const seed of [3, 4, 5]) {
    augmentBatch(spec.augmentation!, batch, seed).forEach((s, i) => {
      const t = s.target as DenseVolume;
      const per = t.data.length / 3;
      for (let v = 0; v < per; v++) expect(t.data[v]).toBe(s.image!.data[v] > 0 ? 1 : 0);
      if (t.data.some((v, j) => v !== (batch[i].target as DenseVolume).data[j])) moved++;
    });
  }
  expect(moved).toBeGreaterThan(10); // of 24

});

test('the generated plan augments in training_step only, reproducibly under a torch seed and any thread count', () => {
  for (const c of [...CASES, ...TARGET_CASES]) {
    const r = pythonSide(results, `${c.name}_${c.seeds[0]}`);
    expect([r.training_step_augments, r.testing_step_augments, r.torch_seeded_repeatable, r.thread_count_independent]).toEqual([true, false, true, true]);
  }
});

test('a seed gives the same batch every run, another seed another batch; the input is not modified', () => {
  const spec = plan(2, STEPS_2D);
  const input = samples(spec, 4);
  const before = input.map((s) => s.image!.data.slice());
  const a = augmentBatch(spec.augmentation!, input, 5);
  const b = augmentBatch(spec.augmentation!, input, 5);
  const c = augmentBatch(spec.augmentation!, input, 6);
  expect(a.map((s) => Array.from(s.image!.data))).toEqual(b.map((s) => Array.from(s.image!.data)));
  expect(a.map((s) => Array.from(s.image!.data))).not.toEqual(c.map((s) => Array.from(s.image!.data)));
  input.forEach((s, i) => expect(s.image!.data).toEqual(before[i]));
});

test('rotate90 turns the plane as torch.rot90: four quarter turns give the input back', () => {
  const image = { data: Float32Array.from({ length: 9 }, (_, i) => i), shape: [1, 3, 3] };
  // p 1: always; the draws choose k, so apply one-turn steps by hand through a generator whose k draw is 1
  const once = augmentImage([{ op: 'rotate90', axes: [0, 1], p: 1 }], image, {
    next: (() => { const u = [0, 0]; let i = 0; return () => u[i++]; })(),
  } as unknown as SeededRandom);
  // torch.rot90([[0,1,2],[3,4,5],[6,7,8]], 1) = [[2,5,8],[1,4,7],[0,3,6]]
  expect(Array.from(once.data)).toEqual([2, 5, 8, 1, 4, 7, 0, 3, 6]);
  expect(sampleRandom(1, 0).next()).not.toBe(sampleRandom(1, 1).next());
});

test('affine with no rotation, scaling or shift is the identity; a quarter turn equals rotate90', () => {
  const image = { data: Float32Array.from({ length: 2 * 9 }, (_, i) => i + 1), shape: [2, 3, 3] };
  const draws = (values: number[]) => ({ next: (() => { let i = 0; return () => values[i++]; })() }) as unknown as SeededRandom;
  const still = augmentImage([{ op: 'affine', axes: [0, 1], rotate: 30, scale: 0.2, translate: 2, p: 1 }], image, draws([0, 0.5, 0.5, 0.5, 0.5]));
  expect(Array.from(still.data)).toEqual(Array.from(image.data));
  // u₁ = 1 → θ = +90°: the same turn as torch.rot90 k = 1 on a square plane
  const turned = augmentImage([{ op: 'affine', axes: [0, 1], rotate: 90, scale: 0, translate: 0, p: 1 }], image, draws([0, 1, 0.5, 0.5, 0.5]));
  const rot = augmentImage([{ op: 'rotate90', axes: [0, 1], p: 1 }], image, draws([0, 0]));
  turned.data.forEach((v, i) => expect(v).toBeCloseTo(rot.data[i], 5));
});

test('steps that cannot apply are refused', () => {
  const issues = (augmentation: unknown) => checkPlan({ ...plan(2, []), augmentation }).issues.map((i) => `${i.path}: ${i.message}`);
  expect(issues([{ op: 'flip', axes: [2], p: 0.5 }])).toEqual(['augmentation[0].axes: axis 2 does not exist: the image is 2D (axes 0..1)']);
  expect(issues([{ op: 'rotate90', axes: [0, 1], p: 1 }])).toEqual([]);
  const nonSquare = { ...plan(3, []), augmentation: [{ op: 'rotate90', axes: [0, 1], p: 1 }] };
  expect(checkPlan(nonSquare).issues[0].message).toMatch(/square plane: axes 0 and 1 have sizes 3 and 4/);
  expect(issues([{ op: 'gaussian_noise', std: 0.1, p: 2 }])[0]).toMatch(/^augmentation\[0\]\.p: /);
});
