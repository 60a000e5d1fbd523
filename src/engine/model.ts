/**
 * The contract between a model built from a training plan (src/plan/) and the training loop (src/engine/).
 * The engine never knows about plans; the plan builder never knows about optimizers or batching.
 */
import type * as tf from '@tensorflow/tfjs-core';

/** A named, trainable or buffer (non-trainable, e.g. batch-norm running stats) parameter, in tfjs layout. */
export interface ModelParameter {
  /** PyTorch state_dict name, e.g. `features.0.weight`. */
  name: string;
  variable: tf.Variable;
  /** false for buffers such as BatchNorm running_mean / running_var / num_batches_tracked. */
  trainable: boolean;
}

/**
 * A layer with trainable parameters as the differential-privacy engine sees it (src/engine/dp/): enough to compute
 * its per-sample gradients from its input and the gradient of its output. Layers a model does not tap (e.g. batch
 * norm, whose per-sample gradients are not defined) leave their parameters uncovered, and DP training refuses them.
 */
export type TappedLayer =
  | { kind: 'dense'; weight: string; bias?: string }
  | { kind: 'conv'; dims: 2 | 3; strides: number[]; filterShape: number[]; weight: string; bias?: string }
  /** z = x · weight (per channel, channels last), then + bias: group norm's affine part, x the normalised input. */
  | { kind: 'affine'; weight: string; bias?: string };

/**
 * Called during a forward pass with a tapped layer's input `x` (already padded for a valid conv) and its output
 * before the bias `z`; returns the tensor the model uses in place of `z` (the same values).
 */
export type LayerTap = (layer: TappedLayer, x: tf.Tensor, z: tf.Tensor) => tf.Tensor;

/** A model the engine can train: a forward function plus its parameters. */
export interface TrainableModel {
  /**
   * Forward pass. `inputs` are keyed by plan input name. `training` enables dropout and batch-norm updates.
   * `tap`, when given, sees every layer with trainable parameters (differential privacy needs it).
   */
  forward(inputs: Record<string, tf.Tensor>, training: boolean, tap?: LayerTap): tf.Tensor;
  parameters(): ModelParameter[];
  dispose(): void;
}
