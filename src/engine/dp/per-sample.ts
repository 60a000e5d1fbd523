/**
 * Per-sample gradient clipping as Opacus does it (GradSampleModule + DPOptimizer.clip_and_accumulate), computed
 * exactly and batched, without a batch-size-1 loop over the model:
 *
 * One forward pass with the model's layer tap, one backward pass to the outputs of the tapped layers only (the
 * batch weight gradients are never computed: tfjs evaluates only the gradients on the path to what is asked for).
 * From each layer's input x and output gradient g (of the summed loss, as Opacus scales a mean loss by the batch
 * size), per-sample gradient norms come layer by layer:
 *   dense  ‖x_i ⊗ g_i‖² = ‖x_i‖²‖g_i‖², bias ‖g_i‖²
 *   conv   the filter gradient of each sample (the backend's filter-gradient kernel on that sample's slice),
 *          bias ‖Σ_positions g_i‖²
 * The flat norm over all trainable parameters gives each sample its factor c_i = min(1, C / (‖∇_i‖ + 1e-6)),
 * and the clipped sum Σ_i c_i ∇_i of every parameter is one contraction: xᵀ(c ⊙ g) for dense weights, cᵀP for
 * conv filters. A trainable parameter no tapped layer covers (batch norm…) is refused: it has no per-sample rule.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerTap, TappedLayer, TrainableModel } from '../model';
import type { Batch } from '../train';

export interface ClippedBatch {
  /** Σ_i clip(∇_i) per trainable parameter name (not yet noised nor averaged). */
  sums: Map<string, tf.Tensor>;
  /** ‖∇_i‖ before clipping, per sample. */
  norms: Float32Array;
  /** The batch's mean loss. */
  loss: number;
}

interface Captured {
  layer: TappedLayer;
  /** Shape of the layer's output, for its zero probe. */
  zShape: number[];
}

/**
 * Per-sample gradients of `lossFn` (a mean over the batch) clipped to `clip`, summed. `trainable` names every
 * parameter that must be covered. The batch must not be empty.
 */
export function clippedGradientSum(
  model: TrainableModel,
  batch: Batch,
  lossFn: (prediction: tf.Tensor, target: tf.Tensor) => tf.Scalar,
  clip: number,
  trainable: readonly string[],
): ClippedBatch {
  if (!(clip > 0 && Number.isFinite(clip))) throw new Error(`DP clipping norm must be finite and > 0, got ${clip}`);
  const n = batch.target.shape[0] ?? 0;
  if (n === 0) throw new Error('internal: clippedGradientSum on an empty batch');

  // Pass 1 (shapes only, no tape): which layers are tapped and their output shapes, to size the zero probes.
  const captured: Captured[] = [];
  tf.tidy(() => {
    model.forward(batch.inputs, true, (layer, _x, z) => {
      captured.push({ layer, zShape: z.shape });
      return z;
    });
  });
  checkCoverage(captured.map((c) => c.layer), trainable);

  const probes = captured.map((c) => tf.zeros(c.zShape));
  const inputs: tf.Tensor[] = [];
  try {
    const { value, grads } = tf.valueAndGrads((...zeros: tf.Tensor[]) => {
      let k = 0;
      const tap: LayerTap = (_layer, x, z) => {
        // A clone: the first layer's input is the caller's batch tensor, which is not ours to dispose.
        inputs.push(tf.keep(tf.clone(x)));
        return tf.add(z, zeros[k++]);
      };
      const prediction = model.forward(batch.inputs, true, tap);
      // Opacus's grad samples are gradients of each sample's own loss: the mean loss times the batch size.
      return tf.mul(lossFn(prediction, batch.target), n) as tf.Scalar;
    })(probes);
    try {
      return clipAndSum(captured.map((c) => c.layer), inputs, grads, n, clip, value.dataSync()[0] / n);
    } finally {
      value.dispose();
      grads.forEach((g) => g.dispose());
    }
  } finally {
    probes.forEach((p) => p.dispose());
    inputs.forEach((x) => x.dispose());
  }
}

function checkCoverage(layers: TappedLayer[], trainable: readonly string[]): void {
  const covered = new Set(layers.flatMap((l) => (l.bias ? [l.weight, l.bias] : [l.weight])));
  const uncovered = trainable.filter((name) => !covered.has(name));
  if (uncovered.length > 0) {
    throw new Error(`differential privacy needs per-sample gradients, which are not defined for the layer(s) of ` +
      `${uncovered.join(', ')} (batch norm mixes the samples of a batch: Opacus replaces it with group norm)`);
  }
}

