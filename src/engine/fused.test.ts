/**
 * The fused bias + ReLU op: on wasm with the native kernels it runs one kernel each way, and gives what
 * tf.relu(tf.add(x, bias)) gives (output to the bit; input gradient dy where the output is positive and +0 elsewhere,
 * even for an infinite or NaN dy, as in PyTorch; bias gradient to float rounding of a float64 sum); with the wasm
 * kernels or on the CPU backend it is that composition. No tensor leaks. The bias add alone gives tf.add's output
 * and gradients to the bit, and the convolution + bias + ReLU kernel the bits of the three ops it fuses. The BCE-with-
 * logits terms equal the composition to float rounding, with PyTorch's gradient dy (sigmoid(x) - y) to float rounding.
 * The spatial broadcast gives the bits of a product with ones, forward and backward.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from './backend';
import { bceWithLogitsTerms, biasAdd, biasRelu, Conv2DPad, conv2dBiasRelu, spatialBroadcast } from './fused';
import { SeededRandom } from './prng';
import { restoreDefaultKernels, useKernelConfig } from './testing/conv-gradient-suite';

beforeAll(async () => {
  await initBackend(() => undefined);
});

afterAll(async () => {
  restoreDefaultKernels();
  await tf.setBackend('wasm');
});

interface Case {
  shape: number[];
  seed: number;
}

/** Values with exact zeros after the bias (ReLU's kink) and infinite / NaN cotangents on some of them. */
function caseData({ shape, seed }: Case) {
  const rng = new SeededRandom(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const C = shape[shape.length - 1];
  const bias = Float32Array.from({ length: C }, (_, c) => (c % 3 === 0 ? 0.5 : rng.next() - 0.5));
  const x = Float32Array.from({ length: size }, (_, i) => (i % 11 === 0 ? -bias[i % C] : Math.round((rng.next() - 0.5) * 8) / 4));
  const special = [Infinity, -Infinity, NaN];
  const dy = Float32Array.from({ length: size }, (_, i) => (i % 13 === 0 ? special[i % 3] : rng.next() - 0.5));
  return { x, bias, dy };
}

function run(c: Case, op: (x: tf.Tensor, b: tf.Tensor) => tf.Tensor) {
  const { x, bias, dy } = caseData(c);
  return tf.tidy(() => {
    const xt = tf.tensor(x, c.shape);
    const bt = tf.tensor1d(bias);
    const y = op(xt, bt);
    const [dx, db] = tf.grads((a: tf.Tensor, b: tf.Tensor) => op(a, b))([xt, bt], tf.tensor(dy, c.shape));
    return { y: y.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array, db: db.dataSync() as Float32Array };
  });
}

const composed = (x: tf.Tensor, b: tf.Tensor) => tf.relu(tf.add(x, b));

function sameBits(a: Float32Array, b: Float32Array): void {
  expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength)).toEqual(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

// 7 channels: 4-wide vectors + a 3-channel tail; [2, 40, 30, 16]: 2400 rows, more than two 1024-row sum chunks.
const CASES: Case[] = [
  { shape: [2, 5, 6, 7], seed: 1 },
  { shape: [2, 40, 30, 16], seed: 2 },
  { shape: [3, 4, 5, 6, 9], seed: 3 },
];

describe.each([
  ['native, 1 thread', 'native', 1],
  ['native, 2 threads', 'native', 2],
  ['wasm', 'wasm', 1],
] as const)('%s', (_label, implementation, threads) => {
  beforeAll(() => useKernelConfig(implementation, threads));

  test.each(CASES)('x[%j] matches relu(add(x, bias)) on the CPU backend', async (c) => {
    await tf.setBackend('cpu');
    const cpu = run(c, composed);
    await tf.setBackend('wasm');
    const got = run(c, biasRelu);
    sameBits(got.y, cpu.y);
    if (implementation === 'wasm') {
      // Without the native kernels the op is the composition itself.
      sameBits(got.dx, cpu.dx);
      got.db.forEach((v, i) => {
        if (Number.isNaN(cpu.db[i])) expect(v).toBeNaN();
        else expect(Math.abs(v - cpu.db[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(cpu.db[i])));
      });
      return;
    }
    const { dy, x, bias } = caseData(c);
    const C = bias.length;
    // Where y > 0 the gradient is dy itself. Elsewhere it is 0: selected, as PyTorch's ReLU backward does, where
    // tfjs multiplies dy by 0 (giving NaN for an infinite dy, -0 for a negative one).
    let kinks = 0;
    for (let i = 0; i < x.length; i++) {
      const active = x[i] + bias[i % C] > 0;
      if (active) {
        if (Number.isNaN(cpu.dx[i])) expect(got.dx[i]).toBeNaN();
        else expect(got.dx[i]).toBe(cpu.dx[i]);
      } else {
        if (got.dx[i] !== 0 || Object.is(got.dx[i], -0)) throw new Error(`dx[${i}] = ${got.dx[i]} where y = 0`);
        if (x[i] + bias[i % C] === 0) kinks++;
      }
    }
    expect(kinks).toBeGreaterThan(0);
    const exact = new Float64Array(C);
    for (let i = 0; i < x.length; i++) if (x[i] + bias[i % C] > 0) exact[i % C] += dy[i];
    got.db.forEach((v, i) => {
      if (Number.isNaN(exact[i])) expect(v).toBeNaN();
      else if (!Number.isFinite(exact[i])) expect(v).toBe(exact[i]);
      else expect(Math.abs(v - exact[i])).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(exact[i])));
    });
  });
});

