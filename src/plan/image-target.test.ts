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
import { createVolume, Volume } from '../data/volume';
import { definePlan } from './define';
import { imageTarget } from './image-target';
import { DenseVolume, imageInput, tabularInput } from './pipeline';
import { generateTorchPlan } from './pytorch';
import { AugmentStep, PlanSpec, PreprocessStep } from './spec';
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

function withAugmentation(spec: PlanSpec, augmentation: AugmentStep[]): PlanSpec {
  const { format: _format, version: _version, ...init } = spec;
  return definePlan({ ...init, augmentation });
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

/**
 * A tumour-centred 3-D crop: every volume to RAS at 1.5 × 1 × 2 mm, then a box centred on the tumour label map
 * (`seg`, a target modality, not an input) cut out of the inputs and the target alike.
 */
const TUMOUR_CROP_PLAN = definePlan({
  name: 'TumourCrop3d',
  inputs: { image: { modalities: ['T1', 'dose'], dims: 3, size: [5, 6, 4] } },
  target: { channels: CHANNELS },
  preprocessing: [
    { op: 'resample', spacing: [1.5, 1, 2] },
    { op: 'crop_around', modality: 'seg', center: 'mask', labels: [1, 4], size: [5, 6, 4], padValue: -1 },
    { op: 'normalize', method: 'zscore', modalities: ['T1'] },
  ],
  model: { nodes: [{ name: 'conv', type: 'conv3d', outChannels: 3, kernelSize: 3, padding: 1, input: 'image' }], output: 'conv' },
  loss: { type: 'bce', fromLogits: true },
  optimizer: { type: 'sgd', lr: 0.1 },
});
/**
 * A box on the brightest dose region (an input), then slices as channels: a 2-D image-to-image plan, whose training
 * batches are flipped and turned (the target with the image).
 */
const DOSE_CROP_SLICES_PLAN = withAugmentation(targetPlan('DoseCropSlices', [
  { op: 'resample', spacing: [1, 1.2, 1.5] },
  { op: 'crop_around', modality: 'dose', center: 'brightest', smooth: 3, size: [6, 5, 4] },
  { op: 'window', center: 30, width: 60, modalities: ['dose'] },
  { op: 'select_slices', axis: 2, count: 2 },
], [6, 5], 6), [{ op: 'flip', axes: [1], p: 0.5 }, { op: 'affine', axes: [0, 1], rotate: 20, scale: 0.1, translate: 1, p: 1 }, { op: 'gaussian_noise', std: 0.1, p: 1 }]);
/**
 * The tumour-centred recipe for a 2-D image-to-image plan whose inputs include the pre-treatment segmentation (as
 * the evolution demo's): resample (the segmentation nearest), a box centred on its tumour labels (1, 4: oedema
 * left out), the box's middle axial slice — the tumour's centre slice — and training batches turned and flipped.
 */
const TUMOUR_SLICE_PLAN = definePlan({
  name: 'TumourCentredSlice',
  inputs: { image: { modalities: ['T1', 'dose', 'seg'], dims: 2, size: [6, 6] } },
  target: { channels: CHANNELS },
  preprocessing: [
    { op: 'resample', spacing: [1.5, 1, 1.5], nearest: ['seg'] },
    { op: 'crop_around', modality: 'seg', center: 'mask', labels: [1, 4], size: [6, 6, 3] },
    { op: 'normalize', method: 'zscore', modalities: ['T1'] },
    { op: 'select_slices', axis: 2, count: 1 },
  ],
  augmentation: [{ op: 'rotate90', axes: [0, 1], p: 0.7 }, { op: 'flip', axes: [0], p: 0.5 }, { op: 'affine', axes: [0, 1], rotate: 10, scale: 0.05, translate: 0.5, p: 0.8 }],
  model: { nodes: [{ name: 'conv', type: 'conv2d', outChannels: 3, kernelSize: 3, padding: 1, input: 'image' }], output: 'conv' },
  loss: { type: 'bce', fromLogits: true },
  optimizer: { type: 'sgd', lr: 0.1 },
});
/** Stored geometry (LPS, volume.ts): i to posterior, j to the patient's right, k to superior; not RAS. */
const NIFTI_GEOMETRY = { spacing: [1.3, 0.8, 2.0] as [number, number, number], orientation: [0, 1, 0, -1, 0, 0, 0, 0, 1] as Volume['orientation'], origin: [10, -5, 3] as [number, number, number] };
const NIFTI_SHAPE = [9, 8, 6];
const NIFTI_CASES = [TUMOUR_CROP_PLAN, DOSE_CROP_SLICES_PLAN, TUMOUR_SLICE_PLAN];

/**
 * Subject s's volumes with a tumour near a corner (so the box leaves the volume): core labels 1 and 4, and oedema
 * (2) on one side of it, so a box on the labels 1, 4 and a box on every label > 0 have different centres.
 */
function tumourVolumes(rng: SeededRandom, s: number): Subject {
  const shape = NIFTI_SHAPE;
  const n = shape.reduce((a, b) => a * b, 1);
  const seg = new Float32Array(n);
  const [, ny, nz] = shape;
  for (let x = 0; x < shape[0]; x++) {
    for (let y = 0; y < ny; y++) {
      for (let z = 0; z < nz; z++) {
        if (x >= 6 && y <= 2 + s && z >= 1 && z <= 3) seg[(x * ny + y) * nz + z] = [1, 4][Math.floor(2 * rng.next())];
        else if (x >= 4 && y <= 2 + s && z >= 1 && z <= 3) seg[(x * ny + y) * nz + z] = 2;
      }
    }
  }
  return {
    T1: { data: Float32Array.from(seg, (v) => 100 + 10 * v + 5 * rng.next()), shape },
    dose: { data: Float32Array.from({ length: n }, () => 60 * rng.next()), shape },
    seg: { data: seg, shape },
    injury: { data: Float32Array.from({ length: n }, () => (rng.next() < 0.3 ? 1 : 0)), shape },
  };
}

/** C-order [x, y, z] volumes as NIfTI files (with the stored geometry) of a medical folder. */
function writeNiftiFolder(root: string, bySubject: Map<string, Subject>): void {
  for (const [id, volumes] of bySubject) {
    for (const [m, v] of Object.entries(volumes)) {
      fs.mkdirSync(path.join(root, id, m), { recursive: true });
      const volume = { ...toVolume(v), ...NIFTI_GEOMETRY };
      writeNifti(path.join(root, id, m, `${id}_${m}.nii`), volume, { datatype: 'float32' });
    }
  }
}

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
  for (const spec of NIFTI_CASES) {
    const root = path.join(work, spec.name, 'folder');
    const bySubject = new Map(SUBJECTS.map((id, s) => [id, tumourVolumes(rng, s)]));
    subjects.set(spec.name, bySubject);
    writeNiftiFolder(root, bySubject);
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

describe.each(NIFTI_CASES.map((c) => c.name))('NIfTI plan %s (resample, crop_around)', (name) => {
  const spec = NIFTI_CASES.find((c) => c.name === name)!;

  test('a TS node\'s medical-folder dataset gives the generated plan\'s inputs and target for every subject', () => {
    const r = pythonSide(results.data_cases, name);
    const dataset = openPlanDataset(spec, {
      dataType: 'medical-folder', path: path.join(work, name, 'folder'), parameters: { tabular_file: path.join(work, name, 'demographics.csv'), index_col: 0 },
    });
    expect(dataset.size).toBe(SUBJECTS.length);
    SUBJECTS.forEach((id, i) => {
      const ts = dataset.sample(i);
      const target = ts.target as DenseVolume;
      const py = r.samples[id];
      expect(py.target_image.shape).toEqual(target.shape);
      expect(maxAbsDiff(readFloat32(py.target_image.file), target.data)).toBe(0); // labels: nearest, no arithmetic
      expect(py.image.shape).toEqual(ts.image!.shape);
      expect(maxAbsDiff(readFloat32(py.image.file), ts.image!.data)).toBeLessThan(1e-4);
      expect(target.data.every((v) => v === 0 || v === 1)).toBe(true);
    });
    expect(Number.isFinite(r.batch_loss)).toBe(true);
  });
});

test('a tumour-centred crop: the input and target boxes line up voxel for voxel, the tumour inside', () => {
  // T1 = 100 + 10·label + noise < 5, so T1's crop says which label each voxel of the target crop must have.
  const rasOnly = definePlan({ ...TUMOUR_CROP_PLAN, preprocessing: [
    { op: 'resample', spacing: [0.8, 1.3, 2] }, // RAS spacing of the stored axes: a pure reorientation
    { op: 'crop_around', modality: 'seg', center: 'mask', size: [5, 6, 4], padValue: -1 },
  ] });
  const dataset = openPlanDataset(rasOnly, { dataType: 'medical-folder', path: path.join(work, TUMOUR_CROP_PLAN.name, 'folder'), parameters: null });
  for (let i = 0; i < SUBJECTS.length; i++) {
    const { image, target } = dataset.sample(i);
    const t = target as DenseVolume;
    const per = 5 * 6 * 4;
    let tumour = 0;
    for (let v = 0; v < per; v++) {
      const t1 = image!.data[v];
      const label = t1 === -1 ? 0 : Math.floor((t1 - 100) / 10); // -1: padding, outside the volume
      expect([t.data[v], t.data[2 * per + v]]).toEqual([label === 1 || label === 4 ? 1 : 0, label === 1 ? 1 : 0]);
      tumour += label > 0 ? 1 : 0;
    }
    const stored = subjects.get(TUMOUR_CROP_PLAN.name)!.get(SUBJECTS[i])!.seg.data;
    expect(tumour).toBe(stored.filter((v) => v > 0).length); // the whole tumour is in the box
    expect(image!.data.some((v) => v === -1)).toBe(true); // which leaves the volume at the corner
  }
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

test('the validator refuses an image target that does not fit the output; spatial augmentation moves it, so is accepted', () => {
  const wrong = { ...SLICES_PLAN, model: { nodes: [{ name: 'conv', type: 'conv2d', outChannels: 3, kernelSize: 3, padding: 1, input: 'image' }], output: 'conv' } };
  expect(checkPlan(wrong).issues).toEqual([{ path: 'target.channels', message: expect.stringMatching(/target is \[6, 6, 5\] \(3 channel\(s\) x 2 slices.*model gives \[3, 6, 5\]/) as unknown }]);
  const flipped = { ...SLICES_PLAN, augmentation: [{ op: 'flip', axes: [0], p: 0.5 }] };
  expect(checkPlan(flipped).issues).toEqual([]);
  expect(checkPlan({ ...SLICES_PLAN, target: { channels: [{ modality: 'seg' }] } }).issues[0].path).toBe('target.channels[0].labels');
  expect(checkPlan(SLICES_PLAN).issues).toEqual([]);
});

test('a plan with an image target is not generated for Fed-BioMed v6 (its target would be read from the demographics)', () => {
  expect(() => generateTorchPlan(SLICES_PLAN, { fedbiomed: 'v6' })).toThrow(/image target are generated for Fed-BioMed v4.5 only/);
  expect(generateTorchPlan(SLICES_PLAN)).toContain('target_modalities=self.TARGET_MODALITIES');
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
