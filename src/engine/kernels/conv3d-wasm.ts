/**
 * Conv3D forward and gradients for the wasm backend. The stock kernels are unusable for training: the forward is a
 * scalar loop (~0.3 GMAC/s) and the gradients are wrong (input gradient even at stride 1, filter gradient at
 * stride 2, sometimes NaN).
 *
 * A 3D convolution is a sum over depth taps kd of 2D convolutions: y[n, od] = sum_kd conv2d(x[n, od*sd + kd*dd -
 * pf], w[kd]). Stacking every (n, od) pair as one batch of 2D images turns each depth tap into a single XNNPACK
 * Conv2D (forward) or a project 2D gradient kernel (backward); depth padding is a zero image.
 *
 * Every kernel here is gated: on first use a tiny problem is checked against a float64 reference convolution and
 * its finite differences; if that fails, 3D training on wasm stops with a clear error instead of using wrong
 * gradients.
 */
import { backend_util, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { ConvGeometry, geometryFrom3D } from './conv-geometry';
import { conv2DBackpropFilter, conv2DBackpropInput } from './conv2d-wasm';
import { finiteDifference, referenceConv, RefConv } from './reference-conv';
import {
  allocF32,
  heapF32,
  heapOffsetF32,
  release,
  reshapeView,
  runStockKernel,
  WasmBackend,
  wholeHeapF32,
} from './wasm-backend';

type Pad3D = 'valid' | 'same';

interface Conv3DAttrs {
  strides: number | [number, number, number];
  pad: Pad3D;
  dataFormat?: 'NDHWC' | 'NCDHW';
  dilations?: number | [number, number, number];
}

function info3D(
  name: string,
  xShape: number[],
  filterShape: number[],
  attrs: Conv3DAttrs,
): { g: ConvGeometry; info: backend_util.Conv3DInfo } {
  if (attrs.dataFormat === 'NCDHW') throw new Error(`${name} on wasm supports channels-last (NDHWC) only`);
  const info = backend_util.computeConv3DInfo(
    xShape as [number, number, number, number, number],
    filterShape as [number, number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
  );
  return { g: geometryFrom3D(info, name), info };
}

function pads2D(info: backend_util.Conv3DInfo): number[][] {
  return [
    [0, 0],
    [info.padInfo.top, info.padInfo.bottom],
    [info.padInfo.left, info.padInfo.right],
    [0, 0],
  ];
}

/** [N*OD, H, W, CI]: the input depth slice each (n, od) pair reads at depth tap kd (zeros in the padding). */
function depthTapImages(backend: WasmBackend, x: TensorInfo, g: ConvGeometry, kd: number): TensorInfo {
  const plane = g.inHeight * g.inWidth * g.inChannels;
  const out = allocF32(backend, [g.batch * g.outDepth, g.inHeight, g.inWidth, g.inChannels]);
  const heap = wholeHeapF32(backend);
  const src = heapOffsetF32(backend, x);
  let dst = heapOffsetF32(backend, out);
  for (let n = 0; n < g.batch; n++) {
    for (let od = 0; od < g.outDepth; od++, dst += plane) {
      const id = od * g.strideDepth + kd * g.dilationDepth - g.padFront;
      if (id < 0 || id >= g.inDepth) heap.fill(0, dst, dst + plane);
      else heap.copyWithin(dst, src + (n * g.inDepth + id) * plane, src + (n * g.inDepth + id + 1) * plane);
    }
  }
  return out;
}

/** The [KH, KW, CI, CO] filter of depth tap kd (a copy: DHWIO stores it contiguously). */
function filterTap(backend: WasmBackend, filter: TensorInfo, g: ConvGeometry, kd: number): TensorInfo {
  const size = g.filterHeight * g.filterWidth * g.inChannels * g.outChannels;
  const out = allocF32(backend, [g.filterHeight, g.filterWidth, g.inChannels, g.outChannels]);
  const heap = wholeHeapF32(backend);
  const src = heapOffsetF32(backend, filter) + kd * size;
  heap.copyWithin(heapOffsetF32(backend, out), src, src + size);
  return out;
}

function conv3DUnchecked(backend: WasmBackend, x: TensorInfo, filter: TensorInfo, attrs: Conv3DAttrs): TensorInfo {
  const { g, info } = info3D('Conv3D', x.shape, filter.shape, attrs);
  const out = allocF32(backend, info.outShape);
  const size = out.shape.reduce((a, b) => a * b, 1);
  for (let kd = 0; kd < g.filterDepth; kd++) {
    const images = depthTapImages(backend, x, g, kd);
    const w = filterTap(backend, filter, g, kd);
    const y = runStockKernel(
      backend,
      'Conv2D',
      { x: images, filter: w },
      { strides: [g.strideHeight, g.strideWidth], pad: pads2D(info), dilations: [g.dilationHeight, g.dilationWidth], dataFormat: 'NHWC' },
    );
    const heap = wholeHeapF32(backend);
    const o = heapOffsetF32(backend, out);
    const yo = heapOffsetF32(backend, y);
    if (kd === 0) heap.copyWithin(o, yo, yo + size);
    else for (let i = 0; i < size; i++) heap[o + i] += heap[yo + i];
    release(backend, images, w, y);
  }
  return out;
}

function conv3DBackpropFilterUnchecked(
  backend: WasmBackend,
  x: TensorInfo,
  dy: TensorInfo,
  attrs: Conv3DAttrs & { filterShape: number[] },
): TensorInfo {
  const { g, info } = info3D('Conv3DBackpropFilterV2', x.shape, attrs.filterShape, attrs);
  if (g.dilationHeight !== 1 || g.dilationWidth !== 1) throw new Error('Conv3D gradients with dilation are not supported');
  const dw = allocF32(backend, attrs.filterShape);
  const tapSize = g.filterHeight * g.filterWidth * g.inChannels * g.outChannels;
  const dy4 = reshapeView(backend, dy, [g.batch * g.outDepth, g.outHeight, g.outWidth, g.outChannels]);
  for (let kd = 0; kd < g.filterDepth; kd++) {
    const images = depthTapImages(backend, x, g, kd);
    const tap = conv2DBackpropFilter({
      inputs: { x: images, dy: dy4 },
      backend,
      attrs: {
        strides: [g.strideHeight, g.strideWidth],
        pad: pads2D(info) as backend_util.ExplicitPadding,
        dataFormat: 'NHWC',
        filterShape: [g.filterHeight, g.filterWidth, g.inChannels, g.outChannels],
      },
    });
    const heap = wholeHeapF32(backend);
    const src = heapOffsetF32(backend, tap);
    heap.copyWithin(heapOffsetF32(backend, dw) + kd * tapSize, src, src + tapSize);
    release(backend, images, tap);
  }
  release(backend, dy4);
  return dw;
}

function conv3DBackpropInputUnchecked(
  backend: WasmBackend,
  dy: TensorInfo,
  filter: TensorInfo,
  attrs: Conv3DAttrs & { inputShape: number[] },
): TensorInfo {
  const { g, info } = info3D('Conv3DBackpropInputV2', attrs.inputShape, filter.shape, attrs);
  if (g.dilationHeight !== 1 || g.dilationWidth !== 1) throw new Error('Conv3D gradients with dilation are not supported');
  const dx = allocF32(backend, attrs.inputShape);
  heapF32(backend, dx).fill(0);
  const plane = g.inHeight * g.inWidth * g.inChannels;
  const dy4 = reshapeView(backend, dy, [g.batch * g.outDepth, g.outHeight, g.outWidth, g.outChannels]);
  for (let kd = 0; kd < g.filterDepth; kd++) {
    const w = filterTap(backend, filter, g, kd);
    const part = conv2DBackpropInput({
      inputs: { dy: dy4, filter: w },
      backend,
      attrs: {
        strides: [g.strideHeight, g.strideWidth],
        pad: pads2D(info) as backend_util.ExplicitPadding,
        dataFormat: 'NHWC',
        inputShape: [g.batch * g.outDepth, g.inHeight, g.inWidth, g.inChannels],
      },
    });
    const heap = wholeHeapF32(backend);
    let src = heapOffsetF32(backend, part);
    const base = heapOffsetF32(backend, dx);
    for (let n = 0; n < g.batch; n++) {
      for (let od = 0; od < g.outDepth; od++, src += plane) {
        const id = od * g.strideDepth + kd * g.dilationDepth - g.padFront;
        if (id < 0 || id >= g.inDepth) continue;
        const dst = base + (n * g.inDepth + id) * plane;
        for (let i = 0; i < plane; i++) heap[dst + i] += heap[src + i];
      }
    }
    release(backend, w, part);
  }
  release(backend, dy4);
  return dx;
}

// ---- the gate -------------------------------------------------------------------------------------------------

let selfCheck: { ok: boolean; detail: string } | undefined;

/** Runs once per process: tiny strided / padded problems against the float64 reference and its finite differences. */
export function conv3DSelfCheck(backend: WasmBackend): { ok: boolean; detail: string } {
  if (selfCheck) return selfCheck;
  const problems: Array<{ x: number[]; w: number[]; strides: number; pad: Pad3D }> = [
    { x: [2, 4, 5, 4, 2], w: [2, 3, 2, 2, 3], strides: 1, pad: 'valid' },
    { x: [1, 5, 5, 6, 2], w: [3, 3, 3, 2, 2], strides: 2, pad: 'same' },
  ];
  try {
    for (const p of problems) {
      const detail = checkOne(backend, p.x, p.w, p.strides, p.pad);
      if (detail) return (selfCheck = { ok: false, detail });
    }
    selfCheck = { ok: true, detail: 'Conv3D forward, filter and input gradients match the float64 reference' };
  } catch (e) {
    selfCheck = { ok: false, detail: `self-check crashed: ${e instanceof Error ? e.message : String(e)}` };
  }
  return selfCheck;
}

/** Test hook: forget the cached verdict, or impose one (to exercise the refusal path). */
export function setConv3DSelfCheckForTesting(verdict: { ok: boolean; detail: string } | undefined): void {
  selfCheck = verdict;
}

function checkOne(backend: WasmBackend, xShape: number[], wShape: number[], strides: number, pad: Pad3D): string | undefined {
  const { g } = info3D('Conv3D', xShape, wShape, { strides, pad });
  const ref: RefConv = {
    batch: g.batch,
    inSize: [g.inDepth, g.inHeight, g.inWidth],
    inChannels: g.inChannels,
    filter: [g.filterDepth, g.filterHeight, g.filterWidth],
    outChannels: g.outChannels,
    stride: [g.strideDepth, g.strideHeight, g.strideWidth],
    dilation: [1, 1, 1],
    padBefore: [g.padFront, g.padTop, g.padLeft],
    outSize: [g.outDepth, g.outHeight, g.outWidth],
  };
  const fill = (n: number, k: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(1.3 * i + k));
  const xv = fill(xShape.reduce((a, b) => a * b, 1), 0);
  const wv = fill(wShape.reduce((a, b) => a * b, 1), 1);
  const outShape = [g.batch, g.outDepth, g.outHeight, g.outWidth, g.outChannels];
  const cot = fill(outShape.reduce((a, b) => a * b, 1), 2);
  const put = (shape: number[], v: Float64Array) => {
    const t = allocF32(backend, shape);
    heapF32(backend, t).set(v);
    return t;
  };
  const x = put(xShape, xv);
  const w = put(wShape, wv);
  const dy = put(outShape, cot);
  const attrs = { strides, pad };
  const y = conv3DUnchecked(backend, x, w, attrs);
  const dw = conv3DBackpropFilterUnchecked(backend, x, dy, { ...attrs, filterShape: wShape });
  const dx = conv3DBackpropInputUnchecked(backend, dy, w, { ...attrs, inputShape: xShape });
  const got = { y: Array.from(heapF32(backend, y)), dw: Array.from(heapF32(backend, dw)), dx: Array.from(heapF32(backend, dx)) };
  release(backend, x, w, dy, y, dw, dx);
  const wantY = referenceConv(ref, xv, wv);
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-4 * (1 + Math.abs(b));
  const name = `x[${xShape}] w[${wShape}] stride ${strides} ${pad}`;
  for (let i = 0; i < wantY.length; i++) if (!close(got.y[i], wantY[i])) return `forward wrong at ${i} for ${name}`;
  for (let i = 0; i < wv.length; i++) {
    const fd = finiteDifference(ref, xv, wv, cot, 'w', i);
    if (!close(got.dw[i], fd)) return `filter gradient wrong at ${i} for ${name}: ${got.dw[i]} vs ${fd}`;
  }
  for (let i = 0; i < xv.length; i++) {
    const fd = finiteDifference(ref, xv, wv, cot, 'x', i);
    if (!close(got.dx[i], fd)) return `input gradient wrong at ${i} for ${name}: ${got.dx[i]} vs ${fd}`;
  }
  return undefined;
}

function gated(backend: WasmBackend, kernel: string): void {
  const check = conv3DSelfCheck(backend);
  if (!check.ok) {
    throw new Error(
      `${kernel} on the wasm backend failed its correctness check (${check.detail}); refusing to train a 3D model ` +
        `on wrong results. Use FEDBIOMED_TS_BACKEND=cpu (slow) or tfjs-node.`,
    );
  }
}

export const conv3DWasm: KernelConfig = {
  kernelName: 'Conv3D',
  backendName: 'wasm',
  kernelFunc: (({ inputs, backend, attrs }: { inputs: { x: TensorInfo; filter: TensorInfo }; backend: WasmBackend; attrs: Conv3DAttrs }) => {
    gated(backend, 'Conv3D');
    return conv3DUnchecked(backend, inputs.x, inputs.filter, attrs);
  }) as unknown as KernelFunc,
};

export const conv3DBackpropFilterWasm: KernelConfig = {
  kernelName: 'Conv3DBackpropFilterV2',
  backendName: 'wasm',
  kernelFunc: (({ inputs, backend, attrs }: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: WasmBackend; attrs: Conv3DAttrs & { filterShape: number[] } }) => {
    gated(backend, 'Conv3DBackpropFilterV2');
    return conv3DBackpropFilterUnchecked(backend, inputs.x, inputs.dy, attrs);
  }) as unknown as KernelFunc,
};

export const conv3DBackpropInputWasm: KernelConfig = {
  kernelName: 'Conv3DBackpropInputV2',
  backendName: 'wasm',
  kernelFunc: (({ inputs, backend, attrs }: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: WasmBackend; attrs: Conv3DAttrs & { inputShape: number[] } }) => {
    gated(backend, 'Conv3DBackpropInputV2');
    return conv3DBackpropInputUnchecked(backend, inputs.dy, inputs.filter, attrs);
  }) as unknown as KernelFunc,
};
