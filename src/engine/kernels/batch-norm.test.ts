/**
 * The batch-norm training op (../batch-norm.ts) under every kernel set-up (native on 1 and 2 threads: one kernel
 * each way, bn.c; wasm: the composed ops), with and without the fused ReLU: output, batch statistics and the three
 * gradients against the CPU backend's automatic differentiation of the definition, and against central finite
 * differences of a float64 reference; the native results have the same bits on 1, 2 and 3 threads; an infinite
 * cotangent where the ReLU is off changes nothing.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { batchNormTrain } from '../batch-norm';
import { setNativeThreads } from '../native';
import { describeOnEveryKernelConfig, KERNEL_CONFIGS, restoreDefaultKernels, useKernelConfig } from '../testing/conv-gradient-suite';
import { worstMismatch } from './gradient-check';
import { BATCH_NORM } from './batch-norm-native';
import { centralDifference } from './reference-conv';

const EPS = 1e-5;

interface Case {
  shape: number[];
  relu: boolean;
}

// [2, 40, 30, 16]: 2400 rows, several 512-row partial sums; 9 channels: one 8-wide vector + a 1-channel tail;
// [6, 3]: BatchNorm1d, tail only.
const CASES: Case[] = [
  { shape: [6, 3], relu: false },
  { shape: [2, 40, 30, 16], relu: true },
  { shape: [3, 4, 5, 6, 9], relu: true },
  { shape: [3, 4, 5, 6, 9], relu: false },
  // 77 rows: the kernels' 4-row steps and one row left over, in vectors and in the tail
  { shape: [1, 7, 11, 9], relu: true },
];

function caseData({ shape }: Case) {
  const size = shape.reduce((a, b) => a * b, 1);
  const C = shape[shape.length - 1];
  // An offset large against the spread (what a conv output without bias can look like).
  const x = Float32Array.from({ length: size }, (_, i) => 20 + Math.sin(0.37 * (i + 1)) * (1 + (i % 3)));
  const gamma = Float32Array.from({ length: C }, (_, c) => 0.5 + c / 3);
  const beta = Float32Array.from({ length: C }, (_, c) => (c % 3) * 0.4 - 0.3);
  const cot = Float32Array.from({ length: size }, (_, i) => Math.cos(0.71 * i));
  return { x, gamma, beta, cot };
}

/** The definition with tfjs's elementary ops and automatic gradients (the oracle on the CPU backend). */
function composed(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, relu: boolean): tf.Tensor {
  const { mean, variance } = tf.moments(x, Array.from({ length: x.rank - 1 }, (_, i) => i));
  const y = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, EPS))), gamma), beta);
  return relu ? tf.relu(y) : y;
}

type Result = {
  y: Float32Array;
  mean?: Float32Array;
  variance?: Float32Array;
  dx: Float32Array;
  dgamma: Float32Array;
  dbeta: Float32Array;
};

function run(c: Case, op: 'engine' | 'composed'): Result {
  const { x, gamma, beta, cot } = caseData(c);
  return tf.tidy(() => {
    const xs = tf.tensor(x, c.shape);
    const g = tf.tensor1d(gamma);
    const b = tf.tensor1d(beta);
    const f = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => (op === 'engine' ? batchNormTrain(a, gg, bb, EPS, c.relu).y : composed(a, gg, bb, c.relu));
    const [dx, dgamma, dbeta] = tf.grads(f)([xs, g, b], tf.tensor(cot, c.shape));
    const data = (t: tf.Tensor) => t.dataSync() as Float32Array;
    const out: Result = { y: data(f(xs, g, b)), dx: data(dx), dgamma: data(dgamma), dbeta: data(dbeta) };
    if (op === 'engine') {
      const stats = batchNormTrain(xs, g, b, EPS, c.relu);
      out.mean = data(stats.mean);
      out.variance = data(stats.variance);
    }
    return out;
  });
}

/** Float64 reference: y of the case and the loss sum(cot * y), for finite differences. */
function loss64(c: Case, x: Float64Array, gamma: Float64Array, beta: Float64Array, cot: Float32Array): number {
  const C = gamma.length;
  const rows = x.length / C;
  let total = 0;
  for (let ch = 0; ch < C; ch++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += x[r * C + ch];
    const m = s / rows;
    let v = 0;
    for (let r = 0; r < rows; r++) v += (x[r * C + ch] - m) ** 2;
    const inv = 1 / Math.sqrt(v / rows + EPS);
    for (let r = 0; r < rows; r++) {
      const z = (x[r * C + ch] - m) * inv * gamma[ch] + beta[ch];
      total += cot[r * C + ch] * (c.relu ? Math.max(z, 0) : z);
    }
  }
  return total;
}

