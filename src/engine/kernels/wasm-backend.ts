/**
 * Small helpers for kernels that run on the wasm backend: direct views of tensor memory on the wasm heap and calls
 * into the backend's stock kernels (XNNPACK Conv2D / BatchMatMul) without going through the engine.
 *
 * A heap view is invalidated whenever the wasm memory grows, i.e. after any allocation: allocate every output
 * first, then take views.
 */
import { getKernel, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type WasmBackend = BackendWasm;

export function heapF32(backend: WasmBackend, t: TensorInfo): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${t.dtype} [${t.shape.join(',')}]`);
  return backend.typedArrayFromHeap(t) as Float32Array;
}

export function allocF32(backend: WasmBackend, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, 'float32');
}

export function release(backend: WasmBackend, ...tensors: TensorInfo[]): void {
  for (const t of tensors) backend.disposeData(t.dataId);
}

/** Runs the wasm backend's own implementation of `kernelName` (looked up in tfjs's kernel registry). */
export function runStockKernel(
  backend: WasmBackend,
  kernelName: string,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const config = getKernel(kernelName, 'wasm');
  if (!config) throw new Error(`wasm backend has no ${kernelName} kernel`);
  const out = config.kernelFunc({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`${kernelName}: expected a single output`);
  return out;
}

/** A view of the same data with another shape (shares memory; release it like any other result). */
export function reshapeView(backend: WasmBackend, t: TensorInfo, shape: number[]): TensorInfo {
  return runStockKernel(backend, 'Reshape', { x: t }, { shape });
}

/** C[M,N] = A[M,K] @ B[K,N] with the wasm backend's XNNPACK fully-connected path (both operands untransposed). */
export function matmul(backend: WasmBackend, a: TensorInfo, b: TensorInfo): TensorInfo {
  return runStockKernel(backend, 'BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
}
