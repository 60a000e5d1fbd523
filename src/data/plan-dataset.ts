/**
 * A node dataset seen through a training plan: the samples a plan's network consumes, built with exactly the
 * preprocessing the generated PyTorch plan applies on Python nodes (src/plan/pytorch.ts, `_fbts_image`), so that a
 * TS node and a Python node feed the same numbers to the same weights.
 *
 * Sources: `csv` (tabular columns + target column), `medical-folder` (NIfTI per subject and modality + the
 * demographics file) and `dicom` (a site folder of DICOM series per patient + a clinical CSV). Image samples are
 * produced channels-last for tfjs (`[...size, C]`, channel = modality × slices + slice); preprocessed samples are
 * cached up to a memory budget because every epoch revisits them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Batch, BatchSource } from '../engine/train';
import type { PlanSpec, PreprocessStep, NormalizeStep, SelectSlicesStep } from '../plan/spec';
import { readCsv, rowRecord } from './csv';
import { openDicomSite } from './dicom-site';
import type { MriModality } from './dicom-patient';
import { DataIssue, DataReadError } from './errors';
import { openMedicalFolder } from './medical-folder';
import type { Volume } from './volume';

export interface PlanDataSource {
  dataType: string;
  path: string;
  parameters: Record<string, unknown> | null;
}

export interface PlanSample {
  /** Channels-last image, `[...inputs.image.size, C]`, when the plan has an image input. */
  image?: Float32Array;
  /** Tabular features in `inputs.tabular.columns` order, standardised as the plan says. */
  tabular?: Float32Array;
  target: number;
}

export interface PlanDataset {
  readonly size: number;
  /** Problems met while indexing (skipped patients, …): paths stay on the node, in its logs. */
  readonly issues: DataIssue[];
  sample(index: number): PlanSample;
  /** Tensors for the samples at `indices` (inputs keyed 'image' / 'tabular', target `[N]` float32). */
  batchSync(indices: number[]): Batch;
  /** The samples at `subset` as an engine BatchSource (its indices are positions in `subset`). */
  batchSource(subset: number[]): BatchSource;
  /** Targets of the samples at `indices`. */
  targets(indices: number[]): Float32Array;
}

export interface OpenPlanDatasetOptions {
  /** Memory budget of the preprocessed-sample cache, in bytes (default 512 MiB). */
  cacheBytes?: number;
}

/** A C-order float array with its shape (torch semantics: last axis fastest). */
interface NdArray {
  shape: number[];
  data: Float32Array;
}

type Record_ = Record<string, number | string | boolean | null>;

/** What each source kind provides: raw per-sample material, before the plan's preprocessing. */
interface RawSource {
  size: number;
  issues: DataIssue[];
  /** Volumes by modality (image plans) and the row of clinical/tabular values. */
  load(index: number): { volumes?: Record<string, Volume>; row: Record_ };
}

