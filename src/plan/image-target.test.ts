/**
 * Image targets (image-target.ts): the generated plan's `training_data` reads the target label maps through
 * MedicalFolderDataset's target modalities (stand-in fedbiomed package, real PyTorch) and gives training_step the
 * same target tensor as the TS pipeline on the same files; a TS node's medical-folder dataset (NIfTI files) gives
 * the same target channels-last; the validator refuses targets that cannot fit the output.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { SeededRandom } from '../engine/prng';
import { openPlanDataset } from '../data/plan-dataset';
import { writeNifti } from '../data/nifti';
import { createVolume } from '../data/volume';
import { definePlan } from './define';
import { imageTarget } from './image-target';
import { DenseVolume, imageInput, tabularInput } from './pipeline';
import { generateTorchPlan } from './pytorch';
import { PlanSpec, PreprocessStep } from './spec';
import { checkPlan } from './validate';
import { writeNpyFloat32 } from './testing/npy';
import { findTorchPython, pythonSide, runTorchConformance } from './testing/python';

const CHANNELS = [
  { modality: 'seg', labels: [1, 4] },
  { modality: 'injury', labels: [1] },
  { modality: 'seg', labels: [1] },
];

/** An image-to-image plan: T1 + dose in, the three channels out (times the slices when slices are channels). */
function targetPlan(name: string, preprocessing: PreprocessStep[], size: [number, number], outChannels: number, tabular = false): PlanSpec {
  return definePlan({
    name,
    inputs: { image: { modalities: ['T1', 'dose'], dims: 2, size }, ...(tabular ? { tabular: { columns: ['rt'] } } : {}) },
    target: { channels: CHANNELS },
    preprocessing,
    model: {
      nodes: [
        ...(tabular ? [
          { name: 'cond', type: 'spatial_broadcast' as const, size, input: 'tabular' },
          { name: 'both', type: 'concat' as const, input: ['image', 'cond'] },
        ] : []),
        { name: 'conv', type: 'conv2d', outChannels, kernelSize: 3, padding: 1, input: tabular ? 'both' : 'image' },
      ],
      output: 'conv',
    },
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'sgd', lr: 0.1 },
  });
}

const SLICES_PLAN = targetPlan('TargetSlices', [
  { op: 'center_crop', size: [6, 5, 4] },
  { op: 'normalize', method: 'zscore' },
  { op: 'select_slices', axis: 2, count: 2 },
], [6, 5], 6);
const MIP_PLAN = targetPlan('TargetMipResize', [
  { op: 'normalize', method: 'fixed', mean: 0, std: 60, modalities: ['dose'] },
  { op: 'mip', axis: 2 },
  { op: 'resize', size: [4, 6] },
  { op: 'one_hot_column', column: 'rt', categories: ['photon', 'proton'] },
], [4, 6], 3, true);
const CASES = [{ spec: SLICES_PLAN, shape: [8, 7, 5] }, { spec: MIP_PLAN, shape: [7, 9, 3] }];
const SUBJECTS = ['p1', 'p2', 'p3'];

type Subject = Record<string, DenseVolume>;

function subjectVolumes(rng: SeededRandom, shape: number[]): Subject {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    T1: { data: Float32Array.from({ length: n }, () => 100 + 50 * rng.next()), shape },
    dose: { data: Float32Array.from({ length: n }, () => 60 * rng.next()), shape },
    seg: { data: Float32Array.from({ length: n }, () => [0, 0, 1, 2, 4][Math.floor(5 * rng.next())]), shape },
    injury: { data: Float32Array.from({ length: n }, () => (rng.next() < 0.3 ? 1 : 0)), shape },
  };
}

