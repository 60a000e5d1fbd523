/**
 * Image targets from a DICOM site: the tumour segmentation as a label-map image series (given a role by an operator
 * rule) or as a DICOM Segmentation object (SEG, written by pydicom), and an RT structure set's ROI (the GTV,
 * rasterised on the series it references) are target modalities like a medical folder's. The same cases converted to NIfTI by dcm2niix (its own voxel order; the GTV from its
 * known voxels, written as a series and converted alike) give the same input and target tensors once the plan's
 * resample step has put both in RAS, and the tumour-centred crop (crop_around on the GTV) cuts the same box from both.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import '@tensorflow/tfjs-backend-cpu';
import { definePlan } from '../plan/define';
import type { DenseVolume } from '../plan/pipeline';
import { phantomVolume, seriesOptions } from './dicom-corpus.test-helper';
import { writeRtStruct } from './dicom-rtstruct.test-helper';
import { readDicomPatient } from './dicom-patient';
import { writeSegmentation } from './dicom-seg.test-helper';
import { writeMrSeries } from './dicom-writer';
import { openPlanDataset } from './plan-dataset';
import { Volume, withData } from './volume';

const DIMS: [number, number, number] = [10, 8, 5];
const PATIENTS = ['P-1', 'P-2'];

/** The tumour label map: labels 1, 2, 3 in a block at the border (x 6..9, y 0..2+s, z 1..3). */
function segmentation(reference: Volume, s: number): Volume {
  const [nx, ny] = DIMS;
  return withData(reference, Float32Array.from(reference.data, (_, i) => {
    const x = i % nx;
    const y = Math.floor(i / nx) % ny;
    const z = Math.floor(i / (nx * ny));
    return x >= 6 && y <= 2 + s && z >= 1 && z <= 3 ? [1, 2, 3][(x + y + z) % 3] : 0;
  }));
}

/** The GTV's voxels: i 5..8, j 1..3 on slices 1 and 2 (each ROI contour drawn around them, half a voxel out). */
function gtvVoxels(reference: Volume): Volume {
  const [nx, ny] = DIMS;
  return withData(reference, Float32Array.from(reference.data, (_, i) => {
    const x = i % nx;
    const y = Math.floor(i / nx) % ny;
    const z = Math.floor(i / (nx * ny));
    return x >= 5 && x <= 8 && y >= 1 && y <= 3 && (z === 1 || z === 2) ? 1 : 0;
  }));
}

/** Contours in LPS mm around voxels i0..i1 × j0..j1 of slice k of `reference` (axial, phantomVolume's geometry). */
function square(reference: Volume, i0: number, i1: number, j0: number, j1: number, k: number): number[] {
  const [sx, sy, sz] = reference.spacing;
  const [ox, oy, oz] = reference.origin;
  return [[i0 - 0.5, j0 - 0.5], [i1 + 0.5, j0 - 0.5], [i1 + 0.5, j1 + 0.5], [i0 - 0.5, j1 + 0.5]].flatMap(([i, j]) => [ox + sx * i, oy + sy * j, oz + sz * k]);
}

const plan = definePlan({
  name: 'DicomTumourCrop',
  inputs: { image: { modalities: ['T1'], dims: 3, size: [6, 5, 4] } },
  target: { channels: [{ modality: 'seg', labels: [1, 3] }, { modality: 'seg', labels: [2] }, { modality: 'GTV', labels: [1] }] },
  preprocessing: [
    { op: 'resample', spacing: [1.2, 1, 1.3] }, // no voxel half-way between two: NIfTI stores spacings as float32
    { op: 'crop_around', modality: 'GTV', center: 'mask', size: [6, 5, 4], padValue: -1 },
    { op: 'normalize', method: 'zscore' },
  ],
  model: { nodes: [{ name: 'conv', type: 'conv3d', outChannels: 3, kernelSize: 3, padding: 1, input: 'image' }], output: 'conv' },
  loss: { type: 'bce', fromLogits: true },
  optimizer: { type: 'sgd', lr: 0.1 },
});

