/**
 * Samples → the tensors a PlanModel and the engine's loss take: image inputs channels-last `[N, ...size, C]`
 * (from the channels-first arrays pipeline.imageInput gives), tabular `[N, F]`, target `[N]` (int32 class indices
 * for cross_entropy, float32 otherwise; `[N, heads]` float32 with several heads) or, for an image target,
 * `[N, ...size, C]` like the image. What a node's BatchSource returns for a plan.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DenseVolume } from './pipeline';
import { tabularFeatureIndex } from './preprocess';
import { isImageTarget, PlanSpec } from './spec';
import { hasSeveralHeads } from './heads';

export interface PlanSample {
  /** Channels first, as pipeline.imageInput returns it. */
  image?: DenseVolume;
  tabular?: Float32Array;
  /** A class index or value (the primary head's); for an image target (image-target.ts) the channels-first target image. */
  target: number | DenseVolume;
  /** Targets of the further heads of a plan with several heads (PlanSpec.heads order). */
  headTargets?: number[];
}

export interface PlanBatch {
  inputs: Record<string, tf.Tensor>;
  target: tf.Tensor;
}

export function makeBatch(spec: PlanSpec, samples: PlanSample[]): PlanBatch {
  if (samples.length === 0) throw new Error(`plan ${spec.name}: a batch needs at least one sample`);
  const n = samples.length;
  const inputs: Record<string, tf.Tensor> = {};
  if (spec.inputs.image) {
    inputs.image = channelsLast(spec, samples.map((s, i) => {
      if (!s.image) throw new Error(`plan ${spec.name}: sample ${i} has no image`);
      return s.image;
    }), 'image');
  }
  if (spec.inputs.tabular) {
    const f = tabularFeatureIndex(spec).count;
    const data = new Float32Array(n * f);
    samples.forEach((s, i) => {
      if (!s.tabular || s.tabular.length !== f) throw new Error(`plan ${spec.name}: sample ${i} needs ${f} tabular features`);
      data.set(s.tabular, i * f);
    });
    inputs.tabular = tf.tensor(data, [n, f]);
  }
  if (isImageTarget(spec.target)) return { inputs, target: channelsLast(spec, samples.map((s, i) => imageTargetOf(spec, s, i)), 'target') };
  const scalar = (s: PlanSample, i: number): number => {
    if (typeof s.target !== 'number') throw new Error(`plan ${spec.name}: sample ${i} has an image target, the plan a column target`);
    return s.target;
  };
  if (hasSeveralHeads(spec)) {
    // One column per head, primary first (heads.ts).
    const h = 1 + spec.heads!.length;
    const data = new Float32Array(n * h);
    samples.forEach((s, i) => {
      if (s.headTargets?.length !== h - 1) throw new Error(`plan ${spec.name}: sample ${i} needs a target for each of its ${h} heads`);
      data.set([scalar(s, i), ...s.headTargets], i * h);
    });
    return { inputs, target: tf.tensor(data, [n, h], 'float32') };
  }
  const target =
    spec.loss.type === 'cross_entropy'
      ? tf.tensor(Int32Array.from(samples, scalar), [n], 'int32')
      : tf.tensor(Float32Array.from(samples, scalar), [n], 'float32');
  return { inputs, target };
}

function imageTargetOf(spec: PlanSpec, sample: PlanSample, index: number): DenseVolume {
  if (typeof sample.target === 'number') throw new Error(`plan ${spec.name}: sample ${index} has a number target, the plan an image target`);
  return sample.target;
}

/** Channels-first arrays of one shape → one channels-last float32 tensor `[N, ...spatial, C]`. */
function channelsLast(spec: PlanSpec, arrays: DenseVolume[], what: string): tf.Tensor {
  const shape = arrays[0].shape;
  const per = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(arrays.length * per);
  arrays.forEach((a, i) => {
    if (a.shape.join() !== shape.join()) throw new Error(`plan ${spec.name}: sample ${i} ${what} shape differs from [${shape.join(', ')}]`);
    data.set(a.data, i * per);
  });
  const rank = shape.length + 1;
  const perm = [0, ...Array.from({ length: rank - 2 }, (_, a) => a + 2), 1];
  return tf.tidy(() => tf.transpose(tf.tensor(data, [arrays.length, ...shape]), perm));
}
