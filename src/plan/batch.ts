/**
 * Samples → the tensors a PlanModel and the engine's loss take: image inputs channels-last `[N, ...size, C]`
 * (from the channels-first arrays pipeline.imageInput gives), tabular `[N, F]`, target `[N]` (int32 class indices
 * for cross_entropy, float32 otherwise; `[N, heads]` float32 with several heads). What a node's BatchSource returns
 * for a plan.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DenseVolume } from './pipeline';
import { tabularFeatureIndex } from './preprocess';
import { PlanSpec } from './spec';
import { hasSeveralHeads } from './heads';

export interface PlanSample {
  /** Channels first, as pipeline.imageInput returns it. */
  image?: DenseVolume;
  tabular?: Float32Array;
  /** The (primary head's) target. */
  target: number;
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
    const shape = samples[0].image?.shape;
    if (!shape) throw new Error(`plan ${spec.name}: sample 0 has no image`);
    const per = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n * per);
    samples.forEach((s, i) => {
      if (!s.image || s.image.shape.join() !== shape.join()) throw new Error(`plan ${spec.name}: sample ${i} image shape differs from [${shape.join(', ')}]`);
      data.set(s.image.data, i * per);
    });
    const rank = shape.length + 1;
    const perm = [0, ...Array.from({ length: rank - 2 }, (_, a) => a + 2), 1];
    inputs.image = tf.tidy(() => tf.transpose(tf.tensor(data, [n, ...shape]), perm));
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
  if (hasSeveralHeads(spec)) {
    // One column per head, primary first (heads.ts).
    const h = 1 + spec.heads!.length;
    const data = new Float32Array(n * h);
    samples.forEach((s, i) => {
      if (s.headTargets?.length !== h - 1) throw new Error(`plan ${spec.name}: sample ${i} needs a target for each of its ${h} heads`);
      data.set([s.target, ...s.headTargets], i * h);
    });
    return { inputs, target: tf.tensor(data, [n, h], 'float32') };
  }
  const target =
    spec.loss.type === 'cross_entropy'
      ? tf.tensor(Int32Array.from(samples, (s) => s.target), [n], 'int32')
      : tf.tensor(Float32Array.from(samples, (s) => s.target), [n], 'float32');
  return { inputs, target };
}