test('with the native kernels it runs one kernel forward and one backward, without leaking tensors', async () => {
  await tf.setBackend('wasm');
  useKernelConfig('native', 2);
  const c = CASES[1];
  const before = tf.memory().numTensors;
  const profile = await tf.profile(() => {
    run(c, biasRelu);
  });
  const names = profile.kernels.map((k) => k.name);
  expect(names).toContain('FedbiomedTsBiasRelu');
  expect(names).toContain('FedbiomedTsBiasReluGrad');
  expect(names).not.toContain('Relu');
  expect(tf.memory().numTensors).toBe(before);
  useKernelConfig('wasm', 1);
  const composedProfile = await tf.profile(() => {
    run(c, biasRelu);
  });
  expect(composedProfile.kernels.map((k) => k.name)).toContain('Relu');
  restoreDefaultKernels();
});

describe.each([
  ['native, 1 thread', 'native', 1],
  ['native, 2 threads', 'native', 2],
  ['wasm', 'wasm', 1],
] as const)('biasAdd, %s', (_label, implementation, threads) => {
  beforeAll(() => useKernelConfig(implementation, threads));
  afterAll(() => restoreDefaultKernels());

  // 2 channels (the U-Net's output layer) besides the relu cases' shapes.
  test.each([...CASES, { shape: [3, 7, 5, 2], seed: 4 }])('x[%j] gives what tf.add gives, to the bit', async (c) => {
    await tf.setBackend('wasm');
    const got = run(c, biasAdd);
    const want = run(c, (x, b) => tf.add(x, b));
    // dy has infinities and NaNs: a NaN's sign bit is not specified (wasm code tiers may differ), so NaN = NaN.
    const sameBitsOrNaN = (a: Float32Array, b: Float32Array) =>
      sameBits(a.map((v) => (Number.isNaN(v) ? NaN : v)), b.map((v) => (Number.isNaN(v) ? NaN : v)));
    sameBitsOrNaN(got.y, want.y);
    sameBitsOrNaN(got.dx, want.dx);
    sameBitsOrNaN(got.db, want.db);
  });

  test(`runs ${implementation === 'native' ? 'one native kernel' : 'the add kernel'} without leaking tensors`, async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const profile = await tf.profile(() => {
      run(CASES[0], biasAdd);
    });
    const names = profile.kernels.map((k) => k.name);
    expect(names.includes('FedbiomedTsBiasAdd')).toBe(implementation === 'native');
    expect(names.includes('Add')).toBe(implementation === 'wasm');
    expect(tf.memory().numTensors).toBe(before);
  });
});

interface ConvCase {
  x: number[];
  filter: number[];
  strides: [number, number];
  pad: Conv2DPad;
}

