/**
 * Pure preprocessing on volumes and slices, enough to build a CNN input from MRI: crop around a centre, resize
 * (trilinear / bilinear, PyTorch's align_corners=False convention), per-modality intensity normalisation, choice of
 * axial slices around a centre or around the brightest region of a channel (e.g. the tumour), and stacking of
 * modalities as channels into a channel-first "2.5D" array [C*S, H, W] (or [C, H, W] with one slice).
 * Nothing here mutates its inputs.
 */
import { Vec3, Volume, voxelToWorld } from './volume';

/** A channel-first array with its shape, e.g. [C*S, H, W]. */
export interface Tensor3 {
  data: Float32Array;
  shape: [number, number, number];
}

/**
 * The box of `size` voxels centred on `centre` (voxel coordinates, rounded), voxels outside the volume set to
 * `fill`. The origin moves so that the world geometry of the kept voxels is unchanged.
 */
export function cropAround(volume: Volume, centre: Vec3, size: Vec3, fill = 0): Volume {
  const [nx, ny, nz] = volume.dims;
  const start = [0, 1, 2].map((a) => Math.round(centre[a]) - Math.floor(size[a] / 2));
  const out = new Float32Array(size[0] * size[1] * size[2]).fill(fill);
  for (let z = 0; z < size[2]; z++) {
    const sz = start[2] + z;
    if (sz < 0 || sz >= nz) continue;
    for (let y = 0; y < size[1]; y++) {
      const sy = start[1] + y;
      if (sy < 0 || sy >= ny) continue;
      for (let x = 0; x < size[0]; x++) {
        const sx = start[0] + x;
        if (sx < 0 || sx >= nx) continue;
        out[x + size[0] * (y + size[1] * z)] = volume.data[sx + nx * (sy + ny * sz)];
      }
    }
  }
  return {
    data: out,
    dims: [...size],
    spacing: [...volume.spacing],
    orientation: [...volume.orientation],
    origin: voxelToWorld(volume, start[0], start[1], start[2]),
  };
}

/** Source coordinate and weights for resampling n -> m samples (align_corners = False). */
function sampling(n: number, m: number): { lo: Int32Array; hi: Int32Array; w: Float32Array } {
  const lo = new Int32Array(m);
  const hi = new Int32Array(m);
  const w = new Float32Array(m);
  const scale = n / m;
  for (let i = 0; i < m; i++) {
    const src = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), n - 1);
    lo[i] = Math.floor(src);
    hi[i] = Math.min(lo[i] + 1, n - 1);
    w[i] = src - lo[i];
  }
  return { lo, hi, w };
}

/** Trilinear resampling to `dims`; spacing grows or shrinks so the field of view is kept. */
export function resizeVolume(volume: Volume, dims: Vec3): Volume {
  const [nx, ny, nz] = volume.dims;
  const [mx, my, mz] = dims;
  const sx = sampling(nx, mx);
  const sy = sampling(ny, my);
  const sz = sampling(nz, mz);
  const src = volume.data;
  const out = new Float32Array(mx * my * mz);
  for (let z = 0; z < mz; z++) {
    const z0 = sz.lo[z] * nx * ny;
    const z1 = sz.hi[z] * nx * ny;
    const wz = sz.w[z];
    for (let y = 0; y < my; y++) {
      const y0 = sy.lo[y] * nx;
      const y1 = sy.hi[y] * nx;
      const wy = sy.w[y];
      for (let x = 0; x < mx; x++) {
        const x0 = sx.lo[x];
        const x1 = sx.hi[x];
        const wx = sx.w[x];
        const c00 = src[z0 + y0 + x0] * (1 - wx) + src[z0 + y0 + x1] * wx;
        const c01 = src[z0 + y1 + x0] * (1 - wx) + src[z0 + y1 + x1] * wx;
        const c10 = src[z1 + y0 + x0] * (1 - wx) + src[z1 + y0 + x1] * wx;
        const c11 = src[z1 + y1 + x0] * (1 - wx) + src[z1 + y1 + x1] * wx;
        out[x + mx * (y + my * z)] = (c00 * (1 - wy) + c01 * wy) * (1 - wz) + (c10 * (1 - wy) + c11 * wy) * wz;
      }
    }
  }
  // The corner of the field of view stays where it was: origin moves by half the change of voxel size.
  const spacing: Vec3 = [0, 1, 2].map((a) => (volume.spacing[a] * volume.dims[a]) / dims[a]) as Vec3;
  const shift = [0, 1, 2].map((a) => (spacing[a] / volume.spacing[a] - 1) / 2);
  return { data: out, dims: [...dims], spacing, orientation: [...volume.orientation], origin: voxelToWorld(volume, shift[0], shift[1], shift[2]) };
}