export function openPlanDataset(spec: PlanSpec, source: PlanDataSource, options: OpenPlanDatasetOptions = {}): PlanDataset {
  const raw = openRawSource(spec, source);
  const imageSteps = spec.preprocessing.filter((s) => s.op !== 'standardize_column');
  const tabularSteps = spec.preprocessing.filter(
    (s): s is Extract<PreprocessStep, { op: 'standardize_column' }> => s.op === 'standardize_column',
  );
  const columns = spec.inputs.tabular?.columns ?? [];
  const image = spec.inputs.image;
  const storedRank = spec.preprocessing.some((s) => s.op === 'select_slices') ? 3 : image?.dims ?? 0;
  const cache = new Map<number, PlanSample>();
  const cacheLimit = options.cacheBytes ?? 512 * 1024 * 1024;
  let cached = 0;

  const build = (index: number): PlanSample => {
    const { volumes, row } = raw.load(index);
    const where = `sample ${index}`;
    const sample: PlanSample = { target: numericValue(row, spec.target.column, where) };
    if (columns.length > 0) {
      const values = Float32Array.from(columns, (c) => numericValue(row, c, where));
      for (const step of tabularSteps) {
        const j = columns.indexOf(step.column);
        if (j >= 0) values[j] = (values[j] - step.mean) / step.std;
      }
      sample.tabular = values;
    }
    if (image) {
      const perModality = image.modalities.map((m) => {
        const volume = volumes?.[m];
        if (!volume) throw new DataReadError(source.path, `${where}: modality ${m} is missing`);
        return preprocessImage(volumeToNd(volume, storedRank, m), imageSteps, m, image.size);
      });
      sample.image = toChannelsLast(perModality);
    }
    return sample;
  };

  const sample = (index: number): PlanSample => {
    if (!Number.isInteger(index) || index < 0 || index >= raw.size) {
      throw new RangeError(`sample index ${index} is outside the dataset (size ${raw.size})`);
    }
    const hit = cache.get(index);
    if (hit) return hit;
    const made = build(index);
    const bytes = (made.image?.byteLength ?? 0) + (made.tabular?.byteLength ?? 0) + 8;
    if (cached + bytes <= cacheLimit) {
      cache.set(index, made);
      cached += bytes;
    }
    return made;
  };

  const batchSync = (indices: number[]): Batch => {
    const samples = indices.map(sample);
    const n = samples.length;
    const inputs: Record<string, tf.Tensor> = {};
    if (image) {
      const channels = samples[0]?.image ? samples[0].image.length / image.size.reduce((a, b) => a * b, 1) : 0;
      const per = samples[0]?.image?.length ?? 0;
      const data = new Float32Array(n * per);
      samples.forEach((s, i) => data.set(s.image as Float32Array, i * per));
      inputs['image'] = tf.tensor(data, [n, ...image.size, channels], 'float32');
    }
    if (columns.length > 0) {
      const data = new Float32Array(n * columns.length);
      samples.forEach((s, i) => data.set(s.tabular as Float32Array, i * columns.length));
      inputs['tabular'] = tf.tensor2d(data, [n, columns.length], 'float32');
    }
    const target = tf.tensor1d(Float32Array.from(samples, (s) => s.target), 'float32');
    return { inputs, target };
  };

  return {
    size: raw.size,
    issues: raw.issues,
    sample,
    batchSync,
    batchSource(subset: number[]): BatchSource {
      return { size: subset.length, batch: (positions: number[]) => batchSync(positions.map((p) => subset[p])) };
    },
    targets(indices: number[]): Float32Array {
      return Float32Array.from(indices, (i) => sample(i).target);
    },
  };
}

function openRawSource(spec: PlanSpec, source: PlanDataSource): RawSource {
  const params = source.parameters ?? {};
  const tabularFile = typeof params['tabular_file'] === 'string' ? params['tabular_file'] : undefined;
  const indexCol = params['index_col'] as number | string | undefined;
  switch (source.dataType) {
    case 'csv': {
      if (spec.inputs.image) {
        throw new DataReadError(source.path, 'the plan needs images but the dataset is a CSV table');
      }
      const table = readCsv(source.path);
      return { size: table.rows.length, issues: [], load: (i) => ({ row: rowRecord(table, i) }) };
    }
    case 'medical-folder': {
      const folder = openMedicalFolder(source.path, { tabularFile, indexCol });
      const modalities = spec.inputs.image?.modalities ?? [];
      return {
        size: folder.subjects.length,
        issues: folder.issues,
        load: (i) => {
          const s = folder.loadSubject(folder.subjects[i], modalities);
          return { volumes: s.images, row: s.demographics };
        },
      };
    }
    case 'dicom': {
      const modalities = (spec.inputs.image?.modalities ?? []) as MriModality[];
      const site = openDicomSite(source.path, { clinicalCsv: tabularFile, indexColumn: indexCol, modalities });
      return {
        size: site.patients.length,
        issues: site.issues,
        load: (i) => {
          const p = site.loadPatient(site.patients[i]);
          const volumes: Record<string, Volume> = {};
          for (const [m, series] of Object.entries(p.modalities)) if (series) volumes[m] = series.volume;
          if (p.dose) volumes['RTDOSE'] = p.dose.volume;
          return { volumes, row: p.clinical };
        },
      };
    }
    default:
      throw new DataReadError(source.path, `dataset type "${source.dataType}" cannot feed a plan (csv, medical-folder, dicom)`);
  }
}