const CONV_CASES: ConvCase[] = [
  // Padded (copied padded, a plane tiled as one run), 19 output channels (a vector tail in the bias).
  { x: [2, 9, 8, 3], filter: [3, 3, 3, 19], strides: [1, 1], pad: [[0, 0], [1, 1], [1, 1], [0, 0]] },
  // Unpadded and strided (read in place), 8 channels.
  { x: [3, 10, 11, 4], filter: [2, 3, 4, 8], strides: [2, 2], pad: 'valid' },
  // Rows of 20 (past one 12-wide tile), 2 channels (no vector part at all).
  { x: [1, 6, 20, 5], filter: [1, 1, 5, 2], strides: [1, 1], pad: 'valid' },
];

describe.each([
  ['native, 1 thread', 'native', 1],
  ['native, 2 threads', 'native', 2],
  ['wasm', 'wasm', 1],
] as const)('conv2dBiasRelu, %s', (_label, implementation, threads) => {
  beforeAll(() => useKernelConfig(implementation, threads));
  afterAll(() => restoreDefaultKernels());

  const runConv = (c: ConvCase, op: (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor) => tf.Tensor) => tf.tidy(() => {
    const rng = new SeededRandom(c.x[1] * 100 + c.filter[3]);
    const values = (shape: number[]) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.round((rng.next() - 0.5) * 16) / 8);
    const x = tf.tensor4d(values(c.x), c.x as [number, number, number, number]);
    const w = tf.tensor4d(values(c.filter), c.filter as [number, number, number, number]);
    const b = tf.tensor1d(values([c.filter[3]]));
    const y = op(x, w, b);
    const dy = tf.tensor(values(y.shape), y.shape);
    const grads = tf.grads((a: tf.Tensor, f: tf.Tensor, bias: tf.Tensor) => op(a as tf.Tensor4D, f as tf.Tensor4D, bias))([x, w, b], dy);
    return [y, ...grads].map((t) => t.dataSync() as Float32Array);
  });

  test.each(CONV_CASES)('x%j: output and the three gradients have the bits of conv2d then biasRelu', async (c) => {
    await tf.setBackend('wasm');
    const got = runConv(c, (x, w, b) => conv2dBiasRelu(x, w, b, c.strides, c.pad));
    const want = runConv(c, (x, w, b) => biasRelu(tf.conv2d(x, w, c.strides, c.pad), b));
    got.forEach((values, i) => sameBits(values, want[i]));
    // Exact zeros from the ReLU and gradients that are not all zero: the comparison is not vacuous.
    expect(got[0].some((v) => v === 0) && got[0].some((v) => v > 0)).toBe(true);
    expect(got[2].some((v) => v !== 0)).toBe(true);
  });

  test('runs the fused kernel with the native kernels, the three ops without', async () => {
    await tf.setBackend('wasm');
    const profile = await tf.profile(() => {
      runConv(CONV_CASES[0], (x, w, b) => conv2dBiasRelu(x, w, b, [1, 1], CONV_CASES[0].pad));
    });
    const names = profile.kernels.map((k) => k.name);
    expect(names.includes('FedbiomedTsConv2DBiasRelu')).toBe(implementation === 'native');
    expect(names.includes('Conv2D')).toBe(implementation === 'wasm');
  });
});