const SEGMENTS = [{ number: 1, label: 'Necrotic core', value: 1 }, { number: 2, label: 'Oedema', value: 2 }, { number: 3, label: 'Enhancing tumour', value: 3 }];

const SERIES_RULES = [
  { role: 'T1', modality: 'MR', description: 't1' },
  { role: 'seg', modality: 'MR', description: 'segmentation' },
  { role: 'seg', modality: 'SEG' },
  { role: 'GTV', modality: 'RTSTRUCT', roi: '^gtv' },
];

let work: string;
let site: string;
let folder: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-dicom-target-'));
  site = path.join(work, 'site');
  folder = path.join(work, 'nifti');
  const convert = (series: string, patient: string, modality: string): void => {
    const out = path.join(folder, patient, modality);
    fs.mkdirSync(out, { recursive: true });
    const run = spawnSync('dcm2niix', ['-z', 'y', '-b', 'n', '-f', `${patient}_${modality}`, '-o', out, series], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`dcm2niix failed on ${series}: ${run.stderr || run.stdout}`);
  };
  PATIENTS.forEach((id, s) => {
    const t1 = phantomVolume(DIMS, 3 + s);
    const t1Files = writeMrSeries(path.join(site, id, 't1'), t1, seriesOptions('t1_mprage', id));
    // P-1's segmentation is a label-map image series, P-2's a DICOM SEG on the T1 series (its NIfTI copy alike).
    const labelSeries = path.join(s === 0 ? site : path.join(work, 'scratch-seg'), id, 'seg');
    writeMrSeries(labelSeries, segmentation(t1, s), seriesOptions('tumour segmentation', id));
    if (s === 1) writeSegmentation(path.join(site, id, 'seg', 'SEG.dcm'), path.join(site, id, 't1'), segmentation(t1, s), SEGMENTS);
    const gtv = [1, 2].map((k) => square(t1, 5, 8, 1, 3, k));
    writeRtStruct(path.join(site, id, 'rt', 'RS.dcm'), t1Files[0], { Body: [square(t1, 0, 9, 0, 7, 0)], GTV_1: gtv });
    convert(path.join(site, id, 't1'), id, 'T1');
    convert(labelSeries, id, 'seg');
    // The NIfTI GTV from its known voxels (a scratch series converted alike), not from our rasteriser.
    const scratch = path.join(work, 'scratch', id);
    writeMrSeries(scratch, gtvVoxels(t1), seriesOptions('gtv', id));
    convert(scratch, id, 'GTV');
  });
  // A third patient whose structure set is missing: the GTV target cannot be made.
  writeMrSeries(path.join(site, 'P-3', 't1'), phantomVolume(DIMS, 9), seriesOptions('t1_mprage', 'P-3'));
  writeMrSeries(path.join(site, 'P-3', 'seg'), segmentation(phantomVolume(DIMS, 9), 0), seriesOptions('tumour segmentation', 'P-3'));
  fs.writeFileSync(path.join(site, 'clinical.csv'), 'id,age\nP-1,50\nP-2,60\nP-3,70\n');
}, 120000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

