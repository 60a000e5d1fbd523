/**
 * Gradient of Conv2D that also covers dilation (tfjs's own refuses dilation > 1).
 *
 * A conv with dilation d equals a conv with the filter "dilated" (zeros inserted between taps), so with dilation
 * the input gradient uses the dilated filter and the filter gradient is the dilated filter's gradient sampled at
 * the real taps. Only standard kernels are used, so the same rule runs on every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GradConfig, NamedAttrMap, Tensor, Tensor4D } from '@tensorflow/tfjs-core';

function pair(v: number | [number, number] | undefined): [number, number] {
  if (v === undefined) return [1, 1];
  return typeof v === 'number' ? [v, v] : v;
}

/** [KH, KW, CI, CO] -> [(KH-1)dh+1, (KW-1)dw+1, CI, CO] with zeros between the taps. */
function dilateFilter(filter: Tensor4D, dh: number, dw: number): Tensor4D {
  const [KH, KW, CI, CO] = filter.shape;
  const spread = tf.pad(tf.reshape(filter, [KH, 1, KW, 1, CI, CO]), [
    [0, 0],
    [0, dh - 1],
    [0, 0],
    [0, dw - 1],
    [0, 0],
    [0, 0],
  ]);
  const full = tf.reshape(spread, [KH * dh, KW * dw, CI, CO]);
  return tf.slice(full, [0, 0, 0, 0], [(KH - 1) * dh + 1, (KW - 1) * dw + 1, CI, CO]) as Tensor4D;
}

export const conv2DGradient: GradConfig = {
  kernelName: 'Conv2D',
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x, filter] = saved as [Tensor4D, Tensor4D];
    const grad = dy as Tensor4D;
    const [dh, dw] = pair(attrs.dilations as number | [number, number]);
    const common = {
      strides: attrs.strides,
      pad: attrs.pad,
      dataFormat: attrs.dataFormat,
      dimRoundingMode: attrs.dimRoundingMode,
    } as NamedAttrMap;
    const run = (name: string, inputs: Record<string, Tensor>, extra: NamedAttrMap): Tensor =>
      tf.engine().runKernel<Tensor>(name, inputs, { ...common, ...extra });
    if (dh === 1 && dw === 1) {
      return {
        x: () => run('Conv2DBackpropInput', { dy: grad, filter }, { inputShape: x.shape }),
        filter: () => run('Conv2DBackpropFilter', { x, dy: grad }, { filterShape: filter.shape }),
      };
    }
    return {
      x: () =>
        tf.tidy(() =>
          run('Conv2DBackpropInput', { dy: grad, filter: dilateFilter(filter, dh, dw) }, { inputShape: x.shape }),
        ),
      filter: () =>
        tf.tidy(() => {
          const [KH, KW, CI, CO] = filter.shape;
          const dilatedShape = [(KH - 1) * dh + 1, (KW - 1) * dw + 1, CI, CO];
          const full = run('Conv2DBackpropFilter', { x, dy: grad }, { filterShape: dilatedShape }) as Tensor4D;
          return tf.stridedSlice(full, [0, 0, 0, 0], dilatedShape, [dh, dw, 1, 1]);
        }),
    };
  },
};