describe.each([
  ['native', 'native'],
  ['wasm', 'wasm'],
] as const)('bceWithLogitsTerms, %s', (_label, implementation) => {
  beforeAll(() => useKernelConfig(implementation, 1));
  afterAll(() => restoreDefaultKernels());

  // Ordinary logits, exact zeros, and large ones where exp(-|x|) underflows; soft and hard targets.
  const rng = new SeededRandom(7);
  const n = 1000;
  const xs = Float32Array.from({ length: n }, (_, i) => (i % 50 === 0 ? 0 : i % 37 === 0 ? (i % 2 ? 120 : -120) : (rng.next() - 0.5) * 20));
  const ys = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? rng.next() : i % 2));
  const dys = Float32Array.from({ length: n }, () => rng.next() - 0.5);
  const close = (got: number, want: number) => Math.abs(got - want) <= 4e-7 * (1 + Math.abs(want));

  test('terms and both gradients agree with the definition computed in float64', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const [terms, dx, dTarget] = tf.tidy(() => {
      const x = tf.tensor2d(xs, [n / 10, 10]);
      const y = tf.tensor2d(ys, [n / 10, 10]);
      const dy = tf.tensor2d(dys, [n / 10, 10]);
      const [gx, gy] = tf.grads((a: tf.Tensor, b: tf.Tensor) => bceWithLogitsTerms(a, b))([x, y], dy);
      return [bceWithLogitsTerms(x, y), gx, gy].map((t) => t.dataSync() as Float32Array);
    });
    expect(tf.memory().numTensors).toBe(before);
    for (let i = 0; i < n; i++) {
      const x = xs[i];
      const want = Math.max(x, 0) - x * ys[i] + Math.log1p(Math.exp(-Math.abs(x)));
      // max(x, 0) - x y cancels: the float32 product's rounding is relative to |x|.
      if (Math.abs(terms[i] - want) > 4e-7 * (1 + Math.abs(x))) throw new Error(`term ${i}: ${terms[i]} vs ${want} (x ${x}, y ${ys[i]})`);
      const sigmoid = 1 / (1 + Math.exp(-x));
      // The composed gradient reaches sigmoid(x) through 1 - 1/(1 + e): a few float32 roundings of values near 1.
      const tolerance = implementation === 'native' ? 4e-7 : 2e-6;
      if (Math.abs(dx[i] - dys[i] * (sigmoid - ys[i])) > tolerance * (1 + Math.abs(dys[i]))) throw new Error(`dx ${i}: ${dx[i]} vs ${dys[i] * (sigmoid - ys[i])}`);
      expect(close(dTarget[i], -dys[i] * x)).toBe(true);
    }
  });

  test(`runs ${implementation === 'native' ? 'one native kernel each way' : 'the composition'}`, async () => {
    await tf.setBackend('wasm');
    const profile = await tf.profile(() =>
      tf.tidy(() => {
        const x = tf.tensor1d(xs.subarray(0, 16));
        tf.grad((a: tf.Tensor) => tf.sum(bceWithLogitsTerms(a, tf.tensor1d(ys.subarray(0, 16)))))(x);
      }),
    );
    const names = profile.kernels.map((k) => k.name);
    expect(names.includes('FedbiomedTsBceWithLogits')).toBe(implementation === 'native');
    expect(names.includes('FedbiomedTsBceWithLogitsGrad')).toBe(implementation === 'native');
    expect(names.includes('Exp')).toBe(implementation === 'wasm');
  });
});

describe('spatialBroadcast', () => {
  afterAll(() => restoreDefaultKernels());

  test.each([
    { n: 3, features: 5, size: [7, 6] },
    { n: 2, features: 3, size: [4, 5, 3] },
    { n: 4, features: 1, size: [1, 1] },
  ])('[$n, $features] over $size: the bits of a product with ones, value and gradient, on one kernel', async ({ n, features, size }) => {
    await tf.setBackend('wasm');
    const rng = new SeededRandom(n * 10 + features);
    const values = Float32Array.from({ length: n * features }, () => rng.next() - 0.5);
    const outShape = [n, ...size, features];
    const dys = Float32Array.from({ length: outShape.reduce((a, b) => a * b, 1) }, () => rng.next() - 0.5);
    const run = (op: (x: tf.Tensor) => tf.Tensor) =>
      tf.tidy(() => {
        const x = tf.tensor2d(values, [n, features]);
        const [g] = tf.grads((a: tf.Tensor) => op(a))([x], tf.tensor(dys, outShape));
        return [op(x), g].map((t) => t.dataSync() as Float32Array);
      });
    const before = tf.memory().numTensors;
    const profile = await tf.profile(() => {
      run((x) => spatialBroadcast(x, size));
    });
    expect(profile.kernels.map((k) => k.name)).toContain('FedbiomedTsSpatialBroadcast');
    const got = run((x) => spatialBroadcast(x, size));
    const want = run((x) => tf.mul(tf.reshape(x, [n, ...size.map(() => 1), features]), tf.ones([1, ...size, 1])));
    expect(tf.memory().numTensors).toBe(before);
    got.forEach((v, i) => sameBits(v, want[i]));
  });
});
