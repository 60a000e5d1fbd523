/**
 * The fused bias + ReLU kernels behind ../fused.ts's biasRelu op, on the wasm backend with the native code
 * (src/engine/native/bias_relu.c): one pass forward, one pass backward giving both the input and the bias
 * gradient. Also the bias add alone (biasAdd: the wasm Add broadcasts a bias at a third of the speed, and at a
 * tenth for 2 channels). Only registered while the native kernels are in use; the ops compose standard kernels
 * otherwise.
 */
import { GradConfig, KernelConfig, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

export const BIAS_RELU = 'FedbiomedTsBiasRelu';
export const BIAS_RELU_GRAD = 'FedbiomedTsBiasReluGrad';
export const BIAS_ADD = 'FedbiomedTsBiasAdd';

export function nativeBiasReluKernels(native: NativeKernels): KernelConfig[] {
  const forward: KernelFunc = ({ inputs, backend }) => {
    const { x, bias } = inputs as { x: TensorInfo; bias: TensorInfo };
    const wasm = backend as WasmBackend;
    const y = allocF32(wasm, [...x.shape]);
    native.biasReluForward(heapF32(wasm, x), heapF32(wasm, bias), heapF32(wasm, y));
    return y;
  };
  const backward: KernelFunc = ({ inputs, backend }) => {
    const { dy, y } = inputs as { dy: TensorInfo; y: TensorInfo };
    const wasm = backend as WasmBackend;
    const dx = allocF32(wasm, [...dy.shape]);
    const dbias = allocF32(wasm, [dy.shape[dy.shape.length - 1]]);
    native.biasReluBackward(heapF32(wasm, dy), heapF32(wasm, y), heapF32(wasm, dx), heapF32(wasm, dbias));
    return [dx, dbias];
  };
  const add: KernelFunc = ({ inputs, backend }) => {
    const { x, bias } = inputs as { x: TensorInfo; bias: TensorInfo };
    const wasm = backend as WasmBackend;
    const y = allocF32(wasm, [...x.shape]);
    native.biasAddForward(heapF32(wasm, x), heapF32(wasm, bias), heapF32(wasm, y));
    return y;
  };
  return [
    wasmKernel(BIAS_ADD, add),
    wasmKernel(BIAS_RELU, forward),
    wasmKernel(BIAS_RELU_GRAD, backward),
  ].map(nativeKernel);
}

/** Both gradients come from one backward pass; the tape asks for them one input at a time. */
export const biasReluGradient: GradConfig = {
  kernelName: BIAS_RELU,
  outputsToSave: [true],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
    const [y] = saved;
    const [dx, dbias] = tf.engine().runKernel<Tensor[]>(BIAS_RELU_GRAD, { dy: dy as Tensor, y });
    return { x: () => dx, bias: () => dbias };
  },
};

/** tf.add's gradients for a bias broadcast along the last axis: dy, and dy summed over the leading axes (the same
 *  Sum kernel tf.add's gradient runs, so the same bits). */
export const biasAddGradient: GradConfig = {
  kernelName: BIAS_ADD,
  gradFunc: (dy: Tensor | Tensor[]) => {
    const g = dy as Tensor;
    return { x: () => g, bias: () => tf.sum(g, g.shape.slice(0, -1).map((_, i) => i)) };
  },
};
