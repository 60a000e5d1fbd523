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

/** A model the engine can train: a forward function plus its parameters. */
export interface TrainableModel {
  /** Forward pass. `inputs` are keyed by plan input name. `training` enables dropout and batch-norm updates. */
  forward(inputs: Record<string, tf.Tensor>, training: boolean): tf.Tensor;
  parameters(): ModelParameter[];
  dispose(): void;
}
