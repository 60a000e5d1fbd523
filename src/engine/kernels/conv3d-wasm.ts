/**
 * Conv3D forward and gradients for the wasm backend. The stock kernels are unusable for training: the forward is a
 * scalar loop (~0.3 GMAC/s) and the gradients are wrong (input gradient even at stride 1, filter gradient at
 * stride 2, sometimes NaN).
 *
 * A 3D convolution is a sum over depth taps kd of 2D convolutions: y[n, od] = sum_kd conv2d(x[n, od*sd + kd*dd -
 * pf], w[kd]). Stacking every (n, od) pair as one batch of 2D images and the depth taps as extra input channels
 * makes it ONE 2D convolution: an XNNPACK Conv2D forward, the project 2D gradient kernels backward, with the
 * depth padding as zero channels.
 *
 * Every kernel here is gated: on first use a tiny problem is checked against a float64 reference convolution and
 * its finite differences; if that fails, 3D training on wasm stops with a clear error instead of using wrong
 * gradients.
 */
import { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import { ConvGeometry, geometryFrom3D } from './conv-geometry';
import { conv2DBackpropFilter, conv2DBackpropInput } from './conv2d-wasm';
import { finiteDifference, referenceConv, refConvOf } from './reference-conv';
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

/**
 * Depth taps folded into channels: images[(n, od), h, w, kd*CI + ci] = x[n, od*sd + kd*dd - pf, h, w, ci] (zero in
 * the depth padding). One 2D convolution over these images with the folded filter is the whole 3D convolution.
 */
function foldDepthTaps(backend: WasmBackend, x: TensorInfo, g: ConvGeometry): TensorInfo {
  const CI = g.inChannels;
  const KD = g.filterDepth;
  const pixels = g.inHeight * g.inWidth;
  const plane = pixels * CI;
  const foldedC = KD * CI;
  const out = allocF32(backend, [g.batch * g.outDepth, g.inHeight, g.inWidth, foldedC]);
  const heap = wholeHeapF32(backend);
  const src0 = heapOffsetF32(backend, x);
  let image = heapOffsetF32(backend, out);
  for (let n = 0; n < g.batch; n++) {
    for (let od = 0; od < g.outDepth; od++, image += pixels * foldedC) {
      for (let kd = 0; kd < KD; kd++) {
        const id = od * g.strideDepth + kd * g.dilationDepth - g.padFront;
        let dst = image + kd * CI;
        if (id < 0 || id >= g.inDepth) {
          for (let p = 0; p < pixels; p++, dst += foldedC) for (let c = 0; c < CI; c++) heap[dst + c] = 0;
          continue;
        }
        let src = src0 + (n * g.inDepth + id) * plane;
        for (let p = 0; p < pixels; p++, dst += foldedC, src += CI) for (let c = 0; c < CI; c++) heap[dst + c] = heap[src + c];
      }
    }
  }
  return out;
}

/** Adjoint of foldDepthTaps: dx[n, id, h, w, ci] += folded[(n, od), h, w, kd*CI + ci]; dx is zeroed first. */
function unfoldDepthTapsAdd(backend: WasmBackend, folded: TensorInfo, dx: TensorInfo, g: ConvGeometry): void {
  const CI = g.inChannels;
  const KD = g.filterDepth;
  const pixels = g.inHeight * g.inWidth;
  const plane = pixels * CI;
  const foldedC = KD * CI;
  const heap = wholeHeapF32(backend);
  const dx0 = heapOffsetF32(backend, dx);
  heap.fill(0, dx0, dx0 + g.batch * g.inDepth * plane);
  let image = heapOffsetF32(backend, folded);
  for (let n = 0; n < g.batch; n++) {
    for (let od = 0; od < g.outDepth; od++, image += pixels * foldedC) {
      for (let kd = 0; kd < KD; kd++) {
        const id = od * g.strideDepth + kd * g.dilationDepth - g.padFront;
        if (id < 0 || id >= g.inDepth) continue;
        let src = image + kd * CI;
        let dst = dx0 + (n * g.inDepth + id) * plane;
        for (let p = 0; p < pixels; p++, src += foldedC, dst += CI) for (let c = 0; c < CI; c++) heap[dst + c] += heap[src + c];
      }
    }
  }
}

/** DHWIO [KD, KH, KW, CI, CO] <-> folded HWIO [KH, KW, KD*CI, CO]. */
function foldFilter(backend: WasmBackend, filter: TensorInfo, g: ConvGeometry, toFolded: boolean): TensorInfo {
  const { filterDepth: KD, filterHeight: KH, filterWidth: KW, inChannels: CI, outChannels: CO } = g;
  const out = allocF32(backend, toFolded ? [KH, KW, KD * CI, CO] : [KD, KH, KW, CI, CO]);
  const heap = wholeHeapF32(backend);
  const a = heapOffsetF32(backend, filter);
  const b = heapOffsetF32(backend, out);
  const run = CI * CO;
  for (let kd = 0; kd < KD; kd++)
    for (let k = 0; k < KH * KW; k++) {
      const dhwio = a + (kd * KH * KW + k) * run;
      const folded = (toFolded ? b : a) + (k * KD + kd) * run;
      const unfolded = toFolded ? dhwio : b + (kd * KH * KW + k) * run;
      if (toFolded) heap.copyWithin(folded, dhwio, dhwio + run);
      else heap.copyWithin(unfolded, folded, folded + run);
    }
  return out;
}

function conv2DAttrs(g: ConvGeometry, info: backend_util.Conv3DInfo) {
  return {
    strides: [g.strideHeight, g.strideWidth] as [number, number],
    pad: pads2D(info) as backend_util.ExplicitPadding,
    dataFormat: 'NHWC' as const,
  };
}

function conv3DUnchecked(backend: WasmBackend, x: TensorInfo, filter: TensorInfo, attrs: Conv3DAttrs): TensorInfo {
  const { g, info } = info3D('Conv3D', x.shape, filter.shape, attrs);
  const images = foldDepthTaps(backend, x, g);
  const w = foldFilter(backend, filter, g, true);
  const y = runStockKernel(
    backend,
    'Conv2D',
    { x: images, filter: w },
    { ...conv2DAttrs(g, info), dilations: [g.dilationHeight, g.dilationWidth] },
  );
  release(backend, images, w);
  const out = reshapeView(backend, y, info.outShape);
  release(backend, y);
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
  const images = foldDepthTaps(backend, x, g);
  const dy4 = reshapeView(backend, dy, [g.batch * g.outDepth, g.outHeight, g.outWidth, g.outChannels]);
  const folded = conv2DBackpropFilter({
    inputs: { x: images, dy: dy4 },
    backend,
    attrs: {
      ...conv2DAttrs(g, info),
      filterShape: [g.filterHeight, g.filterWidth, g.filterDepth * g.inChannels, g.outChannels],
    },
  });
  release(backend, images, dy4);
  const dw = foldFilter(backend, folded, g, false);
  release(backend, folded);
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
  const w = foldFilter(backend, filter, g, true);
  const dy4 = reshapeView(backend, dy, [g.batch * g.outDepth, g.outHeight, g.outWidth, g.outChannels]);
  const folded = conv2DBackpropInput({
    inputs: { dy: dy4, filter: w },
    backend,
    attrs: {
      ...conv2DAttrs(g, info),
      inputShape: [g.batch * g.outDepth, g.inHeight, g.inWidth, g.filterDepth * g.inChannels],
    },
  });
  release(backend, w, dy4);
  const dx = allocF32(backend, attrs.inputShape);
  unfoldDepthTapsAdd(backend, folded, dx, g);
  release(backend, folded);
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
  const ref = refConvOf(g);
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

export const conv3DWasm = wasmKernel('Conv3D', ({ inputs, backend, attrs }: { inputs: { x: TensorInfo; filter: TensorInfo }; backend: WasmBackend; attrs: Conv3DAttrs }) => {
    gated(backend, 'Conv3D');
    return conv3DUnchecked(backend, inputs.x, inputs.filter, attrs);
  });

export const conv3DBackpropFilterWasm = wasmKernel('Conv3DBackpropFilterV2', ({ inputs, backend, attrs }: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: WasmBackend; attrs: Conv3DAttrs & { filterShape: number[] } }) => {
    gated(backend, 'Conv3DBackpropFilterV2');
    return conv3DBackpropFilterUnchecked(backend, inputs.x, inputs.dy, attrs);
  });

export const conv3DBackpropInputWasm = wasmKernel('Conv3DBackpropInputV2', ({ inputs, backend, attrs }: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: WasmBackend; attrs: Conv3DAttrs & { inputShape: number[] } }) => {
    gated(backend, 'Conv3DBackpropInputV2');
    return conv3DBackpropInputUnchecked(backend, inputs.dy, inputs.filter, attrs);
  });
