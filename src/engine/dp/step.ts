/**
 * One DP-SGD step as Opacus's DPOptimizer makes it (clip_and_accumulate, add_noise, scale_grad): the clipped
 * per-sample gradient sum, plus N(0, (sigma·C)²) noise on every coordinate, divided by the expected batch size;
 * then the plan's optimizer step on that gradient. An empty Poisson batch still steps, on noise alone.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TrainableModel } from '../model';
import type { Batch } from '../train';
import { clippedGradientSum } from './per-sample';
import type { DpRandom } from './randomness';

export interface DpTrainingOptions {
  /** Opacus `noise_multiplier` (Fed-BioMed's sigma; 0 while training under central DP). */
  noiseMultiplier: number;
  /** Opacus `max_grad_norm` (Fed-BioMed's clip). */
  maxGradNorm: number;
}

export interface DpStepContext {
  model: TrainableModel;
  /** Trainable parameters by state_dict name. */
  variables: Map<string, tf.Variable>;
  lossFn: (prediction: tf.Tensor, target: tf.Tensor) => tf.Scalar;
  optimizer: { step(grads: Map<tf.Variable, tf.Tensor>): void };
  dp: DpTrainingOptions;
  /** Opacus: int(len(dataset) · sample_rate). */
  expectedBatchSize: number;
  random: DpRandom;
}

export function checkDpOptions(dp: DpTrainingOptions): void {
  if (!(Number.isFinite(dp.maxGradNorm) && dp.maxGradNorm > 0)) {
    throw new Error(`DP clip (max_grad_norm) must be a finite number > 0, got ${dp.maxGradNorm}`);
  }
  if (!(Number.isFinite(dp.noiseMultiplier) && dp.noiseMultiplier >= 0)) {
    throw new Error(`DP sigma (noise_multiplier) must be a finite number >= 0, got ${dp.noiseMultiplier}`);
  }
}

/** Returns the batch's mean loss (NaN for an empty batch). */
export function dpStep(ctx: DpStepContext, batch: Batch | null): number {
  const names = [...ctx.variables.keys()];
  const clipped = batch
    ? clippedGradientSum(ctx.model, batch, ctx.lossFn, ctx.dp.maxGradNorm, names)
    : { sums: new Map(names.map((n) => [n, tf.zerosLike(ctx.variables.get(n) as tf.Variable)])), loss: NaN };
  const grads = new Map<tf.Variable, tf.Tensor>();
  try {
    const std = ctx.dp.noiseMultiplier * ctx.dp.maxGradNorm;
    for (const [name, variable] of ctx.variables) {
      const sum = clipped.sums.get(name) as tf.Tensor;
      grads.set(variable, tf.tidy(() => {
        const noise = tf.tensor(ctx.random.gaussian(sum.size, std), sum.shape);
        return tf.div(tf.add(sum, noise), ctx.expectedBatchSize);
      }));
    }
    ctx.optimizer.step(grads);
  } finally {
    clipped.sums.forEach((t) => t.dispose());
    grads.forEach((t) => t.dispose());
  }
  return clipped.loss;
}
