/**
 * BCE with logits, element-wise, as native kernels on the wasm backend (src/engine/native/bce.c), behind
 * ../fused.ts's bceWithLogitsTerms: the terms max(x, 0) - x y + log1p(exp(-|x|)) in one pass, and their gradient
 * dy (sigmoid(x) - y) -- PyTorch's formula -- in one more, instead of about twenty kernels over the prediction.
 * Only registered while the native kernels are in use; the op composes standard kernels otherwise.
 */
import { GradConfig, KernelConfig, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

export const BCE_LOGITS = 'FedbiomedTsBceWithLogits';
const BCE_LOGITS_GRAD = 'FedbiomedTsBceWithLogitsGrad';
export const BCE_LOGITS_KERNELS = [BCE_LOGITS, BCE_LOGITS_GRAD];

export function nativeBceKernels(native: NativeKernels): KernelConfig[] {
  const forward: KernelFunc = ({ inputs, backend }) => {
    const { x, y } = inputs as { x: TensorInfo; y: TensorInfo };
    const wasm = backend as WasmBackend;
    const terms = allocF32(wasm, [...x.shape]);
    native.bceWithLogitsForward(heapF32(wasm, x), heapF32(wasm, y), heapF32(wasm, terms));
    return terms;
  };
  // Outputs dx and the target's gradient.
  const backward: KernelFunc = ({ inputs, backend }) => {
    const { dy, x, y } = inputs as { dy: TensorInfo; x: TensorInfo; y: TensorInfo };
    const wasm = backend as WasmBackend;
    const dx = allocF32(wasm, [...x.shape]);
    const dTarget = allocF32(wasm, [...x.shape]);
    native.bceWithLogitsBackward(heapF32(wasm, dy), heapF32(wasm, x), heapF32(wasm, y), heapF32(wasm, dx), heapF32(wasm, dTarget));
    return [dx, dTarget];
  };
  return [
    wasmKernel(BCE_LOGITS, forward),
    wasmKernel(BCE_LOGITS_GRAD, backward),
  ].map(nativeKernel);
}

export const bceLogitsGradient: GradConfig = {
  kernelName: BCE_LOGITS,
  inputsToSave: ['x', 'y'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
    const [x, y] = saved;
    const [dx, dTarget] = tf.engine().runKernel<Tensor[]>(BCE_LOGITS_GRAD, { dy: dy as Tensor, x, y });
    return { x: () => dx, y: () => dTarget };
  },
};
