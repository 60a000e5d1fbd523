/**
 * MaxPool, MaxPoolGrad, MaxPool3D and MaxPool3DGrad for the wasm backend running the native code (src/engine/native/pool.c)
 * on the wasm heap. Geometry, padding and tie rule are those of ./pool-wasm.ts (tfjs's own pool info; dy goes to
 * the first maximum in window order).
 */
import { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { pool2DGeometry, pool3DGeometry, PoolGeometry } from './pool-wasm';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

/** The Int32Array layout pool.h's pool_geometry expects. */
function poolGeometryFields(g: PoolGeometry): Int32Array {
  return Int32Array.from([g.batch, ...g.inSize, g.channels, ...g.outSize, ...g.filter, ...g.stride, ...g.padBefore]);
}

type PoolAttrs = Parameters<typeof pool3DGeometry>[1] & Parameters<typeof pool2DGeometry>[1];
type Geometry = (shape: number[], attrs: PoolAttrs) => PoolGeometry;

export function nativePoolKernels(native: NativeKernels): KernelConfig[] {
  const gradient = (name: string, geometry: Geometry): KernelConfig =>
    wasmKernel(name, ({ inputs, backend, attrs }: { inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo }; backend: WasmBackend; attrs: PoolAttrs }) => {
      const { dy, input, output } = inputs;
      const g = geometry(input.shape, attrs);
      const dx = allocF32(backend, input.shape);
      native.maxPoolBackprop(poolGeometryFields(g), heapF32(backend, input), heapF32(backend, output), heapF32(backend, dy), heapF32(backend, dx));
      return dx;
    });
  const forward = (name: string, geometry: Geometry, rank: 4 | 5): KernelConfig =>
    wasmKernel(name, ({ inputs, backend, attrs }: { inputs: { x: TensorInfo }; backend: WasmBackend; attrs: PoolAttrs }) => {
      const g = geometry(inputs.x.shape, attrs);
      const spatial = rank === 4 ? g.outSize.slice(1) : g.outSize;
      const y = allocF32(backend, [g.batch, ...spatial, g.channels]);
      native.maxPoolForward(poolGeometryFields(g), heapF32(backend, inputs.x), heapF32(backend, y));
      return y;
    });
  return [
    gradient('MaxPoolGrad', pool2DGeometry as Geometry),
    gradient('MaxPool3DGrad', pool3DGeometry as Geometry),
    // 2D too: XNNPACK's max pool takes 3.3 ms for the reference CNN's two pools, this one 2.2 ms.
    forward('MaxPool', pool2DGeometry as Geometry, 4),
    forward('MaxPool3D', pool3DGeometry as Geometry, 5),
  ].map(nativeKernel);
}

/**
 * Start-up check of the native pools against a direct float64 evaluation of the definition: overlapping padded
 * windows (stride 1, 3 taps, one padded on each side), ties and negative values. Returns what is wrong, if anything.
 */
export function nativePoolSelfCheck(native: NativeKernels): string | undefined {
  const g: PoolGeometry = { batch: 2, channels: 3, inSize: [3, 4, 5], outSize: [3, 4, 5], filter: [2, 3, 3],
    stride: [1, 1, 1], padBefore: [1, 1, 1] }; // prettier-ignore
  const [D, H, W] = g.inSize;
  const C = g.channels;
  // Values from a coarse grid so that windows contain ties; all negative in one channel.
  const x = Float32Array.from({ length: g.batch * D * H * W * C }, (_, i) => (i % C === 2 ? -1 : 1) * Math.round(3 * Math.sin(0.9 * i)));
  const outLength = g.batch * g.outSize.reduce((a, b) => a * b) * C;
  const dy = Float32Array.from({ length: outLength }, (_, i) => 1 + (i % 7));
  const y = new Float32Array(outLength);
  const dx = new Float32Array(x.length);
  native.maxPoolForward(poolGeometryFields(g), x, y);
  native.maxPoolBackprop(poolGeometryFields(g), x, y, dy, dx);
  const wantDx = new Float64Array(x.length);
  let o = 0;
  for (let n = 0; n < g.batch; n++)
    for (let od = 0; od < D; od++)
      for (let oh = 0; oh < H; oh++)
        for (let ow = 0; ow < W; ow++)
          for (let c = 0; c < C; c++, o++) {
            let best = -Infinity;
            let at = -1;
            for (let kd = 0; kd < g.filter[0]; kd++)
              for (let kh = 0; kh < g.filter[1]; kh++)
                for (let kw = 0; kw < g.filter[2]; kw++) {
                  const d = od - 1 + kd;
                  const h = oh - 1 + kh;
                  const w = ow - 1 + kw;
                  if (d < 0 || d >= D || h < 0 || h >= H || w < 0 || w >= W) continue;
                  const i = (((n * D + d) * H + h) * W + w) * C + c;
                  if (x[i] > best) [best, at] = [x[i], i];
                }
            if (y[o] !== best) return `max pool forward wrong at ${o}: ${y[o]} vs ${best}`;
            wantDx[at] += dy[o];
          }
  for (let i = 0; i < x.length; i++) if (dx[i] !== wantDx[i]) return `max pool gradient wrong at ${i}: ${dx[i]} vs ${wantDx[i]}`;
  return undefined;
}
