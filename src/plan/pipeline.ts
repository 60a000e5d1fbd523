/**
 * The plan's preprocessing, as TS nodes must apply it: the same operations, in the same order, with the same
 * arithmetic as the generated PyTorch plan's `_fbts_image` / `_fbts_standardize` (checked against PyTorch in
 * data-conformance.test.ts). Works on dense C-order (row-major) arrays whose axes are the stored volume's axes in
 * NIfTI order (i, j, k): a reader whose volumes are x-fastest must hand them over as shape [nx, ny, nz] C-order,
 * i.e. transposed.
 */
import { ClipStep, isImageTarget, LogStep, PlanSpec, PreprocessStep, WindowStep } from './spec';
import { isImageStep, oneHotColumns, sliceSelection, storedImageRank, tabularFeatureIndex } from './preprocess';
import { Affine, cropCentre, padCrop, resample } from './pipeline-geometry';
import { headView, planHeads } from './heads';
import { FedbiomedTsError } from '../errors';

/** A dense C-order array. */
export interface DenseVolume {
  data: Float32Array;
  shape: number[];
  /**
   * Voxel-to-world 4×4 affine (RAS, mm; rows, as nibabel's `img.affine`) of a stored volume's axes, when the
   * reader knows it: what the `resample` step reads.
   */
  affine?: Affine;
}

export class PreprocessError extends FedbiomedTsError {}

function strides(shape: number[]): number[] {
  const out = new Array<number>(shape.length).fill(1);
  for (let a = shape.length - 2; a >= 0; a--) out[a] = out[a + 1] * shape[a + 1];
  return out;
}

function size(shape: number[]): number {
  return shape.reduce((p, n) => p * n, 1);
}

/** Copies the box [start, start + extent) of `x` (same rank). */
function box(x: DenseVolume, start: number[], extent: number[]): DenseVolume {
  const inStrides = strides(x.shape);
  const out = new Float32Array(size(extent));
  const rank = extent.length;
  const index = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const rowLength = extent[last];
  for (let o = 0; o < out.length; o += rowLength) {
    let offset = 0;
    for (let a = 0; a < last; a++) offset += (start[a] + index[a]) * inStrides[a];
    offset += start[last];
    out.set(x.data.subarray(offset, offset + rowLength), o);
    for (let a = last - 1; a >= 0; a--) {
      if (++index[a] < extent[a]) break;
      index[a] = 0;
    }
  }
  return { data: out, shape: extent.slice() };
}

/** Linear resampling of one axis, PyTorch's align_corners=False rule (source index clamped at 0). */
function resizeAxis(x: DenseVolume, axis: number, target: number): DenseVolume {
  const n = x.shape[axis];
  if (n === target) return x;
  const outer = size(x.shape.slice(0, axis));
  const inner = size(x.shape.slice(axis + 1));
  const out = new Float32Array(outer * target * inner);
  const scale = n / target;
  for (let t = 0; t < target; t++) {
    const src = Math.max((t + 0.5) * scale - 0.5, 0);
    const lo = Math.floor(src);
    const hi = lo < n - 1 ? lo + 1 : lo;
    const w = Math.fround(src - lo);
    for (let o = 0; o < outer; o++) {
      const a = (o * n + lo) * inner;
      const b = (o * n + hi) * inner;
      const dst = (o * target + t) * inner;
      for (let i = 0; i < inner; i++) out[dst + i] = x.data[a + i] * (1 - w) + x.data[b + i] * w;
    }
  }
  const shape = x.shape.slice();
  shape[axis] = target;
  return { data: out, shape };
}

function statistics(data: Float32Array): { mean: number; std: number; min: number; max: number } {
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / data.length;
  let squares = 0;
  for (const v of data) squares += (v - mean) ** 2;
  return { mean, std: Math.sqrt(squares / data.length), min, max };
}

function affine(x: DenseVolume, shift: number, divisor: number): DenseVolume {
  const out = new Float32Array(x.data.length);
  const s = Math.fround(shift);
  const d = Math.fround(divisor);
  for (let i = 0; i < out.length; i++) out[i] = (x.data[i] - s) / d;
  return { data: out, shape: x.shape };
}

