/**
 * Per-sample gradient clipping as Opacus does it (GradSampleModule + DPOptimizer.clip_and_accumulate), computed
 * exactly and batched, without a batch-size-1 loop over the model:
 *
 * One forward pass with the model's layer tap, one backward pass to the outputs of the tapped layers only (the
 * batch weight gradients are never computed: tfjs evaluates only the gradients on the path to what is asked for).
 * From each layer's input x and output gradient g (of the summed loss, as Opacus scales a mean loss by the batch
 * size), per-sample gradient norms come layer by layer:
 *   dense  ‖x_i ⊗ g_i‖² = ‖x_i‖²‖g_i‖², bias ‖g_i‖²
 *   conv   the filter gradient of each sample (with the native kernels: filter and bias gradients and their
 *          squared norms in one call split by sample over the threads; else the backend's filter-gradient kernel
 *          on each sample's slice), bias ‖Σ_positions g_i‖²
 *   group norm's affine part  ‖Σ_positions g_i ⊙ x̂_i‖² per channel, bias as a conv's
 * The flat norm over all trainable parameters gives each sample its factor c_i = min(1, C / (‖∇_i‖ + 1e-6)),
 * and the clipped sum Σ_i c_i ∇_i of every parameter is one contraction: xᵀ(c ⊙ g) for dense weights, cᵀP for
 * conv filters. A trainable parameter no tapped layer covers (batch norm…) is refused: it has no per-sample rule.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerTap, TappedLayer, TrainableModel } from '../model';
import type { Batch } from '../train';
import { DP_CONV_PER_SAMPLE, DP_WEIGHTED_ROW_SUM, DpConvPerSampleAttrs } from '../kernels/dp-native';
import { PER_SAMPLE_SUM } from '../kernels/reduce-native';

export interface ClippedBatch {
  /** Σ_i clip(∇_i) per trainable parameter name (not yet noised nor averaged). */
  sums: Map<string, tf.Tensor>;
  /** ‖∇_i‖ before clipping, per sample. */
  norms: Float32Array;
  /** The batch's mean loss. */
  loss: number;
}

/** The tapped layers of a model, found once by a forward pass (they do not change between steps). */
const tappedLayers = new WeakMap<TrainableModel, TappedLayer[]>();

function layersOf(model: TrainableModel, batch: Batch): TappedLayer[] {
  let layers = tappedLayers.get(model);
  if (!layers) {
    const found: TappedLayer[] = [];
    tf.tidy(() => {
      model.forward(batch.inputs, true, (layer, _x, z) => {
        found.push(layer);
        return z;
      });
    });
    layers = found;
    tappedLayers.set(model, layers);
  }
  return layers;
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
  const layers = layersOf(model, batch);
  checkCoverage(layers, trainable);

  // Each tapped output goes through an identity whose gradient records dy. Its second input, a scalar "handle",
  // is what the gradients are asked for: the tape then runs through every tap (so every dy is computed) but never
  // reaches a weight, and tfjs skips the weight-gradient kernels entirely.
  const handles = layers.map(() => tf.scalar(0));
  const inputs: tf.Tensor[] = new Array(layers.length);
  const outputGrads: tf.Tensor[] = new Array(layers.length);
  try {
    const { value, grads } = tf.valueAndGrads((...hs: tf.Tensor[]) => {
      let k = 0;
      const tap: LayerTap = (_layer, x, z) => {
        const index = k++;
        // A clone (free: shared data): the first layer's input is the caller's batch tensor, not ours to dispose.
        inputs[index] = tf.keep(tf.clone(x));
        const record = tf.customGrad(((zz: tf.Tensor) => ({
          value: tf.clone(zz),
          gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
            const d = dy as tf.Tensor;
            outputGrads[index] = tf.keep(tf.clone(d));
            return [d, tf.zeros([])];
          },
        })) as unknown as Parameters<typeof tf.customGrad>[0]);
        return record(z, hs[index]);
      };
      const prediction = model.forward(batch.inputs, true, tap);
      // Opacus's grad samples are gradients of each sample's own loss: the mean loss times the batch size.
      return tf.mul<tf.Scalar>(lossFn(prediction, batch.target), n);
    })(handles);
    try {
      if (outputGrads.some((g) => g === undefined)) throw new Error('internal: a tapped layer received no gradient');
      return clipAndSum(layers, inputs, outputGrads, n, clip, value.dataSync()[0] / n);
    } finally {
      value.dispose();
      grads.forEach((g) => g.dispose());
    }
  } finally {
    handles.forEach((h) => h.dispose());
    inputs.forEach((x) => x?.dispose());
    outputGrads.forEach((g) => g?.dispose());
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
    const normSq = tf.addN<tf.Tensor1D>(parts.map((p) => p.normSq));
    const norms = tf.sqrt<tf.Tensor1D>(normSq);
    // Opacus: max_grad_norm / (norm + 1e-6), clamped at 1.
    const factors = tf.minimum<tf.Tensor1D>(tf.div(clip, tf.add(norms, 1e-6)), 1);
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
  if (layer.kind === 'conv' && nativeKernel(DP_CONV_PER_SAMPLE)) return nativeConvParts(layer, x, g);
  const biasPerSample = layer.bias ? sumOverPositions(g, n) : undefined;
  const biasNormSq = biasPerSample ? tf.sum(tf.square(biasPerSample), 1) : tf.zeros([n]);
  const clippedBias = (c: tf.Tensor1D) => (biasPerSample ? weightedRowSum(biasPerSample, c) : undefined);
  if (layer.kind === 'dense') {
    const normSq = tf.add<tf.Tensor1D>(tf.mul(tf.sum(tf.square(x), 1), tf.sum(tf.square(g), 1)), biasNormSq);
    return {
      layer, normSq, clippedBias,
      clippedWeight: (c) => tf.matMul(x, tf.mul<tf.Tensor2D>(g, tf.reshape(c, [n, 1])), true, false),
    };
  }
  if (layer.kind === 'affine') {
    // Group norm's scale: each sample's gradient is Σ_positions g ⊙ x̂ per channel.
    const weightPerSample = sumOverPositions(tf.mul(g, x), n);
    return {
      layer, clippedBias,
      normSq: tf.add<tf.Tensor1D>(tf.sum(tf.square(weightPerSample), 1), biasNormSq),
      clippedWeight: (c) => weightedRowSum(weightPerSample, c),
    };
  }
  const perSample = convFilterGradients(layer, x, g, n); // [n, ...filterShape]
  return {
    layer, clippedBias,
    normSq: tf.add<tf.Tensor1D>(tf.sum(tf.square(tf.reshape(perSample, [n, -1])), 1), biasNormSq),
    clippedWeight: (c) => weightedRowSum(perSample, c),
  };
}