/** Bilinear resampling of a row-major [h, w] image to [outH, outW]. */
export function resize2d(image: Float32Array, [h, w]: [number, number], [outH, outW]: [number, number]): Float32Array {
  const sy = sampling(h, outH);
  const sx = sampling(w, outW);
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const r0 = sy.lo[y] * w;
    const r1 = sy.hi[y] * w;
    const wy = sy.w[y];
    for (let x = 0; x < outW; x++) {
      const wx = sx.w[x];
      const top = image[r0 + sx.lo[x]] * (1 - wx) + image[r0 + sx.hi[x]] * wx;
      const bottom = image[r1 + sx.lo[x]] * (1 - wx) + image[r1 + sx.hi[x]] * wx;
      out[y * outW + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}

export interface ZScoreOptions {
  /** Compute mean and std over non-zero voxels only (the brain, not the background), as MONAI's nonzero=True. */
  nonzero?: boolean;
}

/** (x - mean) / std; with `nonzero`, zero voxels stay 0. A constant image becomes all zeros. */
export function zScore(data: Float32Array, options: ZScoreOptions = {}): Float32Array {
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (options.nonzero && v === 0) continue;
    n++;
    sum += v;
    sumSq += v * v;
  }
  const out = new Float32Array(data.length);
  if (n === 0) return out;
  const mean = sum / n;
  const std = Math.sqrt(Math.max(sumSq / n - mean * mean, 0));
  if (std === 0) return out;
  for (let i = 0; i < data.length; i++) {
    out[i] = options.nonzero && data[i] === 0 ? 0 : (data[i] - mean) / std;
  }
  return out;
}

/** The q-quantile (0..1) of the values, by nearest rank. */
export function quantile(data: Float32Array, q: number): number {
  if (data.length === 0) return NaN;
  const sorted = Float32Array.from(data).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

export interface MinMaxOptions {
  /** Clip below this quantile and above `upperQuantile` before scaling (robust to outliers). Defaults 0 and 1. */
  lowerQuantile?: number;
  upperQuantile?: number;
}

/** Linear rescale to [0, 1] (after optional quantile clipping). A constant image becomes all zeros. */
export function minMax(data: Float32Array, options: MinMaxOptions = {}): Float32Array {
  const lo = options.lowerQuantile ? quantile(data, options.lowerQuantile) : data.reduce((a, b) => Math.min(a, b), Infinity);
  const hi = options.upperQuantile !== undefined && options.upperQuantile < 1
    ? quantile(data, options.upperQuantile)
    : data.reduce((a, b) => Math.max(a, b), -Infinity);
  const out = new Float32Array(data.length);
  if (!(hi > lo)) return out;
  for (let i = 0; i < data.length; i++) out[i] = (Math.min(Math.max(data[i], lo), hi) - lo) / (hi - lo);
  return out;
}

export type Normalisation = 'zscore' | 'zscore-nonzero' | 'minmax' | 'none';

export function normalise(volume: Volume, how: Normalisation): Volume {
  const data = how === 'zscore' ? zScore(volume.data)
    : how === 'zscore-nonzero' ? zScore(volume.data, { nonzero: true })
      : how === 'minmax' ? minMax(volume.data)
        : Float32Array.from(volume.data);
  return { ...volume, data, dims: [...volume.dims], spacing: [...volume.spacing], origin: [...volume.origin] };
}

/** Voxel coordinates of the maximum value (first one in storage order). */
export function argmaxVoxel(volume: Volume): Vec3 {
  let best = 0;
  for (let i = 1; i < volume.data.length; i++) if (volume.data[i] > volume.data[best]) best = i;
  const [nx, ny] = volume.dims;
  return [best % nx, Math.floor(best / nx) % ny, Math.floor(best / (nx * ny))];
}

/**
 * Centre (voxel coordinates) of the brightest voxels: the centroid of the round((1 - q) * n) highest voxels (at
 * least one; ties at the cut taken in storage order, so a flat background never floods the selection).
 * On FLAIR or T1ce this lands on the tumour and is far steadier against noise than the single brightest voxel.
 */
export function brightCentroid(volume: Volume, q = 0.99): Vec3 {
  const n = volume.data.length;
  const keep = Math.min(n, Math.max(1, Math.round((1 - q) * n)));
  const threshold = Float32Array.from(volume.data).sort()[n - keep];
  let above = 0;
  for (let i = 0; i < n; i++) if (volume.data[i] > threshold) above++;
  let tiesLeft = keep - above;
  const [nx, ny] = volume.dims;
  let sx = 0;
  let sy = 0;
  let sz = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = volume.data[i];
    if (v < threshold) continue;
    if (v === threshold) {
      if (tiesLeft <= 0) continue;
      tiesLeft--;
    }
    sx += i % nx;
    sy += Math.floor(i / nx) % ny;
    sz += Math.floor(i / (nx * ny));
    count++;
  }
  return [sx / count, sy / count, sz / count];
}

/**
 * Mean over the (2r+1)^3 box around each voxel, voxels outside the volume counted as 0 (PyTorch's
 * avg_pool3d(kernel 2r+1, stride 1, padding r) with count_include_pad=True). Separable: three 1-D passes.
 */
export function boxMean(volume: Volume, radius = 1): Volume {
  const [nx, ny] = volume.dims;
  const strides = [1, nx, nx * ny];
  let current = volume.data;
  for (let a = 0; a < 3; a++) {
    const next = new Float32Array(current.length);
    const n = volume.dims[a];
    const stride = strides[a];
    for (let i = 0; i < current.length; i++) {
      const position = Math.floor(i / stride) % n;
      let sum = 0;
      for (let d = -radius; d <= radius; d++) {
        const p = position + d;
        if (p >= 0 && p < n) sum += current[i + d * stride];
      }
      next[i] = sum / (2 * radius + 1);
    }
    current = next;
  }
  return { ...volume, data: current, dims: [...volume.dims], spacing: [...volume.spacing], origin: [...volume.origin] };
}

/**
 * Voxel of the brightest blob: argmax of the box-smoothed volume. Steadier than the raw maximum (noise) and simple
 * to reproduce in PyTorch (avg_pool3d then argmax), so TS and Python nodes can centre their crops the same way.
 */
export function smoothedArgmax(volume: Volume, radius = 1): Vec3 {
  return argmaxVoxel(boxMean(volume, radius));
}

/**
 * `count` axial slices centred on slice `centreZ` (rounded), as [count, ny, nx]; indices beyond the volume repeat
 * the edge slice.
 */
export function axialSlices(volume: Volume, centreZ: number, count: number): Tensor3 {
  const [nx, ny, nz] = volume.dims;
  const plane = nx * ny;
  const first = Math.round(centreZ) - Math.floor(count / 2);
  const data = new Float32Array(count * plane);
  for (let s = 0; s < count; s++) {
    const z = Math.min(nz - 1, Math.max(0, first + s));
    data.set(volume.data.subarray(z * plane, (z + 1) * plane), s * plane);
  }
  return { data, shape: [count, ny, nx] };
}

/** Concatenates channel-first arrays of equal [*, H, W] along the first axis. */
export function stackChannels(parts: Tensor3[]): Tensor3 {
  if (parts.length === 0) throw new Error('stackChannels: nothing to stack');
  const [, h, w] = parts[0].shape;
  let channels = 0;
  for (const p of parts) {
    if (p.shape[1] !== h || p.shape[2] !== w) {
      throw new Error(`stackChannels: ${p.shape.join('x')} does not match [*, ${h}, ${w}]`);
    }
    channels += p.shape[0];
  }
  const data = new Float32Array(channels * h * w);
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return { data, shape: [channels, h, w] };
}

/** [C, H, W] -> [H, W, C] (tfjs' NHWC layout without the batch axis). */
export function toChannelsLast(t: Tensor3): Float32Array {
  const [c, h, w] = t.shape;
  const out = new Float32Array(t.data.length);
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < h * w; i++) out[i * c + ch] = t.data[ch * h * w + i];
  }
  return out;
}

