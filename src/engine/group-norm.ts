/**
 * Group normalisation for channels-last tensors (`[N, ...spatial, C]`), as nn.GroupNorm computes it: per sample and
 * group of C / groups consecutive channels, the mean and biased variance over the group's channels and every
 * position; y = (x − mean)/√(var + eps)·γ_c + β_c, then a ReLU when `relu`. Instance norm is the case groups = C, layer norm's normalisation
 * the case groups = 1 (its per-element affine applied after). No running statistics: training and evaluation are
 * the same computation.
 *
 * With the native kernels (wasm backend) the op is one kernel each way (kernels/group-norm-native.ts, bn.c), with
 * float64 statistics that give the same bits on any thread count, and a following ReLU in the same passes;
 * elsewhere it is composed from standard ops (then tf.relu).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GROUP_NORM, GroupNormAttrs } from './kernels/group-norm-native';
import { nativeNormApplies } from './batch-norm';

export function groupNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number, relu = false): tf.Tensor {
  const channels = x.shape[x.rank - 1];
  const native = nativeNormApplies(GROUP_NORM, x, gamma, beta) && x.size > 0 && channels % groups === 0;
  if (native) {
    const attrs: GroupNormAttrs = { eps, groups, relu };
    const [y, mean, variance] = tf.engine().runKernel<tf.Tensor[]>(GROUP_NORM, { x, gamma, beta }, attrs as unknown as tf.NamedAttrMap);
    mean.dispose();
    variance.dispose();
    return y;
  }
  const y = tf.add(tf.mul(groupNormalise(x, groups, eps), gamma), beta);
  return relu ? tf.relu(y) : y;
}

/** (x − mean)/√(var + eps) per sample and group, without affine: on the native kernel with γ = 1, β = 0. */
export function groupNormaliseOnly(x: tf.Tensor, groups: number, eps: number): tf.Tensor {
  if (tf.getBackend() !== 'wasm' || tf.getKernel(GROUP_NORM, 'wasm') === undefined) return groupNormalise(x, groups, eps);
  const channels = x.shape[x.rank - 1];
  return tf.tidy(() => groupNorm(x, tf.ones([channels]), tf.zeros([channels]), groups, eps));
}

/** (x − mean)/√(var + eps) per sample and group, from standard ops (automatic gradient; every backend). */
function groupNormalise(x: tf.Tensor, groups: number, eps: number): tf.Tensor {
  const n = x.shape[0];
  const perGroup = x.shape[x.rank - 1] / groups;
  // Channels last: [N, positions, groups, channels per group].
  const grouped = tf.reshape(x, [n, -1, groups, perGroup]);
  const { mean, variance } = tf.moments(grouped, [1, 3], true);
  return tf.reshape(tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, eps))), x.shape);
}
