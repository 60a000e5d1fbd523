/**
 * The preprocessing steps that need more than one modality's voxels: `resample` (the volume's affine) and
 * `crop_around` (a box placed by one modality, cut out of all). Semantics in spec.ts (ResampleStep,
 * CropAroundStep); the generated PyTorch plan's `_fbts_resample` / `_fbts_crop_around` compute the same, in the
 * same float32 operations (checked against PyTorch in data-conformance.test.ts, and against nibabel + scipy in
 * pipeline-geometry.test.ts).
 *
 * Arrays are channels first, `[C, ...spatial]`, C-order, as in pipeline.ts.
 */
import { closestWorldAxes } from './closest-axes';
import type { CropAroundStep, ResampleStep } from './spec';

/** A dense C-order array, channels first. */
interface Dense {
  data: Float32Array;
  shape: number[];
}

/** 4×4 voxel-to-world (RAS, mm) affine of a volume's spatial axes, rows (nibabel's `img.affine`). */
export type Affine = number[][];

function size(shape: number[]): number {
  return shape.reduce((p, n) => p * n, 1);
}

function strides(shape: number[]): number[] {
  const out = new Array<number>(shape.length).fill(1);
  for (let a = shape.length - 2; a >= 0; a--) out[a] = out[a + 1] * shape[a + 1];
  return out;
}

/**
 * For each RAS world axis w, the voxel axis that runs closest to it and the direction: pairs (axis, world) taken
 * greedily by the largest |direction cosine| (first pair in axis-then-world order on ties).
 */
export function rasAxes(affine: Affine): { oldOf: number[]; signs: number[]; norms: number[] } {
  const norms = [0, 1, 2].map((a) => Math.sqrt(affine[0][a] * affine[0][a] + affine[1][a] * affine[1][a] + affine[2][a] * affine[2][a]));
  if (norms.some((n) => !(n > 0) || !Number.isFinite(n))) throw new Error(`the affine has a degenerate voxel axis (column norms ${norms.join(', ')})`);
  const worldOf = closestWorldAxes([0, 1, 2].map((a) => [0, 1, 2].map((w) => Math.abs(affine[w][a] / norms[a]))));
  const oldOf = [-1, -1, -1];
  const signs = [1, 1, 1];
  worldOf.forEach((w, a) => {
    oldOf[w] = a;
    signs[w] = affine[w][a] < 0 ? -1 : 1;
  });
  return { oldOf, signs, norms };
}

/** Spatial axes permuted (new axis w = old axis oldOf[w]) and flipped where signs[w] < 0. */
function permuteFlip(x: Dense, oldOf: number[], signs: number[]): Dense {
  const spatial = x.shape.slice(1);
  const shape = [x.shape[0], ...oldOf.map((a) => spatial[a])];
  const inStrides = strides(x.shape);
  const out = new Float32Array(x.data.length);
  // Input offset of output index (c, p0, p1, p2): c·s0 + Σ_w (flipped p_w) · stride of old axis oldOf[w].
  const step = oldOf.map((a, w) => signs[w] * inStrides[a + 1]);
  const base = oldOf.reduce((sum, a, w) => sum + (signs[w] < 0 ? (spatial[a] - 1) * inStrides[a + 1] : 0), 0);
  let o = 0;
  for (let c = 0; c < shape[0]; c++) {
    for (let p0 = 0; p0 < shape[1]; p0++) {
      for (let p1 = 0; p1 < shape[2]; p1++) {
        let at = c * inStrides[0] + base + p0 * step[0] + p1 * step[1];
        for (let p2 = 0; p2 < shape[3]; p2++, at += step[2]) out[o++] = x.data[at];
      }
    }
  }
  return { data: out, shape };
}

/** Input positions of the output voxels along an axis of n voxels resampled by ratio r = new / old spacing. */
function samplePositions(n: number, r: number): Float64Array {
  const count = Math.floor((n - 1) / r + 1e-6) + 1;
  return Float64Array.from({ length: count }, (_, t) => Math.min(t * r, n - 1));
}

/** Samples one axis at the given positions: linear between neighbours, or the nearest voxel. */
function sampleAxis(x: Dense, axis: number, positions: Float64Array, nearest: boolean): Dense {
  const n = x.shape[axis];
  const outer = size(x.shape.slice(0, axis));
  const inner = size(x.shape.slice(axis + 1));
  const target = positions.length;
  const out = new Float32Array(outer * target * inner);
  for (let t = 0; t < target; t++) {
    const src = positions[t];
    const lo = nearest ? Math.min(Math.floor(src + 0.5), n - 1) : Math.floor(src);
    const hi = Math.min(lo + 1, n - 1);
    // float32 weights and products, as the generated plan's torch ops compute them.
    const w = Math.fround(src - lo);
    const keep = Math.fround(1 - w);
    for (let o = 0; o < outer; o++) {
      const a = (o * n + lo) * inner;
      const b = (o * n + hi) * inner;
      const dst = (o * target + t) * inner;
      if (nearest) out.set(x.data.subarray(a, a + inner), dst);
      else for (let i = 0; i < inner; i++) out[dst + i] = Math.fround(x.data[a + i] * keep) + Math.fround(x.data[b + i] * w);
    }
  }
  const shape = x.shape.slice();
  shape[axis] = target;
  return { data: out, shape };
}

