/**
 * The fused bias + ReLU kernels behind ../fused.ts's biasRelu op, on the wasm backend with the native code
 * (src/engine/native/bias_relu.c): one pass forward, one pass backward giving both the input and the bias
 * gradient. Only registered while the native kernels are in use; the op composes standard kernels otherwise.
 */
import { GradConfig, KernelConfig, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

export const BIAS_RELU = 'FedbiomedTsBiasRelu';
export const BIAS_RELU_GRAD = 'FedbiomedTsBiasReluGrad';

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
  return [
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
