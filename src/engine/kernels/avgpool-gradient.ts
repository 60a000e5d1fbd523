/**
 * Gradient of AvgPool / AvgPool3D consistent with the forward pass on every backend.
 *
 * With `same` (or numeric) padding tfjs's forward divides each window by the number of *real* elements it covers,
 * but its stock gradient divides by the full window size: the gradient is wrong near the borders on both the CPU
 * and wasm backends (checked against finite differences). Scaling dy by fullWindow / realCount before the stock
 * AvgPoolGrad gives the exact gradient. `valid` padding is unaffected and takes the stock path unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util, GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';

/** fullWindow / realCount per output position, shaped to broadcast over batch and channels. */
function windowScale(outSize: number[], inSize: number[], filter: number[], stride: number[], padBefore: number[]): Float32Array {
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

export const avgPoolGradient: GradConfig = {
  kernelName: 'AvgPool',
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x] = saved;
    const grad = dy as Tensor;
    const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
      filterSize: number | [number, number];
      strides: number | [number, number];
      pad: 'valid' | 'same' | number;
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
    };
    const run = (g: Tensor) =>
      tf.engine().runKernel<Tensor>('AvgPoolGrad', { dy: g, input: x }, { filterSize, strides, pad, dimRoundingMode } as unknown as NamedAttrMap);
    if (pad === 'valid' || pad === 0) return { x: () => run(grad) };
    return {
      x: () =>
        tf.tidy(() => {
          const info = backend_util.computePool2DInfo(
            x.shape as [number, number, number, number],
            filterSize,
            strides,
            1,
            pad,
            dimRoundingMode,
          );
          const scale = windowScale(
            [1, info.outHeight, info.outWidth],
            [1, info.inHeight, info.inWidth],
            [1, info.filterHeight, info.filterWidth],
            [1, info.strideHeight, info.strideWidth],
            [0, info.padInfo.top, info.padInfo.left],
          );
          return run(tf.mul(grad, tf.tensor(scale, [1, info.outHeight, info.outWidth, 1])));
        }),
    };
  },
};

export const avgPool3DGradient: GradConfig = {
  kernelName: 'AvgPool3D',
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x] = saved;
    const grad = dy as Tensor;
    const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
      filterSize: number | [number, number, number];
      strides: number | [number, number, number];
      pad: 'valid' | 'same' | number;
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
    };
    const run = (g: Tensor) =>
      tf.engine().runKernel<Tensor>('AvgPool3DGrad', { dy: g, input: x }, { filterSize, strides, pad, dimRoundingMode } as unknown as NamedAttrMap);
    if (pad === 'valid' || pad === 0) return { x: () => run(grad) };
    return {
      x: () =>
        tf.tidy(() => {
          const info = backend_util.computePool3DInfo(
            x.shape as [number, number, number, number, number],
            filterSize,
            strides,
            1,
            pad,
            dimRoundingMode,
          );
          const scale = windowScale(
            [info.outDepth, info.outHeight, info.outWidth],
            [info.inDepth, info.inHeight, info.inWidth],
            [info.filterDepth, info.filterHeight, info.filterWidth],
            [info.strideDepth, info.strideHeight, info.strideWidth],
            [info.padInfo.front, info.padInfo.top, info.padInfo.left],
          );
          return run(tf.mul(grad, tf.tensor(scale, [1, info.outDepth, info.outHeight, info.outWidth, 1])));
        }),
    };
  },
};
