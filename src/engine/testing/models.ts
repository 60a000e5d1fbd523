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

/**
 * A small CNN exercising every project kernel in one backward pass: conv (stride 1 valid, stride 2 same) + bias +
 * relu, max pool, avg pool (same), then global average pool and a dense head. 2D (NHWC) or 3D (NDHWC).
 */
export function smallCnn(dims: 2 | 3, inChannels: number, seed = 1): TrainableModel {
  const id = ++counter;
  let state = seed;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648 - 0.5;
  };
  const make = (shape: number[], scale: number, name: string) =>
    tf.variable(tf.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next() * scale), shape), true, `cnn_${id}_${name}`);
  const k = dims === 2 ? [3, 3] : [3, 3, 3];
  const w1 = make([...k, inChannels, 4], 0.6, 'w1');
  const b1 = make([4], 0.2, 'b1');
  const w2 = make([...k, 4, 5], 0.4, 'w2');
  const b2 = make([5], 0.2, 'b2');
  const fc = make([5, 2], 0.5, 'fc');
  const params: ModelParameter[] = [
    { name: 'c1.weight', variable: w1, trainable: true },
    { name: 'c1.bias', variable: b1, trainable: true },
    { name: 'c2.weight', variable: w2, trainable: true },
    { name: 'c2.bias', variable: b2, trainable: true },
    { name: 'fc.weight', variable: fc, trainable: true },
  ];
  return {
    forward(inputs) {
      return tf.tidy(() => {
        const x = inputs.x;
        if (dims === 2) {
          let h = tf.relu(tf.add(tf.conv2d(x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'valid'), b1)) as tf.Tensor4D;
          h = tf.maxPool(h, 2, 2, 'valid');
          h = tf.relu(tf.add(tf.conv2d(h, w2 as tf.Tensor4D, 2, 'same'), b2)) as tf.Tensor4D;
          h = tf.avgPool(h, 2, 1, 'same');
          return tf.matMul(tf.mean<tf.Tensor2D>(h, [1, 2]), fc);
        }
        let h = tf.relu(tf.add(tf.conv3d(x as tf.Tensor5D, w1 as tf.Tensor5D, 1, 'valid'), b1)) as tf.Tensor5D;
        h = tf.maxPool3d(h, 2, 2, 'valid');
        h = tf.relu(tf.add(tf.conv3d(h, w2 as tf.Tensor5D, 2, 'same'), b2)) as tf.Tensor5D;
        h = tf.avgPool3d(h, 2, 1, 'same');
        return tf.matMul(tf.mean<tf.Tensor2D>(h, [1, 2, 3]), fc);
      });
    },
    parameters: () => params,
    dispose: () => params.forEach((p) => p.variable.dispose()),
  };
}

/** Deterministic images (any rank) with integer class labels. */
export class ImageSource implements BatchSource {
  private readonly data: Float32Array;
  private readonly sample: number;

  constructor(
    readonly size: number,
    private readonly shape: number[],
    private readonly classes = 2,
  ) {
    this.sample = shape.reduce((a, b) => a * b, 1);
    this.data = Float32Array.from({ length: size * this.sample }, (_, i) => Math.sin(0.37 * i) * Math.cos(0.011 * i));
  }

  batch(indices: number[]): Batch {
    const buf = new Float32Array(indices.length * this.sample);
    indices.forEach((s, j) => buf.set(this.data.subarray(s * this.sample, (s + 1) * this.sample), j * this.sample));
    return {
      inputs: { x: tf.tensor(buf, [indices.length, ...this.shape]) },
      target: tf.tensor1d(indices.map((s) => s % this.classes), 'int32'),
    };
  }
}
