/**
 * The plan's image losses (image-to-image plans): `l1`, `soft_dice` on a mask channel (or every channel), and
 * `weighted` sums of losses (e.g. BCE + soft Dice), beside the element-wise `mse` / `bce` every image output takes.
 * A plan names them in its `loss` (spec.ts LossSpec); here they become the engine's losses (src/engine/losses.ts:
 * L1Loss, SoftDiceLoss, SoftDiceWithLogitsLoss, WeightedSumLoss) and the generated PyTorch plan's expression, so
 * both sides compute the same number (checked with PyTorch, values and gradients, in image-losses.test.ts and
 * torch-conformance.test.ts). Also the image metrics the demo reports (mask Dice, MAE).
 */
import * as tf from '@tensorflow/tfjs-core';
import { LossConfig, makeLoss, SOFT_DICE_SMOOTH } from '../engine/losses';
import { pyNumber } from './python-literal';
import type { LossSpec } from './spec';

export { SOFT_DICE_SMOOTH };

/** The plan loss of an image output (any of its types). */
export type ImageLossSpec = LossSpec;

/** The engine's loss for an image loss of the plan (`weighted` terms recursively through `element`). */
export function engineImageLoss(loss: LossSpec, element: (loss: LossSpec) => LossConfig): LossConfig {
  switch (loss.type) {
    case 'l1':
      return { name: 'L1Loss' };
    case 'soft_dice': {
      const config: LossConfig = { name: loss.fromLogits ? 'SoftDiceWithLogitsLoss' : 'SoftDiceLoss' };
      if (loss.channel !== undefined) config.channel = loss.channel;
      if (loss.smooth !== undefined) config.smooth = loss.smooth;
      return config;
    }
    case 'weighted':
      return { name: 'WeightedSumLoss', terms: (loss.terms ?? []).map((t) => ({ weight: t.weight, loss: element(t.loss) })) };
    default:
      return element(loss);
  }
}

/** The loss as a tfjs function of a channels-last prediction and target of one shape ([N, ...spatial, C]). */
export function imageLoss(spec: LossSpec): (prediction: tf.Tensor, target: tf.Tensor) => tf.Scalar {
  const element = (loss: LossSpec): LossConfig => {
    switch (loss.type) {
      case 'mse':
        return { name: 'MSELoss' };
      case 'bce':
        return { name: loss.fromLogits ? 'BCEWithLogitsLoss' : 'BCELoss' };
      default:
        return engineImageLoss(loss, element);
    }
  };
  return makeLoss(element(spec));
}

/** The same loss as a PyTorch expression of channels-first tensors named `output` and `target`. */
export function torchImageLoss(spec: LossSpec, output = 'output', target = 'target'): string {
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
      return (spec.terms ?? []).map((term) => `${pyNumber(term.weight, true)} * (${torchImageLoss(term.loss, output, target)})`).join(' + ');
    default:
      throw new Error(`internal: ${spec.type} is not an image loss`);
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
