/**
 * The benchmark models, written directly against tfjs ops as TrainableModels (channels-last, filters HWIO), and
 * their PyTorch twins for the same-run comparison.
 *
 * 2D reference CNN: input 4x128x128, Conv(4->16,k3,valid)+ReLU, MaxPool 2, Conv(16->32,k3)+ReLU, MaxPool 2,
 * Conv(32->64,k3)+ReLU, global average pool, Linear(64->1)+sigmoid. The 3D variant swaps in 3D convs/pools on a
 * 1x32x64x64 volume.
 */
import * as tf from '@tensorflow/tfjs-core';
import { biasRelu } from '../src/engine/fused';
import { ModelParameter, TrainableModel } from '../src/engine/model';
import { SeededRandom } from '../src/engine/prng';
import { Batch, BatchSource } from '../src/engine/train';
import { torchEpochLoop } from './lib/torch-epochs';

let counter = 0;

/** PyTorch's default init for conv/linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases. */
function uniform(shape: number[], fanIn: number, rng: SeededRandom, name: string): tf.Variable {
  const bound = 1 / Math.sqrt(fanIn);
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) values[i] = (rng.next() * 2 - 1) * bound;
  return tf.variable(tf.tensor(values, shape), true, `${name}_${++counter}`);
}

export function referenceCnn(dims: 2 | 3, inChannels: number, seed = 1): TrainableModel {
  const rng = new SeededRandom(seed);
  const widths = [inChannels, 16, 32, 64];
  const taps = dims === 2 ? 9 : 27;
  const params: ModelParameter[] = [];
  const convs: Array<{ w: tf.Variable; b: tf.Variable }> = [];
  for (let i = 0; i < 3; i++) {
    const fanIn = widths[i] * taps;
    const kernel = dims === 2 ? [3, 3, widths[i], widths[i + 1]] : [3, 3, 3, widths[i], widths[i + 1]];
    const w = uniform(kernel, fanIn, rng, `bench_conv${i}_w`);
    const b = uniform([widths[i + 1]], fanIn, rng, `bench_conv${i}_b`);
    convs.push({ w, b });
    params.push({ name: `features.${i * 3}.weight`, variable: w, trainable: true });
    params.push({ name: `features.${i * 3}.bias`, variable: b, trainable: true });
  }
  const fcW = uniform([64, 1], 64, rng, 'bench_fc_w');
  const fcB = uniform([1], 64, rng, 'bench_fc_b');
  params.push({ name: 'fc.weight', variable: fcW, trainable: true }, { name: 'fc.bias', variable: fcB, trainable: true });

  const conv = (x: tf.Tensor, i: number): tf.Tensor => {
    const { w, b } = convs[i];
    if (dims === 2) {
      // biasRelu, as plans run conv + bias + ReLU (src/plan/tfjs-model.ts). Not tf.fused.conv2d: while recording
      // gradients tfjs fuses only the bias, and its custom gradient always computes the input gradient too -- a
      // wasted full backward conv for the first layer.
      return biasRelu(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid'), b);
    }
    return biasRelu(tf.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, 1, 'valid'), b);
  };
  const pool = (x: tf.Tensor): tf.Tensor =>
    dims === 2 ? tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid') : tf.maxPool3d(x as tf.Tensor5D, 2, 2, 'valid');

  return {
    forward(inputs) {
      return tf.tidy(() => {
        let h = inputs.image;
        h = pool(conv(h, 0));
        h = pool(conv(h, 1));
        h = conv(h, 2);
        const pooled = tf.mean<tf.Tensor2D>(h, dims === 2 ? [1, 2] : [1, 2, 3]);
        return tf.sigmoid(tf.add(tf.matMul(pooled, fcW), fcB));
      });
    },
    parameters: () => params,
    dispose: () => params.forEach((p) => p.variable.dispose()),
  };
}

/** Synthetic samples generated once in plain memory; batches are copied out on demand like a node dataset. */
export class SyntheticImages implements BatchSource {
  private readonly images: Float32Array;
  private readonly labels: Float32Array;
  private readonly sampleSize: number;

  constructor(
    readonly size: number,
    private readonly sampleShape: number[],
    seed = 3,
  ) {
    const rng = new SeededRandom(seed);
    this.sampleSize = sampleShape.reduce((a, b) => a * b, 1);
    this.images = new Float32Array(size * this.sampleSize);
    for (let i = 0; i < this.images.length; i++) this.images[i] = rng.next();
    this.labels = new Float32Array(size);
    for (let i = 0; i < size; i++) this.labels[i] = rng.next() < 0.5 ? 0 : 1;
  }

  batch(indices: number[]): Batch {
    const buf = new Float32Array(indices.length * this.sampleSize);
    indices.forEach((s, j) => buf.set(this.images.subarray(s * this.sampleSize, (s + 1) * this.sampleSize), j * this.sampleSize));
    return {
      inputs: { image: tf.tensor(buf, [indices.length, ...this.sampleShape]) },
      target: tf.tensor(indices.map((s) => this.labels[s]), [indices.length, 1]),
    };
  }
}

/**
 * The same networks in PyTorch, as a worker: reads one line per request on stdin ("epoch") and answers the epoch's
 * milliseconds on stdout, so the benchmark can interleave PyTorch and tfjs epochs and both see the same machine
 * load (the machine is shared).
 */
export const TORCH_BENCH_WORKER = String.raw`
import json, sys, time, torch
cfg = json.loads(sys.stdin.readline())
torch.set_num_threads(cfg['threads'])
torch.manual_seed(0)
d = cfg['dims']
Conv = torch.nn.Conv2d if d == 2 else torch.nn.Conv3d
Pool = torch.nn.MaxPool2d if d == 2 else torch.nn.MaxPool3d
c = cfg['channels']
model = torch.nn.Sequential(
    Conv(c, 16, 3), torch.nn.ReLU(), Pool(2),
    Conv(16, 32, 3), torch.nn.ReLU(), Pool(2),
    Conv(32, 64, 3), torch.nn.ReLU(),
    torch.nn.AdaptiveAvgPool2d(1) if d == 2 else torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(),
    torch.nn.Linear(64, 1), torch.nn.Sigmoid())
x = torch.rand([cfg['samples'], c] + cfg['spatial'])
y = (torch.rand(cfg['samples'], 1) < 0.5).float()
${torchEpochLoop({ lossFn: 'torch.nn.BCELoss()', samples: "cfg['samples']", batchLoss: 'loss_fn(model(x[i:i+bs]), y[i:i+bs])' })}`;
