/**
 * A 2-D convolution followed by its bias and a ReLU as one native kernel on the wasm backend (conv.c's
 * conv_forward_bias_relu): the bias and ReLU are applied to each sample's output while the tiles have it cached,
 * instead of a separate pass over the whole activation. Forward bits are those of Conv2D then the bias ReLU kernel;
 * the gradient is the bias ReLU kernel's backward then the Conv2D gradient kernels with the same attributes, so the
 * same bits as the unfused pair. Only registered while the native kernels are in use (../fused.ts composes the pair
 * otherwise).
 */
import { GradConfig, KernelConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { BIAS_RELU_GRAD } from './bias-relu-native';
import { ConvAttrs, geometry2D, geometryFields } from './conv-native';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

export const CONV2D_BIAS_RELU = 'FedbiomedTsConv2DBiasRelu';

export function nativeConv2DBiasReluKernel(native: NativeKernels): KernelConfig {
  const forward: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, filter, bias } = inputs as { x: TensorInfo; filter: TensorInfo; bias: TensorInfo };
    const wasm = backend as WasmBackend;
    const g = geometry2D(CONV2D_BIAS_RELU, x.shape, filter.shape, attrs as unknown as ConvAttrs);
    const y = allocF32(wasm, [g.batch, g.outHeight, g.outWidth, g.outChannels]);
    native.convForwardBiasRelu(geometryFields(g), heapF32(wasm, x), heapF32(wasm, filter), heapF32(wasm, bias), heapF32(wasm, y));
    return y;
  };
  return nativeKernel(wasmKernel(CONV2D_BIAS_RELU, forward));
}

export const conv2dBiasReluGradient: GradConfig = {
  kernelName: CONV2D_BIAS_RELU,
  inputsToSave: ['x', 'filter'],
  outputsToSave: [true],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x, filter, y] = saved;
    const [dz, dbias] = tf.engine().runKernel<Tensor[]>(BIAS_RELU_GRAD, { dy: dy as Tensor, y });
    const common = { strides: attrs.strides, pad: attrs.pad, dataFormat: attrs.dataFormat, dimRoundingMode: attrs.dimRoundingMode } as NamedAttrMap;
    return {
      x: () => tf.engine().runKernel<Tensor>('Conv2DBackpropInput', { dy: dz, filter }, { ...common, inputShape: x.shape }),
      filter: () => tf.engine().runKernel<Tensor>('Conv2DBackpropFilter', { x, dy: dz }, { ...common, filterShape: filter.shape }),
      bias: () => dbias,
    };
  },
};