function numericValue(row: Record_, column: string, where: string): number {
  if (!(column in row)) throw new Error(`${where}: column "${column}" is not in the data`);
  const v = row[column];
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`${where}: column "${column}" is not numeric (${String(v)})`);
  return v;
}

/** A volume (x fastest) as a C-order array `[x, y, z]` = torch's view of the stored array, rank-reduced like the plan. */
function volumeToNd(volume: Volume, rank: number, modality: string): NdArray {
  const [dx, dy, dz] = volume.dims;
  let shape = [dx, dy, dz];
  while (shape.length > rank && shape[shape.length - 1] === 1) shape = shape.slice(0, -1);
  if (shape.length !== rank) {
    throw new Error(`modality ${modality} has shape [${volume.dims.join(', ')}], expected a ${rank}D volume`);
  }
  const out = new Float32Array(dx * dy * dz);
  let o = 0;
  for (let x = 0; x < dx; x++) {
    for (let y = 0; y < dy; y++) {
      for (let z = 0; z < dz; z++) out[o++] = volume.data[x + dx * (y + dy * z)];
    }
  }
  return { shape, data: out };
}

/** The plan's image steps on one modality: `[1, ...spatial]` in, `[channels, ...size]` out (as `_fbts_image`). */
export function preprocessImage(volume: NdArray, steps: PreprocessStep[], modality: string, size: number[]): NdArray {
  let x: NdArray = { shape: [1, ...volume.shape], data: volume.data };
  for (const step of steps) {
    switch (step.op) {
      case 'crop':
        x = crop(x, step.start, step.size, modality);
        break;
      case 'center_crop':
        x = crop(x, step.size.map((n, i) => Math.floor((x.shape[i + 1] - n) / 2)), step.size, modality);
        break;
      case 'resize':
        x = resizeLinear(x, step.size);
        break;
      case 'normalize':
        if (!step.modalities || step.modalities.includes(modality)) x = normalize(x, step);
        break;
      case 'select_slices':
        x = selectSlices(x, step, modality);
        break;
      default:
        break;
    }
  }
  const spatial = x.shape.slice(1);
  if (spatial.length !== size.length || spatial.some((n, i) => n !== size[i])) {
    throw new Error(`modality ${modality} gives [${spatial.join(', ')}] after preprocessing, the network expects [${size.join(', ')}]`);
  }
  return x;
}

