/**
 * Conv2D / Conv3D forward and gradient kernels for the wasm backend that run the native AVX2+FMA code
 * (src/engine/native) directly on the wasm heap: outputs are allocated there first, then the addon reads the
 * inputs and writes the output through views, so no tensor is copied.
 *
 * Geometry comes from tfjs's own conv info, so padding rules (`same`, `valid`, explicit, rounding) and output
 * sizes are tfjs's, whatever the kernel underneath.
 */
import { backend_util, KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { ConvGeometry, geometryFrom2D, geometryFrom3D } from './conv-geometry';
import { RefConv, referenceConv, referenceGradients } from './reference-conv';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

type Pad = 'valid' | 'same' | number | backend_util.ExplicitPadding;

export interface ConvAttrs {
  strides: number | number[];
  pad: Pad;
  dataFormat?: string;
  dilations?: number | number[];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** The Int32Array layout conv.h's conv_geometry expects. */
export function geometryFields(g: ConvGeometry): Int32Array {
  return Int32Array.from([
    g.batch, g.inDepth, g.inHeight, g.inWidth, g.inChannels,
    g.outDepth, g.outHeight, g.outWidth, g.outChannels,
    g.filterDepth, g.filterHeight, g.filterWidth,
    g.strideDepth, g.strideHeight, g.strideWidth,
    g.dilationDepth, g.dilationHeight, g.dilationWidth,
    g.padFront, g.padTop, g.padLeft,
  ]); // prettier-ignore
}

export function geometry2D(name: string, xShape: number[], filterShape: number[], attrs: ConvAttrs): ConvGeometry {
  const info = backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    (attrs.dilations as number | [number, number] | undefined) ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat((attrs.dataFormat as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC'),
  );
  return geometryFrom2D(info, name);
}

export function geometry3D(name: string, xShape: number[], filterShape: number[], attrs: ConvAttrs): ConvGeometry {
  if (attrs.dataFormat === 'NCDHW') throw new Error(`${name} on wasm supports channels-last (NDHWC) only`);
  if (typeof attrs.pad !== 'string') throw new Error(`${name}: 3D padding must be 'same' or 'valid'`);
  const info = backend_util.computeConv3DInfo(
    xShape as [number, number, number, number, number],
    filterShape as [number, number, number, number, number],
    attrs.strides as number | [number, number, number],
    (attrs.dilations as number | [number, number, number] | undefined) ?? 1,
    attrs.pad,
  );
  return geometryFrom3D(info, name);
}

function outputShape(g: ConvGeometry, rank: number): number[] {
  return rank === 4
    ? [g.batch, g.outHeight, g.outWidth, g.outChannels]
    : [g.batch, g.outDepth, g.outHeight, g.outWidth, g.outChannels];
}

type Geometry = (name: string, xShape: number[], filterShape: number[], attrs: ConvAttrs) => ConvGeometry;

/** The six kernels for one loaded addon. */
export function nativeConvKernels(native: NativeKernels): KernelConfig[] {
  const forward = (name: string, geometry: Geometry): KernelConfig =>
    wasmKernel(name, ({ inputs, backend, attrs }: { inputs: { x: TensorInfo; filter: TensorInfo }; backend: WasmBackend; attrs: ConvAttrs }) => {
      const { x, filter } = inputs;
      const g = geometry(name, x.shape, filter.shape, attrs);
      const y = allocF32(backend, outputShape(g, x.shape.length));
      native.convForward(geometryFields(g), heapF32(backend, x), heapF32(backend, filter), heapF32(backend, y));
      return y;
    });
  const backpropFilter = (name: string, geometry: Geometry): KernelConfig =>
    wasmKernel(name, ({ inputs, backend, attrs }: { inputs: { x: TensorInfo; dy: TensorInfo }; backend: WasmBackend; attrs: ConvAttrs & { filterShape: number[] } }) => {
      const { x, dy } = inputs;
      const g = geometry(name, x.shape, attrs.filterShape, attrs);
      const dw = allocF32(backend, [...attrs.filterShape]);
      native.convBackpropFilter(geometryFields(g), heapF32(backend, x), heapF32(backend, dy), heapF32(backend, dw));
      return dw;
    });
  const backpropInput = (name: string, geometry: Geometry): KernelConfig =>
    wasmKernel(name, ({ inputs, backend, attrs }: { inputs: { dy: TensorInfo; filter: TensorInfo }; backend: WasmBackend; attrs: ConvAttrs & { inputShape: number[] } }) => {
      const { dy, filter } = inputs;
      const g = geometry(name, attrs.inputShape, filter.shape, attrs);
      const dx = allocF32(backend, [...attrs.inputShape]);
      native.convBackpropInput(geometryFields(g), heapF32(backend, dy), heapF32(backend, filter), heapF32(backend, dx));
      return dx;
    });
  return [
    forward('Conv2D', geometry2D),
    backpropFilter('Conv2DBackpropFilter', geometry2D),
    backpropInput('Conv2DBackpropInput', geometry2D),
    forward('Conv3D', geometry3D),
    backpropFilter('Conv3DBackpropFilterV2', geometry3D),
    backpropInput('Conv3DBackpropInputV2', geometry3D),
  ].map(nativeKernel);
}

/**
 * Run once before the native kernels are trusted: small problems that cover strides (and stride 1, whose input
 * gradient runs as a forward conv), padding, dilation, a channel
 * count that is not a multiple of the 16-wide tiles, a depth dimension and the unpadded in-place paths, against the
 * float64 reference conv and its gradients computed from the definition (checked against finite differences in
 * reference-conv.test.ts). Returns what is wrong, or undefined when all agree (|error| <= 1e-4 (1 + |want|)).
 */
export function nativeConvSelfCheck(native: NativeKernels): string | undefined {
  const problems: RefConv[] = [
    { batch: 2, inSize: [1, 7, 6], inChannels: 3, filter: [1, 3, 2], outChannels: 17, stride: [1, 2, 1],
      dilation: [1, 1, 2], padBefore: [0, 1, 1], outSize: [1, 4, 5] },
    { batch: 1, inSize: [4, 5, 4], inChannels: 2, filter: [2, 3, 2], outChannels: 5, stride: [2, 1, 1],
      dilation: [1, 1, 1], padBefore: [1, 1, 0], outSize: [3, 5, 3] },
    // Stride 1: the input gradient as a forward conv of dy with the rotated filter (padding and dilation mirrored).
    { batch: 2, inSize: [3, 5, 6], inChannels: 3, filter: [2, 3, 2], outChannels: 5, stride: [1, 1, 1],
      dilation: [1, 2, 1], padBefore: [1, 2, 0], outSize: [3, 5, 5] },
    // Padded rows of 50 positions: the filter gradient on zero-padded copies of the samples, read in place.
    { batch: 1, inSize: [1, 2, 50], inChannels: 2, filter: [1, 2, 3], outChannels: 3, stride: [1, 1, 1],
      dilation: [1, 1, 1], padBefore: [0, 1, 1], outSize: [1, 3, 50] },
    // A padded plane tiled as one run of 6-wide virtual rows (4 real positions each), its last 8 positions gathered
    // across two output rows.
    { batch: 2, inSize: [1, 4, 4], inChannels: 3, filter: [1, 3, 3], outChannels: 17, stride: [1, 1, 1],
      dilation: [1, 1, 1], padBefore: [0, 1, 1], outSize: [1, 4, 4] },
    // No padding: the in-place (implicit im2col) paths, with a row of 7 positions (one 6-wide tile + 1 gathered).
    { batch: 2, inSize: [3, 4, 14], inChannels: 3, filter: [2, 2, 2], outChannels: 17, stride: [1, 1, 2],
      dilation: [1, 1, 1], padBefore: [0, 0, 0], outSize: [2, 3, 7] },
  ]; // prettier-ignore
  for (const [index, p] of problems.entries()) {
    const g = Int32Array.from([
      p.batch, ...p.inSize, p.inChannels, ...p.outSize, p.outChannels, ...p.filter, ...p.stride, ...p.dilation,
      ...p.padBefore,
    ]); // prettier-ignore
    const fill = (n: number, k: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(1.7 * i + k));
    const x = fill(p.batch * p.inSize.reduce((a, b) => a * b) * p.inChannels, 0);
    const w = fill(p.filter.reduce((a, b) => a * b) * p.inChannels * p.outChannels, 1);
    const dy = fill(p.batch * p.outSize.reduce((a, b) => a * b) * p.outChannels, 2);
    const y = new Float32Array(dy.length);
    const dw = new Float32Array(w.length);
    const dx = new Float32Array(x.length);
    native.convForward(g, Float32Array.from(x), Float32Array.from(w), y);
    native.convBackpropFilter(g, Float32Array.from(x), Float32Array.from(dy), dw);
    native.convBackpropInput(g, Float32Array.from(dy), Float32Array.from(w), dx);
    const close = (got: number, want: number) => Math.abs(got - want) <= 1e-4 * (1 + Math.abs(want));
    const wantY = referenceConv(p, x, w);
    for (let i = 0; i < y.length; i++) if (!close(y[i], wantY[i])) return `forward wrong at ${i} of problem ${index}`;
    const want = referenceGradients(p, x, w, dy);
    for (let i = 0; i < w.length; i++) if (!close(dw[i], want.dw[i])) return `filter gradient wrong at ${i} of problem ${index}`;
    for (let i = 0; i < x.length; i++) if (!close(dx[i], want.dx[i])) return `input gradient wrong at ${i} of problem ${index}`;
  }
  return undefined;
}
