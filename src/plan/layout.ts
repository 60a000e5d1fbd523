/**
 * PyTorch ↔ tfjs tensor layouts. Variables live in tfjs layout (what tf.conv2d / tf.matMul want); the wire and
 * the generated PyTorch module use PyTorch's. Conversions are transposes only, so they are exact.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParameterLayout } from './parameters';

/** Axis permutation taking a PyTorch-layout tensor to tfjs layout. */
const TORCH_TO_TF: Record<ParameterLayout, number[] | undefined> = {
  conv2d_weight: [2, 3, 1, 0], // [O, I, kh, kw] → [kh, kw, I, O]
  conv3d_weight: [2, 3, 4, 1, 0], // [O, I, kd, kh, kw] → [kd, kh, kw, I, O]
  dense_weight: [1, 0], // [out, in] → [in, out]
  feature_map: undefined, // depends on the rank: see permutation()
  same: undefined,
};

/** Axis permutation taking a tfjs-layout tensor to PyTorch layout. */
const TF_TO_TORCH: Record<ParameterLayout, number[] | undefined> = {
  conv2d_weight: [3, 2, 0, 1],
  conv3d_weight: [4, 3, 0, 1, 2],
  dense_weight: [1, 0],
  feature_map: undefined,
  same: undefined,
};

/** [C, ...spatial] → [...spatial, C], or back. */
function featureMapPermutation(rank: number, toTf: boolean): number[] {
  const axes = Array.from({ length: rank }, (_, i) => i);
  return toTf ? [...axes.slice(1), 0] : [rank - 1, ...axes.slice(0, -1)];
}

export function torchToTf(layout: ParameterLayout, torchLayout: tf.Tensor): tf.Tensor {
  const perm = layout === 'feature_map' ? featureMapPermutation(torchLayout.rank, true) : TORCH_TO_TF[layout];
  return perm ? tf.transpose(torchLayout, perm) : torchLayout.clone();
}

export function tfToTorch(layout: ParameterLayout, tfLayout: tf.Tensor): tf.Tensor {
  const perm = layout === 'feature_map' ? featureMapPermutation(tfLayout.rank, false) : TF_TO_TORCH[layout];
  return perm ? tf.transpose(tfLayout, perm) : tfLayout.clone();
}