/** `resample` on one modality's `[C, i, j, k]` array with its affine. */
export function resample(x: Dense, affine: Affine, step: ResampleStep, modality: string): Dense {
  if (x.shape.length !== 4) throw new Error(`resample needs a 3D volume, got spatial shape [${x.shape.slice(1).join(', ')}]`);
  const { oldOf, signs, norms } = rasAxes(affine);
  let y = permuteFlip(x, oldOf, signs);
  const nearest = step.nearest?.includes(modality) ?? false;
  for (let w = 0; w < 3; w++) {
    const r = step.spacing[w] / norms[oldOf[w]];
    if (r === 1) continue;
    y = sampleAxis(y, w + 1, samplePositions(y.shape[w + 1], r), nearest);
  }
  return y;
}

/**
 * k-wide box sums along every spatial axis in turn, zero outside, in float64, each output summing its box from the
 * lowest index up (the generated plan adds the same terms in the same order, so both find the same maximum).
 */
function boxSums(x: Dense, k: number): Float64Array {
  let values = Float64Array.from(x.data);
  const r = (k - 1) / 2;
  for (let axis = 1; axis < x.shape.length; axis++) {
    const n = x.shape[axis];
    const inner = size(x.shape.slice(axis + 1));
    const outer = size(x.shape.slice(0, axis));
    const out = new Float64Array(values.length);
    for (let o = 0; o < outer; o++) {
      for (let t = 0; t < n; t++) {
        for (let i = 0; i < inner; i++) {
          let sum = 0;
          for (let d = -r; d <= r; d++) {
            const s = t + d;
            sum += s >= 0 && s < n ? values[(o * n + s) * inner + i] : 0;
          }
          out[(o * n + t) * inner + i] = sum;
        }
      }
    }
    values = out;
  }
  return values;
}

/**
 * The voxel (spatial indices) a `crop_around` box is centred on, found in the guide modality's array; the mask is
 * its voxels > 0, or those holding one of `labels`.
 */
export function cropCentre(guide: Dense, center: CropAroundStep['center'], smooth = 1, labels?: number[]): number[] {
  const spatial = guide.shape.slice(1);
  const spatialSize = size(spatial);
  const unravel = (flat: number): number[] => {
    const out = new Array<number>(spatial.length);
    let rest = flat % spatialSize;
    for (let a = spatial.length - 1; a >= 0; a--) {
      out[a] = rest % spatial[a];
      rest = Math.floor(rest / spatial[a]);
    }
    return out;
  };
  if (center === 'brightest') {
    const values = smooth > 1 ? boxSums(guide, smooth) : guide.data;
    let best = 0;
    for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
    return unravel(best);
  }
  const low = spatial.map(() => Infinity);
  const high = spatial.map(() => -Infinity);
  const wanted = labels && new Set(labels.map((v) => Math.fround(v)));
  for (let i = 0; i < guide.data.length; i++) {
    if (wanted ? !wanted.has(guide.data[i]) : !(guide.data[i] > 0)) continue;
    const p = unravel(i);
    for (let a = 0; a < p.length; a++) {
      if (p[a] < low[a]) low[a] = p[a];
      if (p[a] > high[a]) high[a] = p[a];
    }
  }
  if (low[0] === Infinity) return spatial.map((n) => Math.floor(n / 2)); // empty mask
  return low.map((l, a) => Math.floor((l + high[a]) / 2));
}

/** The box [start, start + extent) of every channel; positions outside the array are `padValue`. */
export function padCrop(x: Dense, start: number[], extent: number[], padValue: number): Dense {
  const shape = [x.shape[0], ...extent];
  const out = new Float32Array(size(shape)).fill(Math.fround(padValue));
  const spatial = x.shape.slice(1);
  const lo = start.map((s) => Math.max(s, 0));
  const hi = start.map((s, a) => Math.min(s + extent[a], spatial[a]));
  if (lo.some((l, a) => l >= hi[a])) return { data: out, shape };
  const inStrides = strides(x.shape);
  const outStrides = strides(shape);
  const rank = spatial.length;
  const last = rank - 1;
  const rowLength = hi[last] - lo[last];
  const index = lo.slice(); // current input position on the spatial axes
  for (let c = 0; c < x.shape[0]; c++) {
    index.splice(0, rank, ...lo);
    for (;;) {
      let from = c * inStrides[0];
      let to = c * outStrides[0];
      for (let a = 0; a < rank; a++) {
        from += index[a] * inStrides[a + 1];
        to += (index[a] - start[a]) * outStrides[a + 1];
      }
      out.set(x.data.subarray(from, from + rowLength), to);
      let a = last - 1;
      for (; a >= 0; a--) {
        if (++index[a] < hi[a]) break;
        index[a] = lo[a];
      }
      if (a < 0) break;
    }
  }
  return { data: out, shape };
}
