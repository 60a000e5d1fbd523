/**
 * Plans with several heads (PlanSpec.heads, graph models): the list of heads, each head's view of the plan (the
 * single-output code for losses, predictions and metrics runs on it unchanged), and the training loss as a
 * weighted sum of per-output losses.
 *
 * On TS nodes such a model's output is its heads' outputs side by side, `[N, K₁ + K₂ + …]` (primary head first),
 * and a batch's target has one column per head, `[N, H]` (float32; class indices are cast for cross-entropy).
 * The generated PyTorch module returns the same heads as a tuple and its `_fbts_loss` computes the same sum.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LossFn } from '../engine/losses';
import type { Shape } from './graph';
import { isGraphModel, LossSpec, MetricName, PlanSpec, TargetSpec } from './spec';

export interface PlanHead {
  /** The graph node giving the head's output (`head` for the single output of a branch model). */
  output: string;
  target: TargetSpec;
  loss: LossSpec;
  metrics: MetricName[];
}

export function hasSeveralHeads(spec: PlanSpec): boolean {
  return (spec.heads?.length ?? 0) > 0;
}

/** Every head, the primary one (model.output, target, loss, metrics) first. */
export function planHeads(spec: PlanSpec): PlanHead[] {
  const output = isGraphModel(spec.model) ? spec.model.output : 'head';
  return [
    { output, target: spec.target, loss: spec.loss, metrics: spec.metrics },
    ...(spec.heads ?? []).map((h) => ({ output: h.output, target: h.target, loss: h.loss, metrics: h.metrics ?? [] })),
  ];
}

/** The plan as one head sees it: a single-output plan with that head's target, loss and metrics. */
export function headView(spec: PlanSpec, head: PlanHead): PlanSpec {
  const { heads: _heads, ...single } = spec;
  return { ...single, target: head.target, loss: head.loss, metrics: head.metrics };
}

/** Weight of a head's loss in the training loss. */
export function lossWeight(loss: LossSpec): number {
  return loss.weight ?? 1;
}

/** One output's part of a combined loss: which prediction columns and target column it reads, and its weight. */
export interface OutputLossTerm {
  loss: LossFn;
  weight: number;
  /** First prediction column and count. */
  start: number;
  width: number;
  targetColumn: number;
  /** Class-index targets (cross-entropy) are cast to int32. */
  integerTarget: boolean;
}

/** Σ weight · loss over the outputs (in order): a prediction `[N, Σ widths]` against a target `[N, columns]`. */
export function weightedSumLoss(terms: OutputLossTerm[]): LossFn {
  return (prediction, target) =>
    tf.tidy(() => {
      const n = prediction.shape[0];
      const parts = terms.map((t) => {
        const out = tf.slice(prediction, [0, t.start], [n, t.width]);
        const column = tf.reshape(tf.slice(target, [0, t.targetColumn], [n, 1]), [n]);
        return tf.mul(t.loss(out, t.integerTarget ? tf.cast(column, 'int32') : column), t.weight);
      });
      return parts.reduce((sum, part) => tf.add(sum, part)) as tf.Scalar;
    });
}

/** Where each head's columns sit in the side-by-side output, from the heads' resolved (flat) output shapes. */
export function headColumns(outputShapes: Shape[]): { start: number; width: number }[] {
  let start = 0;
  return outputShapes.map((shape) => {
    const width = shape.reduce((a, b) => a * b, 1);
    const at = { start, width };
    start += width;
    return at;
  });
}

/** Metric key of one head's metric in a plan with several heads. */
export function headMetricKey(head: PlanHead, wireName: string): string {
  return `${head.output}_${wireName}`;
}
