/**
 * The project's Conv3D kernels on the wasm backend (forward, filter and input gradients), native and pure wasm,
 * against the CPU backend and finite differences of a float64 reference conv, over strides 1-2 and valid/same
 * padding; plus the run-time gate of the wasm ones.
 * Tolerance: |got - want| / (1 + |want|) <= 1e-4.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../backend';
import { conv3DSelfCheck, setConv3DSelfCheckForTesting } from './conv3d-wasm';
import { ConvCase } from './gradient-check';
import { describeConvGradientChecks, restoreDefaultKernels } from '../testing/conv-gradient-suite';
import { useKernels } from './index';
import { WasmBackend } from './wasm-backend';

const TOL = 1e-4;

const CASES: ConvCase[] = [];
for (const [x, filter] of [
  [[2, 5, 6, 5, 2], [3, 3, 3, 2, 3]],
  [[1, 6, 5, 7, 3], [2, 3, 2, 3, 2]],
  [[2, 4, 4, 4, 1], [1, 1, 1, 1, 4]],
] as Array<[number[], number[]]>) {
  for (const strides of [1, 2]) for (const pad of ['valid', 'same'] as const) CASES.push({ x, filter, strides, pad });
}
// 17 output channels: one full 16-wide native tile panel plus a tail; unpadded, so read in place (rows of 6).
CASES.push({ x: [2, 4, 7, 8, 3], filter: [2, 2, 3, 3, 17], strides: 1, pad: 'valid' });

beforeAll(async () => {
  await initBackend(() => undefined);
});

describeConvGradientChecks('conv3d', CASES, 30, TOL);

test('the wasm kernels\' run-time self-check passes, and a failed one stops 3D training with a clear error', async () => {
  await tf.setBackend('wasm');
  useKernels('wasm');
  const backend = tf.backend() as unknown as WasmBackend;
  setConv3DSelfCheckForTesting(undefined);
  expect(conv3DSelfCheck(backend)).toEqual({ ok: true, detail: expect.stringContaining('match the float64 reference') });
  setConv3DSelfCheckForTesting({ ok: false, detail: 'simulated mismatch' });
  try {
    expect(() => tf.tidy(() => tf.conv3d(tf.ones<tf.Rank.R5>([1, 3, 3, 3, 1]), tf.ones<tf.Rank.R5>([2, 2, 2, 1, 1]), 1, 'valid'))).toThrow(
      /Conv3D on the wasm backend failed its correctness check \(simulated mismatch\); refusing to train/,
    );
  } finally {
    setConv3DSelfCheckForTesting(undefined);
    restoreDefaultKernels();
  }
});
