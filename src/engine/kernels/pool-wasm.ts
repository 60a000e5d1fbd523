/**
 * Max-pool gradients (2D and 3D) for the wasm backend. The stock MaxPoolGrad is a scalar C++ loop that recomputes
 * every window per input element (a quarter of a CNN training step in the profile). Here each output position's
 * window is scanned once per output, and dy is routed to the first maximum in window order -- the tie rule of both
 * tfjs's CPU backend and PyTorch.
 */
import { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import {
  allocF32,
  heapF32,
  heapOffsetF32,
  release,
  reshapeView,
  runStockKernel,
  WasmBackend,
  wasmKernel,
  wholeHeapF32,
} from './wasm-backend';

export interface PoolGeometry {
  batch: number;
  channels: number;
  inSize: [number, number, number];
  outSize: [number, number, number];
  filter: [number, number, number];
  stride: [number, number, number];
  padBefore: [number, number, number];
}

/** Element offsets of one window's pixels (channel 0), in window order; returns how many. */
function windowTaps(g: PoolGeometry, n: number, od: number, oh: number, ow: number, taps: Int32Array): number {
  const [D, H, W] = g.inSize;
  const d0 = od * g.stride[0] - g.padBefore[0];
  const h0 = oh * g.stride[1] - g.padBefore[1];
  const w0 = ow * g.stride[2] - g.padBefore[2];
  const dHi = Math.min(D, d0 + g.filter[0]);
  const hHi = Math.min(H, h0 + g.filter[1]);
  const wHi = Math.min(W, w0 + g.filter[2]);
  let count = 0;
  for (let d = Math.max(0, d0); d < dHi; d++)
    for (let h = Math.max(0, h0); h < hHi; h++)
      for (let w = Math.max(0, w0); w < wHi; w++) taps[count++] = (((n * D + d) * H + h) * W + w) * g.channels;
  return count;
}

/**
 * dx[argmax of each window] += dy, where the argmax is the first window element equal to the forward output y
 * (the forward kept exactly that value, so equality identifies the max without re-comparing all taps).
 */
/**
 * Fast path when every window lies fully inside the input (no padding: all `valid` pools): the window's element
 * offsets relative to its corner are the same everywhere, so they are computed once.
 */
function maxPoolBackpropFullWindows(g: PoolGeometry, x: Float32Array, y: Float32Array, dy: Float32Array, dx: Float32Array): void {
  dx.fill(0);
  const C = g.channels;
  const [D, H, W] = g.inSize;
  const [OD, OH, OW] = g.outSize;
  const rel: number[] = [];
  for (let d = 0; d < g.filter[0]; d++)
    for (let h = 0; h < g.filter[1]; h++) for (let w = 0; w < g.filter[2]; w++) rel.push(((d * H + h) * W + w) * C);
  const taps = Int32Array.from(rel);
  const count = taps.length;
  let o = 0;
  for (let n = 0; n < g.batch; n++)
    for (let od = 0; od < OD; od++)
      for (let oh = 0; oh < OH; oh++) {
        let corner = (((n * D + od * g.stride[0]) * H + oh * g.stride[1]) * W) * C;
        for (let ow = 0; ow < OW; ow++, corner += g.stride[2] * C) {
          for (let c = 0; c < C; c++, o++) {
            const m = y[o];
            const base = corner + c;
            for (let t = 0; t < count; t++) {
              if (x[base + taps[t]] === m) {
                dx[base + taps[t]] += dy[o];
                break;
              }
            }
          }
        }
      }
}

function hasNoPadding(g: PoolGeometry): boolean {
  return g.padBefore.every((p) => p === 0) && g.outSize.every((o, k) => (o - 1) * g.stride[k] + g.filter[k] <= g.inSize[k]);
}

/**
 * Fast path for 2x2 windows that neither pad nor overlap (stride >= 2, e.g. the usual 2x2/2 pool): each input
 * element belongs to at most one window, so every tap is written once (no zero fill, no accumulation). Which tap
 * holds the max is unpredictable, so the first-match rule is computed with 0/1 integer flags instead of branches:
 * 19 -> 8 ms for the reference CNN's 16x126x126x16 gradient (mispredicted branches dominated the loop; a ternary still compiled to a branch, unary + on the comparison does not).
 */
function maxPoolBackpropDisjoint2x2(g: PoolGeometry, x: Float32Array, y: Float32Array, dy: Float32Array, dx: Float32Array): void {
  const C = g.channels;
  const [, H, W] = g.inSize;
  const [, OH, OW] = g.outSize;
  const [, SH, SW] = g.stride;
  // Inputs outside every window (strided gaps, right/bottom remainders) get no gradient.
  if (SH !== 2 || SW !== 2 || OH * SH !== H || OW * SW !== W) dx.fill(0);
  const rowC = W * C;
  let o = 0;
  for (let n = 0; n < g.batch; n++) {
    for (let oh = 0; oh < OH; oh++) {
      let corner = (n * H + oh * SH) * rowC;
      for (let ow = 0; ow < OW; ow++, corner += SW * C) {
        for (let c = 0; c < C; c++, o++) {
          const m = y[o];
          const grad = dy[o];
          if (grad - grad !== 0) {
            // dy infinite or NaN: grad * 0 would put NaN on the other taps, so route it with plain branches.
            routeWithBranches(x, dx, m, grad, corner + c, 2, 2, rowC, C);
            continue;
          }
          // Window order (0,0), (0,1), (1,0), (1,1); each flag is 1 only for the first tap equal to the max.
          const i0 = corner + c;
          const i1 = i0 + C;
          const i2 = i0 + rowC;
          const i3 = i2 + C;
          const f0 = +(x[i0] === m);
          const f1 = +(x[i1] === m) & (f0 ^ 1);
          const f2 = +(x[i2] === m) & ((f0 | f1) ^ 1);
          const f3 = +(x[i3] === m) & ((f0 | f1 | f2) ^ 1);
          // + 0 turns -0 (negative dy times 0) into 0.
          dx[i0] = grad * f0 + 0;
          dx[i1] = grad * f1 + 0;
          dx[i2] = grad * f2 + 0;
          dx[i3] = grad * f3 + 0;
        }
      }
    }
  }
}

function routeWithBranches(x: Float32Array, dx: Float32Array, m: number, grad: number, base: number, KH: number, KW: number, rowC: number, C: number): void {
  let taken = false;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0, i = base + kh * rowC; kw < KW; kw++, i += C) {
      const first: boolean = !taken && x[i] === m;
      dx[i] = first ? grad : 0;
      taken = taken || first;
    }
  }
}

