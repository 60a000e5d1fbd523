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
import { SeededRandom } from '../engine/prng';
import { definePlan } from './define';
import { DenseVolume, imageInput, preprocessModality, PreprocessError, tabularInput, targetValue } from './pipeline';
import { generateTorchPlan } from './pytorch';
import { PlanSpec } from './spec';
import { writeNpyFloat32 } from './testing/npy';
import { cnn2dPlan, cnn3dPlan, cnnTabularPlan, mlpPlan } from './testing/plans';
import { findTorchPython, pythonSide, runTorchConformance } from './testing/python';

const TOLERANCE = 1e-4;

function cropResizePlan(): PlanSpec {
  return definePlan({
    name: 'CropResize',
    inputs: { image: { modalities: ['T2', 'T1'], dims: 3, size: [4, 7, 5] } },
    target: { column: 'y' },
    preprocessing: [
      { op: 'crop', start: [1, 0, 2], size: [5, 4, 6] },
      { op: 'resize', size: [4, 7, 5] },
      { op: 'normalize', method: 'zscore', modalities: ['T2'] },
    ],
    model: { image: [{ type: 'flatten' }], head: [{ type: 'dense', outFeatures: 1 }] },
    loss: { type: 'mse' },
    optimizer: { type: 'sgd', lr: 0.1 },
  });
}

/** PET/CT intensity steps: CT windowing, PET log then clipping. */
function intensityPlan(): PlanSpec {
  return definePlan({
    name: 'PetCtIntensity',
    inputs: { image: { modalities: ['CT', 'PET'], dims: 3, size: [5, 4, 6] } },
    target: { column: 'y' },
    preprocessing: [
      { op: 'window', center: 120, width: 60, modalities: ['CT'] },
      { op: 'log', modalities: ['PET'] },
      { op: 'clip', min: 4.8, modalities: ['PET'] },
      { op: 'clip', max: 5.5 },
    ],
    model: { image: [{ type: 'flatten' }], head: [{ type: 'dense', outFeatures: 1 }] },
    loss: { type: 'mse' },
    optimizer: { type: 'sgd', lr: 0.1 },
  });
}

/** Maximum-intensity projection of a PET volume, and a clinical column with a missing value filled. */
function mipFillPlan(): PlanSpec {
  return definePlan({
    name: 'MipFill',
    inputs: { image: { modalities: ['PET'], dims: 2, size: [6, 5] }, tabular: { columns: ['age', 'sparse'] } },
    target: { column: 'y' },
    preprocessing: [
      { op: 'mip', axis: 1 },
      { op: 'fill_missing', column: 'sparse', value: 0.5 },
      { op: 'standardize_column', column: 'sparse', mean: 2, std: 4 },
    ],
    model: { image: [{ type: 'flatten' }], tabular: [], head: [{ type: 'dense', outFeatures: 1 }] },
    loss: { type: 'mse' },
    optimizer: { type: 'sgd', lr: 0.1 },
  });
}

/** Categorical columns one-hot encoded: text and numeric categories, an unknown and a missing value. */
function oneHotPlan(): PlanSpec {
  return definePlan({
    name: 'OneHot',
    inputs: { image: { modalities: ['T1'], dims: 3, size: [4, 3, 5] }, tabular: { columns: ['stage', 'age', 'mgmt'] } },
    target: { column: 'y' },
    preprocessing: [
      { op: 'one_hot_column', column: 'stage', categories: ['I', 'II', 'III'] },
      { op: 'one_hot_column', column: 'mgmt', categories: ['1', '0'] },
      { op: 'standardize_column', column: 'age', mean: 60, std: 10 },
    ],
    model: { image: [{ type: 'flatten' }], tabular: [], head: [{ type: 'dense', outFeatures: 1 }] },
    loss: { type: 'mse' },
    optimizer: { type: 'sgd', lr: 0.1 },
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
    const demographics = path.join(work, c.name, 'demographics.csv');
    fs.writeFileSync(demographics, csvText([...rows, { ...rows[0], id: 'sub-04' }]));
    const module = `training_plan_${c.name}`;
    fs.writeFileSync(path.join(planDir, `${module}.py`), generateTorchPlan(c.spec));
    fs.mkdirSync(path.join(work, c.name, 'out'));
    dataCases.push({
      name: c.name,
      kind: 'folder',
      module,
      class_name: c.spec.name,
      path: root,
      dataset_parameters: { tabular_file: demographics, index_col: 0 },
      out_dir: path.join(work, c.name, 'out'),
    });
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
      const expected = [...Array.from(tabularInput(c.spec, row)), targetValue(c.spec, row)];
      expect(maxAbsDiff(r.samples[subject].demographics, expected)).toBeLessThan(1e-5);
      expect(r.samples[subject].targets).toBe(0);
    }
  });

  test('a collated loader batch trains through training_step', () => {
    expect(Number.isFinite(dataCase(name).batch_loss)).toBe(true);
  });
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
  });
});
