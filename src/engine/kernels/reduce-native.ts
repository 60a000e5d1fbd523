/**
 * Sum over leading axes (conv bias gradients) with the native column sums (src/engine/native/reduce.c, float64
 * accumulators) on the wasm heap; every other reduction goes to the wasm Sum it replaces.
 */
import { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { leadingAxesSum } from './reduce-wasm';
import { allocF32, heapF32, nativeKernel, WasmBackend } from './wasm-backend';

export function nativeSumKernel(native: NativeKernels, wasmSum: KernelConfig): KernelConfig {
  const fallback = wasmSum.kernelFunc;
  const kernelFunc: KernelFunc = (args) => {
    const x = args.inputs.x as TensorInfo;
    const shape = leadingAxesSum(x, (args.attrs ?? {}) as { axis: number | number[]; keepDims: boolean });
    if (!shape || shape.cols === 0) return fallback(args);
    const backend = args.backend as WasmBackend;
    const out = allocF32(backend, shape.outShape);
    native.sumLeadingAxes(heapF32(backend, x), heapF32(backend, out));
    return out;
  };
  return nativeKernel({ ...wasmSum, kernelFunc });
}
