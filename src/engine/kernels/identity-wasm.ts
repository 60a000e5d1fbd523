/**
 * Zero-copy Identity for the wasm backend. While gradients are recorded, tfjs clones (Identity) every tensor it
 * saves for the backward pass; the stock wasm Identity copies the data, i.e. every activation of a CNN is copied
 * once per step. tfjs tensors are immutable (Variable.assign swaps data rather than writing into it), so sharing
 * the data with a reference count -- what the CPU backend and the wasm Reshape already do -- is safe.
 */
import { TensorInfo } from '@tensorflow/tfjs-core';
import { WasmBackend, wasmKernel } from './wasm-backend';

function identity(args: { inputs: { x: TensorInfo }; backend: WasmBackend }): TensorInfo {
  const { x } = args.inputs;
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export const identityWasm = wasmKernel('Identity', identity);
