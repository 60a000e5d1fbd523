/**
 * Loss functions with PyTorch's definitions and default reduction (mean), by PyTorch class name or functional
 * name. Predictions come from the model; targets from the data source.
 */
import * as tf from '@tensorflow/tfjs-core';

export type LossName = 'BCELoss' | 'BCEWithLogitsLoss' | 'CrossEntropyLoss' | 'NLLLoss' | 'MSELoss' | 'L1Loss';

const ALIASES: Record<string, LossName> = {
  bceloss: 'BCELoss',
  bce: 'BCELoss',
  binary_cross_entropy: 'BCELoss',
  bcewithlogitsloss: 'BCEWithLogitsLoss',
  bce_with_logits: 'BCEWithLogitsLoss',
  binary_cross_entropy_with_logits: 'BCEWithLogitsLoss',
  crossentropyloss: 'CrossEntropyLoss',
  cross_entropy: 'CrossEntropyLoss',
  nllloss: 'NLLLoss',
  nll_loss: 'NLLLoss',
  mseloss: 'MSELoss',
  mse: 'MSELoss',
  mse_loss: 'MSELoss',
  l1loss: 'L1Loss',
  l1_loss: 'L1Loss',
};

export const LOSS_NAMES: readonly LossName[] = ['BCELoss', 'BCEWithLogitsLoss', 'CrossEntropyLoss', 'NLLLoss', 'MSELoss', 'L1Loss'];

export function lossName(name: string): LossName {
  const found = ALIASES[name.toLowerCase()];
  if (!found) throw new Error(`unknown loss '${name}'; expected one of ${LOSS_NAMES.join(', ')}`);
  return found;
}

export type LossFn = (prediction: tf.Tensor, target: tf.Tensor) => tf.Scalar;

/** Element-wise losses need equal shapes; a [N] target for a [N,1] prediction is reshaped as PyTorch users expect. */
function sameShape(loss: string, prediction: tf.Tensor, target: tf.Tensor): tf.Tensor {
  if (prediction.size !== target.size) {
    throw new Error(
      `${loss}: target shape [${target.shape.join(',')}] does not match prediction shape [${prediction.shape.join(',')}]`,
    );
  }
  const t = target.dtype === 'float32' ? target : tf.cast(target, 'float32');
  return prediction.shape.join(',') === t.shape.join(',') ? t : tf.reshape(t, prediction.shape);
}

function classIndices(loss: string, prediction: tf.Tensor, target: tf.Tensor): tf.Tensor {
  if (prediction.rank !== 2) {
    throw new Error(`${loss}: prediction must be [batch, classes], got [${prediction.shape.join(',')}]`);
  }
  if (target.size !== prediction.shape[0]) {
    throw new Error(
      `${loss}: expects one integer class index per sample (${prediction.shape[0]}), got target [${target.shape.join(',')}]`,
    );
  }
  return tf.oneHot(tf.cast(tf.reshape(target, [-1]), 'int32'), prediction.shape[1] as number);
}

export function makeLoss(name: string): LossFn {
  const which = lossName(name);
  switch (which) {
    case 'BCELoss':
      // torch clamps each log term at -100 so p in {0,1} gives a finite loss.
      return (p, t) =>
        tf.tidy(() => {
          const y = sameShape(which, p, t);
          const logP = tf.maximum(tf.log(p), -100);
          const log1mP = tf.maximum(tf.log(tf.sub(1, p)), -100);
          return tf.neg(tf.mean(tf.add(tf.mul(y, logP), tf.mul(tf.sub(1, y), log1mP)))) as tf.Scalar;
        });
    case 'BCEWithLogitsLoss':
      // max(x,0) - x*y + log(1 + exp(-|x|)): the numerically stable form torch uses.
      return (x, t) =>
        tf.tidy(() => {
          const y = sameShape(which, x, t);
          const terms = tf.add(tf.sub(tf.relu(x), tf.mul(x, y)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
          return tf.mean(terms) as tf.Scalar;
        });
    case 'CrossEntropyLoss':
      return (logits, t) =>
        tf.tidy(() => {
          const oneHot = classIndices(which, logits, t);
          return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
        });
    case 'NLLLoss':
      return (logProbs, t) =>
        tf.tidy(() => {
          const oneHot = classIndices(which, logProbs, t);
          return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, logProbs), 1))) as tf.Scalar;
        });
    case 'MSELoss':
      return (p, t) => tf.tidy(() => tf.mean(tf.squaredDifference(p, sameShape(which, p, t))) as tf.Scalar);
    case 'L1Loss':
      return (p, t) => tf.tidy(() => tf.mean(tf.abs(tf.sub(p, sameShape(which, p, t)))) as tf.Scalar);
  }
}
