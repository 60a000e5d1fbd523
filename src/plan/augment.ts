/**
 * Data augmentation on training batches (never at validation), as the generated PyTorch plan's `_fbts_augment`
 * does it: the same steps, the same random draws from the same generator (Mulberry32, see engine/prng.ts; the
 * Python side is a vectorised port), so a given batch seed gives the same augmented batch on both engines, every
 * run and any thread count.
 *
 * Randomness: each batch has a seed (TS: drawn from the round's random_seed; Python: from torch's generator, which
 * Fed-BioMed seeds with random_seed); sample i of the batch draws from Mulberry32(batchSeed + (i + 1)·0x9E3779B9).
 * Steps run in order on the channels-first network input `[C, ...spatial]`; each first draws u and applies when
 * u < p. Then:
 * - flip: reverses every listed spatial axis (MONAI RandFlip: the axes together);
 * - rotate90: k = 1 + ⌊3u⌋ quarter turns in the plane of its two axes (torch.rot90 direction, RandRotate90);
 * - scale_intensity: x · (1 + f), f = (2u − 1)·factor (RandScaleIntensity);
 * - shift_intensity: x + o, o = (2u − 1)·offset (RandShiftIntensity);
 * - gaussian_noise: x + std·√(−2 ln(1 − u₁))·cos(2π u₂) per voxel, u₁ and u₂ drawn for every voxel in C order
 *   (RandGaussianNoise, mean 0);
 * - affine: θ = (2u₁ − 1)·rotate degrees, s = 1 + (2u₂ − 1)·scale, shift (t_a, t_b) = (2u₃ − 1, 2u₄ − 1)·translate;
 *   output voxel q of the plane (axes a, b; centre c = (n − 1)/2) reads the input at R(−θ)(q − c − t)/s + c with
 *   bilinear interpolation, zero outside (RandAffine with padding zeros); the same for every slice across it.
 * An image target (image-target.ts) moves with the image: the same flips, turns and affine (nearest voxel, for
 * labels), no intensity change, and no draw of its own (a batch draws alike with or without one).
 */
import { SeededRandom } from '../engine/prng';
import { formatPath, PlanIssue } from './errors';
import type { PlanSample } from './batch';
import type { DenseVolume } from './pipeline';
import type { AugmentStep, PlanSpec } from './spec';

/** The generator of sample `index` of a batch. */
export function sampleRandom(batchSeed: number, index: number): SeededRandom {
  return new SeededRandom(((batchSeed >>> 0) + Math.imul(index + 1, 0x9e3779b9)) >>> 0);
}

function strides(shape: number[]): number[] {
  const out = new Array<number>(shape.length).fill(1);
  for (let a = shape.length - 2; a >= 0; a--) out[a] = out[a + 1] * shape[a + 1];
  return out;
}

/** Reorders voxels: out[index] = x[source(index)], for index over `shape` in C order. */
function remap(x: DenseVolume, shape: number[], source: (index: number[]) => number[]): DenseVolume {
  const inStrides = strides(x.shape);
  const out = new Float32Array(x.data.length);
  const index = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    const from = source(index);
    let offset = 0;
    for (let a = 0; a < from.length; a++) offset += from[a] * inStrides[a];
    out[o] = x.data[offset];
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++index[a] < shape[a]) break;
      index[a] = 0;
    }
  }
  return { data: out, shape };
}

function flip(x: DenseVolume, axes: number[]): DenseVolume {
  const tensorAxes = axes.map((a) => a + 1);
  return remap(x, x.shape, (index) => index.map((v, a) => (tensorAxes.includes(a) ? x.shape[a] - 1 - v : v)));
}

