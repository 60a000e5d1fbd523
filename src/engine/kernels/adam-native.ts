/**
 * The Adam / AdamW step as one native kernel (src/engine/native/adam.c) on the wasm backend, behind
 * ../optimizers.ts: per parameter one pass over p, g, m, v instead of a dozen tfjs kernels and their tensors, with
 * the same float32 operations in the same order (the same bits). Only registered while the native kernels are in
 * use; the optimizer composes standard kernels otherwise.
 */
import { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

export const ADAM_UPDATE = 'FedbiomedTsAdamUpdate';

/** How the weight decay enters the step: none, L2 (added to the gradient, Adam) or decoupled (AdamW). */
type AdamDecayMode = 'none' | 'l2' | 'decoupled';

/** ADAM_UPDATE's attributes: the step's constants as the composed path computes them (float64, rounded by the kernel
 *  to float32 as tfjs rounds a scalar operand). */
export interface AdamUpdateAttrs {
  beta1: number;
  beta2: number;
  /** sqrt(1 - beta2^t) */
  sqrtBiasCorrection2: number;
  eps: number;
  /** lr / (1 - beta1^t) */
  stepSize: number;
  weightDecay: number;
  /** 1 - lr * weightDecay (decoupled) */
  decay: number;
  mode: AdamDecayMode;
}

const MODES: Record<AdamDecayMode, number> = { none: 0, l2: 1, decoupled: 2 };

export function nativeAdamKernel(native: NativeKernels): KernelConfig {
  // Inputs p, g and, after the first step, m and v; outputs p', m', v'.
  const update: KernelFunc = ({ inputs, backend, attrs }) => {
    const { p, g, m, v } = inputs as { p: TensorInfo; g: TensorInfo; m?: TensorInfo; v?: TensorInfo };
    const a = attrs as unknown as AdamUpdateAttrs;
    const wasm = backend as WasmBackend;
    const first = m === undefined || v === undefined;
    const outputs = [allocF32(wasm, [...p.shape]), allocF32(wasm, [...p.shape]), allocF32(wasm, [...p.shape])];
    const step = Float64Array.from([
      a.beta1, 1 - a.beta1, a.beta2, 1 - a.beta2, a.sqrtBiasCorrection2, a.eps, a.stepSize, a.weightDecay, a.decay,
      MODES[a.mode], first ? 1 : 0,
    ]); // prettier-ignore
    // Views after the last allocation (a heap growth invalidates them).
    native.adamUpdate(step, heapF32(wasm, p), heapF32(wasm, g), first ? null : heapF32(wasm, m),
      first ? null : heapF32(wasm, v), ...outputs.map((t) => heapF32(wasm, t)) as [Float32Array, Float32Array, Float32Array]);
    return outputs;
  };
  return nativeKernel(wasmKernel(ADAM_UPDATE, update));
}