function strides(shape: number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Copies the box `[start, start + size)` on the spatial axes (axis 0, the channels, is kept whole). */
function crop(x: NdArray, start: number[], size: number[], modality: string): NdArray {
  const spatial = x.shape.slice(1);
  if (start.length !== spatial.length || start.some((s, i) => s < 0 || s + size[i] > spatial[i])) {
    throw new Error(`modality ${modality}: crop start [${start.join(', ')}] size [${size.join(', ')}] does not fit the volume [${spatial.join(', ')}]`);
  }
  const outShape = [x.shape[0], ...size];
  return gather(x, outShape, (idx) => [idx[0], ...idx.slice(1).map((v, i) => v + start[i])]);
}

/** out[idx] = x[map(idx)], for every index of `outShape`. */
function gather(x: NdArray, outShape: number[], map: (idx: number[]) => number[]): NdArray {
  const inStrides = strides(x.shape);
  const total = outShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(total);
  const idx = new Array<number>(outShape.length).fill(0);
  for (let o = 0; o < total; o++) {
    const src = map(idx);
    let offset = 0;
    for (let k = 0; k < src.length; k++) offset += src[k] * inStrides[k];
    out[o] = x.data[offset];
    for (let k = outShape.length - 1; k >= 0; k--) {
      if (++idx[k] < outShape[k]) break;
      idx[k] = 0;
    }
  }
  return { shape: outShape, data: out };
}

/**
 * torch.nn.functional.interpolate(mode='bilinear'|'trilinear', align_corners=False) without antialiasing:
 * separable linear interpolation, source coordinate (dst + 0.5)·in/out − 0.5 clamped at 0.
 */
function resizeLinear(x: NdArray, size: number[]): NdArray {
  let current = x;
  for (let axis = 0; axis < size.length; axis++) current = resizeAxis(current, axis + 1, size[axis]);
  return current;
}

function resizeAxis(x: NdArray, axis: number, outLen: number): NdArray {
  const inLen = x.shape[axis];
  if (inLen === outLen) return x;
  const outShape = x.shape.slice();
  outShape[axis] = outLen;
  const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(outer * outLen * inner);
  const scale = inLen / outLen;
  for (let o = 0; o < outLen; o++) {
    const src = Math.max(scale * (o + 0.5) - 0.5, 0);
    const i0 = Math.min(Math.floor(src), inLen - 1);
    const i1 = i0 < inLen - 1 ? i0 + 1 : i0;
    const w1 = src - i0;
    const w0 = 1 - w1;
    for (let a = 0; a < outer; a++) {
      const base0 = (a * inLen + i0) * inner;
      const base1 = (a * inLen + i1) * inner;
      const dst = (a * outLen + o) * inner;
      for (let b = 0; b < inner; b++) out[dst + b] = w0 * x.data[base0 + b] + w1 * x.data[base1 + b];
    }
  }
  return { shape: outShape, data: out };
}

function normalize(x: NdArray, step: NormalizeStep): NdArray {
  const d = x.data;
  const out = new Float32Array(d.length);
  if (step.method === 'fixed') {
    const mean = step.mean ?? 0;
    const std = step.std ?? 1;
    for (let i = 0; i < d.length; i++) out[i] = (d[i] - mean) / std;
    return { shape: x.shape, data: out };
  }
  if (step.method === 'minmax') {
    let low = Infinity;
    let high = -Infinity;
    for (let i = 0; i < d.length; i++) {
      if (d[i] < low) low = d[i];
      if (d[i] > high) high = d[i];
    }
    const range = high > low ? high - low : 1;
    for (let i = 0; i < d.length; i++) out[i] = (d[i] - low) / range;
    return { shape: x.shape, data: out };
  }
  let sum = 0;
  for (let i = 0; i < d.length; i++) sum += d[i];
  const mean = sum / d.length;
  let sq = 0;
  for (let i = 0; i < d.length; i++) sq += (d[i] - mean) ** 2;
  const std = Math.sqrt(sq / d.length);
  const div = std > 0 ? std : 1;
  for (let i = 0; i < d.length; i++) out[i] = (d[i] - mean) / div;
  return { shape: x.shape, data: out };
}

/** `x[0].narrow(axis, first, count).movedim(axis, 0)`: the slices become the channel axis. */
function selectSlices(x: NdArray, step: SelectSlicesStep, modality: string): NdArray {
  const spatial = x.shape.slice(1);
  const n = spatial[step.axis];
  const centre = step.center === undefined || step.center === 'middle' ? Math.floor(n / 2) : step.center;
  const first = centre - Math.floor(step.count / 2);
  if (first < 0 || first + step.count > n) {
    throw new Error(`modality ${modality}: slices ${first}..${first + step.count - 1} do not fit axis ${step.axis} of size ${n}`);
  }
  const rest = spatial.filter((_, i) => i !== step.axis);
  const outShape = [step.count, ...rest];
  return gather(x, outShape, (idx) => {
    const src = [0];
    let r = 1;
    for (let i = 0; i < spatial.length; i++) src.push(i === step.axis ? first + idx[0] : idx[r++]);
    return src;
  });
}

/** Concatenates modalities on the channel axis (modality-major) and moves channels last. */
function toChannelsLast(parts: NdArray[]): Float32Array {
  const spatialSize = parts[0].shape.slice(1).reduce((a, b) => a * b, 1);
  const channels = parts.reduce((c, p) => c + p.shape[0], 0);
  const out = new Float32Array(spatialSize * channels);
  let c0 = 0;
  for (const part of parts) {
    const pc = part.shape[0];
    for (let c = 0; c < pc; c++) {
      for (let s = 0; s < spatialSize; s++) out[s * channels + c0 + c] = part.data[c * spatialSize + s];
    }
    c0 += pc;
  }
  return out;
}
