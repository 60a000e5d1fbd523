/**
 * Transposed convolutions (tf.conv2dTranspose, and ../conv-transpose.ts's conv3dTranspose with the engine's gradient)
 * on the wasm backend under every kernel set-up (native on 1 and 2 threads, pure wasm): the output is the input-
 * gradient kernel (Conv2DBackpropInput / Conv3DBackpropInputV2), its gradients the conv forward and filter-gradient
 * kernels. Output and both gradients against the CPU backend and against the float64 reference conv: with the
 * objective sum(cot · convT(u, w)) = sum(conv(cot, w) · u), the output is the reference input gradient, and central
 * finite differences of that objective check du and dw.
 * Tolerance: |got - want| / (1 + |want|) <= 1e-4.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { conv3dTranspose } from '../conv-transpose';
import { SeededRandom } from '../prng';
import { describeOnEveryKernelConfig, onWasmAndCpu } from '../testing/conv-gradient-suite';
import { caseName, ConvCase, referenceGeometry, worstMismatch } from './gradient-check';
import { centralDifference, referenceGradients, referenceObjective } from './reference-conv';

const TOL = 1e-4;

/** Each case is the convolution whose input gradient the transposed convolution is: x is the transposed output. */
const CASES: ConvCase[] = [];
for (const [x, filter] of [
  [[2, 5, 6, 5, 2], [3, 3, 3, 2, 3]],
  [[1, 6, 5, 7, 3], [2, 3, 2, 3, 2]],
  [[2, 6, 7, 3], [3, 2, 3, 4]],
] as Array<[number[], number[]]>) {
  for (const strides of [1, 2]) for (const pad of ['valid', 'same'] as const) CASES.push({ x, filter, strides, pad });
}
// the U-Net's up step (kernel 2, stride 2) in 3-D with 17 output channels: a full 16-wide native tile plus a tail
CASES.push({ x: [2, 4, 6, 6, 17], filter: [2, 2, 2, 17, 5], strides: 2, pad: 'valid' });

function filled(n: number, rng: SeededRandom): Float32Array {
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

function caseData(c: ConvCase) {
  const geometry = referenceGeometry(c);
  const convOut = c.x.length === 4
    ? [geometry.batch, geometry.outSize[1], geometry.outSize[2], geometry.outChannels]
    : [geometry.batch, ...geometry.outSize, geometry.outChannels];
  const rng = new SeededRandom(77);
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  // u: the transposed conv's input (conv output shape); cot: the cotangent of its output (conv input shape).
  return { geometry, convOut, u: filled(size(convOut), rng), w: filled(size(c.filter), rng), cot: filled(size(c.x), rng) };
}

function transposed(c: ConvCase, u: tf.Tensor, w: tf.Tensor): tf.Tensor {
  if (c.x.length === 4) return tf.conv2dTranspose(u as tf.Tensor4D, w as tf.Tensor4D, c.x as [number, number, number, number], c.strides, c.pad);
  return conv3dTranspose(u as tf.Tensor5D, w as tf.Tensor5D, c.x as [number, number, number, number, number], c.strides, c.pad as 'valid' | 'same');
}

function tfjsResults(c: ConvCase): { y: Float32Array; du: Float32Array; dw: Float32Array } {
  const { convOut, u, w, cot } = caseData(c);
  return tf.tidy(() => {
    const ut = tf.tensor(u, convOut);
    const wt = tf.tensor(w, c.filter);
    const ct = tf.tensor(cot, c.x);
    const y = transposed(c, ut, wt);
    const [du, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(transposed(c, a, b), ct)))([ut, wt]);
    return { y: y.dataSync() as Float32Array, du: du.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array };
  });
}

/** Central differences of sum(conv(cot, w) · u) (linear in u and in w: exact up to rounding) at `samples` elements. */
function finiteDifferences(c: ConvCase, which: 'u' | 'w', samples: number): { values: number[]; indices: number[] } {
  const { geometry, u, w, cot } = caseData(c);
  const u64 = Float64Array.from(u);
  const w64 = Float64Array.from(w);
  const target = which === 'u' ? u64 : w64;
  const k = Math.min(samples, target.length);
  const indices = Array.from({ length: k }, (_, j) => Math.floor((j * target.length) / k));
  const values = indices.map((i) => centralDifference(target, i, 1e-2, () => referenceObjective(geometry, cot, w64, u64)));
  return { values, indices };
}

/** The sampled values at their indices (NaN elsewhere, never compared). */
function sparse(length: number, { values, indices }: { values: number[]; indices: number[] }): Float64Array {
  const out = new Float64Array(length).fill(NaN);
  indices.forEach((i, j) => (out[i] = values[j]));
  return out;
}

describeOnEveryKernelConfig(() => {
  describe.each(CASES.map((c) => [caseName(c), c] as const))('transposed conv of %s', (_name, c) => {
    test('output and gradients match the CPU backend, the float64 reference and finite differences', async () => {
      const { wasm: got, cpu } = await onWasmAndCpu(() => tfjsResults(c));
      expect(worstMismatch('y', got.y, cpu.y).error).toBeLessThanOrEqual(TOL);
      expect(worstMismatch('dx', got.du, cpu.du).error).toBeLessThanOrEqual(TOL);
      expect(worstMismatch('dw', got.dw, cpu.dw).error).toBeLessThanOrEqual(TOL);
      const { geometry, u, w } = caseData(c);
      // The output is the reference conv's input gradient for the cotangent u.
      expect(worstMismatch('y', got.y, referenceGradients(geometry, new Float64Array(got.y.length), w, u).dx).error).toBeLessThanOrEqual(TOL);
      const fdU = finiteDifferences(c, 'u', 30);
      expect(worstMismatch('dx', got.du, sparse(got.du.length, fdU), fdU.indices).error).toBeLessThanOrEqual(TOL);
      const fdW = finiteDifferences(c, 'w', 30);
      expect(worstMismatch('dw', got.dw, sparse(got.dw.length, fdW), fdW.indices).error).toBeLessThanOrEqual(TOL);
    });
  });
});
