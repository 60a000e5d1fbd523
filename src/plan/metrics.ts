/**
 * The validation metrics of a plan, computed as the generated PyTorch plan's `testing_step` computes them
 * (src/plan/pytorch.ts `metricLines`): a Python node running the generated plan reports these names and values,
 * so a TS node reports the same (`LOSS`, `ACCURACY`, `MSE`, `MAE`; `LOSS` alone when the plan lists none).
 * Fed-BioMed ignores `test_metric` when a plan defines `testing_step`, and so do we.
 */
import * as tf from '@tensorflow/tfjs-core';
import { makeLoss } from '../engine/losses';
import { engineLossName } from './training';
import { MetricName, PlanSpec } from './spec';

const WIRE_NAME: Record<MetricName, string> = { loss: 'LOSS', accuracy: 'ACCURACY', mse: 'MSE', mae: 'MAE' };

/** Metrics over one validation batch: `output` is the model's `[N, K]` output, `target` the batch target `[N]`. */
export function planMetrics(spec: PlanSpec, output: tf.Tensor, target: tf.Tensor): Record<string, number> {
  const metrics: MetricName[] = spec.metrics.length > 0 ? spec.metrics : ['loss'];
  const results: Record<string, number> = {};
  for (const metric of metrics) {
    const value = tf.tidy(() => {
      const y = tf.reshape(tf.cast(target, 'float32'), [-1]);
      const flat = tf.reshape(output, [-1]);
      switch (metric) {
        case 'loss':
          return makeLoss(engineLossName(spec.loss))(output, target);
        case 'accuracy':
          // torch: prediction == y.long(), i.e. against the target truncated toward zero, compared as floats.
          return tf.mean(tf.cast(tf.equal(predictedClass(spec, output), tf.mul(tf.sign(y), tf.floor(tf.abs(y)))), 'float32'));
        case 'mse':
          return tf.mean(tf.square(tf.sub(flat, y)));
        case 'mae':
          return tf.mean(tf.abs(tf.sub(flat, y)));
      }
    });
    results[WIRE_NAME[metric]] = value.dataSync()[0];
    value.dispose();
  }
  return results;
}

/**
 * The generated plan's prediction, as float32: threshold 0.5 on probabilities (0 on logits) for BCE, argmax for
 * cross-entropy, the raw output for regression.
 */
function predictedClass(spec: PlanSpec, output: tf.Tensor): tf.Tensor {
  switch (spec.loss.type) {
    case 'bce':
      return tf.cast(tf.greaterEqual(tf.reshape(output, [-1]), spec.loss.fromLogits ? 0 : 0.5), 'float32');
    case 'cross_entropy':
      return tf.cast(tf.argMax(output, 1), 'float32');
    case 'mse':
      return tf.reshape(output, [-1]);
  }
}