function isDisjoint2x2(g: PoolGeometry): boolean {
  return g.filter[0] === 1 && g.stride[0] === 1 && g.inSize[0] === 1 && g.filter[1] === 2 && g.filter[2] === 2 && g.stride[1] >= 2 && g.stride[2] >= 2;
}

function maxPoolBackprop(g: PoolGeometry, x: Float32Array, y: Float32Array, dy: Float32Array, dx: Float32Array): void {
  if (hasNoPadding(g) && isDisjoint2x2(g)) {
    maxPoolBackpropDisjoint2x2(g, x, y, dy, dx);
    return;
  }
  if (hasNoPadding(g)) {
    maxPoolBackpropFullWindows(g, x, y, dy, dx);
    return;
  }
  dx.fill(0);
  const C = g.channels;
  const [OD, OH, OW] = g.outSize;
  const taps = new Int32Array(g.filter[0] * g.filter[1] * g.filter[2]);
  let o = 0;
  for (let n = 0; n < g.batch; n++)
    for (let od = 0; od < OD; od++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++, o += C) {
          const count = windowTaps(g, n, od, oh, ow, taps);
          for (let c = 0; c < C; c++) {
            const target = y[o + c];
            for (let t = 0; t < count; t++) {
              const i = taps[t] + c;
              if (x[i] === target) {
                dx[i] += dy[o + c];
                break;
              }
            }
          }
        }
}

interface Pool2DAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function pool2DGeometry(xShape: number[], attrs: Pool2DAttrs): PoolGeometry {
  const info = backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  return geometryOf(info);
}

/** The pool geometry of tfjs's pool info: a 2-D pool is a 3-D one with depth 1. */
function geometryOf(info: backend_util.Conv2DInfo | backend_util.Conv3DInfo): PoolGeometry {
  const depth = 'inDepth' in info
    ? { size: info.inDepth, out: info.outDepth, filter: info.filterDepth, stride: info.strideDepth, pad: info.padInfo.front }
    : { size: 1, out: 1, filter: 1, stride: 1, pad: 0 };
  return {
    batch: info.batchSize,
    channels: info.inChannels,
    inSize: [depth.size, info.inHeight, info.inWidth],
    outSize: [depth.out, info.outHeight, info.outWidth],
    filter: [depth.filter, info.filterHeight, info.filterWidth],
    stride: [depth.stride, info.strideHeight, info.strideWidth],
    padBefore: [depth.pad, info.padInfo.top, info.padInfo.left],
  };
}