test('a DICOM site and its NIfTI copy give the same input and target tensors (label series, SEG, RT structure set)', () => {
  const dicom = openPlanDataset(plan, { dataType: 'dicom', path: site, parameters: { series_rules: SERIES_RULES } });
  // The SEG and RTSTRUCT files are not unreadable images; P-3 (no GTV structure set) is the only patient left out.
  expect(dicom.issues.map((i) => i.message)).toEqual([expect.stringMatching(/P-3: patient lacks GTV \(patient skipped\)$/)]);
  const nifti = openPlanDataset(plan, { dataType: 'medical-folder', path: folder, parameters: null });
  expect(nifti.size).toBe(2);
  // Not the same arrays before the plan's resample: dcm2niix stores another voxel order than the DICOM reader's.
  const raw = (dataType: string, root: string, parameters: Record<string, unknown> | null) =>
    openPlanDataset({ ...plan, name: 'Raw', inputs: { image: { ...plan.inputs.image!, size: [10, 8, 5] } }, preprocessing: [] }, { dataType, path: root, parameters }).sample(0).image!.data;
  expect(raw('dicom', site, { series_rules: SERIES_RULES })).not.toEqual(raw('medical-folder', folder, null));
  const wideBox = { ...plan, name: 'DicomWideCrop', inputs: { image: { ...plan.inputs.image!, size: [14, 14, 8] } },
    preprocessing: plan.preprocessing.map((s) => (s.op === 'crop_around' ? { ...s, size: [14, 14, 8] } : s)) };
  const wide = openPlanDataset(wideBox, { dataType: 'dicom', path: site, parameters: { series_rules: SERIES_RULES } });
  for (let i = 0; i < PATIENTS.length; i++) {
    const a = dicom.sample(i);
    const b = nifti.sample(i);
    const [ta, tb] = [a.target as DenseVolume, b.target as DenseVolume];
    expect(ta.shape).toEqual([3, 6, 5, 4]);
    expect(tb.shape).toEqual(ta.shape);
    expect(maxAbsDiff(ta.data, tb.data)).toBe(0);
    expect(maxAbsDiff(a.image!.data, b.image!.data)).toBeLessThan(1e-4);
    expect(ta.data.every((v) => v === 0 || v === 1)).toBe(true);
    // The box is centred on the GTV: all of it is inside (a box larger than the resampled volume holds no more).
    const gtvIn = (t: DenseVolume) => t.data.subarray((2 * t.data.length) / 3).reduce((n, v) => n + v, 0);
    const whole = wide.sample(i).target as DenseVolume;
    expect(gtvIn(ta)).toBeGreaterThan(0);
    expect(gtvIn(ta)).toBe(gtvIn(whole));
  }
  const batch = dicom.batchSync([0, 1]);
  expect(batch.target.shape).toEqual([2, 6, 5, 4, 3]); // channels last, as the network's output
  batch.target.dispose();
  Object.values(batch.inputs).forEach((t) => t.dispose());
});

test('a patient without the target\'s structure set is left out by name at the scan, not trained on an empty mask', () => {
  const dicom = openPlanDataset(plan, { dataType: 'dicom', path: site, parameters: { series_rules: SERIES_RULES } });
  expect(dicom.size).toBe(2);
  expect(dicom.issues).toEqual([expect.objectContaining({ path: path.join(site, 'P-3'), message: expect.stringMatching(/patient lacks GTV/) })]);
});

test('a DICOM SEG becomes the label map of its segment numbers, or the mask of the segments a rule names', () => {
  const dir = path.join(site, 'P-2');
  const truth = segmentation(phantomVolume(DIMS, 4), 1);
  const patient = readDicomPatient(dir, { rules: [...SERIES_RULES, { role: 'core', modality: 'SEG', segment: 'necrotic|enhancing' }] });
  expect(patient.issues).toEqual([]);
  expect(patient.modalities.seg?.modality).toBe('SEG');
  expect(Array.from(patient.modalities.seg!.volume.data)).toEqual(Array.from(truth.data));
  expect(Array.from(patient.modalities.core!.volume.data)).toEqual(Array.from(truth.data, (v) => (v === 1 || v === 3 ? 1 : 0)));
  expect(patient.modalities.core!.seriesDescription).toBe('Necrotic core, Enhancing tumour');
  // A FRACTIONAL segmentation (probabilities) is refused by name, not read as a mask.
  const fractional = path.join(work, 'fractional', 'P-2');
  writeMrSeries(path.join(fractional, 't1'), phantomVolume(DIMS, 4), seriesOptions('t1_mprage', 'P-2'));
  writeSegmentation(path.join(fractional, 'seg', 'SEG.dcm'), path.join(fractional, 't1'), truth, SEGMENTS, { type: 'FRACTIONAL' });
  const refused = readDicomPatient(fractional, { rules: SERIES_RULES });
  expect(refused.modalities.seg).toBeUndefined();
  expect(refused.issues.map((i) => i.message)).toEqual([expect.stringMatching(/SEG\.dcm: segmentation type FRACTIONAL is not supported \(BINARY only\)$/) as unknown]);
});
