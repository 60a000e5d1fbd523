/**
 * Small helpers for kernels that run on the wasm backend: direct views of tensor memory on the wasm heap and calls
 * into the backend's stock kernels (XNNPACK Conv2D / BatchMatMul) without going through the engine.
 *
 * A heap view is invalidated whenever the wasm memory grows, i.e. after any allocation: allocate every output
 * first, then take views.
 */
import { getKernel, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type WasmBackend = BackendWasm;

export function heapF32(backend: WasmBackend, t: TensorInfo): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${t.dtype} [${t.shape.join(',')}]`);
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/** The whole wasm heap as floats, and a tensor's float offset in it: lets kernels move data with copyWithin
 *  (a native memmove) instead of element loops. Take the view after the last allocation. */
export function wholeHeapF32(backend: WasmBackend): Float32Array {
  // HEAPU8 is emscripten's byte view of the module memory (tfjs reads it the same way in typedArrayFromHeap).
  const module = backend.wasm as unknown as { HEAPU8: Uint8Array };
  return new Float32Array(module.HEAPU8.buffer);
}

export function heapOffsetF32(backend: WasmBackend, t: TensorInfo): number {
  const data = backend.dataIdMap.get(t.dataId);
  if (!data) throw new Error(`tensor [${t.shape.join(',')}] is not on the wasm backend`);
  return data.memoryOffset / 4;
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

/** x transposed so that channels come first: NHWC -> CNHW, NDHWC -> CNDHW. */
export function channelsFirst(backend: WasmBackend, x: TensorInfo): TensorInfo {
  const rank = x.shape.length;
  const perm = [rank - 1, ...Array.from({ length: rank - 1 }, (_, i) => i)];
  return runStockKernel(backend, 'Transpose', { x }, { perm });
}

/** C[M,N] = A[M,K] @ B[K,N] with the wasm backend's XNNPACK fully-connected path (both operands untransposed). */
export function matmul(backend: WasmBackend, a: TensorInfo, b: TensorInfo): TensorInfo {
  return runStockKernel(backend, 'BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
}

/** A kernel function as the kernels here write it: its own inputs and attributes, on the wasm backend. */
type WasmKernelFunc<I, A> = (args: { inputs: I; backend: WasmBackend; attrs: A }) => TensorInfo | TensorInfo[];

/**
 * A kernel registered on the wasm backend. tfjs types every kernel function loosely (any backend, maps of inputs and
 * attributes): the cast from the kernel's own types is made here, once, rather than at every kernel.
 */
export function wasmKernel<I, A>(kernelName: string, kernelFunc: WasmKernelFunc<I, A>): KernelConfig {
  return { kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as KernelFunc };
}

/** Names a native kernel's function `native<KernelName>`: recognisable in stack traces, and tests check what is
 *  registered by it. */
export function nativeKernel(config: KernelConfig): KernelConfig {
  Object.defineProperty(config.kernelFunc, 'name', { value: `native${config.kernelName}` });
  return config;
}
