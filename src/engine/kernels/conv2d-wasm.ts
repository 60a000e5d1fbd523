/**
 * Conv2D gradients for the wasm backend, built on its fast XNNPACK kernels.
 *
 * - Filter gradient: the wasm backend has none. dW[r, co] = sum_p colsT[r, p] * dy[p, co] -- GEMMs over cache-sized
 *   blocks of output rows of the transposed im2col matrix of x, summed.
 * - Input gradient: the stock kernel is a scalar loop. dx is the full correlation of dy (zero-upsampled by the
 *   stride) with the spatially flipped filter whose in/out channels are swapped, run as an XNNPACK forward conv.
 */
import { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import { geometryFrom2D, outputPositions, patchLength } from './conv-geometry';
import { im2colTransposedFromChannelsFirst } from './im2col';
import {
  allocF32,
  channelsFirst,
  heapF32,
  heapOffsetF32,
  matmul,
  release,
  reshapeView,
  runStockKernel,
  WasmBackend,
  wasmKernel,
  wholeHeapF32,
} from './wasm-backend';

/**
 * Floats of patch matrix built per block by the filter gradient: 256K floats = 1 MB, so the block and its slice of
 * dy are still in cache when XNNPACK packs dy and runs the GEMM. Measured in a training step of the reference CNN:
 * whole-batch matrices (36 MB for its first layer) took 77-81 ms for the three filter gradients, 1 MB blocks
 * 64-68 ms; 0.5-4 MB blocks perform alike.
 */
let MAX_PATCH_FLOATS = 256 * 1024;

/** Test hook: a tiny bound forces many small blocks. Returns the previous bound. */
export function setMaxPatchFloatsForTesting(floats: number): number {
  const previous = MAX_PATCH_FLOATS;
  MAX_PATCH_FLOATS = floats;
  return previous;
}

interface Conv2DBackpropAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function conv2DBackpropFilter(args: {
  inputs: { x: TensorInfo; dy: TensorInfo };
  backend: WasmBackend;
  attrs: Conv2DBackpropAttrs & { filterShape: [number, number, number, number] };
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );
  const g = geometryFrom2D(info, 'Conv2DBackpropFilter');
  const R = patchLength(g);
  const OW = g.outWidth;
  const rows = outputPositions(g) / OW;
  const rowsPerBlock = Math.max(1, Math.min(rows, Math.floor(MAX_PATCH_FLOATS / (R * OW))));
  const xcf = channelsFirst(backend, x);
  const dw = allocF32(backend, attrs.filterShape);
  for (let q0 = 0; q0 < rows; q0 += rowsPerBlock) {
    const q1 = Math.min(rows, q0 + rowsPerBlock);
    const P = (q1 - q0) * OW;
    const whole = q0 === 0 && q1 === rows;
    const colsT = allocF32(backend, [R, P]);
    // A fresh dy block per GEMM (never a reused buffer): the wasm backend may keep XNNPACK's packed copy of the
    // B operand per tensor id.
    const dyBlock = whole ? reshapeView(backend, dy, [P, g.outChannels]) : allocF32(backend, [P, g.outChannels]);
    const heap = wholeHeapF32(backend);
    im2colTransposedFromChannelsFirst(g, heap, heapOffsetF32(backend, xcf), heapOffsetF32(backend, colsT), q0, q1);
    if (!whole) {
      const src = heapOffsetF32(backend, dy) + q0 * OW * g.outChannels;
      heap.copyWithin(heapOffsetF32(backend, dyBlock), src, src + P * g.outChannels);
    }
    const product = matmul(backend, colsT, dyBlock);
    release(backend, colsT, dyBlock);
    const after = wholeHeapF32(backend);
    const acc = heapOffsetF32(backend, dw);
    const part = heapOffsetF32(backend, product);
    if (q0 === 0) after.copyWithin(acc, part, part + R * g.outChannels);
    else for (let i = 0; i < R * g.outChannels; i++) after[acc + i] += after[part + i];
    release(backend, product);
  }
  release(backend, xcf);
  return dw;
}

export function conv2DBackpropInput(args: {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  backend: WasmBackend;
  attrs: Conv2DBackpropAttrs & { inputShape: [number, number, number, number] };
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs;
  const info = backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );
  const g = geometryFrom2D(info, 'Conv2DBackpropInput');
  const { filterHeight: KH, filterWidth: KW, inChannels: CI, outChannels: CO } = g;
  const upH = (g.outHeight - 1) * g.strideHeight + 1;
  const upW = (g.outWidth - 1) * g.strideWidth + 1;
  const top = KH - 1 - g.padTop;
  const left = KW - 1 - g.padLeft;
  const bottom = g.inHeight + KH - 1 - top - upH;
  const right = g.inWidth + KW - 1 - left - upW;
  if (top < 0 || left < 0 || bottom < 0 || right < 0) {
    throw new Error(
      `Conv2DBackpropInput on wasm: padding (${g.padTop},${g.padLeft}) at least as large as the filter ` +
        `(${KH}x${KW}) is not supported`,
    );
  }

  const flipped = allocF32(backend, [KH, KW, CO, CI]);
  const upsampled = g.strideHeight > 1 || g.strideWidth > 1 ? allocF32(backend, [g.batch, upH, upW, CO]) : undefined;
  flipAndSwapChannels(heapF32(backend, filter), heapF32(backend, flipped), KH, KW, CI, CO);
  if (upsampled) {
    zeroUpsample(heapF32(backend, dy), heapF32(backend, upsampled), g.batch, g.outHeight, g.outWidth, CO, g);
  }
  const dx = runStockKernel(
    backend,
    'Conv2D',
    { x: upsampled ?? dy, filter: flipped },
    {
      strides: [1, 1],
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: [1, 1],
    },
  );
  release(backend, flipped);
  if (upsampled) release(backend, upsampled);
  return dx;
}

/** out[kh', kw', co, ci] = w[KH-1-kh', KW-1-kw', ci, co]. */
function flipAndSwapChannels(w: Float32Array, out: Float32Array, KH: number, KW: number, CI: number, CO: number): void {
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const src = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * CI * CO;
      const dst = (kh * KW + kw) * CO * CI;
      for (let ci = 0; ci < CI; ci++) {
        for (let co = 0; co < CO; co++) out[dst + co * CI + ci] = w[src + ci * CO + co];
      }
    }
  }
}

/** Places dy[n, oh, ow, :] at [n, oh*sh, ow*sw, :] of a zeroed buffer. */
function zeroUpsample(
  dy: Float32Array,
  out: Float32Array,
  N: number,
  OH: number,
  OW: number,
  C: number,
  g: { strideHeight: number; strideWidth: number },
): void {
  out.fill(0);
  const upH = (OH - 1) * g.strideHeight + 1;
  const upW = (OW - 1) * g.strideWidth + 1;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const src = ((n * OH + oh) * OW + ow) * C;
        const dst = ((n * upH + oh * g.strideHeight) * upW + ow * g.strideWidth) * C;
        out.set(dy.subarray(src, src + C), dst);
      }
    }
  }
}

export const conv2DBackpropFilterWasm = wasmKernel('Conv2DBackpropFilter', conv2DBackpropFilter);

export const conv2DBackpropInputWasm = wasmKernel('Conv2DBackpropInput', conv2DBackpropInput);
