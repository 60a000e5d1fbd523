/**
 * The native Adam step (kernels/adam-native.ts, native/adam.c) against the optimizer's composed tfjs kernels on the
 * same wasm backend: the same bits for the parameters and the moments, step after step, for Adam, Adam with an L2
 * term and AdamW, on sizes with and without a tail past the 8-wide vectors, and with zero, tiny (subnormal squares)
 * and large gradients. The composed path itself is checked against torch.optim in train.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend';
import { ADAM_UPDATE } from './kernels/adam-native';
import { kernelsInUse } from './kernels';
import { makeOptimizer, OptimizerSpec } from './optimizers';
import { SeededRandom } from './prng';
import { restoreDefaultKernels, useKernelConfig } from './testing/conv-gradient-suite';

beforeAll(async () => {
  await initBackend(() => undefined);
});

afterAll(async () => {
  restoreDefaultKernels();
  await tf.setBackend('wasm');
});

const SHAPES = [[3, 3, 5, 7], [16], [13], [2, 2, 64, 32]];

/** Gradients for step s of parameter k: ordinary values, exact zeros, values whose squares are subnormal, large ones. */
function gradient(shape: number[], k: number, s: number): Float32Array {
  const rng = new SeededRandom(100 * k + s);
  const size = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: size }, (_, i) => {
    const u = rng.next() - 0.5;
    if (i % 17 === 0) return 0;
    if (i % 13 === 0) return u * 1e-21;
    if (i % 11 === 0) return u * 1e4;
    return u;
  });
}

function initial(shape: number[], k: number): Float32Array {
  const rng = new SeededRandom(k);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.next() - 0.5);
}

/** Parameters and moments (read through a probe: the moments are private) after `steps` steps. */
function train(spec: OptimizerSpec, steps: number): Float32Array[] {
  const variables = SHAPES.map((shape, k) => {
    const value = tf.tensor(initial(shape, k), shape);
    const variable = tf.variable(value);
    value.dispose();
    return variable;
  });
  const optimizer = makeOptimizer(spec);
  try {
    for (let s = 0; s < steps; s++) {
      const grads = new Map(variables.map((v, k) => [v, tf.tensor(gradient(v.shape, k, s), v.shape)] as [tf.Variable, tf.Tensor]));
      optimizer.step(grads);
      for (const g of grads.values()) g.dispose();
    }
    const moments = (optimizer as unknown as { moments: Map<tf.Variable, { m: tf.Tensor; v: tf.Tensor }> }).moments;
    return variables.flatMap((v) => {
      const state = moments.get(v);
      if (!state) throw new Error('no moments kept');
      return [v.dataSync(), state.m.dataSync(), state.v.dataSync()] as Float32Array[];
    });
  } finally {
    optimizer.dispose();
    variables.forEach((v) => v.dispose());
  }
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe.each([
  { name: 'Adam', spec: { name: 'Adam', lr: 1e-3 } },
  { name: 'Adam + L2 weight decay', spec: { name: 'Adam', lr: 0.05, weightDecay: 0.1, betas: [0.8, 0.99] as [number, number] } },
  { name: 'AdamW', spec: { name: 'AdamW', lr: 0.01, weightDecay: 0.05, eps: 1e-6 } },
])('$name', ({ spec }) => {
  test('the native step gives the bits of the composed one, over 4 steps, without leaking tensors', () => {
    useKernelConfig('native', 1);
    expect(kernelsInUse()).toBe('native');
    expect(tf.getKernel(ADAM_UPDATE, 'wasm')).toBeDefined();
    const before = tf.memory().numTensors;
    const native = train(spec, 4);
    expect(tf.memory().numTensors).toBe(before);
    useKernelConfig('wasm', 1);
    expect(tf.getKernel(ADAM_UPDATE, 'wasm')).toBeUndefined();
    const composed = train(spec, 4);
    restoreDefaultKernels();
    expect(native).toHaveLength(composed.length);
    native.forEach((values, i) => expect(bits(values)).toEqual(bits(composed[i])));
    // The steps moved the parameters (a no-op kernel would not pass the comparison, but say it plainly).
    const start = initial(SHAPES[0], 0);
    expect(native[0].filter((x, i) => x !== start[i]).length).toBeGreaterThan(start.length / 2);
  });
});
