/**
 * relu(x + bias) as one operation, for a convolution's bias followed by a ReLU (the commonest pair in CNN plans).
 * With the native kernels (wasm backend) it is one pass forward and one backward instead of five passes over the
 * activation (add, relu; step, multiply, sum); on every other backend it is exactly tf.relu(tf.add(x, bias)).
 * biasAdd: x + bias alone, natively on the same condition (the same bits as tf.add, which it is elsewhere).
 * conv2dBiasRelu: a 2-D convolution, its bias and a ReLU, natively one kernel forward (the same bits as the three).
 * bceWithLogitsTerms: BCE-with-logits terms, natively one kernel each way (float rounding apart, the same values).
 * spatialBroadcast: a [N, F] tensor repeated over a grid, on wasm one copying kernel (the same bits).
 */
import * as tf from '@tensorflow/tfjs-core';
import { BCE_LOGITS } from './kernels/bce-native';
import { BIAS_ADD, BIAS_RELU } from './kernels/bias-relu-native';
import { CONV2D_BIAS_RELU } from './kernels/conv-bias-relu-native';
import { SPATIAL_BROADCAST } from './kernels/spatial-broadcast-wasm';

/** tf.conv2d's padding argument: 'valid' or explicit [[0, 0], [top, bottom], [left, right], [0, 0]]. */
export type Conv2DPad = 'valid' | [[number, number], [number, number], [number, number], [number, number]];

/** relu(conv2d(x, filter) + bias), x NHWC float32, bias [out channels]. */
export function conv2dBiasRelu(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor, strides: [number, number], pad: Conv2DPad): tf.Tensor {
  const native =
    tf.getBackend() === 'wasm' &&
    tf.getKernel(CONV2D_BIAS_RELU, 'wasm') !== undefined &&
    [x, filter, bias].every((t) => t.dtype === 'float32') &&
    x.rank === 4 &&
    filter.rank === 4 &&
    bias.rank === 1 &&
    bias.shape[0] === filter.shape[3];
  if (!native) {
    return biasRelu(tf.conv2d(x, filter, strides, pad), bias);
  }
  const attrs = { strides, pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined };
  return tf.engine().runKernel<tf.Tensor>(CONV2D_BIAS_RELU, { x, filter, bias }, attrs as unknown as tf.NamedAttrMap);
}

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

/**
 * Element-wise max(x, 0) - x y + log1p(exp(-|x|)), x the logits and y the targets (same shape, float32). Natively its
 * gradient is PyTorch's dy (sigmoid(x) - y); composed, the gradient of the composition (they differ by float rounding).
 */
export function bceWithLogitsTerms(x: tf.Tensor, y: tf.Tensor): tf.Tensor {
  const native =
    tf.getBackend() === 'wasm' &&
    tf.getKernel(BCE_LOGITS, 'wasm') !== undefined &&
    x.dtype === 'float32' &&
    y.dtype === 'float32' &&
    tf.util.arraysEqual(x.shape, y.shape);
  if (!native) return tf.add(tf.sub(tf.relu(x), tf.mul(x, y)), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
  return tf.engine().runKernel<tf.Tensor>(BCE_LOGITS, { x, y });
}

/** x [N, F] repeated over a grid of `size`: [N, ...size, F]. */
export function spatialBroadcast(x: tf.Tensor, size: readonly number[]): tf.Tensor {
  if (tf.getBackend() === 'wasm' && x.dtype === 'float32' && x.rank === 2 && tf.getKernel(SPATIAL_BROADCAST, 'wasm')) {
    return tf.engine().runKernel<tf.Tensor>(SPATIAL_BROADCAST, { x }, { size: [...size] });
  }
  // A product with ones broadcasts (tile's gradient stops at rank 4 in tfjs; broadcasting has none).
  const [n, features] = x.shape;
  return tf.mul(tf.reshape(x, [n, ...size.map(() => 1), features]), tf.ones([1, ...size, 1]));
}
