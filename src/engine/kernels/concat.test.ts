/**
 * Concat and SplitV on the wasm backend (native column copies, copy.c; or the stock wasm kernels) give exactly the
 * CPU backend's values, for every axis, several inputs, an empty input, int32 (stock kernels) and through the
 * gradient of a concatenation (a split); on 1 and 2 native threads.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describeOnEveryKernelConfig } from '../testing/conv-gradient-suite';

const values = (shape: number[], k: number, dtype: 'float32' | 'int32' = 'float32') =>
  tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.round(100 * Math.sin(0.3 * i + k)) / 8), shape, dtype);

interface Case {
  name: string;
  shapes: number[][];
  axis: number;
  dtype?: 'int32';
}

const CASES: Case[] = [
  { name: 'channels of a U-Net skip', shapes: [[2, 5, 6, 3], [2, 5, 6, 4]], axis: -1 },
  { name: 'three inputs along a middle axis', shapes: [[2, 1, 4, 3], [2, 3, 4, 3], [2, 2, 4, 3]], axis: 1 },
  { name: 'the batch axis', shapes: [[1, 3, 2], [2, 3, 2]], axis: 0 },
  { name: 'an empty input', shapes: [[2, 3, 0], [2, 3, 5]], axis: 2 },
  { name: '5-D volumes', shapes: [[2, 3, 2, 2, 5], [2, 3, 2, 2, 1]], axis: 4 },
  { name: 'more rows than one 256-row copy chunk', shapes: [[600, 3], [600, 2]], axis: 1 },
  { name: 'int32', shapes: [[2, 3], [2, 2]], axis: 1, dtype: 'int32' },
];

/** Concat, its split by sizes, and the gradient of sum(concat * weights) for every input. */
function run(c: Case): { concat: number[]; split: number[][]; grads: number[][] } {
  return tf.tidy(() => {
    const inputs = c.shapes.map((s, k) => values(s, k, c.dtype));
    const concat = tf.concat(inputs, c.axis);
    const axis = c.axis < 0 ? concat.rank + c.axis : c.axis;
    const split = tf.split(concat, c.shapes.map((s) => s[axis]), axis).map((t) => Array.from(t.dataSync()));
    if (c.dtype) return { concat: Array.from(concat.dataSync()), split, grads: [] };
    const weights = values(concat.shape, 9);
    const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(tf.concat(xs, c.axis), weights)))(inputs);
    return { concat: Array.from(concat.dataSync()), split, grads: grads.map((g) => Array.from(g.dataSync())) };
  });
}

describeOnEveryKernelConfig((implementation) => {

  test('the native copies are registered exactly with the native kernels', () => {
    const name = tf.getKernel('Concat', 'wasm')?.kernelFunc.name;
    expect(name === 'nativeConcat').toBe(implementation === 'native');
    expect(tf.getKernel('SplitV', 'wasm')?.kernelFunc.name === 'nativeSplitV').toBe(implementation === 'native');
  });

  test.each(CASES.map((c) => [c.name, c] as const))('%s: the CPU backend values, exactly', async (_name, c) => {
    await tf.setBackend('cpu');
    const want = run(c);
    await tf.setBackend('wasm');
    const got = run(c);
    expect(got).toEqual(want);
    // the split gives back the inputs
    expect(got.split).toEqual(c.shapes.map((s, k) => Array.from(tf.tidy(() => values(s, k, c.dtype).dataSync()))));
  });
});
