/**
 * The batch-norm op with its analytic gradient equals the same computation written with tfjs's elementary ops and
 * differentiated automatically (CPU backend, the oracle), on 2-D, 4-D and 5-D channels-last inputs with an offset
 * large against the spread; also on the project's engine backend; and it leaves no tensor behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from './backend';
import { batchNormTrain } from './batch-norm';

function reference(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, Array.from({ length: x.rank - 1 }, (_, i) => i));
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gamma), beta);
}

function values(shape: number[], seed: number, offset: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, (_, i) => offset + Math.sin(seed * 0.37 * (i + 1)) * (1 + (i % 3))), shape);
}

let engine: string;
beforeAll(async () => {
  engine = (await initBackend(() => undefined)).tfjsName;
});
afterAll(async () => {
  await tf.setBackend(engine);
});

describe.each([['cpu'], ['engine']])('on the %s backend', (which) => {
  test.each([
    [[6, 3]],
    [[2, 5, 4, 3]],
    [[2, 3, 4, 2, 5]],
  ])('shape %j: values, statistics and gradients equal the automatic version', async (shape) => {
    await tf.setBackend(which === 'cpu' ? 'cpu' : engine);
    const c = shape[shape.length - 1];
    const x = values(shape, 1, 50);
    const gamma = tf.tensor1d(Array.from({ length: c }, (_, i) => 0.5 + i));
    const beta = tf.tensor1d(Array.from({ length: c }, (_, i) => i - 1));
    const dy = values(shape, 2, 0);
    const loss = (f: typeof reference) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, g, b, 1e-5), dy));
    const ours = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number) => batchNormTrain(a, g, b, eps).y;
    const got = tf.grads(loss(ours))([x, gamma, beta]);
    const want = tf.grads(loss(reference))([x, gamma, beta]);
    const close = (a: tf.Tensor, b: tf.Tensor, tol: number) => {
      const d = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
      const scale = Math.max(1, tf.max(tf.abs(b)).dataSync()[0]);
      expect(d).toBeLessThan(tol * scale);
    };
    close(ours(x, gamma, beta, 1e-5), reference(x, gamma, beta, 1e-5), 1e-4);
    got.forEach((g, i) => close(g, want[i], 2e-3)); // the automatic version in float32 loses digits to the offset
    const { mean, variance } = batchNormTrain(x, gamma, beta, 1e-5);
    const m = tf.moments(x, Array.from({ length: x.rank - 1 }, (_, i) => i));
    close(mean, m.mean, 1e-6);
    close(variance, m.variance, 1e-3);
    expect(Math.abs(tf.sum(got[0]).dataSync()[0])).toBeLessThan(1e-2); // dx sums to ~0 per channel
    // nothing leaks: a training step's worth of forward + backward inside tidy leaves no tensor behind
    const before = tf.memory().numTensors;
    tf.dispose(tf.tidy(() => tf.grads(loss(ours))([x, gamma, beta])));
    tf.tidy(() => {
      batchNormTrain(x, gamma, beta, 1e-5);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
