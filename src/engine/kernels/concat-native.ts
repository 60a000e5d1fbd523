/**
 * Concat and SplitV (concat's gradient) for float32 tensors on the wasm backend with the native column copy
 * (src/engine/native/copy.c). Along an axis, every tensor is a [rows, inner] matrix (rows: the product of the
 * leading axes, inner: the rest); concatenating places each input's inner block side by side in the output rows.
 * The stock wasm kernels copy one row per JavaScript call, which made the channel concatenations of a U-Net cost as
 * much as its convolutions. Other dtypes go to the stock kernels.
 */
import { backend_util, KernelConfig, KernelFunc, TensorInfo, util } from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** `stock`: the wasm backend's own kernels of the two names, for what these do not handle. */
export function nativeConcatKernels(native: NativeKernels, stock: { concat: KernelConfig; splitV: KernelConfig }): KernelConfig[] {
  const concat: KernelFunc = (args) => {
    const inputs = args.inputs as unknown as TensorInfo[];
    const backend = args.backend as WasmBackend;
    const axis = util.parseAxisParam(args.attrs!.axis as number, inputs[0].shape)[0];
    const parts = inputs.filter((t) => size(t.shape) > 0);
    if (parts.length < 2 || parts.some((t) => t.dtype !== 'float32')) return stock.concat.kernelFunc(args);
    backend_util.assertParamsConsistent(inputs.map((t) => t.shape), axis);
    const out = allocF32(backend, backend_util.computeOutShape(inputs.map((t) => t.shape), axis));
    const inner = parts.map((t) => size(t.shape.slice(axis)));
    const total = inner.reduce((a, b) => a + b, 0);
    const dst = heapF32(backend, out); // after the allocation
    let offset = 0;
    parts.forEach((t, i) => {
      native.copyColumns(heapF32(backend, t), inner[i], 0, dst, total, offset, inner[i]);
      offset += inner[i];
    });
    return out;
  };
  const splitV: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const backend = args.backend as WasmBackend;
    const { numOrSizeSplits } = args.attrs as { numOrSizeSplits: number | number[] };
    if (x.dtype !== 'float32') return stock.splitV.kernelFunc(args);
    const axis = util.parseAxisParam(args.attrs!.axis as number, x.shape)[0];
    const sizes = backend_util.prepareSplitSize(x, numOrSizeSplits, axis);
    const outs = sizes.map((s) => allocF32(backend, x.shape.map((d, i) => (i === axis ? s : d))));
    const after = size(x.shape.slice(axis + 1));
    const total = x.shape[axis] * after;
    const src = heapF32(backend, x); // after the allocations
    let offset = 0;
    outs.forEach((out, i) => {
      const width = sizes[i] * after;
      if (width > 0) native.copyColumns(src, total, offset, heapF32(backend, out), width, 0, width);
      offset += width;
    });
    return outs;
  };
  return [
    wasmKernel('Concat', concat),
    wasmKernel('SplitV', splitV),
  ].map(nativeKernel);
}
