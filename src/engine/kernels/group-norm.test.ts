/**
 * The group-norm op (../group-norm.ts) under every kernel set-up (native on 1 and 2 threads: one kernel each way,
 * bn.c; wasm: the composed ops), with and without the fused ReLU: output and the three gradients against the CPU
 * backend's automatic differentiation of the composed definition, and against central finite differences of a
 * float64 reference; the native results have the same bits on 1, 2 and 3 threads.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { groupNorm } from '../group-norm';
import { setNativeThreads } from '../native';
import { describeOnEveryKernelConfig, restoreDefaultKernels, useKernelConfig } from '../testing/conv-gradient-suite';
import { worstMismatch } from './gradient-check';
import { GROUP_NORM } from './group-norm-native';
import { centralDifference } from './reference-conv';

const EPS = 1e-5;

interface Case {
  shape: number[];
  groups: number;
  relu?: boolean;
}

const CASES: Case[] = [
  // 1-D: [N, C], one position per sample (layer norm of a feature vector with 1 group)
  { shape: [3, 6], groups: 1 },
  // 3-D, 2 samples of 1200 positions: several 512-row chunks per sample; 12 channels = one vector + a 4-channel tail
  { shape: [2, 10, 12, 10, 12], groups: 4 },
  { shape: [2, 10, 12, 10, 12], groups: 4, relu: true },
  // instance norm (one channel per group), 77 positions: 4-row steps and one row left over
  { shape: [3, 7, 11, 9], groups: 9, relu: true },
  // layer norm's normalisation: 1 group over every position and channel
  { shape: [2, 5, 6, 16], groups: 1 },
];

function caseData({ shape }: Case) {
  const size = shape.reduce((a, b) => a * b, 1);
  const C = shape[shape.length - 1];
  // An offset large against the spread, different per sample.
  const x = Float32Array.from({ length: size }, (_, i) => 20 + Math.floor(i / (size / shape[0])) + Math.sin(0.37 * (i + 1)) * (1 + (i % 3)));
  const gamma = Float32Array.from({ length: C }, (_, c) => 0.5 + c / 3);
  const beta = Float32Array.from({ length: C }, (_, c) => (c % 3) * 0.4 - 0.3);
  const cot = Float32Array.from({ length: size }, (_, i) => Math.cos(0.71 * i));
  return { x, gamma, beta, cot };
}

type Result = { y: Float32Array; dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array };

function run(c: Case): Result {
  const { x, gamma, beta, cot } = caseData(c);
  return tf.tidy(() => {
    const xs = tf.tensor(x, c.shape);
    const g = tf.tensor1d(gamma);
    const b = tf.tensor1d(beta);
    const f = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => groupNorm(a, gg, bb, c.groups, EPS, c.relu);
    const [dx, dgamma, dbeta] = tf.grads(f)([xs, g, b], tf.tensor(cot, c.shape));
    const data = (t: tf.Tensor) => t.dataSync() as Float32Array;
    return { y: data(f(xs, g, b)), dx: data(dx), dgamma: data(dgamma), dbeta: data(dbeta) };
  });
}

/** Float64 reference: the loss sum(cot * y), for finite differences. */
function loss64(c: Case, x: Float64Array, gamma: Float64Array, beta: Float64Array, cot: Float32Array): number {
  const C = gamma.length;
  const N = c.shape[0];
  const P = x.length / (N * C);
  const per = C / c.groups;
  let total = 0;
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < c.groups; g++) {
      const indices: number[] = [];
      for (let p = 0; p < P; p++) for (let k = 0; k < per; k++) indices.push((n * P + p) * C + g * per + k);
      const m = indices.reduce((s, i) => s + x[i], 0) / indices.length;
      const v = indices.reduce((s, i) => s + (x[i] - m) ** 2, 0) / indices.length;
      const inv = 1 / Math.sqrt(v + EPS);
      for (const i of indices) {
        const z = (x[i] - m) * inv * gamma[i % C] + beta[i % C];
        total += cot[i] * (c.relu ? Math.max(z, 0) : z);
      }
    }
  }
  return total;
}

function finiteDifference(c: Case, which: 'x' | 'gamma' | 'beta', index: number): number {
  const { x, gamma, beta, cot } = caseData(c);
  const a = { x: Float64Array.from(x), gamma: Float64Array.from(gamma), beta: Float64Array.from(beta) };
  return centralDifference(a[which], index, 1e-6, () => loss64(c, a.x, a.gamma, a.beta, cot));
}

describeOnEveryKernelConfig((implementation) => {

  test('the op runs on the native kernel exactly when the native kernels are in use', () => {
    expect(tf.getKernel(GROUP_NORM, 'wasm') !== undefined).toBe(implementation === 'native');
  });

  test.each(CASES)('%j: values and gradients match the CPU oracle and finite differences', async (c) => {
    await tf.setBackend('cpu');
    const want = run(c);
    await tf.setBackend('wasm');
    const got = run(c);
    expect(worstMismatch('y', got.y, want.y).error).toBeLessThan(1e-4);
    for (const k of ['dx', 'dgamma', 'dbeta'] as const) expect(worstMismatch('dx', got[k], want[k]).error).toBeLessThan(2e-3);
    const spread = (n: number, k: number) => Array.from({ length: Math.min(n, k) }, (_, j) => Math.floor((j * n) / Math.min(n, k)));
    for (const [which, grad] of [['x', got.dx], ['gamma', got.dgamma], ['beta', got.dbeta]] as const) {
      const indices = spread(grad.length, 12);
      const fd = indices.map((i) => finiteDifference(c, which, i));
      expect(worstMismatch('dx', indices.map((i) => grad[i]), fd).error).toBeLessThan(5e-3);
    }
  });
});

test('the native kernels give the same bits on 1, 2 and 3 threads', async () => {
  await tf.setBackend('wasm');
  const results = [1, 2, 3].map((threads) => {
    useKernelConfig('native', threads);
    setNativeThreads(threads, 1);
    return CASES.map((c) => run(c));
  });
  restoreDefaultKernels();
  const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  for (const other of results.slice(1)) {
    other.forEach((r, i) => {
      for (const k of ['y', 'dx', 'dgamma', 'dbeta'] as const) expect(bits(r[k])).toEqual(bits(results[0][i][k]));
    });
  }
});

test('no tensor is left behind by a forward and backward pass', async () => {
  await tf.setBackend('wasm');
  const c = CASES[1];
  run(c); // warm-up (kernel set-up allocations)
  const before = tf.memory().numTensors;
  run(c);
  expect(tf.memory().numTensors).toBe(before);
});
