/**
 * Gradient of AvgPool / AvgPool3D consistent with the forward pass on every backend.
 *
 * With `same` (or numeric) padding tfjs's forward divides each window by the number of *real* elements it covers,
 * but its stock gradient divides by the full window size: the gradient is wrong near the borders on both the CPU
 * and wasm backends (checked against finite differences). Scaling dy by fullWindow / realCount before the stock
 * AvgPoolGrad gives the exact gradient. `valid` padding is unaffected and takes the stock path unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';
import { pool2DGeometry, pool3DGeometry, type PoolGeometry } from './pool-wasm';

/** fullWindow / realCount per output position (depth, height, width; depth 1 in 2-D). */
function windowScale({ outSize, inSize, filter, stride, padBefore }: PoolGeometry): Float32Array {
  const [OD, OH, OW] = outSize;
  const full = filter[0] * filter[1] * filter[2];
  const out = new Float32Array(OD * OH * OW);
  const covered = (o: number, k: number) => {
    const start = o * stride[k] - padBefore[k];
    return Math.min(inSize[k], start + filter[k]) - Math.max(0, start);
  };
  for (let d = 0, i = 0; d < OD; d++)
    for (let h = 0; h < OH; h++)
      for (let w = 0; w < OW; w++, i++) out[i] = full / (covered(d, 0) * covered(h, 1) * covered(w, 2));
  return out;
}

type PoolAttrs = Parameters<typeof pool3DGeometry>[1] & Parameters<typeof pool2DGeometry>[1];

/** The gradient of AvgPool or AvgPool3D: the same scaling, only the geometry (2-D is 3-D with depth 1) differs. */
function avgPoolGradientOf(kernelName: 'AvgPool' | 'AvgPool3D', geometry: (xShape: number[], attrs: PoolAttrs) => PoolGeometry): GradConfig {
  return {
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const [x] = saved;
      const grad = dy as Tensor;
      const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as PoolAttrs;
      const poolAttrs = { filterSize, strides, pad, dimRoundingMode };
      const run = (g: Tensor) => tf.engine().runKernel<Tensor>(`${kernelName}Grad`, { dy: g, input: x }, poolAttrs as unknown as NamedAttrMap);
      if (pad === 'valid' || pad === 0) return { x: () => run(grad) };
      return {
        x: () =>
          tf.tidy(() => {
            const g = geometry(x.shape, poolAttrs);
            const outSpatial = kernelName === 'AvgPool' ? g.outSize.slice(1) : g.outSize;
            return run(tf.mul(grad, tf.tensor(windowScale(g), [1, ...outSpatial, 1])));
          }),
      };
    },
  };
}

export const avgPoolGradient = avgPoolGradientOf('AvgPool', pool2DGeometry);
export const avgPool3DGradient = avgPoolGradientOf('AvgPool3D', pool3DGeometry);