/** One quarter turn as torch.rot90(x, 1, dims=(a, b)): flip along b, then swap a and b. */
function rot90Once(x: DenseVolume, a: number, b: number): DenseVolume {
  const shape = x.shape.slice();
  [shape[a], shape[b]] = [shape[b], shape[a]];
  // out[.., i_a, .., i_b, ..] = flipped[.., i_b, .., i_a, ..] = x[.., i_b, .., n_b - 1 - i_a, ..]
  return remap(x, shape, (index) => {
    const from = index.slice();
    from[a] = index[b];
    from[b] = x.shape[b] - 1 - index[a];
    return from;
  });
}

/**
 * The affine resampling of the plane (a, b) of a channels-first tensor, described above; `nearest` (image targets'
 * label channels) reads the nearest voxel, floor(position + 0.5), in place of the bilinear blend.
 */
function affinePlane(x: DenseVolume, a: number, b: number, t: { angle: number; scale: number; shift: [number, number] }, nearest = false): DenseVolume {
  const na = x.shape[a];
  const nb = x.shape[b];
  const ca = (na - 1) / 2;
  const cb = (nb - 1) / 2;
  const cos = Math.cos(t.angle);
  const sin = Math.sin(t.angle);
  const st = strides(x.shape);
  const out = new Float32Array(x.data.length);
  const index = new Array<number>(x.shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    // source position in the plane
    const qa = index[a] - ca - t.shift[0];
    const qb = index[b] - cb - t.shift[1];
    const sa = (cos * qa + sin * qb) / t.scale + ca;
    const sb = (-sin * qa + cos * qb) / t.scale + cb;
    const a0 = Math.floor(sa);
    const b0 = Math.floor(sb);
    const wa = sa - a0;
    const wb = sb - b0;
    let base = 0;
    for (let d = 0; d < index.length; d++) if (d !== a && d !== b) base += index[d] * st[d];
    const at = (ia: number, ib: number): number => (ia < 0 || ia >= na || ib < 0 || ib >= nb ? 0 : x.data[base + ia * st[a] + ib * st[b]]);
    if (nearest) out[o] = at(Math.floor(sa + 0.5), Math.floor(sb + 0.5));
    else out[o] =
      (1 - wa) * (1 - wb) * at(a0, b0) + (1 - wa) * wb * at(a0, b0 + 1) + wa * (1 - wb) * at(a0 + 1, b0) + wa * wb * at(a0 + 1, b0 + 1);
    for (let d = x.shape.length - 1; d >= 0; d--) {
      if (++index[d] < x.shape[d]) break;
      index[d] = 0;
    }
  }
  return { data: out, shape: x.shape };
}

function map(x: DenseVolume, f: (v: number, i: number) => number): DenseVolume {
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = f(x.data[i], i);
  return { data: out, shape: x.shape };
}

/** One sample's image through the plan's augmentation steps (a new array; the input is not changed). */
export function augmentImage(steps: readonly AugmentStep[], image: DenseVolume, rng: SeededRandom): DenseVolume {
  return augmentSample(steps, image, undefined, rng).image;
}

/**
 * One sample's image and image target (channels first, the image's spatial size) through the augmentation steps,
 * with the same random draws as the image alone: the spatial steps (flip, rotate90, affine) move the target with the
 * image, affine reading the nearest voxel for the target's labels; the intensity steps leave it as it is.
 */