export interface TumourCentredOptions {
  /** Axial slices per modality (1 gives [C, H, W]). */
  slices: number;
  /** Output in-plane size [H, W]. */
  size: [number, number];
  /** In-plane crop (voxels) around the centre before resizing to `size`; default `size` (no resize). */
  crop?: [number, number];
  /** Index (in `volumes`) of the channel whose bright region gives the centre; ignored when `centre` is given. */
  centreFrom?: number;
  /** Quantile for brightCentroid (default 0.99). */
  centreQuantile?: number;
  /** Explicit centre in voxel coordinates. */
  centre?: Vec3;
  /** Intensity normalisation per modality, on the whole volume before cropping (default 'zscore-nonzero'). */
  normalisation?: Normalisation;
}

/**
 * The "2.5D" CNN input: for each modality (all on the same grid), `slices` axial slices around the tumour centre,
 * cropped in-plane and resized, normalised per modality, stacked modality-major as [C*S, H, W].
 */
export function tumourCentredInput(volumes: Volume[], options: TumourCentredOptions): Tensor3 & { centre: Vec3 } {
  if (volumes.length === 0) throw new Error('tumourCentredInput: no volume given');
  const dims = volumes[0].dims;
  for (const v of volumes) {
    if (v.dims.some((d, a) => d !== dims[a])) {
      throw new Error(`tumourCentredInput: volumes must share a grid (${v.dims.join('x')} vs ${dims.join('x')})`);
    }
  }
  const centre = options.centre ?? brightCentroid(volumes[options.centreFrom ?? 0], options.centreQuantile ?? 0.99);
  const crop = options.crop ?? options.size;
  const parts = volumes.map((v) => {
    const normalised = normalise(v, options.normalisation ?? 'zscore-nonzero');
    const box = cropAround(normalised, centre, [crop[1], crop[0], options.slices]);
    const stack = axialSlices(box, Math.floor(options.slices / 2), options.slices);
    if (crop[0] === options.size[0] && crop[1] === options.size[1]) return stack;
    const resized = new Float32Array(options.slices * options.size[0] * options.size[1]);
    const plane = crop[0] * crop[1];
    for (let s = 0; s < options.slices; s++) {
      resized.set(resize2d(stack.data.subarray(s * plane, (s + 1) * plane), crop, options.size), s * options.size[0] * options.size[1]);
    }
    return { data: resized, shape: [options.slices, options.size[0], options.size[1]] as [number, number, number] };
  });
  return { ...stackChannels(parts), centre };
}
