/**
 * The image-to-image layers on tfjs, channels last, computing what the generated PyTorch modules compute:
 * ConvTranspose2d / 3d (padding and output_padding as PyTorch crops and extends the full transposed convolution),
 * nn.Upsample (nearest: source index floor(i / s); bilinear: align_corners=False, half-pixel centres, sources
 * clamped at the border) and the spatial broadcast of a vector. Every op used has gradients on every backend
 * (upsampling is two matrix products with fixed interpolation matrices).
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv3dTranspose } from '../engine/conv-transpose';
import { biasAdd, spatialBroadcast } from '../engine/fused';
import { ResolvedConvTranspose, ResolvedImageLayer } from './image-layers';
import type { ResolvedUpsample } from './graph';

/** Runs one image layer; `variable(role)` gives the layer's variable (`weight`, `bias`) in tfjs layout. */
export function runImageLayer(layer: ResolvedImageLayer, x: tf.Tensor, variable: (role: string) => tf.Variable): tf.Tensor {
  switch (layer.type) {
    case 'conv_transpose':
      return convTranspose(layer, x, variable);
    case 'spatial_broadcast':
      return spatialBroadcast(x, layer.size);
  }
}

function convTranspose(layer: ResolvedConvTranspose, x: tf.Tensor, variable: (role: string) => tf.Variable): tf.Tensor {
  const n = x.shape[0];
  const { kernel, stride, padding, outChannels } = layer;
  // The full transposed convolution ('valid'): (n − 1)·s + k per axis; PyTorch's output is the window
  // [padding, padding + out) of it, zero beyond its end (output_padding > padding adds only the bias there).
  const full = x.shape.slice(1, -1).map((size, i) => (size - 1) * stride[i] + kernel[i]);
  const w = variable('weight');
  const y = layer.dims === 2
    ? tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, [n, full[0], full[1], outChannels], stride as [number, number], 'valid')
    : conv3dTranspose(x as tf.Tensor5D, w as tf.Tensor5D, [n, full[0], full[1], full[2], outChannels], stride as [number, number, number]);
  const out = layer.outShape.slice(1);
  const keep = out.map((o, i) => Math.min(o, full[i] - padding[i]));
  // Without padding or cropping (the U-Net's stride-2 up-convolutions) the window is the whole output: no slice,
  // which would copy it forward and pad its gradient backward.
  const whole = padding.every((p) => p === 0) && keep.every((k, i) => k === full[i]);
  let z: tf.Tensor = whole ? y : tf.slice(y, [0, ...padding, 0], [n, ...keep, outChannels]);
  if (keep.some((k, i) => k < out[i])) z = tf.pad(z, [[0, 0], ...out.map((o, i): [number, number] => [0, o - keep[i]]), [0, 0]]);
  return layer.bias ? biasAdd(z, variable('bias')) : z;
}

/** PyTorch's nearest upsampling by an integer factor: output i reads input floor(i / scale). [out, in]. */
function nearestInterpolationMatrix(size: number, scale: number): Float32Array {
  const m = new Float32Array(size * scale * size);
  for (let i = 0; i < size * scale; i++) m[i * size + Math.floor(i / scale)] = 1;
  return m;
}

/** PyTorch's linear interpolation weights (align_corners=False) from `size` to `size · scale` samples: [out, in]. */
export function linearInterpolationMatrix(size: number, scale: number): Float32Array {
  const out = size * scale;
  const m = new Float32Array(out * size);
  for (let i = 0; i < out; i++) {
    const source = Math.max((i + 0.5) / scale - 0.5, 0);
    const i0 = Math.min(Math.floor(source), size - 1);
    const i1 = Math.min(i0 + 1, size - 1);
    const lambda = source - i0;
    m[i * size + i0] += 1 - lambda;
    m[i * size + i1] += lambda;
  }
  return m;
}

/**
 * 2-D upsampling as two matrix products with fixed interpolation matrices (gradients on every backend): the plan's
 * bilinear `upsample` (nearest runs as repeats, tfjs-model.ts, for 2-D and 3-D).
 */
export function upsample2dByInterpolation(layer: ResolvedUpsample, x: tf.Tensor4D): tf.Tensor {
  const [n, h, w, c] = x.shape;
  const [sh, sw] = layer.scale;
  const matrix = layer.mode === 'nearest' ? nearestInterpolationMatrix : linearInterpolationMatrix;
  const rows = tf.tensor2d(matrix(h, sh), [h * sh, h]);
  const cols = tf.tensor2d(matrix(w, sw), [w * sw, w]);
  // Interpolate along H: [H, N·W·C] → [Ho, N·W·C]; then along W the same way.
  const alongH = tf.matMul(rows, tf.reshape(tf.transpose(x, [1, 0, 2, 3]), [h, n * w * c]));
  const byW = tf.transpose(tf.reshape(alongH, [h * sh, n, w, c]), [2, 1, 0, 3]); // [W, N, Ho, C]
  const alongW = tf.matMul(cols, tf.reshape(byW, [w, n * h * sh * c]));
  return tf.transpose(tf.reshape(alongW, [w * sw, n, h * sh, c]), [1, 2, 0, 3]);
}