function readFloat32(file: string): Float32Array {
  const bytes = fs.readFileSync(file);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

/** A C-order [x, y, z] array as the x-fastest Volume a NIfTI file stores. */
function toVolume(dense: DenseVolume): ReturnType<typeof createVolume> {
  const [dx, dy, dz] = dense.shape;
  const volume = createVolume([dx, dy, dz]);
  for (let x = 0; x < dx; x++) for (let y = 0; y < dy; y++) for (let z = 0; z < dz; z++) volume.data[x + dx * (y + dy * z)] = dense.data[(x * dy + y) * dz + z];
  return volume;
}

const RT = ['photon', 'proton', 'carbon'];
let work: string;
const subjects = new Map<string, Map<string, Subject>>();
let results: { data_cases: Record<string, { samples: Record<string, { target_image: { file: string; shape: number[] }; image: { file: string; shape: number[] }; demographics: number[] }>; batch_loss: number; error?: string }> };

beforeAll(() => {
  const python = findTorchPython();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-image-target-'));
  const planDir = path.join(work, 'plans');
  fs.mkdirSync(planDir);
  const rng = new SeededRandom(11);
  const dataCases: unknown[] = [];
  for (const { spec, shape } of CASES) {
    const root = path.join(work, spec.name, 'folder');
    const bySubject = new Map<string, Subject>();
    for (const id of SUBJECTS) {
      const volumes = subjectVolumes(rng, shape);
      bySubject.set(id, volumes);
      for (const [m, v] of Object.entries(volumes)) {
        fs.mkdirSync(path.join(root, id, m), { recursive: true });
        writeNpyFloat32(path.join(root, id, m, `${id}_${m}.npy`), v.data, v.shape);
      }
    }
    subjects.set(spec.name, bySubject);
    const demographics = path.join(work, spec.name, 'demographics.csv');
    fs.writeFileSync(demographics, `id,rt\n${SUBJECTS.map((id, i) => `${id},${RT[i]}`).join('\n')}\n`);
    fs.writeFileSync(path.join(planDir, `plan_${spec.name}.py`), generateTorchPlan(spec));
    fs.mkdirSync(path.join(work, spec.name, 'out'));
    dataCases.push({
      name: spec.name, kind: 'folder', module: `plan_${spec.name}`, class_name: spec.name, path: root,
      dataset_parameters: { tabular_file: demographics, index_col: 0 }, out_dir: path.join(work, spec.name, 'out'),
    });
  }
  results = runTorchConformance(python, { plan_dir: planDir, cases: [], data_cases: dataCases }, work);
}, 240000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe.each(CASES.map((c) => c.spec.name))('plan %s', (name) => {
  const spec = CASES.find((c) => c.spec.name === name)!.spec;

  test('the generated plan gives training_step the TS pipeline\'s target (and inputs) for every subject', () => {
    const r = pythonSide(results.data_cases, name);
    for (const id of SUBJECTS) {
      const volumes = subjects.get(name)!.get(id)!;
      const ts = imageTarget(spec, volumes);
      const py = r.samples[id].target_image;
      expect(py.shape).toEqual(ts.shape);
      expect(maxAbsDiff(readFloat32(py.file), ts.data)).toBeLessThan(1e-6);
      expect(maxAbsDiff(readFloat32(r.samples[id].image.file), imageInput(spec, volumes).data)).toBeLessThan(1e-4);
      // The demographics carry the tabular features only (no target column).
      const row = { rt: RT[SUBJECTS.indexOf(id)] };
      expect(r.samples[id].demographics).toEqual(spec.inputs.tabular ? Array.from(tabularInput(spec, row)) : []);
    }
    expect(Number.isFinite(r.batch_loss)).toBe(true);
  });
});

test('target channels: the label sets, channel-major over the selected slices', () => {
  const volumes = subjects.get(SLICES_PLAN.name)!.get('p1')!;
  const t = imageTarget(SLICES_PLAN, volumes);
  expect(t.shape).toEqual([6, 6, 5]);
  // Channel c, slice s = the label test of the channel's modality at the s-th selected slice, inside the centre crop.
  const [nx, ny, nz] = volumes.seg.shape;
  const x0 = Math.floor((nx - 6) / 2);
  const y0 = Math.floor((ny - 5) / 2);
  const z0 = Math.floor((nz - 4) / 2);
  const zFirst = z0 + Math.floor(4 / 2) - 1;
  for (const [c, channel] of CHANNELS.entries()) {
    for (let s = 0; s < 2; s++) {
      for (let x = 0; x < 6; x++) {
        for (let y = 0; y < 5; y++) {
          const v = volumes[channel.modality].data[((x0 + x) * ny + (y0 + y)) * nz + zFirst + s];
          expect(t.data[((c * 2 + s) * 6 + x) * 5 + y]).toBe(channel.labels.includes(v) ? 1 : 0);
        }
      }
    }
  }
});

test('a TS node\'s medical-folder dataset (NIfTI) gives the same target, channels last', () => {
  const root = path.join(work, 'nifti');
  const bySubject = subjects.get(MIP_PLAN.name)!;
  for (const [id, volumes] of bySubject) {
    for (const [m, v] of Object.entries(volumes)) {
      fs.mkdirSync(path.join(root, id, m), { recursive: true });
      writeNifti(path.join(root, id, m, `${id}_${m}.nii.gz`), toVolume(v), { datatype: 'float32' });
    }
  }
  const csv = path.join(work, 'nifti-demographics.csv');
  fs.writeFileSync(csv, `id,rt\n${SUBJECTS.map((id, i) => `${id},${RT[i]}`).join('\n')}\n`);
  const dataset = openPlanDataset(MIP_PLAN, { dataType: 'medical-folder', path: root, parameters: { tabular_file: csv, index_col: 0 } });
  expect(dataset.size).toBe(3);
  const batch = dataset.batchSync([0, 1, 2]);
  expect(batch.target.shape).toEqual([3, 4, 6, 3]);
  const expected = tf.tidy(() => tf.stack(SUBJECTS.map((id) => {
    const t = imageTarget(MIP_PLAN, bySubject.get(id)!);
    return tf.transpose(tf.tensor(t.data, t.shape), [1, 2, 0]);
  })));
  expect(maxAbsDiff(batch.target.dataSync(), expected.dataSync())).toBeLessThan(1e-6);
  tf.dispose([batch.target, expected, ...Object.values(batch.inputs)]);
  // The same folder registered as DICOM holds no DICOM series: every subject is skipped, with the reason (DICOM
  // image targets come from RT structure sets: src/data/plan-dataset-dicom.test.ts).
  const asDicom = openPlanDataset(MIP_PLAN, { dataType: 'dicom', path: root, parameters: null });
  expect(asDicom.size).toBe(0);
  expect(asDicom.issues.map((i) => i.message)).toEqual(SUBJECTS.map((id) => expect.stringMatching(new RegExp(`${id}: patient lacks .*\\(patient skipped\\)$`))));
});

test('the validator refuses an image target that does not fit the output, or that spatial augmentation would misalign', () => {
  const wrong = { ...SLICES_PLAN, model: { nodes: [{ name: 'conv', type: 'conv2d', outChannels: 3, kernelSize: 3, padding: 1, input: 'image' }], output: 'conv' } };
  expect(checkPlan(wrong).issues).toEqual([{ path: 'target.channels', message: expect.stringMatching(/target is \[6, 6, 5\] \(3 channel\(s\) x 2 slices.*model gives \[3, 6, 5\]/) as unknown }]);
  const flipped = { ...SLICES_PLAN, augmentation: [{ op: 'flip', axes: [0], p: 0.5 }] };
  expect(checkPlan(flipped).issues[0].message).toMatch(/spatial augmentation is not supported with an image target/);
  expect(checkPlan({ ...SLICES_PLAN, target: { channels: [{ modality: 'seg' }] } }).issues[0].path).toBe('target.channels[0].labels');
  expect(checkPlan(SLICES_PLAN).issues).toEqual([]);
});

test('image losses in the plan: accepted on image outputs, checked term by term, refused on flat outputs', () => {
  const withLoss = (loss: unknown): unknown => ({ ...SLICES_PLAN, loss });
  const bceDice = { type: 'weighted', terms: [{ weight: 1, loss: { type: 'bce', fromLogits: true } }, { weight: 0.5, loss: { type: 'soft_dice', channel: 5, fromLogits: true } }] };
  expect(checkPlan(withLoss(bceDice)).issues).toEqual([]);
  expect(checkPlan(withLoss({ type: 'l1' })).issues).toEqual([]);
  const outOfRange = { type: 'weighted', terms: [{ weight: 1, loss: { type: 'soft_dice', channel: 6, fromLogits: true } }] };
  expect(checkPlan(withLoss(outOfRange)).issues).toEqual([{ path: 'loss.terms[0].loss.channel', message: 'is not one of the 6 output channels' }]);
  expect(checkPlan(withLoss({ type: 'soft_dice' })).issues[0]).toEqual({ path: 'loss.fromLogits', message: expect.stringMatching(/soft_dice on probabilities needs the output to end with a sigmoid/) as unknown });
  expect(checkPlan(withLoss({ type: 'l1', channel: 0 })).issues[0].path).toBe('loss.channel');
  const flat = { ...SLICES_PLAN, version: 1, target: { column: 'y' }, model: { image: [{ type: 'flatten' }], head: [{ type: 'dense', outFeatures: 1 }] }, loss: { type: 'soft_dice', fromLogits: true } };
  expect(checkPlan(flat).issues[0].message).toMatch(/soft_dice is an image loss/);
});
