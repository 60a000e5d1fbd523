/**
 * The generated plan's `training_data` on real datasets, run in PyTorch as a Fed-BioMed node runs it (stand-in
 * `fedbiomed` package, see testing/python/README.md), gives the same network inputs as the TS pipeline
 * (pipeline.ts) on the same files: a CSV for tabular plans; a medical folder (modality folders + demographics
 * CSV) for image plans, covering crop, centre crop, resize (2D and 3D), every normalisation, slice selection and
 * column standardisation. One collated loader batch then goes through training_step.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { SeededRandom } from '../engine/prng';
import { definePlan } from './define';
import { DenseVolume, headTargetValues, imageInput, preprocessModality, PreprocessError, tabularInput, targetValue } from './pipeline';
import { generateTorchPlan } from './pytorch';
import { PlanInit, PlanSpec } from './spec';
import { writeNpyFloat32 } from './testing/npy';
import { cnn2dPlan, cnn3dPlan, cnnTabularPlan, mlpPlan, severalHeadsGraphPlan } from './testing/plans';
import { modelGraph } from './graph-builder';
import { openPlanDataset } from '../data/plan-dataset';
import { writeNifti } from '../data/nifti';
import { createVolume, Volume } from '../data/volume';
import { findTorchPython, pythonSide, runTorchConformance } from './testing/python';

const TOLERANCE = 1e-4;

/**
 * The plans below differ only in their inputs and preprocessing: a flattened image (and the tabular columns as they
 * come, when there are some) into one linear output, MSE, SGD.
 */
function flattenRegressionPlan({ name, inputs, preprocessing }: Pick<PlanInit, 'name' | 'inputs' | 'preprocessing'>): PlanSpec {
  return definePlan({
    name,
    inputs,
    target: { column: 'y' },
    preprocessing,
    model: { image: [{ type: 'flatten' }], ...(inputs.tabular ? { tabular: [] } : {}), head: [{ type: 'dense', outFeatures: 1 }] },
    loss: { type: 'mse' },
    optimizer: { type: 'sgd', lr: 0.1 },
  });
}

function cropResizePlan(): PlanSpec {
  return flattenRegressionPlan({
    name: 'CropResize',
    inputs: { image: { modalities: ['T2', 'T1'], dims: 3, size: [4, 7, 5] } },
    preprocessing: [
      { op: 'crop', start: [1, 0, 2], size: [5, 4, 6] },
      { op: 'resize', size: [4, 7, 5] },
      { op: 'normalize', method: 'zscore', modalities: ['T2'] },
    ],
  });
}

/** PET/CT intensity steps: CT windowing, PET log then clipping. */
function intensityPlan(): PlanSpec {
  return flattenRegressionPlan({
    name: 'PetCtIntensity',
    inputs: { image: { modalities: ['CT', 'PET'], dims: 3, size: [5, 4, 6] } },
    preprocessing: [
      { op: 'window', center: 120, width: 60, modalities: ['CT'] },
      { op: 'log', modalities: ['PET'] },
      { op: 'clip', min: 4.8, modalities: ['PET'] },
      { op: 'clip', max: 5.5 },
    ],
  });
}

/** Maximum-intensity projection of a PET volume, and a clinical column with a missing value filled. */
function mipFillPlan(): PlanSpec {
  return flattenRegressionPlan({
    name: 'MipFill',
    inputs: { image: { modalities: ['PET'], dims: 2, size: [6, 5] }, tabular: { columns: ['age', 'sparse'] } },
    preprocessing: [
      { op: 'mip', axis: 1 },
      { op: 'fill_missing', column: 'sparse', value: 0.5 },
      { op: 'standardize_column', column: 'sparse', mean: 2, std: 4 },
    ],
  });
}

/** Categorical columns one-hot encoded: text and numeric categories, an unknown and a missing value. */
function oneHotPlan(): PlanSpec {
  return flattenRegressionPlan({
    name: 'OneHot',
    inputs: { image: { modalities: ['T1'], dims: 3, size: [4, 3, 5] }, tabular: { columns: ['stage', 'age', 'mgmt'] } },
    preprocessing: [
      { op: 'one_hot_column', column: 'stage', categories: ['I', 'II', 'III'] },
      { op: 'one_hot_column', column: 'mgmt', categories: ['1', '0'] },
      { op: 'standardize_column', column: 'age', mean: 60, std: 10 },
    ],
  });
}