/** Per-sample parts of one layer: weight gradient as [n, K] (or its squared norms for dense) and bias [n, C]. */
interface LayerParts {
  layer: TappedLayer;
  normSq: tf.Tensor1D;
  clippedWeight(c: tf.Tensor1D): tf.Tensor;
  clippedBias(c: tf.Tensor1D): tf.Tensor | undefined;
}

function clipAndSum(
  layers: TappedLayer[],
  inputs: tf.Tensor[],
  outputGrads: tf.Tensor[],
  n: number,
  clip: number,
  loss: number,
): ClippedBatch {
  let result: ClippedBatch | undefined;
  tf.tidy(() => {
    const parts = layers.map((layer, i) => layerParts(layer, inputs[i], outputGrads[i], n));
    const normSq = tf.addN(parts.map((p) => p.normSq)) as tf.Tensor1D;
    const norms = tf.sqrt(normSq) as tf.Tensor1D;
    // Opacus: max_grad_norm / (norm + 1e-6), clamped at 1.
    const factors = tf.minimum(tf.div(clip, tf.add(norms, 1e-6)), 1) as tf.Tensor1D;
    const sums = new Map<string, tf.Tensor>();
    for (const p of parts) {
      sums.set(p.layer.weight, tf.keep(p.clippedWeight(factors)));
      const bias = p.clippedBias(factors);
      if (p.layer.bias && bias) sums.set(p.layer.bias, tf.keep(bias));
    }
    result = { sums, norms: norms.dataSync() as Float32Array, loss };
  });
  return result as ClippedBatch;
}

function layerParts(layer: TappedLayer, x: tf.Tensor, g: tf.Tensor, n: number): LayerParts {
  const biasPerSample = layer.bias ? tf.reshape(tf.sum(g, rangeOf(1, g.rank - 1)), [n, -1]) : undefined;
  const biasNormSq = biasPerSample ? tf.sum(tf.square(biasPerSample), 1) : tf.zeros([n]);
  const clippedBias = (c: tf.Tensor1D) =>
    biasPerSample ? tf.reshape(tf.matMul(tf.reshape(c, [1, n]), biasPerSample), [-1]) : undefined;
  if (layer.kind === 'dense') {
    const normSq = tf.add(tf.mul(tf.sum(tf.square(x), 1), tf.sum(tf.square(g), 1)), biasNormSq) as tf.Tensor1D;
    return {
      layer, normSq, clippedBias,
      clippedWeight: (c) => tf.matMul(x as tf.Tensor2D, tf.mul(g, tf.reshape(c, [n, 1])) as tf.Tensor2D, true, false),
    };
  }
  const perSample = convFilterGradients(layer, x, g, n); // [n, K]
  const filterShape = layer.filterShape;
  return {
    layer, clippedBias,
    normSq: tf.add(tf.sum(tf.square(perSample), 1), biasNormSq) as tf.Tensor1D,
    clippedWeight: (c) => tf.reshape(tf.matMul(tf.reshape(c, [1, n]), perSample), filterShape),
  };
}

/**
 * Each sample's filter gradient, by the backend's own filter-gradient kernel (the native AVX2 kernel on the wasm
 * backend) on that sample's input and output gradient: exact, and the same arithmetic as the batch gradient.
 */
function convFilterGradients(layer: Extract<TappedLayer, { kind: 'conv' }>, x: tf.Tensor, g: tf.Tensor, n: number): tf.Tensor2D {
  const filterShape = layer.filterShape;
  const kernel = layer.dims === 2 ? 'Conv2DBackpropFilter' : 'Conv3DBackpropFilterV2';
  const attrs = layer.dims === 2
    ? { strides: layer.strides, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape }
    : { strides: layer.strides, pad: 'valid', filterShape };
  const xs = tf.split(x, n, 0);
  const gs = tf.split(g, n, 0);
  const rows = xs.map((xi, i) => {
    const dw = tf.engine().runKernel(kernel, { x: xi, dy: gs[i] }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    return tf.reshape(dw, [1, -1]);
  });
  return tf.concat(rows, 0) as tf.Tensor2D;
}

function rangeOf(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
