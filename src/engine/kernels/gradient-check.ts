/**
 * Gradient checks for convolution kernels: run forward + backward through tfjs on the active backend and compare
 * with (a) another backend's result and (b) central finite differences of a float64 reference convolution.
 * Used by the test suite over a grid of cases and, at run time, as the gate for kernels we do not trust blindly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { SeededRandom } from '../prng';
import { geometryFrom2D, geometryFrom3D } from './conv-geometry';
import { finiteDifference, RefConv, refConvOf } from './reference-conv';

type Pad2D = 'valid' | 'same' | number | backend_util.ExplicitPadding;

export interface ConvCase {
  /** [N, H, W, C] or [N, D, H, W, C]. */
  x: number[];
  /** [KH, KW, CI, CO] or [KD, KH, KW, CI, CO]. */
  filter: number[];
  strides: number;
  pad: Pad2D;
  dilations?: number;
}

export interface ConvGradients {
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
}

export function caseName(c: ConvCase): string {
  const pad = typeof c.pad === 'object' ? JSON.stringify(c.pad) : String(c.pad);
  return `x[${c.x}] w[${c.filter}] s${c.strides} d${c.dilations ?? 1} ${pad}`;
}

function filled(n: number, rng: SeededRandom): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.next() * 2 - 1;
  return a;
}

/** Deterministic inputs for a case: x, w and the cotangent that multiplies the output. */
function caseData(c: ConvCase, seed = 1234): { x: Float32Array; w: Float32Array; cot: Float32Array; outShape: number[] } {
  const rng = new SeededRandom(seed);
  const x = filled(c.x.reduce((a, b) => a * b, 1), rng);
  const w = filled(c.filter.reduce((a, b) => a * b, 1), rng);
  const outShape = outputShape(c);
  const cot = filled(outShape.reduce((a, b) => a * b, 1), rng);
  return { x, w, cot, outShape };
}

function conv(c: ConvCase, x: tf.Tensor, w: tf.Tensor): tf.Tensor {
  const d = c.dilations ?? 1;
  if (c.x.length === 4) return tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.strides, c.pad, 'NHWC', d);
  if (typeof c.pad !== 'string') throw new Error('3D cases take valid/same padding');
  return tf.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, c.strides, c.pad, 'NDHWC', d);
}

/** Output, input gradient and filter gradient of sum(conv(x, w) * cot) on the active backend. */
export function tfjsConvGradients(c: ConvCase, seed = 1234): ConvGradients {
  const { x, w, cot, outShape } = caseData(c, seed);
  return tf.tidy(() => {
    const xt = tf.tensor(x, c.x);
    const wt = tf.tensor(w, c.filter);
    const ct = tf.tensor(cot, outShape);
    const y = conv(c, xt, wt);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv(c, a, b), ct)))([xt, wt]);
    return { y: y.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array };
  });
}

export function referenceGeometry(c: ConvCase): RefConv {
  const d = c.dilations ?? 1;
  if (c.x.length === 4) {
    const info = backend_util.computeConv2DInfo(
      c.x as [number, number, number, number],
      c.filter as [number, number, number, number],
      c.strides,
      d,
      c.pad,
    );
    return refConvOf(geometryFrom2D(info, 'reference conv'));
  }
  const info = backend_util.computeConv3DInfo(
    c.x as [number, number, number, number, number],
    c.filter as [number, number, number, number, number],
    c.strides,
    d,
    c.pad as 'valid' | 'same',
  );
  return refConvOf(geometryFrom3D(info, 'reference conv'));
}

function outputShape(c: ConvCase): number[] {
  const g = referenceGeometry(c);
  return c.x.length === 4
    ? [g.batch, g.outSize[1], g.outSize[2], g.outChannels]
    : [g.batch, ...g.outSize, g.outChannels];
}

export interface Mismatch {
  what: 'dx' | 'dw' | 'y';
  index: number;
  got: number;
  want: number;
}

/** Largest |got - want| / (1 + |want|) over the compared elements, with where it happened. */
export function worstMismatch(what: Mismatch['what'], got: ArrayLike<number>, want: ArrayLike<number>, indices?: number[]): Mismatch & { error: number } {
  let worst = { what, index: -1, got: 0, want: 0, error: 0 };
  if (got.length !== want.length) return { what, index: -1, got: got.length, want: want.length, error: Infinity };
  const idx = indices ?? Array.from({ length: got.length }, (_, i) => i);
  for (const i of idx) {
    const e = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(e <= worst.error)) worst = { what, index: i, got: got[i], want: want[i], error: Number.isNaN(e) ? Infinity : e };
  }
  return worst;
}

/**
 * Finite-difference gradients of the float64 reference at `samples` evenly spread elements of x and of w
 * (all elements when there are fewer). Returns sparse arrays (NaN where not sampled) and the sampled indices.
 */
export function finiteDifferenceGradients(
  c: ConvCase,
  samples: number,
  seed = 1234,
): { dx: Float64Array; dw: Float64Array; xIdx: number[]; wIdx: number[] } {
  const { x, w, cot } = caseData(c, seed);
  const geo = referenceGeometry(c);
  const x64 = Float64Array.from(x);
  const w64 = Float64Array.from(w);
  const pick = (n: number) => {
    const k = Math.min(n, samples);
    return Array.from({ length: k }, (_, j) => Math.floor((j * n) / k));
  };
  const xIdx = pick(x64.length);
  const wIdx = pick(w64.length);
  const dx = new Float64Array(x64.length).fill(NaN);
  const dw = new Float64Array(w64.length).fill(NaN);
  for (const i of xIdx) dx[i] = finiteDifference(geo, x64, w64, cot, 'x', i);
  for (const i of wIdx) dw[i] = finiteDifference(geo, x64, w64, cot, 'w', i);
  return { dx, dw, xIdx, wIdx };
}