export function augmentSample(
  steps: readonly AugmentStep[], image: DenseVolume, target: DenseVolume | undefined, rng: SeededRandom,
): { image: DenseVolume; target?: DenseVolume } {
  let x = image;
  let y = target;
  for (const step of steps) {
    if (rng.next() >= step.p) continue;
    switch (step.op) {
      case 'flip':
        x = flip(x, step.axes);
        y = y && flip(y, step.axes);
        break;
      case 'rotate90': {
        const k = 1 + Math.floor(3 * rng.next());
        for (let t = 0; t < k; t++) {
          x = rot90Once(x, step.axes[0] + 1, step.axes[1] + 1);
          y = y && rot90Once(y, step.axes[0] + 1, step.axes[1] + 1);
        }
        break;
      }
      case 'scale_intensity': {
        const factor = Math.fround(1 + (2 * rng.next() - 1) * step.factor);
        x = map(x, (v) => v * factor);
        break;
      }
      case 'shift_intensity': {
        const offset = Math.fround((2 * rng.next() - 1) * step.offset);
        x = map(x, (v) => v + offset);
        break;
      }
      case 'affine': {
        const [u1, u2, u3, u4] = [rng.next(), rng.next(), rng.next(), rng.next()];
        const transform = {
          angle: (((2 * u1 - 1) * step.rotate) * Math.PI) / 180,
          scale: 1 + (2 * u2 - 1) * step.scale,
          shift: [(2 * u3 - 1) * step.translate, (2 * u4 - 1) * step.translate] as [number, number],
        };
        x = affinePlane(x, step.axes[0] + 1, step.axes[1] + 1, transform);
        y = y && affinePlane(y, step.axes[0] + 1, step.axes[1] + 1, transform, true);
        break;
      }
      case 'gaussian_noise': {
        const noise = new Float64Array(2 * x.data.length);
        for (let i = 0; i < noise.length; i++) noise[i] = rng.next();
        x = map(x, (v, i) => v + Math.fround(step.std * Math.sqrt(-2 * Math.log(1 - noise[2 * i])) * Math.cos(2 * Math.PI * noise[2 * i + 1])));
        break;
      }
    }
  }
  const copy = (v: DenseVolume, original: DenseVolume): DenseVolume => (v === original ? { data: v.data.slice(), shape: v.shape.slice() } : v);
  return { image: copy(x, image), ...(y && target ? { target: copy(y, target) } : {}) };
}

/**
 * A batch's samples with augmented images, and image targets moved with them (tabular values and column targets
 * unchanged); `batchSeed` as described above.
 */
export function augmentBatch(steps: readonly AugmentStep[], samples: readonly PlanSample[], batchSeed: number): PlanSample[] {
  return samples.map((s, i) => {
    if (!s.image) return s;
    const target = typeof s.target === 'number' ? undefined : s.target;
    const out = augmentSample(steps, s.image, target, sampleRandom(batchSeed, i));
    return { ...s, image: out.image, target: out.target ?? s.target };
  });
}

/** Batch seeds of a training run: a sequence drawn from the round's seed. */
export function batchSeeds(seed: number): () => number {
  const rng = new SeededRandom((seed ^ 0x2545f491) >>> 0);
  return () => rng.nextInt(4294967296);
}

/** Checks the steps against the plan's image input (axes in range, rotate90 on a square plane). */
export function checkAugmentation(spec: PlanSpec): PlanIssue[] {
  const steps = spec.augmentation ?? [];
  const issues: PlanIssue[] = [];
  const image = spec.inputs.image;
  steps.forEach((step, i) => {
    const at = (field: string) => formatPath(['augmentation', i, field]);
    if (!image) {
      issues.push({ path: at('op'), message: 'augmentation acts on images but the plan has no inputs.image' });
      return;
    }
    if (step.op !== 'flip' && step.op !== 'rotate90' && step.op !== 'affine') return;
    const bad = step.axes.find((a) => a >= image.dims);
    if (bad !== undefined) issues.push({ path: at('axes'), message: `axis ${bad} does not exist: the image is ${image.dims}D (axes 0..${image.dims - 1})` });
    else if (step.op === 'affine' && step.axes[0] === step.axes[1]) issues.push({ path: at('axes'), message: 'affine needs two different axes' });
    else if (step.op === 'rotate90') {
      const [a, b] = step.axes;
      if (a === b) issues.push({ path: at('axes'), message: 'rotate90 needs two different axes' });
      else if (image.size[a] !== image.size[b]) {
        issues.push({ path: at('axes'), message: `rotate90 needs a square plane: axes ${a} and ${b} have sizes ${image.size[a]} and ${image.size[b]}` });
      }
    }
  });
  return issues;
}
