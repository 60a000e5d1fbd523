/**
 * Loss functions with PyTorch's definitions and default reduction (mean), by PyTorch class name or functional
 * name. Predictions come from the model; targets from the data source.
 */
import * as tf from '@tensorflow/tfjs-core';
import { bceWithLogitsTerms } from './fused';

type LossName =
  | 'BCELoss' | 'BCEWithLogitsLoss' | 'CrossEntropyLoss' | 'NLLLoss' | 'MSELoss' | 'L1Loss' | 'SigmoidFocalLoss'
  | 'SoftDiceLoss' | 'SoftDiceWithLogitsLoss' | 'WeightedSumLoss';

/**
 * A loss with its options, PyTorch's keyword arguments: `posWeight` (BCEWithLogitsLoss pos_weight, one output),
 * `classWeights` (CrossEntropyLoss / NLLLoss weight: the mean is Σ w_y·l / Σ w_y), `gamma` and `alpha`
 * (torchvision.ops.sigmoid_focal_loss, reduction mean; alpha < 0 disables the class balance term).
 * Image (mask) losses on channels-last predictions `[N, ...spatial, C]`: SoftDiceLoss / SoftDiceWithLogitsLoss
 * 1 − (2 Σ p·t + smooth) / (Σ p + Σ t + smooth) per sample and channel, averaged (`channel`: that channel only;
 * `smooth` default 1); WeightedSumLoss: Σ weight·loss over `terms`.
 */
export interface LossConfig {
  name: string;
  posWeight?: number;
  classWeights?: number[];
  gamma?: number;
  alpha?: number;
  channel?: number;
  smooth?: number;
  terms?: { weight: number; loss: LossConfig }[];
}

export const SOFT_DICE_SMOOTH = 1;

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
  sigmoidfocalloss: 'SigmoidFocalLoss',
  sigmoid_focal_loss: 'SigmoidFocalLoss',
  focal: 'SigmoidFocalLoss',
  softdiceloss: 'SoftDiceLoss',
  soft_dice: 'SoftDiceLoss',
  softdicewithlogitsloss: 'SoftDiceWithLogitsLoss',
  weightedsumloss: 'WeightedSumLoss',
};

const LOSS_NAMES: readonly LossName[] = [
  'BCELoss', 'BCEWithLogitsLoss', 'CrossEntropyLoss', 'NLLLoss', 'MSELoss', 'L1Loss', 'SigmoidFocalLoss', 'SoftDiceLoss', 'SoftDiceWithLogitsLoss',
  'WeightedSumLoss',
];