/** Element-wise intensity steps, in float32 as the generated plan's torch ops compute them. */
function intensityMap(step: ClipStep | WindowStep | LogStep, data: Float32Array): Float32Array {
  const out = new Float32Array(data.length);
  if (step.op === 'log') {
    for (let i = 0; i < data.length; i++) out[i] = Math.log1p(Math.max(data[i], 0));
    return out;
  }
  const low = step.op === 'clip' ? step.min ?? -Infinity : Math.fround(step.center - step.width / 2);
  const high = step.op === 'clip' ? step.max ?? Infinity : Math.fround(step.center + step.width / 2);
  for (let i = 0; i < data.length; i++) out[i] = Math.min(Math.max(data[i], Math.fround(low)), Math.fround(high));
  if (step.op === 'window') {
    const width = Math.fround(step.width);
    for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i] - low) / width;
  }
  return out;
}

/** Drops trailing singleton axes beyond the stored rank (a [i, j, k, 1] NIfTI is a 3D volume). */
function asStoredRank(volume: DenseVolume, rank: number, label: string): DenseVolume {
  const shape = volume.shape.slice();
  while (shape.length > rank && shape[shape.length - 1] === 1) shape.pop();
  if (shape.length !== rank) {
    throw new PreprocessError(`${label} has shape [${volume.shape.join(', ')}], expected a ${rank}D volume`);
  }
  if (volume.data.length !== size(shape)) {
    throw new PreprocessError(`${label}: ${volume.data.length} values do not fill shape [${shape.join(', ')}]`);
  }
  return { data: volume.data, shape };
}

/** One modality's volume through the plan's image steps → [channels, ...inputs.image.size]. */
export function preprocessModality(spec: PlanSpec, modality: string, volume: DenseVolume): DenseVolume {
  return preprocessTracks(spec, [{ kind: 'input', modality, volume, name: `plan ${spec.name}: modality '${modality}'` }])[0];
}

/**
 * One array carried through the image steps of a sample:
 * - 'input': an image-input modality;
 * - 'target': one image-target channel, the 0/1 mask of a label map (image-target.ts);
 * - 'foreground': a target modality's mask (voxels > 0, or of the step's `labels`), when it places a crop_around
 *   box and is not an input.
 * 'target' and 'foreground' arrays take the spatial steps only (no normalize, clip, window or log), are resampled
 * nearest-neighbour and are 0 outside a crop_around box, so a target lands on the input's voxels, labels intact.
 */
interface ImageTrack {
  kind: 'input' | 'target' | 'foreground';
  modality: string;
  /** A foreground's crop_around step (its index in spec.preprocessing): the mask it was made from. */
  step?: number;
  volume: DenseVolume;
  /** What messages call it. */
  name: string;
}

const INTENSITY_OPS: ReadonlySet<PreprocessStep['op']> = new Set(['normalize', 'clip', 'window', 'log']);

/**
 * The tracks of one sample through the image steps in lock-step (crop_around places its box from one track and
 * cuts it out of all) → each `[channels, ...inputs.image.size]`, in `tracks` order.
 */