/** A CSV plan with a one-hot text column (and a missing value in it). */
function oneHotCsvPlan(): PlanSpec {
  return definePlan({
    name: 'OneHotCsv',
    inputs: { tabular: { columns: ['f0', 'grade', 'f2'] } },
    target: { column: 'label' },
    preprocessing: [
      { op: 'one_hot_column', column: 'grade', categories: ['low', 'high'] },
      { op: 'standardize_column', column: 'f2', mean: -1, std: 2 },
    ],
    model: { tabular: [{ type: 'dense', outFeatures: 2 }], head: [{ type: 'dense', outFeatures: 2 }] },
    loss: { type: 'cross_entropy' },
    optimizer: { type: 'sgd', lr: 0.1 },
  });
}

/** PET/CT/GTV resampled to 2 mm (the mask nearest), CT windowed, a box centred on the GTV mask, padded at the border. */
function resampleMaskCropPlan(): PlanSpec {
  return flattenRegressionPlan({
    name: 'ResampleMaskCrop',
    inputs: { image: { modalities: ['CT', 'PET', 'GTV'], dims: 3, size: [5, 6, 4] } },
    preprocessing: [
      { op: 'resample', spacing: [2, 1.5, 2.5], nearest: ['GTV'] },
      { op: 'window', center: 40, width: 400, modalities: ['CT'] },
      { op: 'crop_around', modality: 'GTV', center: 'mask', size: [5, 6, 4], padValue: -1 },
      { op: 'normalize', method: 'zscore', modalities: ['PET'] },
    ],
  });
}

/** A PET volume resampled, log-compressed, cropped around its brightest voxel, then projected (MIP). */
function brightestCropPlan(): PlanSpec {
  return flattenRegressionPlan({
    name: 'BrightestCrop',
    inputs: { image: { modalities: ['PET'], dims: 2, size: [4, 5] } },
    preprocessing: [
      { op: 'resample', spacing: [0.8, 1.6, 1.9] },
      { op: 'log' },
      { op: 'crop_around', modality: 'PET', center: 'brightest', size: [4, 5, 3] },
      { op: 'mip', axis: 2 },
    ],
  });
}

/** The same with the box centred on the brightest 3×3×3 mean (a peak region, not one hot voxel). */
function smoothedBrightestCropPlan(): PlanSpec {
  const spec = brightestCropPlan();
  return definePlan({
    ...spec,
    name: 'SmoothedBrightestCrop',
    preprocessing: spec.preprocessing.map((s) => (s.op === 'crop_around' ? { ...s, smooth: 3 } : s)),
  });
}

/** A medical folder of NIfTI files (with their geometry), read by the TS node's reader and by nibabel. */
interface NiftiCase {
  name: string;
  spec: PlanSpec;
  dims: [number, number, number];
  /** LPS geometry of every modality's volume (volume.ts). */
  geometry: Pick<Volume, 'spacing' | 'orientation' | 'origin'>;
}

const NIFTI_CASES: NiftiCase[] = [
  {
    name: 'resample_mask_crop',
    spec: resampleMaskCropPlan(),
    dims: [9, 8, 6],
    // i to posterior, j to the patient's right, k to superior
    geometry: { spacing: [1.3, 0.8, 2.0], orientation: [0, 1, 0, -1, 0, 0, 0, 0, 1], origin: [10, -5, 3] },
  },
  {
    name: 'brightest_crop',
    spec: brightestCropPlan(),
    dims: [7, 8, 5],
    geometry: { spacing: [1.1, 1.1, 2.5], orientation: [1, 0, 0, 0, 1, 0, 0, 0, 1], origin: [-20, 4, 7] },
  },
  {
    name: 'smoothed_brightest_crop',
    spec: smoothedBrightestCropPlan(),
    dims: [7, 8, 5],
    geometry: { spacing: [1.1, 1.1, 2.5], orientation: [1, 0, 0, 0, 1, 0, 0, 0, 1], origin: [-20, 4, 7] },
  },
];