function lossName(name: string): LossName {
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

/** Σ w_y·l_i / Σ w_y over the batch (PyTorch's weighted mean), or the plain mean without weights. */
function classMean(perSample: tf.Tensor, oneHot: tf.Tensor, classWeights: number[] | undefined): tf.Scalar {
  if (!classWeights) return tf.mean<tf.Scalar>(perSample);
  const w = tf.sum(tf.mul(oneHot, tf.tensor1d(classWeights)), 1);
  return tf.div<tf.Scalar>(tf.sum(tf.mul(perSample, w)), tf.sum(w));
}

function checkOptions(which: LossName, config: LossConfig): void {
  const allowed: Record<LossName, (keyof LossConfig)[]> = {
    BCELoss: [],
    BCEWithLogitsLoss: ['posWeight'],
    CrossEntropyLoss: ['classWeights'],
    NLLLoss: ['classWeights'],
    MSELoss: [],
    L1Loss: [],
    SigmoidFocalLoss: ['gamma', 'alpha'],
    SoftDiceLoss: ['channel', 'smooth'],
    SoftDiceWithLogitsLoss: ['channel', 'smooth'],
    WeightedSumLoss: ['terms'],
  };
  for (const key of ['posWeight', 'classWeights', 'gamma', 'alpha', 'channel', 'smooth', 'terms'] as const) {
    if (config[key] !== undefined && !allowed[which].includes(key)) throw new Error(`${which} has no option ${key}`);
  }
  if (config.posWeight !== undefined && !(config.posWeight > 0)) throw new Error(`${which}: posWeight must be > 0, got ${config.posWeight}`);
  if (config.classWeights && config.classWeights.some((w) => !(w >= 0))) throw new Error(`${which}: class weights must be >= 0`);
}

/** A loss by name or config; a loss function (e.g. a plan's weighted sum over several heads) is used as given. */
export function makeLoss(nameOrConfig: string | LossConfig | LossFn): LossFn {
  if (typeof nameOrConfig === 'function') return nameOrConfig;
  const config: LossConfig = typeof nameOrConfig === 'string' ? { name: nameOrConfig } : nameOrConfig;
  const which = lossName(config.name);
  checkOptions(which, config);
  const { posWeight, classWeights } = config;
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
      // max(x,0) - x*y + log(1 + exp(-|x|)): the numerically stable form torch uses. With pos_weight pw, torch's
      // (1 - y)·x + (1 + (pw - 1)·y)·(log(1 + exp(-|x|)) + max(-x, 0)).
      return (x, t) =>
        tf.tidy(() => {
          const y = sameShape(which, x, t);
          if (posWeight !== undefined) {
            const softplusNeg = tf.add(tf.log1p(tf.exp(tf.neg(tf.abs(x)))), tf.relu(tf.neg(x)));
            const terms = tf.add(tf.mul(tf.sub(1, y), x), tf.mul(tf.add(1, tf.mul(y, posWeight - 1)), softplusNeg));
            return tf.mean<tf.Scalar>(terms);
          }
          return tf.mean<tf.Scalar>(bceWithLogitsTerms(x, y));
        });
    case 'SigmoidFocalLoss': {
      // torchvision.ops.sigmoid_focal_loss: ce·(1 - p_t)^γ, times α_t when α >= 0, mean over elements.
      const gamma = config.gamma ?? 2;
      const alpha = config.alpha ?? 0.25;
      return (x, t) =>
        tf.tidy(() => {
          const y = sameShape(which, x, t);
          const p = tf.sigmoid(x);
          const ce = tf.add(tf.sub(tf.relu(x), tf.mul(x, y)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
          const pT = tf.add(tf.mul(p, y), tf.mul(tf.sub(1, p), tf.sub(1, y)));
          let loss = tf.mul(ce, tf.pow(tf.sub(1, pT), gamma));
          if (alpha >= 0) loss = tf.mul(loss, tf.add(tf.mul(y, alpha), tf.mul(tf.sub(1, y), 1 - alpha)));
          return tf.mean<tf.Scalar>(loss);
        });
    }
    case 'CrossEntropyLoss':
    case 'NLLLoss':
      return (scores, t) =>
        tf.tidy(() => {
          const oneHot = classIndices(which, scores, t);
          if (classWeights && classWeights.length !== scores.shape[1]) {
            throw new Error(`${which}: ${classWeights.length} class weights for ${scores.shape[1]} classes`);
          }
          const logProbs = which === 'CrossEntropyLoss' ? tf.logSoftmax(scores) : scores;
          return classMean(tf.neg(tf.sum(tf.mul(oneHot, logProbs), 1)), oneHot, classWeights);
        });
    case 'MSELoss':
      return (p, t) => tf.tidy(() => tf.mean<tf.Scalar>(tf.squaredDifference(p, sameShape(which, p, t))));
    case 'L1Loss':
      return (p, t) => tf.tidy(() => tf.mean<tf.Scalar>(tf.abs(tf.sub(p, sameShape(which, p, t)))));
    case 'SoftDiceLoss':
    case 'SoftDiceWithLogitsLoss':
      return softDice(which, config);
    case 'WeightedSumLoss': {
      const terms = config.terms ?? [];
      if (terms.length === 0) throw new Error(`${which}: needs at least one term`);
      if (terms.some((t) => !Number.isFinite(t.weight))) throw new Error(`${which}: every weight must be a finite number`);
      const parts = terms.map((t) => ({ weight: t.weight, fn: makeLoss(t.loss) }));
      return (p, t) => tf.tidy(() => parts.map((part) => tf.mul(part.fn(p, t), part.weight)).reduce((a, b) => tf.add(a, b)) as tf.Scalar);
    }
  }
}

/** Soft Dice of a mask prediction (channels last), see LossConfig. */
function softDice(which: 'SoftDiceLoss' | 'SoftDiceWithLogitsLoss', config: LossConfig): LossFn {
  const smooth = config.smooth ?? SOFT_DICE_SMOOTH;
  if (!(smooth >= 0)) throw new Error(`${which}: smooth must be >= 0, got ${smooth}`);
  return (prediction, target) => tf.tidy(() => {
    if (prediction.rank < 3) throw new Error(`${which}: needs an image prediction [N, ...spatial, C], got [${prediction.shape.join(',')}]`);
    const y = sameShape(which, prediction, target);
    const channels = prediction.shape[prediction.rank - 1];
    const { channel } = config;
    if (channel !== undefined && !(Number.isInteger(channel) && channel >= 0 && channel < channels)) {
      throw new Error(`${which}: channel ${channel} is not one of the ${channels} output channels`);
    }
    const pick = (t: tf.Tensor): tf.Tensor => (channel === undefined ? t
      : tf.slice(t, [...t.shape.slice(0, -1).map(() => 0), channel], [...t.shape.slice(0, -1), 1]));
    const p = pick(which === 'SoftDiceWithLogitsLoss' ? tf.sigmoid(prediction) : prediction);
    const t = pick(y);
    const spatial = Array.from({ length: p.rank - 2 }, (_, i) => i + 1); // per sample and channel
    const overlap = tf.sum(tf.mul(p, t), spatial);
    const sizes = tf.add(tf.sum(p, spatial), tf.sum(t, spatial));
    return tf.mean<tf.Scalar>(tf.sub(1, tf.div(tf.add(tf.mul(overlap, 2), smooth), tf.add(sizes, smooth))));
  });
}