function finiteDifference(c: Case, which: 'x' | 'gamma' | 'beta', index: number): number {
  const { x, gamma, beta, cot } = caseData(c);
  const a = { x: Float64Array.from(x), gamma: Float64Array.from(gamma), beta: Float64Array.from(beta) };
  return centralDifference(a[which], index, 1e-6, () => loss64(c, a.x, a.gamma, a.beta, cot));
}

function sameBits(a: Float32Array | undefined, b: Float32Array | undefined): void {
  expect(a).toBeDefined();
  expect(Buffer.from(a!.buffer, a!.byteOffset, a!.byteLength)).toEqual(Buffer.from(b!.buffer, b!.byteOffset, b!.byteLength));
}

describeOnEveryKernelConfig((implementation) => {

  test('the op runs on the native kernel exactly when the native kernels are in use', () => {
    expect(tf.getKernel(BATCH_NORM, 'wasm') !== undefined).toBe(implementation === 'native');
  });

  test.each(CASES)('%j: values, statistics and gradients match the CPU oracle and finite differences', async (c) => {
    await tf.setBackend('cpu');
    const want = run(c, 'composed');
    await tf.setBackend('wasm');
    const got = run(c, 'engine');
    // Native: (x - mean) * scale + beta; the composed ops: x * scale + (beta - mean * scale), which loses digits to
    // the offset.
    expect(worstMismatch('y', got.y, want.y).error).toBeLessThan(implementation === 'native' ? 1e-5 : 1e-4);
    // The oracle loses digits to the offset in float32 (its gradient goes through x - mean twice).
    for (const k of ['dx', 'dgamma', 'dbeta'] as const) expect(worstMismatch('dx', got[k], want[k]).error).toBeLessThan(2e-3);
    const { x } = caseData(c);
    const C = c.shape[c.shape.length - 1];
    for (let ch = 0; ch < C; ch++) {
      let s = 0;
      for (let r = ch; r < x.length; r += C) s += x[r];
      const m = s / (x.length / C);
      let v = 0;
      for (let r = ch; r < x.length; r += C) v += (x[r] - m) ** 2;
      expect(Math.abs(got.mean![ch] - m)).toBeLessThan(1e-5 * Math.abs(m));
      expect(Math.abs(got.variance![ch] - v / (x.length / C))).toBeLessThan(1e-5 * (v / (x.length / C)));
    }
    // Central differences of the float64 definition at a spread of elements of each input.
    const spread = (n: number, k: number) => Array.from({ length: Math.min(n, k) }, (_, j) => Math.floor((j * n) / Math.min(n, k)));
    for (const [which, grad] of [['x', got.dx], ['gamma', got.dgamma], ['beta', got.dbeta]] as const) {
      const indices = spread(grad.length, 12);
      const fd = indices.map((i) => finiteDifference(c, which, i));
      const gotAt = indices.map((i) => grad[i]);
      expect(worstMismatch('dx', gotAt, fd).error).toBeLessThan(5e-3);
    }
  });

});

// Native only: tf.relu's own gradient, which the composed ops use, multiplies (an infinite dy gives NaN there).
describe.each(KERNEL_CONFIGS.filter(([, implementation]) => implementation === 'native'))('%s', (_label, implementation, threads) => {
  beforeAll(() => useKernelConfig(implementation, threads));

  test('with the ReLU, an infinite or NaN cotangent where the output is 0 does not reach the gradients', async () => {
    await tf.setBackend('wasm');
    const c = CASES[1];
    const { x, gamma, beta, cot } = caseData(c);
    const y = run(c, 'engine').y;
    const special = [Infinity, -Infinity, NaN];
    const dy = cot.map((v, i) => (y[i] === 0 ? special[i % 3] : v));
    expect(dy.some((v) => !Number.isFinite(v))).toBe(true);
    const grads = tf.tidy(() =>
      tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => batchNormTrain(a, g, b, EPS, true).y)(
        [tf.tensor(x, c.shape), tf.tensor1d(gamma), tf.tensor1d(beta)], tf.tensor(dy, c.shape)).map((t) => t.dataSync()));
    for (const g of grads) expect(g.every(Number.isFinite)).toBe(true);
  });
});

test('the native kernels give the same bits on 1, 2 and 3 threads', async () => {
  await tf.setBackend('wasm');
  const results = [1, 2, 3].map((threads) => {
    useKernelConfig('native', threads);
    setNativeThreads(threads, 1);
    return CASES.map((c) => run(c, 'engine'));
  });
  restoreDefaultKernels();
  for (const other of results.slice(1)) {
    other.forEach((r, i) => {
      for (const k of ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'] as const) sameBits(r[k], results[0][i][k]);
    });
  }
});

test('no tensor is left behind by a forward and backward pass', async () => {
  await tf.setBackend('wasm');
  const c = CASES[2];
  run(c, 'engine'); // warm-up (kernel set-up allocations)
  const before = tf.memory().numTensors;
  run(c, 'engine');
  expect(tf.memory().numTensors).toBe(before);
});
