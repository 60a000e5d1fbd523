/**
 * A plan's network on tfjs, written with plain ops over our own variables (not tf.layers) so that names and
 * layouts are ours: every variable carries its PyTorch state_dict name, and the forward pass computes exactly
 * what the generated PyTorch module computes (same padding rule, same batch-norm statistics and running-stat
 * update, flatten in NCHW order).
 *
 * Inputs are channels-last (tfjs): image `[N, ...inputs.image.size, C]`, tabular `[N, F]`, keyed 'image' and
 * 'tabular'. The output is the output node's value, channels last (`[N, K]` for a classifier); with several heads,
 * their flat outputs side by side (`[N, K₁ + K₂ + …]`, heads.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { LayerTap, ModelParameter, TrainableModel } from '../engine/model';
import { batchNormTrain } from '../engine/batch-norm';
import { biasAdd, biasRelu, Conv2DPad, conv2dBiasRelu } from '../engine/fused';
import { groupNorm, groupNormaliseOnly } from '../engine/group-norm';
import { SeededRandom } from '../engine/prng';
import { TorchTensor } from '../serialize';
import {
  InputName,
  ResolvedBatchNorm,
  ResolvedConv,
  ResolvedGraph,
  ResolvedGroupNorm,
  ResolvedLayer,
  ResolvedPool,
} from './graph';
import { initialWeightsForGraph } from './init';
import { describeParameters, ParameterDescriptor } from './parameters';
import { PlanSpec } from './spec';
import { validatePlan } from './validate';
import { importWeights } from './weights';
import { runImageLayer, upsample2dByInterpolation } from './image-layers-tfjs';

export interface BuildModelOptions {
  /** Seed of the initial weights (PyTorch-like init) and of dropout masks. */
  seed?: number;
  /** Start from these weights (PyTorch layout and names) instead of a fresh initialisation. */
  weights?: Record<string, TorchTensor>;
}

export interface PlanParameter extends ModelParameter {
  descriptor: ParameterDescriptor;
}

let modelCounter = 0;

/** A TrainableModel built from a plan; parameters() lists them in PyTorch state_dict order. */
export class PlanModel implements TrainableModel {
  private readonly params: PlanParameter[];
  private readonly byName = new Map<string, PlanParameter>();
  private readonly dropoutRandom: SeededRandom;
  /** Ids of conv nodes (with bias) and batch-norm nodes whose only consumer is the ReLU node right after them: run
   *  as one fused op. */
  private readonly fusedWithNext = new Set<string>();
  private disposed = false;
  /** The DP engine's tap during a forward pass that asked for one. */
  private tap: LayerTap | undefined;

  constructor(
    readonly spec: PlanSpec,
    readonly graph: ResolvedGraph,
    options: BuildModelOptions = {},
  ) {
    const seed = options.seed ?? 0;
    this.dropoutRandom = new SeededRandom(seed ^ 0x5bd1e995);
    const id = ++modelCounter;
    const start = options.weights ?? initialWeightsForGraph(graph, seed);
    this.params = describeParameters(graph).map((descriptor) => {
      // Placeholder values; importWeights below sets the real ones (and checks them).
      const dtype = descriptor.dtype === 'int64' ? 'int32' : 'float32';
      // Variable names are global in tfjs: the model id keeps two models of one plan apart.
      const variable = tf.variable(tf.zeros(descriptor.tfShape, dtype), descriptor.trainable, `plan${id}/${descriptor.name}`);
      return { name: descriptor.name, variable, trainable: descriptor.trainable, descriptor };
    });
    for (const p of this.params) this.byName.set(p.name, p);
    importWeights(this, start);
    graph.nodes.forEach((node, i) => {
      const next = graph.nodes[i + 1];
      const consumers = graph.nodes.filter((n) => n.inputs.includes(node.id)).length;
      const fusable = (node.layer.type === 'conv' && node.layer.bias) || node.layer.type === 'batch_norm' || node.layer.type === 'group_norm';
      if (fusable && next?.layer.type === 'relu' && consumers === 1 && next.inputs[0] === node.id && !graph.outputs.includes(node.id)) {
        this.fusedWithNext.add(node.id);
      }
    });
  }

