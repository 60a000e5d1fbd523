/**
 * relu(x + bias) as one operation, for a convolution's bias followed by a ReLU (the commonest pair in CNN plans).
 * With the native kernels (wasm backend) it is one pass forward and one backward instead of five passes over the
 * activation (add, relu; step, multiply, sum); on every other backend it is exactly tf.relu(tf.add(x, bias)).
 */
import * as tf from '@tensorflow/tfjs-core';
import { BIAS_RELU } from './kernels/bias-relu-native';

/** x: [..., C] float32, bias: [C]. */
export function biasRelu(x: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const fused =
    tf.getBackend() === 'wasm' &&
    tf.getKernel(BIAS_RELU, 'wasm') !== undefined &&
    x.dtype === 'float32' &&
    bias.dtype === 'float32' &&
    bias.rank === 1 &&
    x.rank >= 1 &&
    bias.shape[0] === x.shape[x.rank - 1] &&
    bias.shape[0] > 0;
  if (!fused) return tf.relu(tf.add(x, bias));
  return tf.engine().runKernel<tf.Tensor>(BIAS_RELU, { x, bias });
}