function nativeKernel(name: string): boolean {
  return tf.getBackend() === 'wasm' && tf.getKernel(name, 'wasm') !== undefined;
}

/** The native kernel's per-sample filter and bias gradients with their squared norms, from one call. */
function nativeConvParts(layer: Extract<TappedLayer, { kind: 'conv' }>, x: tf.Tensor, g: tf.Tensor): LayerParts {
  const attrs: DpConvPerSampleAttrs = { strides: layer.strides, filterShape: layer.filterShape, withBias: layer.bias !== undefined };
  const outputs = tf.engine().runKernel<tf.Tensor[]>(DP_CONV_PER_SAMPLE, { x, dy: g }, attrs as unknown as tf.NamedAttrMap);
  const [filterGrads, biasGrads] = outputs;
  return {
    layer,
    normSq: outputs[outputs.length - 1] as tf.Tensor1D,
    clippedWeight: (c) => weightedRowSum(filterGrads, c),
    clippedBias: (c) => (layer.bias ? weightedRowSum(biasGrads, c) : undefined),
  };
}

/** Σ_i c_i m_i over the first axis of m: [n, ...shape] -> shape. */
function weightedRowSum(m: tf.Tensor, c: tf.Tensor1D): tf.Tensor {
  if (nativeKernel(DP_WEIGHTED_ROW_SUM)) return tf.engine().runKernel<tf.Tensor>(DP_WEIGHTED_ROW_SUM, { m, factors: c });
  const n = m.shape[0];
  return tf.reshape(tf.matMul(tf.reshape(c, [1, n]), tf.reshape(m, [n, -1])), m.shape.slice(1));
}

/**
 * Each sample's filter gradient as [n, ...filterShape] without the native kernels: the backend's filter-gradient
 * kernel on each sample's slice. Exact: the same arithmetic as the batch gradient, sample by sample.
 */
function convFilterGradients(layer: Extract<TappedLayer, { kind: 'conv' }>, x: tf.Tensor, g: tf.Tensor, n: number): tf.Tensor {
  const filterShape = layer.filterShape;
  const kernel = layer.dims === 2 ? 'Conv2DBackpropFilter' : 'Conv3DBackpropFilterV2';
  const attrs = layer.dims === 2
    ? { strides: layer.strides, pad: 'valid', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape }
    : { strides: layer.strides, pad: 'valid', filterShape };
  const rows = Array.from({ length: n }, (_, i) => {
    const xi = tf.slice(x, i, 1);
    const gi = tf.slice(g, i, 1);
    const dw = tf.engine().runKernel<tf.Tensor>(kernel, { x: xi, dy: gi }, attrs as unknown as tf.NamedAttrMap);
    return tf.expandDims(dw, 0);
  });
  return tf.concat(rows, 0);
}

/**
 * [n, ..., C] -> [n, C], summed over every position: the native per-sample sums (float64 accumulators) when in
 * use, else a batched matrix product (the stock Sum over middle axes is far slower).
 */
function sumOverPositions(g: tf.Tensor, n: number): tf.Tensor2D {
  if (g.rank === 2) return g as tf.Tensor2D;
  if (nativeKernel(PER_SAMPLE_SUM)) return tf.engine().runKernel<tf.Tensor2D>(PER_SAMPLE_SUM, { x: g });
  const channels = g.shape[g.rank - 1];
  const positions = g.size / (n * channels);
  const rows = tf.reshape<tf.Rank.R3>(g, [n, positions, channels]);
  return tf.reshape<tf.Rank.R2>(tf.matMul(tf.ones<tf.Rank.R3>([n, 1, positions]), rows), [n, channels]);
}
