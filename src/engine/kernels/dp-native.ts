/**
 * The differential-privacy kernels (src/engine/native/dp.c) on the wasm heap, for src/engine/dp/per-sample.ts:
 *   - DP_CONV_PER_SAMPLE: each sample's conv filter gradient, bias gradient (when asked) and squared norm, from the
 *     layer's input and output gradient, in one native call split by sample over the kernel threads;
 *   - DP_WEIGHTED_ROW_SUM: the clip-weighted sum over samples of per-sample gradients.
 * Outputs are allocated on the heap first, then the addon reads and writes through views: nothing is copied.
 */
import { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { ConvAttrs, geometry2D, geometry3D, geometryFields } from './conv-native';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

export const DP_CONV_PER_SAMPLE = 'FedbiomedTsDpConvPerSample';
export const DP_WEIGHTED_ROW_SUM = 'FedbiomedTsDpWeightedRowSum';

/** Attributes of DP_CONV_PER_SAMPLE: x is the valid conv's input (already padded), filterShape tfjs's (HWIO/DHWIO). */
export interface DpConvPerSampleAttrs {
  strides: number[];
  filterShape: number[];
  withBias: boolean;
}

export function nativeDpKernels(native: NativeKernels): KernelConfig[] {
  const perSample: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, filterShape, withBias } = attrs as unknown as DpConvPerSampleAttrs;
    const wasm = backend as WasmBackend;
    const n = x.shape[0];
    const convAttrs: ConvAttrs = { strides, pad: 'valid' };
    const g = x.shape.length === 4
      ? geometry2D(DP_CONV_PER_SAMPLE, x.shape, filterShape, convAttrs)
      : geometry3D(DP_CONV_PER_SAMPLE, x.shape, filterShape, convAttrs);
    const filterGrads = allocF32(wasm, [n, ...filterShape]);
    const biasGrads = withBias ? allocF32(wasm, [n, g.outChannels]) : undefined;
    const normSq = allocF32(wasm, [n]);
    // Views after the last allocation (a heap growth invalidates them).
    native.dpConvPerSample(geometryFields(g), heapF32(wasm, x), heapF32(wasm, dy), heapF32(wasm, filterGrads),
      biasGrads ? heapF32(wasm, biasGrads) : null, heapF32(wasm, normSq));
    return biasGrads ? [filterGrads, biasGrads, normSq] : [filterGrads, normSq];
  };
  const weightedRowSum: KernelFunc = ({ inputs, backend }) => {
    const { m, factors } = inputs as { m: TensorInfo; factors: TensorInfo };
    const wasm = backend as WasmBackend;
    const out = allocF32(wasm, m.shape.slice(1));
    native.dpWeightedRowSum(heapF32(wasm, m), heapF32(wasm, factors), heapF32(wasm, out));
    return out;
  };
  return [
    wasmKernel(DP_CONV_PER_SAMPLE, perSample),
    wasmKernel(DP_WEIGHTED_ROW_SUM, weightedRowSum),
  ].map(nativeKernel);
}