function preprocessTracks(spec: PlanSpec, tracks: ImageTrack[]): DenseVolume[] {
  const image = spec.inputs.image;
  if (!image) throw new PreprocessError(`plan ${spec.name} has no image input`);
  let xs = tracks.map((t) => {
    const stored = asStoredRank(t.volume, storedImageRank(spec), t.name);
    // A leading channel axis of 1, as in the generated plan.
    return { data: stored.data, shape: [1, ...stored.shape] };
  });
  for (const [index, step] of spec.preprocessing.entries()) {
    if (!isImageStep(step)) continue;
    if (step.op === 'crop_around') {
      let g = tracks.findIndex((t) => t.kind === 'input' && t.modality === step.modality);
      if (g < 0) g = tracks.findIndex((t) => t.kind === 'foreground' && t.step === index);
      if (g < 0) throw new PreprocessError(`plan ${spec.name}: crop_around needs modality '${step.modality}' for this sample`);
      const guide = xs[g];
      xs.forEach((x, i) => {
        if (x.shape.slice(1).join() !== guide.shape.slice(1).join()) {
          throw new PreprocessError(`${tracks[i].name} is [${x.shape.slice(1).join(', ')}] where '${step.modality}' is [${guide.shape.slice(1).join(', ')}]: crop_around needs one grid for all modalities`);
        }
      });
      // A foreground is its mask already (0/1): its labels were applied when it was made.
      const centre = cropCentre(guide, step.center, step.smooth, tracks[g].kind === 'input' ? step.labels : undefined);
      const start = centre.map((c, a) => c - Math.floor(step.size[a] / 2));
      xs = xs.map((x, i) => padCrop(x, start, step.size, tracks[i].kind === 'input' ? step.padValue ?? 0 : 0));
      continue;
    }
    xs = xs.map((x, i) => {
      const track = tracks[i];
      if (track.kind !== 'input' && INTENSITY_OPS.has(step.op)) return x;
      if (step.op !== 'resample') return applyStep(step, x, track.modality, track.name);
      const affine = track.volume.affine;
      if (!affine) throw new PreprocessError(`${track.name}: resample needs the volume's affine, and this reader gave none`);
      try {
        return resample(x, affine, track.kind === 'input' ? step : { ...step, nearest: [track.modality] }, track.modality);
      } catch (err) {
        throw new PreprocessError(`${track.name}: ${(err as Error).message}`);
      }
    });
  }
  xs.forEach((x, i) => {
    const spatial = x.shape.slice(1);
    if (spatial.length !== image.size.length || spatial.some((n, a) => n !== image.size[a])) {
      throw new PreprocessError(`${tracks[i].name} gives [${spatial.join(', ')}] after preprocessing, the network expects [${image.size.join(', ')}]`);
    }
  });
  return xs;
}

/** One image step that acts on each modality alone. */
function applyStep(step: PreprocessStep, x: DenseVolume, modality: string, label: string): DenseVolume {
  const crop = (start: number[], extent: number[]): DenseVolume => {
    const spatial = x.shape.slice(1);
    if (start.length !== spatial.length || start.some((s, a) => s < 0 || s + extent[a] > spatial[a])) {
      throw new PreprocessError(`${label}: crop start [${start.join(', ')}] size [${extent.join(', ')}] does not fit the volume [${spatial.join(', ')}]`);
    }
    return box(x, [0, ...start], [x.shape[0], ...extent]);
  };
  switch (step.op) {
    case 'crop':
      return crop(step.start, step.size);
    case 'center_crop':
      return crop(step.size.map((n, a) => Math.floor((x.shape[a + 1] - n) / 2)), step.size);
    case 'resize':
      return step.size.reduce((y, n, a) => resizeAxis(y, a + 1, n), x);
    case 'normalize': {
      if (step.modalities && !step.modalities.includes(modality)) return x;
      const stats = statistics(x.data);
      if (step.method === 'zscore') return affine(x, stats.mean, stats.std > 0 ? stats.std : 1);
      if (step.method === 'minmax') return affine(x, stats.min, stats.max > stats.min ? stats.max - stats.min : 1);
      return affine(x, step.mean!, step.std!);
    }
    case 'clip':
    case 'window':
    case 'log':
      if (step.modalities && !step.modalities.includes(modality)) return x;
      return { data: intensityMap(step, x.data), shape: x.shape };
    case 'select_slices': {
      const axis = step.axis;
      const n = x.shape[axis + 1];
      const centre = step.center === undefined || step.center === 'middle' ? Math.floor(n / 2) : step.center;
      const first = centre - Math.floor(step.count / 2);
      if (first < 0 || first + step.count > n) {
        throw new PreprocessError(`${label}: slices ${first}..${first + step.count - 1} do not fit axis ${axis} of size ${n}`);
      }
      const start = [0, 0, 0, 0];
      start[axis + 1] = first;
      const extent = x.shape.slice();
      extent[axis + 1] = step.count;
      const picked = box(x, start, extent); // [1, ..., count at axis, ...]
      return moveAxisToFront(picked, axis + 1);
    }
    case 'mip':
      return maxAlong(x, step.axis + 1);
    case 'resample':
    case 'crop_around':
      throw new Error(`internal: ${step.op} needs the whole sample`);
    case 'standardize_column':
    case 'fill_missing':
    case 'one_hot_column':
      return x;
  }
}