/** The voxels of one modality of one subject: a GTV blob near a corner (touching the border), else intensities. */
function niftiVoxels(rng: SeededRandom, modality: string, dims: number[], subject: number): Float32Array {
  const [nx, ny, nz] = dims;
  const out = new Float32Array(nx * ny * nz);
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const i = x + nx * (y + ny * z);
        if (modality === 'GTV') out[i] = x >= nx - 3 && y <= 1 + subject && z >= 1 && z <= 3 ? 1 : 0;
        else if (modality === 'CT') out[i] = -200 + 600 * rng.next();
        else out[i] = 1 + 5 * rng.next() + (x === 2 + subject && y === 3 && z === 2 ? 20 : 0);
      }
    }
  }
  return out;
}

/** A CSV plan with two heads: a class (bce) and a regression value (mse) from their own columns. */
function severalHeadsCsvPlan(): PlanSpec {
  return definePlan({
    name: 'SeveralHeadsCsv',
    inputs: { tabular: { columns: ['f0', 'f2'] } },
    target: { column: 'label' },
    model: modelGraph((g) => {
      const trunk = g.chain('trunk', 'tabular', [{ type: 'dense', outFeatures: 3 }, { type: 'relu' }]);
      g.layer('severity', { type: 'dense', outFeatures: 1 }, trunk);
      return g.layer('label_logit', { type: 'dense', outFeatures: 1 }, trunk);
    }),
    loss: { type: 'bce', fromLogits: true },
    heads: [{ output: 'severity', target: { column: 'f3' }, loss: { type: 'mse', weight: 2 }, metrics: ['mae'] }],
    optimizer: { type: 'sgd', lr: 0.1 },
    metrics: ['auc'],
  });
}

interface FolderCase {
  name: string;
  spec: PlanSpec;
  /** stored volume shape per modality (NIfTI i, j, k order) */
  volumeShape: number[];
}

const FOLDER_CASES: FolderCase[] = [
  { name: 'slices_crop_minmax_fixed', spec: cnnTabularPlan(), volumeShape: [10, 9, 7] },
  { name: 'zscore_2d_trailing_axis', spec: cnn2dPlan(), volumeShape: [12, 10, 1] },
  { name: 'resize_3d', spec: cnn3dPlan(), volumeShape: [9, 5, 11] },
  { name: 'crop_resize_up', spec: cropResizePlan(), volumeShape: [7, 6, 9] },
  { name: 'window_log_clip', spec: intensityPlan(), volumeShape: [5, 4, 6] },
  { name: 'mip_fill_missing', spec: mipFillPlan(), volumeShape: [6, 7, 5] },
  { name: 'one_hot', spec: oneHotPlan(), volumeShape: [4, 3, 5] },
  // three heads: the demographics carry the three target columns
  { name: 'several_heads', spec: severalHeadsGraphPlan(), volumeShape: [8, 8] },
];

const SUBJECTS = ['sub-01', 'sub-02', 'sub-03'];

function intensities(rng: SeededRandom, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 100 + 40 * rng.next() + (rng.next() < 0.1 ? 300 : 0));
}

function demographicsRows(rng: SeededRandom): Record<string, number | string>[] {
  return SUBJECTS.map((id, i) => ({
    id,
    age: Math.round(40 + 40 * rng.next()),
    sex: i % 2 ? 'F' : 'M',
    kps: 60 + 10 * i,
    mgmt: i % 2,
    responder: (i + 1) % 2,
    grade: i % 3,
    y: 0.5 * i - 0.25,
    pfs: 3 + 2.5 * i,
    sparse: i === 1 ? '' : 3 + i, // sub-02's value is missing
    stage: ['II', 'IV', ''][i], // a known category, an unknown one, a missing one
  }));
}

function csvText(rows: Record<string, number | string>[]): string {
  const columns = Object.keys(rows[0]);
  return [columns.join(','), ...rows.map((r) => columns.map((c) => String(r[c])).join(','))].join('\n') + '\n';
}

interface RawSpec {
  file: string;
  dtype: string;
  shape: number[];
}

