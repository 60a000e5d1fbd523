/**
 * Max-pool gradients (2D and 3D) for the wasm backend. The stock MaxPoolGrad is a scalar C++ loop that recomputes
 * every window per input element (a quarter of a CNN training step in the profile). Here each output position's
 * window is scanned once for all channels at a time, and dy is routed to the first maximum in window order --
 * the tie rule of both tfjs's CPU backend and PyTorch.
 */
import { backend_util, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { allocF32, heapF32, WasmBackend } from './wasm-backend';

interface PoolGeometry {
  batch: number;
  channels: number;
  inSize: [number, number, number];
  outSize: [number, number, number];
  filter: [number, number, number];
  stride: [number, number, number];
  padBefore: [number, number, number];
}

function maxPoolBackprop(g: PoolGeometry, x: Float32Array, dy: Float32Array, dx: Float32Array): void {
  dx.fill(0);
  const C = g.channels;
  const [D, H, W] = g.inSize;
  const [OD, OH, OW] = g.outSize;
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  let o = 0;
  for (let n = 0; n < g.batch; n++) {
    for (let od = 0; od < OD; od++) {
      const d0 = od * g.stride[0] - g.padBefore[0];
      const dLo = Math.max(0, d0);
      const dHi = Math.min(D, d0 + g.filter[0]);
      for (let oh = 0; oh < OH; oh++) {
        const h0 = oh * g.stride[1] - g.padBefore[1];
        const hLo = Math.max(0, h0);
        const hHi = Math.min(H, h0 + g.filter[1]);
        for (let ow = 0; ow < OW; ow++, o += C) {
          const w0 = ow * g.stride[2] - g.padBefore[2];
          const wLo = Math.max(0, w0);
          const wHi = Math.min(W, w0 + g.filter[2]);
          best.fill(-Infinity);
          where.fill(-1);
          for (let d = dLo; d < dHi; d++) {
            for (let h = hLo; h < hHi; h++) {
              let src = (((n * D + d) * H + h) * W + wLo) * C;
              for (let w = wLo; w < wHi; w++, src += C) {
                for (let c = 0; c < C; c++) {
                  const v = x[src + c];
                  if (v > best[c] || where[c] < 0) {
                    best[c] = v;
                    where[c] = src + c;
                  }
                }
              }
            }
          }
          for (let c = 0; c < C; c++) if (where[c] >= 0) dx[where[c]] += dy[o + c];
        }
      }
    }
  }
}

function maxPoolGrad(args: {
  inputs: { dy: TensorInfo; input: TensorInfo };
  backend: WasmBackend;
  attrs: {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const g: PoolGeometry = {
    batch: info.batchSize,
    channels: info.inChannels,
    inSize: [1, info.inHeight, info.inWidth],
    outSize: [1, info.outHeight, info.outWidth],
    filter: [1, info.filterHeight, info.filterWidth],
    stride: [1, info.strideHeight, info.strideWidth],
    padBefore: [0, info.padInfo.top, info.padInfo.left],
  };
  const dx = allocF32(backend, input.shape);
  maxPoolBackprop(g, heapF32(backend, input), heapF32(backend, dy), heapF32(backend, dx));
  return dx;
}

function maxPool3DGrad(args: {
  inputs: { dy: TensorInfo; input: TensorInfo };
  backend: WasmBackend;
  attrs: {
    filterSize: number | [number, number, number];
    strides: number | [number, number, number];
    pad: 'valid' | 'same' | number;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs;
  const info = backend_util.computePool3DInfo(
    input.shape as [number, number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const g: PoolGeometry = {
    batch: info.batchSize,
    channels: info.inChannels,
    inSize: [info.inDepth, info.inHeight, info.inWidth],
    outSize: [info.outDepth, info.outHeight, info.outWidth],
    filter: [info.filterDepth, info.filterHeight, info.filterWidth],
    stride: [info.strideDepth, info.strideHeight, info.strideWidth],
    padBefore: [info.padInfo.front, info.padInfo.top, info.padInfo.left],
  };
  const dx = allocF32(backend, input.shape);
  maxPoolBackprop(g, heapF32(backend, input), heapF32(backend, dy), heapF32(backend, dx));
  return dx;
}

export const maxPoolGradWasm: KernelConfig = {
  kernelName: 'MaxPoolGrad',
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as KernelFunc,
};

export const maxPool3DGradWasm: KernelConfig = {
  kernelName: 'MaxPool3DGrad',
  backendName: 'wasm',
  kernelFunc: maxPool3DGrad as unknown as KernelFunc,
};
