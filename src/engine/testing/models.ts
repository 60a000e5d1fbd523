/**
 * Tiny TrainableModels and in-memory BatchSources for engine tests (real tfjs variables and ops).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ModelParameter, TrainableModel } from '../model';
import { Batch, BatchSource } from '../train';

let counter = 0;

/** y = x @ W + b (optionally sigmoid), W stored [in, out] like tfjs dense kernels. */
export function linearModel(weights: number[][], bias: number[], activation: 'none' | 'sigmoid' = 'none'): TrainableModel {
  const id = ++counter;
  const w = tf.variable(tf.tensor2d(weights), true, `test_linear_${id}_w`);
  const b = tf.variable(tf.tensor1d(bias), true, `test_linear_${id}_b`);
  const params: ModelParameter[] = [
    { name: 'fc.weight', variable: w, trainable: true },
    { name: 'fc.bias', variable: b, trainable: true },
  ];
  return {
    forward(inputs) {
      return tf.tidy(() => {
        const z = tf.add(tf.matMul(inputs.x as tf.Tensor2D, w), b);
        return activation === 'sigmoid' ? tf.sigmoid(z) : z;
      });
    },
    parameters: () => params,
    dispose() {
      w.dispose();
      b.dispose();
    },
  };
}

/** Serves rows of in-memory arrays; records which indices were asked for. */
export class ArraySource implements BatchSource {
  readonly requested: number[][] = [];

  constructor(
    private readonly x: number[][],
    private readonly y: number[],
    private readonly targetDtype: 'float32' | 'int32' = 'float32',
  ) {}

  get size(): number {
    return this.x.length;
  }

  batch(indices: number[]): Batch {
    this.requested.push(indices);
    return {
      inputs: { x: tf.tensor2d(indices.map((i) => this.x[i])) },
      target: tf.tensor1d(
        indices.map((i) => this.y[i]),
        this.targetDtype,
      ),
    };
  }
}

export function weightsOf(model: TrainableModel): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const p of model.parameters()) out[p.name] = Array.from(p.variable.dataSync());
  return out;
}
