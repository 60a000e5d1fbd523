/**
 * tf.conv3dTranspose with a gradient on every backend: tfjs has none for its kernel (Conv3DBackpropInputV2), so the
 * engine's (kernels/conv3d-transpose-gradient.ts) is registered on first use as well as with the project kernels;
 * plans trained on the CPU backend (tests, oracles) need it too.
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv3DBackpropInputGradient } from './kernels/conv3d-transpose-gradient';

export function conv3dTranspose(
  x: tf.Tensor5D,
  filter: tf.Tensor5D,
  outputShape: [number, number, number, number, number],
  strides: number | [number, number, number],
  pad: 'valid' | 'same' = 'valid',
): tf.Tensor5D {
  if (!tf.getGradient(conv3DBackpropInputGradient.kernelName)) tf.registerGradient(conv3DBackpropInputGradient);
  return tf.conv3dTranspose(x, filter, outputShape, strides, pad);
}
