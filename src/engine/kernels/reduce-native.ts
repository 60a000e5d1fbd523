/**
 * Sum over leading axes (conv bias gradients) with the native column sums (src/engine/native/reduce.c, float64
 * accumulators) on the wasm heap; every other reduction goes to the wasm Sum it replaces.
 */
import { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { leadingAxesSum } from './reduce-wasm';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

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

/** [n, ..., C] -> [n, C]: each sample's sum over its positions (DP per-sample bias gradients, src/engine/dp/). */
export const PER_SAMPLE_SUM = 'FedbiomedTsPerSampleSum';

export function nativePerSampleSumKernel(native: NativeKernels): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend }) => {
    const x = inputs.x as TensorInfo;
    const wasm = backend as WasmBackend;
    const n = x.shape[0];
    const channels = x.shape[x.shape.length - 1];
    const out = allocF32(wasm, [n, channels]);
    // Views after the last allocation (a heap growth invalidates them).
    const xs = heapF32(wasm, x);
    const sums = heapF32(wasm, out);
    const size = xs.length / n;
    for (let i = 0; i < n; i++) native.sumLeadingAxes(xs.subarray(i * size, (i + 1) * size), sums.subarray(i * channels, (i + 1) * channels));
    return out;
  };
  return nativeKernel(wasmKernel(PER_SAMPLE_SUM, kernelFunc));
}
