/**
 * Gradient of Conv3DBackpropInputV2, the kernel of tf.conv3dTranspose (tfjs registers one for the 2-D kernel only).
 * As in 2-D: a transposed convolution's input gradient is the convolution of its output gradient with the same
 * filter, and its filter gradient the convolution filter gradient with the roles of input and output gradient
 * swapped. Both run on the engine's Conv3D and Conv3DBackpropFilterV2 kernels (native or wasm).
 */
import * as tf from '@tensorflow/tfjs-core';
import { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';

export const conv3DBackpropInputGradient: GradConfig = {
  kernelName: 'Conv3DBackpropInputV2',
  inputsToSave: ['dy', 'filter'],
  gradFunc: (ddx: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [dy, filter] = saved;
    const grad = ddx as Tensor;
    const { strides, pad } = attrs;
    return {
      dy: () => tf.engine().runKernel<Tensor>('Conv3D', { x: grad, filter }, { strides, pad, dataFormat: 'NDHWC', dilations: 1 }),
      filter: () => tf.engine().runKernel<Tensor>('Conv3DBackpropFilterV2', { x: grad, dy }, { strides, pad, filterShape: filter.shape }),
    };
  },
};