/** The maximum over one axis, which disappears (a maximum-intensity projection). */
function maxAlong(x: DenseVolume, axis: number): DenseVolume {
  const outer = size(x.shape.slice(0, axis));
  const n = x.shape[axis];
  const inner = size(x.shape.slice(axis + 1));
  const out = new Float32Array(outer * inner).fill(-Infinity);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < n; k++) {
      const from = (o * n + k) * inner;
      for (let i = 0; i < inner; i++) if (x.data[from + i] > out[o * inner + i]) out[o * inner + i] = x.data[from + i];
    }
  }
  return { data: out, shape: x.shape.filter((_, a) => a !== axis) };
}

/** [1, a, b, c] with `axis` (1..3) moved to the front and the unit axis dropped: [n_axis, others...]. */
function moveAxisToFront(x: DenseVolume, axis: number): DenseVolume {
  const shape = x.shape.slice(1);
  const a = axis - 1;
  const rest = shape.filter((_, i) => i !== a);
  const out = new Float32Array(x.data.length);
  const inStrides = strides(shape);
  const [r0, r1] = rest;
  const [s0, s1] = inStrides.filter((_, i) => i !== a);
  let o = 0;
  for (let c = 0; c < shape[a]; c++) {
    for (let i = 0; i < r0; i++) {
      for (let j = 0; j < r1; j++) out[o++] = x.data[c * inStrides[a] + i * s0 + j * s1];
    }
  }
  return { data: out, shape: [shape[a], ...rest] };
}

/** The network's image input for one sample, channels first: modalities in plan order, slices within each. */
export function imageInput(spec: PlanSpec, volumes: Record<string, DenseVolume>): DenseVolume {
  return imageSample(spec, volumes, { image: true, target: false }).image!;
}

/**
 * The image input and, for a plan with an image target (image-target.ts), the target of one sample, computed
 * together so the target goes through the input's geometry (resample, crop_around box, crops, slices):
 * - image `[modalities × slices, ...size]`, modalities in plan order;
 * - target `[channels × slices, ...size]`, float32 0/1 (resize may blend), channels in plan order.
 * `want` leaves one out (the arrays that place a crop_around box are computed all the same).
 */
export function imageSample(
  spec: PlanSpec,
  volumes: Record<string, DenseVolume>,
  want: { image: boolean; target: boolean } = { image: true, target: isImageTarget(spec.target) },
): { image?: DenseVolume; target?: DenseVolume } {
  const image = spec.inputs.image;
  if (!image) throw new PreprocessError(`plan ${spec.name} has no image input`);
  const target = isImageTarget(spec.target) ? spec.target : undefined;
  if (want.target && !target) throw new PreprocessError(`plan ${spec.name} has no image target`);
  const inputTrack = (m: string): ImageTrack => {
    if (!volumes[m]) throw new PreprocessError(`plan ${spec.name}: modality '${m}' is missing for this sample`);
    return { kind: 'input', modality: m, volume: volumes[m], name: `plan ${spec.name}: modality '${m}'` };
  };
  const labelVolume = (m: string): DenseVolume => {
    if (!volumes[m]) throw new PreprocessError(`plan ${spec.name}: target modality '${m}' is missing for this sample`);
    return volumes[m];
  };
  const tracks: ImageTrack[] = want.image ? image.modalities.map(inputTrack) : [];
  if (want.target) {
    for (const channel of target!.channels) {
      const volume = labelVolume(channel.modality);
      const labels = new Set(channel.labels);
      const mask = Float32Array.from(volume.data, (v) => (labels.has(v) ? 1 : 0));
      tracks.push({ kind: 'target', modality: channel.modality, volume: { ...volume, data: mask }, name: `plan ${spec.name}: target modality '${channel.modality}'` });
    }
  }
  // The arrays that place crop_around boxes, when not computed already: an input modality, or a target modality's foreground.
  for (const [index, step] of spec.preprocessing.entries()) {
    if (step.op !== 'crop_around') continue;
    if (image.modalities.includes(step.modality)) {
      if (!tracks.some((t) => t.kind === 'input' && t.modality === step.modality)) tracks.push(inputTrack(step.modality));
    } else if (target?.channels.some((c) => c.modality === step.modality)) {
      const volume = labelVolume(step.modality);
      const labels = step.labels && new Set(step.labels);
      const mask = Float32Array.from(volume.data, (v) => ((labels ? labels.has(v) : v > 0) ? 1 : 0));
      tracks.push({ kind: 'foreground', modality: step.modality, step: index, volume: { ...volume, data: mask }, name: `plan ${spec.name}: target modality '${step.modality}'` });
    }
  }
  const processed = preprocessTracks(spec, tracks);
  const joined = (kind: ImageTrack['kind'], count: number): DenseVolume => {
    const parts = processed.filter((_, i) => tracks[i].kind === kind).slice(0, count);
    const channels = parts.reduce((n, p) => n + p.shape[0], 0);
    const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
    let offset = 0;
    for (const p of parts) {
      data.set(p.data, offset);
      offset += p.data.length;
    }
    const expected = count * (sliceSelection(spec)?.count ?? 1);
    if (channels !== expected) throw new PreprocessError(`internal: ${channels} ${kind} channels, expected ${expected}`);
    return { data, shape: [channels, ...image.size] };
  };
  return {
    ...(want.image ? { image: joined('input', image.modalities.length) } : {}),
    ...(want.target ? { target: joined('target', target!.channels.length) } : {}),
  };
}