function readFloat32(spec: RawSpec): Float32Array {
  const bytes = fs.readFileSync(spec.file);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

interface DataResult {
  error?: string;
  loader_kwargs: Record<string, unknown>;
  features?: RawSpec;
  targets?: RawSpec;
  samples: Record<string, { image: RawSpec; demographics: number[]; targets: number }>;
  batch_loss: number;
}

let work: string;
let results: { data_cases: Record<string, DataResult> };
const volumesBySubject = new Map<string, Record<string, Record<string, DenseVolume>>>();
let rows: Record<string, number | string>[];
let csvRows: Record<string, number | string>[];

beforeAll(() => {
  const python = findTorchPython();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-plan-data-'));
  const planDir = path.join(work, 'plans');
  fs.mkdirSync(planDir);
  const rng = new SeededRandom(5);
  const dataCases: unknown[] = [];

  // CSV dataset for the tabular MLP: an extra text column that the plan does not use.
  csvRows = Array.from({ length: 7 }, (_, i) => ({
    site: `s${i}`, f0: i * 0.5, f1: rng.next(), f2: -i, f3: 2 * rng.next(), label: i % 2, grade: ['low', 'high', ''][i % 3],
  }));
  const csvFile = path.join(work, 'tabular.csv');
  fs.writeFileSync(csvFile, csvText(csvRows));
  const mlp = mlpPlan();
  fs.writeFileSync(path.join(planDir, 'training_plan_csv.py'), generateTorchPlan(mlp));
  fs.mkdirSync(path.join(work, 'csv'));
  dataCases.push({ name: 'csv', kind: 'csv', module: 'training_plan_csv', class_name: mlp.name, path: csvFile, out_dir: path.join(work, 'csv') });
  const oneHotCsv = oneHotCsvPlan();
  fs.writeFileSync(path.join(planDir, 'training_plan_csv_one_hot.py'), generateTorchPlan(oneHotCsv));
  fs.mkdirSync(path.join(work, 'csv_one_hot'));
  dataCases.push({ name: 'csv_one_hot', kind: 'csv', module: 'training_plan_csv_one_hot', class_name: oneHotCsv.name, path: csvFile, out_dir: path.join(work, 'csv_one_hot') });

  const severalCsv = severalHeadsCsvPlan();
  fs.writeFileSync(path.join(planDir, 'training_plan_csv_several_heads.py'), generateTorchPlan(severalCsv));
  fs.mkdirSync(path.join(work, 'csv_several_heads'));
  dataCases.push({ name: 'csv_several_heads', kind: 'csv', module: 'training_plan_csv_several_heads', class_name: severalCsv.name, path: csvFile, out_dir: path.join(work, 'csv_several_heads') });

  /** A medical-folder case: its demographics file, its generated plan module and its output folder. */
  const addFolderCase = (name: string, spec: PlanSpec, root: string, demographicRows: typeof rows): void => {
    const demographics = path.join(work, name, 'demographics.csv');
    fs.writeFileSync(demographics, csvText(demographicRows));
    const module = `training_plan_${name}`;
    fs.writeFileSync(path.join(planDir, `${module}.py`), generateTorchPlan(spec));
    fs.mkdirSync(path.join(work, name, 'out'));
    dataCases.push({
      name,
      kind: 'folder',
      module,
      class_name: spec.name,
      path: root,
      dataset_parameters: { tabular_file: demographics, index_col: 0 },
      out_dir: path.join(work, name, 'out'),
    });
  };
  rows = demographicsRows(rng);
  for (const c of FOLDER_CASES) {
    const root = path.join(work, c.name, 'folder');
    const modalities = c.spec.inputs.image!.modalities;
    const subjects: Record<string, Record<string, DenseVolume>> = {};
    for (const subject of SUBJECTS) {
      subjects[subject] = {};
      for (const m of modalities) {
        const data = intensities(rng, c.volumeShape.reduce((a, b) => a * b, 1));
        subjects[subject][m] = { data, shape: c.volumeShape };
        fs.mkdirSync(path.join(root, subject, m), { recursive: true });
        writeNpyFloat32(path.join(root, subject, m, `${subject}_${m}.npy`), data, c.volumeShape);
      }
    }
    // A subject folder missing a modality, and one not in the demographics: both left out, as Fed-BioMed does.
    const partial = modalities.length > 1 ? modalities[0] : 'OTHER';
    fs.mkdirSync(path.join(root, 'sub-04', partial), { recursive: true });
    writeNpyFloat32(path.join(root, 'sub-04', partial, 'x.npy'), new Float32Array(c.volumeShape.reduce((a, b) => a * b, 1)), c.volumeShape);
    for (const m of modalities) {
      fs.mkdirSync(path.join(root, 'sub-99', m), { recursive: true });
      writeNpyFloat32(path.join(root, 'sub-99', m, 'x.npy'), new Float32Array(c.volumeShape.reduce((a, b) => a * b, 1)), c.volumeShape);
    }
    volumesBySubject.set(c.name, subjects);
    addFolderCase(c.name, c.spec, root, [...rows, { ...rows[0], id: 'sub-04' }]);
  }
  for (const c of NIFTI_CASES) {
    const root = path.join(work, c.name, 'folder');
    SUBJECTS.forEach((subject, s) => {
      for (const m of c.spec.inputs.image!.modalities) {
        const volume = createVolume(c.dims, c.geometry);
        volume.data.set(niftiVoxels(rng, m, c.dims, s));
        fs.mkdirSync(path.join(root, subject, m), { recursive: true });
        writeNifti(path.join(root, subject, m, `${subject}_${m}.nii`), volume);
      }
    });
    addFolderCase(c.name, c.spec, root, rows);
  }
  results = runTorchConformance(python, { plan_dir: planDir, cases: [], data_cases: dataCases }, work);
}, 240000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function dataCase(name: string): DataResult {
  return pythonSide(results.data_cases, name);
}

test('CSV: training_data selects, standardises and converts the columns like the TS pipeline', () => {
  const r = dataCase('csv');
  const spec = mlpPlan();
  const expected = csvRows.flatMap((row) => Array.from(tabularInput(spec, row)));
  expect(r.features!.shape).toEqual([csvRows.length, 4]);
  expect(maxAbsDiff(readFloat32(r.features!), expected)).toBeLessThan(1e-6);
  expect(Array.from(readFloat32(r.targets!))).toEqual(csvRows.map((row) => targetValue(spec, row)));
  expect(r.loader_kwargs).toEqual({ shuffle: true });
  expect(Number.isFinite(r.batch_loss)).toBe(true);
});

test('CSV with a one-hot column: the same encoded features on both sides', () => {
  const r = dataCase('csv_one_hot');
  const spec = oneHotCsvPlan();
  const expected = csvRows.flatMap((row) => Array.from(tabularInput(spec, row)));
  expect(r.features!.shape).toEqual([csvRows.length, 4]);
  expect(maxAbsDiff(readFloat32(r.features!), expected)).toBeLessThan(1e-6);
  expect(expected.slice(4, 8)).toEqual([0.5 * 1, 0, 1, (-1 + 1) / 2]); // row 1: f0 0.5, grade 'high', f2 -1
  expect(expected.slice(8, 11)).toEqual([1, 0, 0]); // row 2: grade missing -> no indicator
});

test('CSV with several heads: one target column per head, as the TS dataset batches them', () => {
  const r = dataCase('csv_several_heads');
  const spec = severalHeadsCsvPlan();
  expect(r.targets!.shape).toEqual([csvRows.length, 2]);
  const expected = csvRows.flatMap((row) => [targetValue(spec, row), ...headTargetValues(spec, row)]);
  expect(maxAbsDiff(readFloat32(r.targets!), expected)).toBeLessThan(1e-6);
  const file = path.join(work, 'tabular.csv');
  const dataset = openPlanDataset(spec, { dataType: 'csv', path: file, parameters: null });
  const batch = dataset.batchSync(csvRows.map((_, i) => i));
  expect(batch.target.shape).toEqual([csvRows.length, 2]);
  expect(maxAbsDiff(batch.target.dataSync(), expected)).toBeLessThan(1e-6);
  tf.dispose([batch.target, ...Object.values(batch.inputs)]);
  expect(Number.isFinite(r.batch_loss)).toBe(true);
});

describe.each(FOLDER_CASES.map((c) => c.name))('medical folder %s', (name) => {
  const c = FOLDER_CASES.find((f) => f.name === name)!;

  test('subjects are those with every modality and a demographics row', () => {
    expect(Object.keys(dataCase(name).samples).sort()).toEqual(SUBJECTS);
  });

  test('each subject gives the image input the TS pipeline computes', () => {
    const r = dataCase(name);
    for (const subject of SUBJECTS) {
      const ts = imageInput(c.spec, volumesBySubject.get(name)![subject]);
      const py = r.samples[subject].image;
      expect(py.shape).toEqual(ts.shape);
      const diff = maxAbsDiff(readFloat32(py), ts.data);
      if (diff >= TOLERANCE) throw new Error(`${name} ${subject}: image differs from PyTorch by ${diff}`);
    }
  });

  test('demographics give the tabular input and the target', () => {
    const r = dataCase(name);
    for (const subject of SUBJECTS) {
      const row = rows.find((x) => x.id === subject)!;
      const expected = [...Array.from(tabularInput(c.spec, row)), targetValue(c.spec, row), ...headTargetValues(c.spec, row)];
      expect(maxAbsDiff(r.samples[subject].demographics, expected)).toBeLessThan(1e-5);
      expect(r.samples[subject].targets).toBe(0);
    }
  });

  test('a collated loader batch trains through training_step', () => {
    expect(Number.isFinite(dataCase(name).batch_loss)).toBe(true);
  });
});

describe.each(NIFTI_CASES.map((c) => c.name))('NIfTI medical folder %s (resample, crop_around)', (name) => {
  const c = NIFTI_CASES.find((f) => f.name === name)!;

  test("the TS node's dataset (NIfTI reader, affine, pipeline) gives the generated plan's image input", () => {
    const r = dataCase(name);
    const root = path.join(work, name, 'folder');
    const dataset = openPlanDataset(c.spec, {
      dataType: 'medical-folder',
      path: root,
      parameters: { tabular_file: path.join(work, name, 'demographics.csv'), index_col: 0 },
    });
    expect(dataset.size).toBe(SUBJECTS.length);
    SUBJECTS.forEach((subject, i) => {
      const ts = dataset.sample(i).image!;
      const py = r.samples[subject].image;
      expect(py.shape).toEqual(ts.shape);
      const diff = maxAbsDiff(readFloat32(py), ts.data);
      if (diff >= TOLERANCE) throw new Error(`${name} ${subject}: image differs from PyTorch by ${diff}`);
    });
    expect(Number.isFinite(r.batch_loss)).toBe(true);
  });
});

test('resample_mask_crop: the box holds the mask and is padded where it leaves the volume', () => {
  const c = NIFTI_CASES[0];
  const dataset = openPlanDataset(c.spec, {
    dataType: 'medical-folder',
    path: path.join(work, c.name, 'folder'),
    parameters: { tabular_file: path.join(work, c.name, 'demographics.csv'), index_col: 0 },
  });
  const image = dataset.sample(0).image!; // [CT, PET, GTV] × 5 × 6 × 4
  const perChannel = 5 * 6 * 4;
  const gtv = Array.from(image.data.subarray(2 * perChannel));
  expect(gtv.filter((v) => v === 1).length).toBeGreaterThan(0); // the whole blob is inside the box...
  expect(gtv.filter((v) => v === -1).length).toBeGreaterThan(0); // ...which leaves the volume at the corner
  expect(gtv.every((v) => v === 0 || v === 1 || v === -1)).toBe(true); // nearest: labels stay labels
});

describe('TS pipeline errors name the plan, modality and problem', () => {
  test('a volume of the wrong rank or too small for a crop', () => {
    const spec = cropResizePlan();
    const volume = (shape: number[]): DenseVolume => ({ data: new Float32Array(shape.reduce((a, b) => a * b, 1)), shape });
    expect(() => preprocessModality(spec, 'T2', volume([7, 6]))).toThrow(PreprocessError);
    expect(() => preprocessModality(spec, 'T2', volume([7, 6]))).toThrow(/modality 'T2' has shape \[7, 6\], expected a 3D volume/);
    expect(() => preprocessModality(spec, 'T2', volume([7, 3, 9]))).toThrow(/crop start \[1, 0, 2\] size \[5, 4, 6\] does not fit the volume \[7, 3, 9\]/);
    expect(() => imageInput(spec, { T2: volume([7, 6, 9]) })).toThrow(/modality 'T1' is missing/);
    expect(() => tabularInput(cnnTabularPlan(), { age: 50, kps: 'x', mgmt: 1 })).toThrow(/column 'kps' is missing or not numeric/);
    const noAffine = { data: new Float32Array(9 * 8 * 6), shape: [9, 8, 6] };
    expect(() => imageInput(resampleMaskCropPlan(), { CT: noAffine, PET: noAffine, GTV: noAffine })).toThrow(/modality 'CT': resample needs the volume's affine/);
  });
});
