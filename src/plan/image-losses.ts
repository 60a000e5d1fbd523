/**
 * Losses and metrics for image outputs (image-to-image plans): L1, MSE, BCE, soft Dice on a mask channel, and
 * weighted sums of them, on tfjs (channels last) with the PyTorch expression of each (channels first) so both
 * sides compute the same number. Not yet a `loss` of the plan document (spec.ts LossSpec): plans with an image
 * output train with its element-wise `mse` / `bce`; these are the building blocks for the next step and are
 * checked against PyTorch (values and gradients) in image-losses.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { pyNumber } from './python-literal';

export type ImageLossSpec =
  | { type: 'l1' }
  | { type: 'mse' }
  | { type: 'bce'; fromLogits?: boolean }
  /**
   * 1 − (2 Σ p·t + smooth) / (Σ p + Σ t + smooth) per sample and channel, averaged; p the prediction of the mask
   * (through a sigmoid when fromLogits), t the target mask; only `channel` when given, else every channel.
   */
  | { type: 'soft_dice'; channel?: number; fromLogits?: boolean; smooth?: number }
  | { type: 'weighted'; terms: { weight: number; loss: ImageLossSpec }[] };

export const SOFT_DICE_SMOOTH = 1;

/** The loss as a tfjs function of a channels-last prediction and target of one shape ([N, ...spatial, C]). */
export function imageLoss(spec: ImageLossSpec): (prediction: tf.Tensor, target: tf.Tensor) => tf.Scalar {
  return (prediction, target) => tf.tidy(() => {
    if (prediction.shape.join(',') !== target.shape.join(',')) {
      throw new Error(`${spec.type}: target [${target.shape.join(', ')}] does not match the prediction [${prediction.shape.join(', ')}]`);
    }
    switch (spec.type) {
      case 'l1':
        return tf.mean(tf.abs(tf.sub(prediction, target))) as tf.Scalar;
      case 'mse':
        return tf.mean(tf.square(tf.sub(prediction, target))) as tf.Scalar;
      case 'bce': {
        if (spec.fromLogits) {
          // max(x, 0) − x·t + log(1 + e^−|x|), as BCEWithLogitsLoss.
          const x = prediction;
          return tf.mean(tf.add(tf.sub(tf.relu(x), tf.mul(x, target)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))))) as tf.Scalar;
        }
        // PyTorch clamps the logs at −100.
        const logP = tf.maximum(tf.log(prediction), -100);
        const log1mP = tf.maximum(tf.log(tf.sub(1, prediction)), -100);
        return tf.neg(tf.mean(tf.add(tf.mul(target, logP), tf.mul(tf.sub(1, target), log1mP)))) as tf.Scalar;
      }
      case 'soft_dice': {
        const channels = prediction.shape[prediction.rank - 1];
        const pick = (t: tf.Tensor): tf.Tensor => (spec.channel === undefined ? t
          : tf.slice(t, [...t.shape.slice(0, -1).map(() => 0), spec.channel], [...t.shape.slice(0, -1), 1]));
        if (spec.channel !== undefined && (spec.channel < 0 || spec.channel >= channels)) {
          throw new Error(`soft_dice: channel ${spec.channel} is not one of the ${channels} output channels`);
        }
        const p = pick(spec.fromLogits ? tf.sigmoid(prediction) : prediction);
        const t = pick(target);
        const spatial = Array.from({ length: p.rank - 2 }, (_, i) => i + 1); // per sample and channel
        const smooth = spec.smooth ?? SOFT_DICE_SMOOTH;
        const overlap = tf.sum(tf.mul(p, t), spatial);
        const sizes = tf.add(tf.sum(p, spatial), tf.sum(t, spatial));
        return tf.mean(tf.sub(1, tf.div(tf.add(tf.mul(overlap, 2), smooth), tf.add(sizes, smooth)))) as tf.Scalar;
      }
      case 'weighted':
        if (spec.terms.length === 0) throw new Error('weighted: needs at least one term');
        return spec.terms.map((term) => tf.mul(imageLoss(term.loss)(prediction, target), term.weight))
          .reduce((a, b) => tf.add(a, b)) as tf.Scalar;
    }
  });
}

/** The same loss as a PyTorch expression of channels-first tensors named `output` and `target`. */
export function torchImageLoss(spec: ImageLossSpec, output = 'output', target = 'target'): string {
  switch (spec.type) {
    case 'l1':
      return `F.l1_loss(${output}, ${target})`;
    case 'mse':
      return `F.mse_loss(${output}, ${target})`;
    case 'bce':
      return spec.fromLogits ? `F.binary_cross_entropy_with_logits(${output}, ${target})` : `F.binary_cross_entropy(${output}, ${target})`;
    case 'soft_dice': {
      const prob = spec.fromLogits ? `torch.sigmoid(${output})` : output;
      const c = spec.channel;
      const p = c === undefined ? prob : `${prob}[:, ${c}:${c + 1}]`;
      const t = c === undefined ? target : `${target}[:, ${c}:${c + 1}]`;
      const smooth = pyNumber(spec.smooth ?? SOFT_DICE_SMOOTH, true);
      return `(1 - (2 * (${p} * ${t}).flatten(2).sum(2) + ${smooth}) / (${p}.flatten(2).sum(2) + ${t}.flatten(2).sum(2) + ${smooth})).mean()`;
    }
    case 'weighted':
      return spec.terms.map((term) => `${pyNumber(term.weight, true)} * (${torchImageLoss(term.loss, output, target)})`).join(' + ');
  }
}

/** Dice of binarised masks (threshold 0.5) over all elements; 1 when both are empty. */
export function maskDice(prediction: ArrayLike<number>, target: ArrayLike<number>): number {
  let both = 0;
  let p = 0;
  let t = 0;
  for (let i = 0; i < prediction.length; i++) {
    const a = prediction[i] > 0.5;
    const b = target[i] > 0.5;
    if (a && b) both++;
    if (a) p++;
    if (b) t++;
  }
  return p + t === 0 ? 1 : (2 * both) / (p + t);
}

/** Mean absolute error of two images. */
export function imageMae(prediction: ArrayLike<number>, target: ArrayLike<number>): number {
  if (prediction.length !== target.length) throw new Error(`imageMae: ${prediction.length} vs ${target.length} values`);
  let sum = 0;
  for (let i = 0; i < prediction.length; i++) sum += Math.abs(prediction[i] - target[i]);
  return prediction.length === 0 ? 0 : sum / prediction.length;
}
