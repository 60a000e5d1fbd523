/**
 * Gradient checks of the project's Conv2D kernels on the wasm backend (forward, filter + input gradients, incl. the
 * dilation rule), for both implementations: the native AVX2+FMA kernels (src/engine/native, built by
 * `npm run build:native`; these tests fail when they are missing) and the pure wasm ones. Oracles: the pure-JS CPU
 * backend and finite differences of a float64 reference conv.
 * Tolerance: |got - want| / (1 + |want|) <= 1e-4 (float32 sums of at most a few hundred terms).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../backend';
import { setMaxPatchFloatsForTesting } from './conv2d-wasm';
import { describeConvGradientChecks, restoreDefaultKernels } from '../testing/conv-gradient-suite';
import { kernelsInUse, useKernels } from './index';
import { ConvCase, tfjsConvGradients, worstMismatch } from './gradient-check';

const TOL = 1e-4;

const CASES: ConvCase[] = [];
for (const [x, filter] of [
  [[2, 7, 6, 3], [3, 3, 3, 4]],
  [[1, 9, 8, 2], [2, 3, 2, 5]],
  [[3, 5, 5, 1], [1, 1, 1, 3]],
  [[1, 8, 9, 4], [5, 4, 4, 2]],
] as Array<[number[], number[]]>) {
  for (const strides of [1, 2, 3]) {
    for (const pad of ['valid', 'same'] as const) CASES.push({ x, filter, strides, pad });
  }
  CASES.push({ x, filter, strides: 1, pad: 'same', dilations: 2 });
  // 'valid' with dilation only where the dilated filter still fits (an empty output is not a gradient check).
  if ((filter[0] - 1) * 2 < x[1] && (filter[1] - 1) * 2 < x[2]) CASES.push({ x, filter, strides: 1, pad: 'valid', dilations: 2 });
}
CASES.push({ x: [2, 8, 7, 3], filter: [3, 3, 3, 2], strides: 2, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] });
CASES.push({ x: [1, 6, 6, 2], filter: [3, 3, 2, 2], strides: 1, pad: 1 });
// Native tiling edges: 2 full 16-wide column panels + a tail (33 channels), 16 exactly, a patch length not a
// multiple of 12. Unpadded, the patches are read in place (rows of 12 positions: one 12-row tile); padded, the
// samples are copied padded and read in place (forward and stride-1 input gradient as one run of virtual positions
// per plane, filter gradient in chunks of rows). Width-dilated (patches gathered, 113 rows a block) and strided
// (input gradient scattered, 113 rows a block) variants cross blocks too.
for (const pad of ['valid', 'same'] as const) CASES.push({ x: [2, 14, 14, 32], filter: [3, 3, 32, 33], strides: 1, pad });
CASES.push({ x: [2, 14, 14, 32], filter: [3, 3, 32, 33], strides: 1, pad: 'same', dilations: 2 });
CASES.push({ x: [2, 28, 28, 32], filter: [3, 3, 32, 33], strides: 2, pad: 'same' });
CASES.push({ x: [3, 9, 10, 5], filter: [3, 3, 5, 16], strides: 2, pad: 'same' });
// Padded rows of 50 positions: the native filter gradient reads zero-padded copies of the samples in place.
CASES.push({ x: [2, 4, 50, 3], filter: [3, 3, 3, 5], strides: 1, pad: 'same' });
// 20 rows of 40 positions: the filter gradient's chunks of 7 rows (256 positions) end with a shorter one.
CASES.push({ x: [1, 20, 40, 3], filter: [3, 3, 3, 5], strides: 1, pad: 'same' });

beforeAll(async () => {
  await initBackend(() => undefined);
});

afterAll(async () => {
  await tf.setBackend('wasm');
});

describeConvGradientChecks('conv2d', CASES, 40, TOL);

test('the wasm backend uses the project kernels, native by default, and can switch to the wasm ones', async () => {
  await tf.setBackend('wasm');
  expect(kernelsInUse()).toBe('native');
  expect(tf.getKernel('Conv2D', 'wasm').kernelFunc.name).toBe('nativeConv2D');
  expect(tf.getKernel('Conv2DBackpropFilter', 'wasm').kernelFunc.name).toBe('nativeConv2DBackpropFilter');
  useKernels('wasm');
  try {
    expect(kernelsInUse()).toBe('wasm');
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm').kernelFunc.name).toBe('conv2DBackpropFilter');
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm').kernelFunc.name).toBe('conv2DBackpropInput');
  } finally {
    restoreDefaultKernels();
  }
});

test('the wasm filter gradient computed in small row blocks equals the one-shot result', async () => {
  await tf.setBackend('wasm');
  useKernels('wasm');
  const cases: ConvCase[] = [
    { x: [5, 9, 8, 3], filter: [3, 3, 3, 4], strides: 2, pad: 'same' },
    { x: [3, 7, 7, 2], filter: [2, 2, 2, 3], strides: 1, pad: 'valid' },
  ];
  for (const c of cases) {
    const whole = tfjsConvGradients(c);
    // 50 floats: one output row per block; 200: blocks of several rows that straddle sample boundaries.
    for (const bound of [50, 200]) {
      const previous = setMaxPatchFloatsForTesting(bound);
      try {
        const chunked = tfjsConvGradients(c);
        expect(worstMismatch('dw', chunked.dw, whole.dw).error).toBeLessThanOrEqual(1e-5);
        expect(worstMismatch('dx', chunked.dx, whole.dx).error).toBe(0);
      } finally {
        setMaxPatchFloatsForTesting(previous);
      }
    }
  }
  restoreDefaultKernels();
});