  parameters(): PlanParameter[] {
    return this.params.slice();
  }

  parameter(name: string): PlanParameter | undefined {
    return this.byName.get(name);
  }

  forward(inputs: Record<string, tf.Tensor>, training: boolean, tap?: LayerTap): tf.Tensor {
    if (this.disposed) throw new Error(`plan ${this.spec.name}: the model has been disposed`);
    this.tap = tap;
    try {
      return this.forwardBranches(inputs, training);
    } finally {
      this.tap = undefined;
    }
  }

  private forwardBranches(inputs: Record<string, tf.Tensor>, training: boolean): tf.Tensor {
    return tf.tidy(() => {
      const values = new Map<string, tf.Tensor>();
      for (const name of Object.keys(this.graph.inputShapes) as InputName[]) values.set(name, this.input(inputs, name));
      const nodes = this.graph.nodes;
      for (let i = 0; i < nodes.length; i++) {
        const { id, inputs: from, layer } = nodes[i];
        const args = from.map((name) => values.get(name)!);
        if (this.fusedWithNext.has(id)) {
          // conv + bias + ReLU: the bias and the ReLU as one fused op; batch norm + ReLU likewise in training, group
          // norm + ReLU always (same values; fewer passes over the activation).
          const fused =
            layer.type === 'batch_norm' ? this.batchNorm(layer, args[0], training, true)
            : layer.type === 'group_norm' ? this.groupNorm(layer, args[0], true)
            : this.conv(layer as ResolvedConv, args[0], true);
          values.set(nodes[i + 1].id, fused);
          i++;
          continue;
        }
        values.set(id, this.runLayer(layer, args, training));
      }
      // Several heads: their flat [N, K] outputs side by side (heads.ts).
      const outputs = this.graph.outputs.map((id) => values.get(id)!);
      return outputs.length === 1 ? outputs[0] : tf.concat(outputs, 1);
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.params) p.variable.dispose();
  }

  /** Checks an input against the plan (channels-last shape) and returns it as float32. */
  private input(inputs: Record<string, tf.Tensor>, name: InputName): tf.Tensor {
    const x = inputs[name];
    const perSample = this.graph.inputShapes[name]!;
    // channels first (torch view) → channels last (tfjs)
    const expected = perSample.length > 1 ? [...perSample.slice(1), perSample[0]] : perSample;
    if (!x) throw new Error(`plan ${this.spec.name}: missing input '${name}' (expected [N, ${expected.join(', ')}])`);
    const ok = x.rank === expected.length + 1 && expected.every((n, i) => x.shape[i + 1] === n);
    if (!ok) {
      throw new Error(`plan ${this.spec.name}: input '${name}' has shape [${x.shape.join(', ')}], expected [N, ${expected.join(', ')}]`);
    }
    return x.dtype === 'float32' ? x : tf.cast(x, 'float32');
  }

  private variable(layer: ResolvedLayer, role: string): tf.Variable {
    const p = this.byName.get(`${layer.key}.${role}`);
    if (!p) throw new Error(`internal: no parameter ${layer.key}.${role}`);
    return p.variable;
  }

  /** State_dict names of a dense or conv layer's weight and bias. */
  private roles(layer: ResolvedLayer & { bias: boolean }): { weight: string; bias?: string } {
    const name = (role: string) => `${layer.key}.${role}`;
    return layer.bias ? { weight: name('weight'), bias: name('bias') } : { weight: name('weight') };
  }

  private runLayer(layer: ResolvedLayer, args: tf.Tensor[], training: boolean): tf.Tensor {
    const x = args[0];
    switch (layer.type) {
      case 'conv_transpose':
      case 'spatial_broadcast':
        return runImageLayer(layer, x, (role) => this.variable(layer, role));
      case 'add':
        return args.slice(1).reduce((sum, t) => tf.add(sum, t), x);
      case 'concat':
        return tf.concat(args, -1); // channels are last in tfjs: PyTorch's dim=1
      case 'conv':
        return this.conv(layer, x);
      case 'max_pool':
      case 'avg_pool':
        return pool(layer, x);
      case 'global_avg_pool':
        return tf.mean(x, range(1, x.rank - 1));
      case 'global_max_pool':
        return tf.max(x, range(1, x.rank - 1));
      case 'upsample':
        return layer.mode === 'nearest' ? upsampleNearest(x, layer.scale) : upsample2dByInterpolation(layer, x as tf.Tensor4D);
      case 'instance_norm':
        // Per sample and channel over the spatial axes: group norm with one channel per group.
        if (!layer.affine) return groupNormaliseOnly(x, layer.features, layer.eps);
        return groupNorm(x, this.variable(layer, 'weight'), this.variable(layer, 'bias'), layer.features, layer.eps);
      case 'layer_norm': {
        // Per sample over everything: group norm's normalisation with 1 group; the affine is per element.
        const normalised = groupNormaliseOnly(x, 1, layer.eps);
        if (!layer.affine) return normalised;
        return tf.add(tf.mul(normalised, this.variable(layer, 'weight')), this.variable(layer, 'bias'));
      }
      case 'batch_norm':
        return this.batchNorm(layer, x, training);
      case 'group_norm':
        return this.groupNorm(layer, x);
      case 'dropout':
      case 'dropout2d':
      case 'dropout3d': {
        if (!training || layer.rate === 0) return x;
        // Channel dropout: one draw per sample and channel (channels last), broadcast over the spatial axes.
        const noiseShape = layer.type === 'dropout' ? undefined : [x.shape[0], ...x.shape.slice(1, -1).map(() => 1), x.shape[x.rank - 1]];
        return tf.dropout(x, layer.rate, noiseShape, this.dropoutRandom.nextInt(2 ** 31));
      }
      case 'flatten': {
        if (x.rank === 2) return x;
        // NHWC → NCHW before flattening, so features come in PyTorch's order and dense weights need no permutation.
        const perm = [0, x.rank - 1, ...range(1, x.rank - 1)];
        return tf.reshape(tf.transpose(x, perm), [x.shape[0], -1]);
      }
      case 'dense': {
        const z = tf.matMul(x, this.variable(layer, 'weight'));
        const y = this.tap ? this.tap({ kind: 'dense', ...this.roles(layer) }, x, z) : z;
        return layer.bias ? tf.add(y, this.variable(layer, 'bias')) : y;
      }
      case 'relu':
        return tf.relu(x);
      case 'leaky_relu':
        return tf.leakyRelu(x, layer.negativeSlope);
      case 'sigmoid':
        return tf.sigmoid(x);
      case 'softmax':
        return tf.softmax(x, -1); // channels are last in tfjs: PyTorch's dim=1
    }
  }

  private conv(layer: ResolvedConv, x: tf.Tensor, thenRelu = false): tf.Tensor {
    const w = this.variable(layer, 'weight');
    let y: tf.Tensor;
    if (this.tap) {
      // The DP engine's per-sample gradients need the padded input itself.
      const padded = padInput(layer, x);
      const z = convValid(layer, padded, w);
      y = this.tap({ kind: 'conv', dims: layer.dims, strides: [...layer.stride], filterShape: w.shape, ...this.roles(layer) }, padded, z);
    } else if (thenRelu && layer.bias) {
      return convolve(layer, x, w, this.variable(layer, 'bias'));
    } else {
      y = convolve(layer, x, w);
    }
    if (!layer.bias) return y;
    const bias = this.variable(layer, 'bias');
    return thenRelu ? biasRelu(y, bias) : biasAdd(y, bias);
  }

  /** nn.GroupNorm: per sample, mean and biased variance over each group's channels and all positions. */
  private groupNorm(layer: ResolvedGroupNorm, x: tf.Tensor, thenRelu = false): tf.Tensor {
    const gamma = this.variable(layer, 'weight');
    const beta = this.variable(layer, 'bias');
    if (!this.tap) return groupNorm(x, gamma, beta, layer.groups, layer.eps, thenRelu);
    // The DP engine's per-sample gradients of the affine need its input, the normalised activation.
    const normalised = groupNormaliseOnly(x, layer.groups, layer.eps);
    const scaled = tf.mul(normalised, gamma);
    const z = this.tap({ kind: 'affine', weight: `${layer.key}.weight`, bias: `${layer.key}.bias` }, normalised, scaled);
    return thenRelu ? tf.relu(tf.add(z, beta)) : tf.add(z, beta);
  }

  private batchNorm(layer: ResolvedBatchNorm, x: tf.Tensor, training: boolean, thenRelu = false): tf.Tensor {
    const gamma = this.variable(layer, 'weight');
    const beta = this.variable(layer, 'bias');
    const runningMean = this.variable(layer, 'running_mean');
    const runningVar = this.variable(layer, 'running_var');
    if (!training) {
      const normalised = tf.mul(tf.sub(x, runningMean), tf.rsqrt(tf.add(runningVar, layer.eps)));
      const y = tf.add(tf.mul(normalised, gamma), beta);
      return thenRelu ? tf.relu(y) : y;
    }
    const count = x.size / x.shape[x.rank - 1];
    if (count < 2) {
      throw new Error(`${layer.path} (batch_norm): training needs more than 1 value per channel, got input [${x.shape.join(', ')}]`);
    }
    // One op with its analytic gradient (engine/batch-norm.ts); normalises with the biased batch variance.
    const { y, mean, variance } = batchNormTrain(x, gamma, beta, layer.eps, thenRelu);
    // Running statistics as PyTorch keeps them: unbiased variance, exponential average with `momentum`.
    // (assign() is not recorded on the gradient tape, so no gradient flows through these updates.)
    const m = layer.momentum;
    const unbiased = tf.mul(variance, count / (count - 1));
    runningMean.assign(tf.add(tf.mul(runningMean, 1 - m), tf.mul(mean, m)));
    runningVar.assign(tf.add(tf.mul(runningVar, 1 - m), tf.mul(unbiased, m)));
    const tracked = this.variable(layer, 'num_batches_tracked');
    tracked.assign(tf.add(tracked, tf.scalar(1, 'int32')));
    return y;
  }
}

/** PyTorch's zero padding as an explicit pad (none when there is nothing to pad). */
function padInput(layer: ResolvedConv, x: tf.Tensor): tf.Tensor {
  const needsPad = layer.padBefore.some((p) => p > 0) || layer.padAfter.some((p) => p > 0);
  return needsPad ? tf.pad(x, [[0, 0], ...layer.padBefore.map((b, i): [number, number] => [b, layer.padAfter[i]]), [0, 0]]) : x;
}

/** Without reluBias the convolution; with it, relu(convolution + reluBias). */
function convValid(layer: ResolvedConv, padded: tf.Tensor, w: tf.Tensor, reluBias?: tf.Tensor): tf.Tensor {
  if (layer.dims === 2) return conv2d(layer, padded, w, 'valid', reluBias);
  const y = tf.conv3d(padded as tf.Tensor5D, w as tf.Tensor5D, layer.stride as [number, number, number], 'valid');
  return reluBias ? biasRelu(y, reluBias) : y;
}

function conv2d(layer: ResolvedConv, x: tf.Tensor, w: tf.Tensor, pad: Conv2DPad, reluBias?: tf.Tensor): tf.Tensor {
  const stride = layer.stride as [number, number];
  return reluBias
    ? conv2dBiasRelu(x as tf.Tensor4D, w as tf.Tensor4D, reluBias, stride, pad)
    : tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, pad);
}