/** MaxPoolGrad and MaxPool3DGrad: the same routing (2D is 3D with depth 1), only the geometry differs. */
function maxPoolGradKernel<A>(geometry: (xShape: number[], attrs: A) => PoolGeometry) {
  return (args: { inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo }; backend: WasmBackend; attrs: A }) => {
    const { inputs, backend, attrs } = args;
    const { dy, input, output } = inputs;
    const g = geometry(input.shape, attrs);
    const dx = allocF32(backend, input.shape);
    maxPoolBackprop(g, heapF32(backend, input), heapF32(backend, output), heapF32(backend, dy), heapF32(backend, dx));
    return dx;
  };
}

interface Pool3DAttrs {
  filterSize: number | [number, number, number];
  strides: number | [number, number, number];
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function pool3DGeometry(xShape: number[], attrs: Pool3DAttrs): PoolGeometry {
  const info = backend_util.computePool3DInfo(
    xShape as [number, number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  return geometryOf(info);
}

/**
 * The stock wasm MaxPool3D starts each max at FLT_MIN (a tiny positive number), so any window of negative values
 * yields 1.2e-38 instead of its maximum. This one is a max over depth taps of XNNPACK 2D max pools:
 * y[n, od] = max_kd maxPool2D(x[n, od*sd + kd - pf]), depth padding being -Infinity planes.
 */
function maxPool3D(args: {
  inputs: { x: TensorInfo };
  backend: WasmBackend;
  attrs: { filterSize: number | [number, number, number]; strides: number | [number, number, number]; pad: 'valid' | 'same' | number; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x;
  const info = backend_util.computePool3DInfo(
    x.shape as [number, number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const g = pool3DGeometry(x.shape, attrs);
  const [D, H, W] = g.inSize;
  const [OD, OH, OW] = g.outSize;
  const C = g.channels;
  const plane = H * W * C;
  const outSize = g.batch * OD * OH * OW * C;
  const pads2D = [
    [0, 0],
    [info.padInfo.top, info.padInfo.bottom],
    [info.padInfo.left, info.padInfo.right],
    [0, 0],
  ];
  let y: TensorInfo | undefined;
  for (let kd = 0; kd < g.filter[0]; kd++) {
    const planes = allocF32(backend, [g.batch * OD, H, W, C]);
    let heap = wholeHeapF32(backend);
    const src = heapOffsetF32(backend, x);
    let dst = heapOffsetF32(backend, planes);
    for (let n = 0; n < g.batch; n++) {
      for (let od = 0; od < OD; od++, dst += plane) {
        const id = od * g.stride[0] + kd - g.padBefore[0];
        if (id < 0 || id >= D) heap.fill(-Infinity, dst, dst + plane);
        else heap.copyWithin(dst, src + (n * D + id) * plane, src + (n * D + id + 1) * plane);
      }
    }
    const pooled = runStockKernel(
      backend,
      'MaxPool',
      { x: planes },
      { filterSize: [g.filter[1], g.filter[2]], strides: [g.stride[1], g.stride[2]], pad: pads2D, ...(attrs.dimRoundingMode ? { dimRoundingMode: attrs.dimRoundingMode } : {}) },
    );
    release(backend, planes);
    if (!y) {
      y = pooled;
      continue;
    }
    heap = wholeHeapF32(backend);
    const a = heapOffsetF32(backend, y);
    const b = heapOffsetF32(backend, pooled);
    for (let i = 0; i < outSize; i++) {
      const v = heap[b + i];
      if (v > heap[a + i] || v !== v) heap[a + i] = v;
    }
    release(backend, pooled);
  }
  const out = reshapeView(backend, y as TensorInfo, [g.batch, OD, OH, OW, C]);
  release(backend, y as TensorInfo);
  return out;
}

export const maxPool3DWasm = wasmKernel('MaxPool3D', maxPool3D);

export const maxPoolGradWasm = wasmKernel('MaxPoolGrad', maxPoolGradKernel(pool2DGeometry));

export const maxPool3DGradWasm = wasmKernel('MaxPool3DGrad', maxPoolGradKernel(pool3DGeometry));
