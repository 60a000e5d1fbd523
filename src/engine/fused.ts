/**
 * relu(x + bias) as one operation, for a convolution's bias followed by a ReLU (the commonest pair in CNN plans).
 * With the native kernels (wasm backend) it is one pass forward and one backward instead of five passes over the
 * activation (add, relu; step, multiply, sum); on every other backend it is exactly tf.relu(tf.add(x, bias)).
 * biasAdd: x + bias alone, natively on the same condition (the same bits as tf.add, which it is elsewhere).
 */
import * as tf from '@tensorflow/tfjs-core';
import { BIAS_ADD, BIAS_RELU } from './kernels/bias-relu-native';

/** x: [..., C] float32, bias: [C]. */
export function biasRelu(x: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  if (!nativeBias(BIAS_RELU, x, bias)) return tf.relu(tf.add(x, bias));
  return tf.engine().runKernel<tf.Tensor>(BIAS_RELU, { x, bias });
}

/** x: [..., C] float32, bias: [C]. */
export function biasAdd(x: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  if (!nativeBias(BIAS_ADD, x, bias)) return tf.add(x, bias);
  return tf.engine().runKernel<tf.Tensor>(BIAS_ADD, { x, bias });
}

function nativeBias(kernel: string, x: tf.Tensor, bias: tf.Tensor): boolean {
  return (
    tf.getBackend() === 'wasm' &&
    tf.getKernel(kernel, 'wasm') !== undefined &&
    x.dtype === 'float32' &&
    bias.dtype === 'float32' &&
    bias.rank === 1 &&
    x.rank >= 1 &&
    bias.shape[0] === x.shape[x.rank - 1] &&
    bias.shape[0] > 0
  );
}
