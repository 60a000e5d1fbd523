/**
 * Losses with options: reductions to the plain losses where the options are neutral, hand-computed values, and
 * gradients against central finite differences in float64-free form (small inputs, tolerance 1e-3). PyTorch
 * conformance of the same losses inside training steps: src/plan/torch-conformance.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { makeLoss } from './losses';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const x = () => tf.tensor2d([1.5, -0.3, 0.2, -2.0, 0.7], [5, 1]);
const y = () => tf.tensor1d([1, 0, 1, 0, 0]);

function value(loss: ReturnType<typeof makeLoss>, p: tf.Tensor, t: tf.Tensor): number {
  return tf.tidy(() => loss(p, t).dataSync()[0]);
}

test('neutral options give the plain losses', () => {
  expect(value(makeLoss({ name: 'BCEWithLogitsLoss', posWeight: 1 }), x(), y())).toBeCloseTo(value(makeLoss('BCEWithLogitsLoss'), x(), y()), 6);
  expect(value(makeLoss({ name: 'focal', gamma: 0, alpha: -1 }), x(), y())).toBeCloseTo(value(makeLoss('BCEWithLogitsLoss'), x(), y()), 6);
  const logits = tf.tensor2d([[1, 2, 0], [0.5, -1, 2], [0, 0, 1]]);
  const classes = tf.tensor1d([0, 2, 1], 'int32');
  expect(value(makeLoss({ name: 'CrossEntropyLoss', classWeights: [2, 2, 2] }), logits, classes)).toBeCloseTo(value(makeLoss('CrossEntropyLoss'), logits, classes), 6);
});

test('pos_weight, class weights and focal terms by hand', () => {
  const sp = (v: number) => Math.log1p(Math.exp(v));
  // one positive logit 0.4, pos_weight 3: 3·log(1 + e^-0.4)
  expect(value(makeLoss({ name: 'BCEWithLogitsLoss', posWeight: 3 }), tf.tensor2d([[0.4]]), tf.tensor1d([1]))).toBeCloseTo(3 * sp(-0.4), 6);
  // weighted CE: (w1·l(sample 1) + w0·l(sample 2)) / (w1 + w0), not the plain mean
  const logits = tf.tensor2d([[2, 0], [0, 1]]);
  expect(value(makeLoss({ name: 'CrossEntropyLoss', classWeights: [1, 4] }), logits, tf.tensor1d([1, 0], 'int32'))).toBeCloseTo((4 * sp(2) + sp(1)) / 5, 5);
  // focal on a confident correct positive (logit 3): α·(1-p)^γ·ce
  const p = 1 / (1 + Math.exp(-3));
  expect(value(makeLoss({ name: 'focal', gamma: 2, alpha: 0.25 }), tf.tensor2d([[3]]), tf.tensor1d([1]))).toBeCloseTo(0.25 * (1 - p) ** 2 * sp(-3), 7);
  expect(() => makeLoss({ name: 'MSELoss', posWeight: 2 })).toThrow(/MSELoss has no option posWeight/);
});

test.each([
  ['BCEWithLogitsLoss pos_weight', { name: 'BCEWithLogitsLoss', posWeight: 2.5 }],
  ['focal', { name: 'focal', gamma: 1.5, alpha: 0.3 }],
])('%s: gradient equals finite differences', (_name, config) => {
  const loss = makeLoss(config);
  const target = y();
  const base = x();
  const grad = tf.grad((p: tf.Tensor) => loss(p, target))(base).dataSync();
  const values = base.dataSync();
  const h = 1e-2;
  for (let i = 0; i < values.length; i++) {
    const at = (d: number) => value(loss, tf.tensor2d(values.map((v, j) => (j === i ? v + d : v)), [5, 1]), target);
    expect(Math.abs((at(h) - at(-h)) / (2 * h) - grad[i])).toBeLessThan(1e-3);
  }
});