/**
 * What kind of value a cell holds, never the value itself: these messages can leave the node, and a cell is
 * patient data.
 */
function valueKind(value: unknown): string {
  if (value === undefined) return 'no such column';
  if (value === null || value === '') return 'empty cell';
  if (typeof value === 'string') return 'a text value';
  if (typeof value === 'number') return 'a non-finite number';
  return `a ${typeof value} value`;
}

/** The tabular input for one sample (inputs.tabular.columns order, standardize_column applied, float32). */
export function tabularInput(spec: PlanSpec, row: Record<string, unknown>): Float32Array {
  const columns = spec.inputs.tabular?.columns ?? [];
  const fills = new Map(spec.preprocessing.flatMap((s) => (s.op === 'fill_missing' ? [[s.column, s.value] as const] : [])));
  const oneHot = oneHotColumns(spec);
  const { count, index } = tabularFeatureIndex(spec);
  const out = new Float32Array(count);
  columns.forEach((column) => {
    const value = row[column];
    const j = index.get(column)!;
    const categories = oneHot.get(column);
    if (categories) {
      const k = categories.indexOf(categoryText(value) ?? '');
      if (k >= 0) out[j + k] = 1;
      return;
    }
    let number = typeof value === 'number' ? value : typeof value === 'boolean' ? Number(value) : NaN;
    if (!Number.isFinite(number) && fills.has(column)) number = fills.get(column)!;
    if (!Number.isFinite(number)) {
      throw new PreprocessError(`plan ${spec.name}: column '${column}' is missing or not numeric (${valueKind(value)})`);
    }
    out[j] = number;
  });
  for (const step of spec.preprocessing) {
    if (step.op !== 'standardize_column') continue;
    const j = index.get(step.column)!;
    out[j] = (out[j] - Math.fround(step.mean)) / Math.fround(step.std);
  }
  return out;
}

/** A cell's text for category matching: numbers by their shortest decimal text (3.0 → '3'); none when missing. */
function categoryText(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number') return Number.isNaN(value) ? undefined : String(value);
  return String(value);
}

/** The target of one sample as the loss wants it: a class index for cross_entropy, a float otherwise. */
export function targetValue(spec: PlanSpec, row: Record<string, unknown>): number {
  if (isImageTarget(spec.target)) throw new PreprocessError(`plan ${spec.name}: the target is an image (image-target.ts), not a column`);
  const { column } = spec.target;
  const value = row[column];
  const number = typeof value === 'number' ? value : typeof value === 'boolean' ? Number(value) : NaN;
  if (!Number.isFinite(number)) {
    throw new PreprocessError(`plan ${spec.name}: target column '${column}' is missing or not numeric (${valueKind(value)})`);
  }
  if (spec.loss.type === 'cross_entropy' && !Number.isInteger(number)) {
    throw new PreprocessError(`plan ${spec.name}: cross_entropy needs integer class labels, '${column}' has a non-integer value`);
  }
  return number;
}

/** Targets of the further heads of a plan with several heads, in PlanSpec.heads order (heads.ts). */
export function headTargetValues(spec: PlanSpec, row: Record<string, unknown>): number[] {
  return planHeads(spec).slice(1).map((head) => targetValue(headView(spec, head), row));
}
