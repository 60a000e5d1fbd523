/**
 * Batch normalisation in training mode, for channels-last tensors (`[N, ..., C]`), as PyTorch computes it:
 * per channel c over the M = N·spatial values, mean_c and the biased variance var_c, x̂ = (x − mean_c)/√(var_c + eps),
 * y = γ_c·x̂ + β_c. The batch statistics are returned too (no gradient) for the running-statistics update.
 *
 * One op with its analytic gradient, computed on a [M, C] view of the activation: written with tfjs's elementary
 * ops on the N-D tensor instead, the statistics, the normalisation and their automatic gradient took reductions
 * over 4 of 5 axes and broadcasts that the wasm backend runs slowly on 5-D tensors (a 3-D CNN epoch was 14×
 * slower with batch norm, 1.7× with this op; `npm run bench -- bn`).
 * Backward: dβ_c = Σ dy, dγ_c = Σ dy·x̂, dx = γ_c/√(var_c + eps) · (dy − dβ_c/M − x̂·dγ_c/M).
 *
 * With the native kernels (wasm backend) the op is one kernel each way (kernels/batch-norm-native.ts, bn.c), and a
 * following ReLU can run in the same passes (`relu`); elsewhere it is the composition below (then tf.relu).
 */
import * as tf from '@tensorflow/tfjs-core';
import { BATCH_NORM, BatchNormAttrs } from './kernels/batch-norm-native';

export interface BatchNormTrainResult {
  y: tf.Tensor;
  /** Per-channel batch mean and biased variance, float32 `[C]` (in the caller's scope, like y). */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/**
 * Whether a normalisation of `x` over its last axis (channels) may run on the native kernel `kernelName` (batch norm
 * here, group norm in group-norm.ts): the wasm backend with that kernel registered, float32 tensors, and one gamma
 * and one beta per channel. Anything else is composed from standard ops.
 */
export function nativeNormApplies(kernelName: string, x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): boolean {
  const channels = x.shape[x.rank - 1];
  return tf.getBackend() === 'wasm' &&
    tf.getKernel(kernelName, 'wasm') !== undefined &&
    [x, gamma, beta].every((t) => t.dtype === 'float32') &&
    x.rank >= 2 &&
    channels > 0 &&
    [gamma, beta].every((t) => t.rank === 1 && t.shape[0] === channels);
}

export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number, relu = false): BatchNormTrainResult {
  const native = nativeNormApplies(BATCH_NORM, x, gamma, beta);
  if (native) {
    const attrs: BatchNormAttrs = { eps, relu };
    const [y, mean, variance] = tf.engine().runKernel<tf.Tensor[]>(BATCH_NORM, { x, gamma, beta }, attrs as unknown as tf.NamedAttrMap);
    return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
  }
  const composed = batchNormComposed(x, gamma, beta, eps);
  return relu ? { ...composed, y: tf.relu(composed.y) } : composed;
}

/** The op from standard kernels, with its analytic gradient (every backend). */
function batchNormComposed(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): BatchNormTrainResult {
  const channels = x.shape[x.rank - 1];
  const count = x.size / channels;
  let stats: { mean: tf.Tensor; variance: tf.Tensor } | undefined;
  const forward = (input: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const flat = tf.reshape(input, [count, channels]);
    const { mean, variance } = tf.moments(flat, 0);
    const invStd = tf.rsqrt(tf.add(variance, eps));
    const scale = tf.mul(invStd, g);
    const shift = tf.sub(b, tf.mul(mean, scale));
    // Copies kept past the op's own scope and handed to the caller's below (mean itself is saved for the gradient).
    stats = { mean: tf.keep(tf.clone(mean)), variance: tf.keep(tf.clone(variance)) };
    save([flat, g, mean, invStd]);
    return {
      value: tf.reshape(tf.add(tf.mul(flat, scale), shift), input.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs, m, inv] = saved;
        const d = tf.reshape(dy, [count, channels]);
        const dBeta = tf.sum(d, 0);
        const hat = tf.mul(tf.sub(xs, m), inv);
        const dGamma = tf.sum(tf.mul(d, hat), 0);
        const dx = tf.mul(tf.sub(tf.sub(d, tf.div(dBeta, count)), tf.mul(hat, tf.div(dGamma, count))), tf.mul(gs, inv));
        return [tf.reshape(dx, dy.shape), dGamma, dBeta];
      },
    };
  };
  // customGrad's type lists its arguments as (Tensor | GradSaveFunc)[]; the call below passes exactly three tensors.
  const op = tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = op(x, gamma, beta);
  const kept = stats!;
  const result = { y, mean: tf.clone(kept.mean) as tf.Tensor1D, variance: tf.clone(kept.variance) as tf.Tensor1D };
  kept.mean.dispose();
  kept.variance.dispose();
  return result;
}
