/**
 * Pooling gradients on wasm (project MaxPoolGrad / MaxPool3DGrad / MaxPool3D, native and pure wasm; stock
 * AvgPoolGrad behind the project's AvgPool
 * gradient rule) against the CPU backend and against finite differences of sum(pool(x) * cot). Inputs are
 * distinct values so the max is unique and max-pooling is differentiable at the test point.
 * Tolerances: 1e-5 relative against CPU (sums of few terms); 2e-3 against float32 finite differences.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../backend';
import { KERNEL_CONFIGS, restoreDefaultKernels, useKernelConfig } from '../testing/conv-gradient-suite';
import { SeededRandom } from '../prng';

interface PoolCase {
  kind: 'max' | 'avg';
  x: number[];
  filter: number;
  stride: number;
  pad: 'valid' | 'same';
}

const CASES: PoolCase[] = [];
for (const kind of ['max', 'avg'] as const) {
  for (const x of [[2, 7, 6, 3], [1, 5, 8, 2]]) {
    for (const [filter, stride] of [[2, 2], [3, 1], [3, 2], [2, 3]]) {
      for (const pad of ['valid', 'same'] as const) CASES.push({ kind, x, filter, stride, pad });
    }
  }
  for (const [filter, stride] of [[2, 2], [3, 1], [3, 2]]) {
    for (const pad of ['valid', 'same'] as const) CASES.push({ kind, x: [2, 5, 6, 4, 2], filter, stride, pad });
  }
}

function pool(c: PoolCase, x: tf.Tensor): tf.Tensor {
  if (c.x.length === 4) {
    return c.kind === 'max'
      ? tf.maxPool(x as tf.Tensor4D, c.filter, c.stride, c.pad)
      : tf.avgPool(x as tf.Tensor4D, c.filter, c.stride, c.pad);
  }
  return c.kind === 'max'
    ? tf.maxPool3d(x as tf.Tensor5D, c.filter, c.stride, c.pad)
    : tf.avgPool3d(x as tf.Tensor5D, c.filter, c.stride, c.pad);
}

function data(c: PoolCase): { x: Float32Array; cot: Float32Array; outShape: number[] } {
  const size = c.x.reduce((a, b) => a * b, 1);
  // A shuffled ramp: all values distinct and at least 1/size apart.
  const perm = new SeededRandom(5).permutation(size);
  const x = Float32Array.from(perm, (v) => v / size - 0.5);
  const outShape = tf.tidy(() => pool(c, tf.zeros(c.x)).shape);
  const rng = new SeededRandom(9);
  const cot = Float32Array.from({ length: outShape.reduce((a, b) => a * b, 1) }, () => rng.next() * 2 - 1);
  return { x, cot, outShape };
}

function forward(c: PoolCase): Float32Array {
  const { x } = data(c);
  return tf.tidy(() => pool(c, tf.tensor(x, c.x)).dataSync() as Float32Array);
}

function gradient(c: PoolCase): Float32Array {
  const { x, cot, outShape } = data(c);
  return tf.tidy(() => {
    const ct = tf.tensor(cot, outShape);
    return tf.grad((a: tf.Tensor) => tf.sum(tf.mul(pool(c, a), ct)))(tf.tensor(x, c.x)).dataSync() as Float32Array;
  });
}

function objective(c: PoolCase, x: Float32Array, cot: Float32Array, outShape: number[]): number {
  return tf.tidy(() => tf.sum(tf.mul(pool(c, tf.tensor(x, c.x)), tf.tensor(cot, outShape))).dataSync()[0]);
}

beforeAll(async () => {
  await initBackend(() => undefined);
});

describe.each(KERNEL_CONFIGS)('%s', (_label, implementation, threads) => {
  beforeAll(() => useKernelConfig(implementation, threads));
  afterAll(restoreDefaultKernels);

  describe.each(CASES.map((c) => [`${c.kind}pool x[${c.x}] f${c.filter} s${c.stride} ${c.pad}`, c] as const))('%s', (_n, c) => {
    test('wasm forward and gradient match CPU and finite differences', async () => {
      await tf.setBackend('wasm');
      const wasm = gradient(c);
      const wasmY = forward(c);
      await tf.setBackend('cpu');
      const cpu = gradient(c);
      const cpuY = forward(c);
      await tf.setBackend('wasm');
      // Half the inputs are negative: the stock wasm MaxPool3D returned 1.2e-38 for all-negative windows.
      expect(wasmY.length).toBe(cpuY.length);
      cpuY.forEach((v, i) => expect(Math.abs(wasmY[i] - v)).toBeLessThanOrEqual(1e-6));
      expect(wasm.length).toBe(cpu.length);
      let worst = 0;
      for (let i = 0; i < cpu.length; i++) worst = Math.max(worst, Math.abs(wasm[i] - cpu[i]) / (1 + Math.abs(cpu[i])));
      expect(worst).toBeLessThanOrEqual(1e-5);

      const { x, cot, outShape } = data(c);
      const h = 0.25 / x.length; // smaller than half the gap between any two inputs: the argmax cannot change
      for (let k = 0; k < 12; k++) {
        const i = Math.floor((k * x.length) / 12);
        const xp = Float32Array.from(x);
        xp[i] += h;
        const xm = Float32Array.from(x);
        xm[i] -= h;
        const fd = (objective(c, xp, cot, outShape) - objective(c, xm, cot, outShape)) / (2 * h);
        expect(Math.abs(wasm[i] - fd)).toBeLessThanOrEqual(2e-3 * (1 + Math.abs(fd)));
      }
    });
  });
});

test.each(KERNEL_CONFIGS)('%s: conv bias-style sums over leading axes match the CPU backend and a float64 sum', async (_label, implementation, threads) => {
  useKernelConfig(implementation, threads);
  const rng = new SeededRandom(3);
  const values = Float32Array.from({ length: 4 * 5 * 6 * 7 }, () => rng.next() - 0.5);
  const run = (axes: number[], keepDims: boolean) => tf.tidy(() => tf.sum(tf.tensor(values, [4, 5, 6, 7]), axes, keepDims));
  for (const [axes, keep] of [[[0, 1, 2], false], [[0], true], [[1, 2], false], [[3], false]] as Array<[number[], boolean]>) {
    await tf.setBackend('wasm');
    const w = run(axes, keep);
    await tf.setBackend('cpu');
    const c = run(axes, keep);
    expect(w.shape).toEqual(c.shape);
    const wv = w.dataSync();
    const cv = c.dataSync();
    cv.forEach((v, i) => expect(Math.abs(wv[i] - v)).toBeLessThanOrEqual(1e-5));
  }
  // Row counts that are not multiples of 4 (the kernel sums four rows at a time, then the rest).
  const odd = Float32Array.from({ length: 5 * 7 * 3 }, () => rng.next() - 0.5);
  for (const axes of [[0, 1], [0]]) {
    await tf.setBackend('wasm');
    const w = tf.tidy(() => tf.sum(tf.tensor(odd, [5, 7, 3]), axes)).dataSync();
    await tf.setBackend('cpu');
    const c = tf.tidy(() => tf.sum(tf.tensor(odd, [5, 7, 3]), axes)).dataSync();
    expect(w.length).toBe(c.length);
    c.forEach((v, i) => expect(Math.abs(w[i] - v)).toBeLessThanOrEqual(1e-5));
  }
  // A long sum (a first-layer bias gradient has ~250k rows) stays within float32 rounding of the exact float64
  // sum: both kernels accumulate in float64. Values carry a large common offset to make float32 accumulation fail.
  const rows = 60000;
  const cols = 19; // 4-wide chunks + a 3-column tail
  const long = Float32Array.from({ length: rows * cols }, () => 1000 + (rng.next() - 0.5));
  const exact = new Float64Array(cols);
  for (let i = 0; i < long.length; i++) exact[i % cols] += long[i];
  await tf.setBackend('wasm');
  const got = tf.tidy(() => tf.sum(tf.tensor(long, [rows, cols]), 0)).dataSync();
  exact.forEach((v, i) => expect(Math.abs(got[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 1e-7));
  restoreDefaultKernels();
});

// [2,7,8,3]: windows leave a row out, 3 channels (scalar path of the native kernel); [2,6,8,11]: windows tile the
// input exactly (no zero fill), 11 channels (one 8-lane vector + 3 scalar lanes).
const TIE_CASES = KERNEL_CONFIGS.flatMap((config) => [[2, 7, 8, 3], [2, 6, 8, 11]].map((shape) => [...config, shape] as const));

test.each(TIE_CASES)('%s: 2x2 max-pool gradient of x[%#]: ties go to the first window element, infinite/NaN dy stay on the winner only', async (_label, implementation, threads, shape) => {
  useKernelConfig(implementation, threads);
  // ReLU-like input: many windows are all zeros or hold repeated maxima, so the first-match rule decides.
  const rng = new SeededRandom(11);
  const size = shape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: size }, () => Math.max(0, Math.round((rng.next() - 0.5) * 4) / 2));
  const outShape = [shape[0], Math.floor(shape[1] / 2), Math.floor(shape[2] / 2), shape[3]];
  const outSize = outShape.reduce((a, b) => a * b, 1);
  const special = [Infinity, -Infinity, NaN, -2.5];
  const dy = Float32Array.from({ length: outSize }, (_, i) => (i % 7 === 0 ? special[(i / 7) % 4] : rng.next() - 0.5));
  const run = () =>
    tf.tidy(() => {
      const f = (t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid');
      return tf.grad(f)(tf.tensor(x, [...shape]), tf.tensor(dy, outShape)).dataSync();
    });
  await tf.setBackend('wasm');
  const wasm = run();
  await tf.setBackend('cpu');
  const cpu = run();
  await tf.setBackend('wasm');
  expect(wasm.length).toBe(cpu.length);
  let ties = 0;
  for (let i = 0; i < cpu.length; i++) {
    if (x[i] === 0) ties++;
    const same = Number.isNaN(cpu[i]) ? Number.isNaN(wasm[i]) : wasm[i] === cpu[i];
    if (!same) throw new Error(`dx[${i}]: wasm ${wasm[i]} vs cpu ${cpu[i]}`);
  }
  expect(ties).toBeGreaterThan(size / 3);
  expect(cpu.some((v) => v === Infinity) && cpu.some(Number.isNaN)).toBe(true);
  restoreDefaultKernels();
});