/**
 * The convolution with PyTorch's zero padding handed to the conv kernels where tfjs can express it (explicit pads
 * in 2-D; in 3-D, tfjs's 'same' when it is the same padding: stride 1, odd kernel, (k − 1)/2 each side), which
 * saves a padded copy of the input forward and a slice of its gradient backward; an explicit pad otherwise. Pads
 * at least as large as the kernel stay explicit (the pure wasm input-gradient kernel refuses them). With `reluBias`,
 * relu(convolution + reluBias): in 2-D one native kernel (engine/fused.ts) that adds the bias while the output is
 * cached.
 */
function convolve(layer: ResolvedConv, x: tf.Tensor, w: tf.Tensor, reluBias?: tf.Tensor): tf.Tensor {
  const { padBefore, padAfter, kernel, stride } = layer;
  const none = padBefore.every((p) => p === 0) && padAfter.every((p) => p === 0);
  const small = [...padBefore, ...padAfter].every((p, i) => p < kernel[i % kernel.length]);
  if (none || !small) return convValid(layer, padInput(layer, x), w, reluBias);
  if (layer.dims === 2) return conv2d(layer, x, w, [[0, 0], [padBefore[0], padAfter[0]], [padBefore[1], padAfter[1]], [0, 0]], reluBias);
  const same = stride.every((s) => s === 1) && kernel.every((k, i) => k % 2 === 1 && padBefore[i] === (k - 1) / 2 && padAfter[i] === padBefore[i]);
  if (!same) return convValid(layer, padInput(layer, x), w, reluBias);
  const y = tf.conv3d(x as tf.Tensor5D, w as tf.Tensor5D, stride as [number, number, number], 'same');
  return reluBias ? biasRelu(y, reluBias) : y;
}

/** Nearest-neighbour upsampling of a channels-last tensor: each spatial axis repeated `scale` times in place. */
function upsampleNearest(x: tf.Tensor, scale: number[]): tf.Tensor {
  return scale.reduce((y, s, i) => (s === 1 ? y : repeatAxis(y, i + 1, s)), x);
}

/**
 * Every element of `axis` repeated s times. Forward: expand, tile, merge; gradient: the s copies summed (written
 * here because tfjs has no Tile gradient beyond rank 4).
 */
function repeatAxis(x: tf.Tensor, axis: number, s: number): tf.Tensor {
  const shape = x.shape;
  const split = [...shape.slice(0, axis + 1), s, ...shape.slice(axis + 1)];
  const merged = [...shape];
  merged[axis] = shape[axis] * s;
  const forward = (input: tf.Tensor) => {
    const reps = split.map((_, d) => (d === axis + 1 ? s : 1));
    return {
      value: tf.reshape(tf.tile(tf.expandDims(input, axis + 1), reps), merged),
      gradFunc: (dy: tf.Tensor) => tf.sum(tf.reshape(dy, split), axis + 1),
    };
  };
  return tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0])(x);
}

function pool(layer: ResolvedPool, x: tf.Tensor): tf.Tensor {
  if (layer.dims === 2) {
    const k = layer.kernel as [number, number];
    const s = layer.stride as [number, number];
    return layer.type === 'max_pool' ? tf.maxPool(x as tf.Tensor4D, k, s, 'valid') : tf.avgPool(x as tf.Tensor4D, k, s, 'valid');
  }
  const k = layer.kernel as [number, number, number];
  const s = layer.stride as [number, number, number];
  return layer.type === 'max_pool' ? tf.maxPool3d(x as tf.Tensor5D, k, s, 'valid') : tf.avgPool3d(x as tf.Tensor5D, k, s, 'valid');
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}

/** Builds the tfjs model of a plan (validated first), seeded PyTorch-like initial weights unless `weights` given. */
export function buildModel(spec: PlanSpec, options: BuildModelOptions = {}): PlanModel {
  const { graph } = validatePlan(spec);
  return new PlanModel(spec, graph, options);
}
