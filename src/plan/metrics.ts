/**
 * The validation metrics of a plan, computed as the generated PyTorch plan's `testing_step` computes them
 * (src/plan/pytorch.ts `metricLines`): a Python node running the generated plan reports these names and values,
 * so a TS node reports the same (`LOSS` alone when the plan lists none). Wire names are Fed-BioMed's MetricTypes
 * where one exists (ACCURACY, PRECISION, RECALL, F1_SCORE), else upper-case plan names (AUC, SPECIFICITY…).
 * Fed-BioMed ignores `test_metric` when a plan defines `testing_step`, and so do we.
 * AUC is left out of the results when the validation set holds a single class (it is undefined there, and a
 * non-number would break a Python researcher's console).
 */
import * as tf from '@tensorflow/tfjs-core';
import { makeLoss } from '../engine/losses';
import { binaryConfusion, precisionRecallF1, rocAuc, specificity } from '../engine/metrics';
import { formatPath, PathSegment, PlanIssue } from './errors';
import { engineLoss, planLoss } from './training';
import { hasSeveralHeads, headColumns, headMetricKey, headView, planHeads } from './heads';
import { validatePlan } from './validate';
import { LossSpec, MetricName, PlanSpec } from './spec';
import type { Shape } from './graph';

export const METRIC_WIRE_NAMES: Record<MetricName, string> = {
  loss: 'LOSS',
  accuracy: 'ACCURACY',
  mse: 'MSE',
  mae: 'MAE',
  precision: 'PRECISION',
  recall: 'RECALL',
  f1_score: 'F1_SCORE',
  specificity: 'SPECIFICITY',
  balanced_accuracy: 'BALANCED_ACCURACY',
  auc: 'AUC',
  dice: 'DICE',
};

/** Metrics computed from class decisions (and scores, for AUC) rather than from the raw output. */
export const CLASSIFICATION_METRICS: ReadonlySet<MetricName> = new Set(['precision', 'recall', 'f1_score', 'specificity', 'balanced_accuracy', 'auc', 'dice']);
const BINARY_ONLY: ReadonlySet<MetricName> = new Set(['specificity', 'auc', 'dice']);

/** A binary task: one BCE output, or cross-entropy over two classes. */
function isBinaryTask(spec: PlanSpec, outputShape: Shape): boolean {
  return spec.loss.type === 'bce' || spec.loss.type === 'focal' || (spec.loss.type === 'cross_entropy' && outputShape[0] === 2);
}

/** Metrics that cannot be computed for the plan's task (called by validation with the resolved output shape). */
export function metricIssues(spec: PlanSpec, outputShape: Shape, at: PathSegment[] = ['metrics']): PlanIssue[] {
  const issues: PlanIssue[] = [];
  spec.metrics.forEach((metric, i) => {
    const path = formatPath([...at, i]);
    if (CLASSIFICATION_METRICS.has(metric) && (spec.loss.type === 'mse' || spec.loss.type === 'l1')) issues.push({ path, message: `${metric} needs a classification loss (bce or cross_entropy), the plan uses ${spec.loss.type}` });
    else if (BINARY_ONLY.has(metric) && !isBinaryTask(spec, outputShape)) {
      issues.push({ path, message: `${metric} needs a binary task (bce, or cross_entropy over 2 classes); the output has ${outputShape[0]} classes` });
    }
  });
  return issues;
}

/**
 * Metrics over the validation set: `output` is the model's `[N, K]` output, `target` the targets `[N]`. With
 * several heads (heads.ts), `output` is `[N, ΣK]` and `target` `[N, H]`: each head's metrics are reported as
 * `<output node>_<METRIC>`, and `LOSS` is the training loss (Σ weight · loss).
 */
export function planMetrics(spec: PlanSpec, output: tf.Tensor, target: tf.Tensor): Record<string, number> {
  if (hasSeveralHeads(spec)) return severalHeadsMetrics(spec, output, target);
  return singleHeadMetrics(spec, output, target);
}

function severalHeadsMetrics(spec: PlanSpec, output: tf.Tensor, target: tf.Tensor): Record<string, number> {
  const heads = planHeads(spec);
  const n = output.shape[0];
  const columns = headColumns(validatePlan(spec).graph.outputShapes);
  const total = tf.tidy(() => makeLoss(planLoss(spec))(output, target));
  const results: Record<string, number> = { [METRIC_WIRE_NAMES.loss]: total.dataSync()[0] };
  total.dispose();
  heads.forEach((head, h) => {
    if (head.metrics.length === 0) return;
    const [out, y] = tf.tidy(() => [
      tf.slice(output, [0, columns[h].start], [n, columns[h].width]),
      tf.cast(tf.reshape(tf.slice(target, [0, h], [n, 1]), [n]), head.loss.type === 'cross_entropy' ? 'int32' : 'float32'),
    ]);
    for (const [key, value] of Object.entries(singleHeadMetrics(headView(spec, head), out, y))) results[headMetricKey(head, key)] = value;
    tf.dispose([out, y]);
  });
  return results;
}

function singleHeadMetrics(spec: PlanSpec, output: tf.Tensor, target: tf.Tensor): Record<string, number> {
  const metrics: MetricName[] = spec.metrics.length > 0 ? spec.metrics : ['loss'];
  const results: Record<string, number> = {};
  // torch's y.long(): the target truncated toward zero.
  const labels = (): tf.Tensor => tf.tidy(() => {
    const y = tf.reshape(tf.cast(target, 'float32'), [-1]);
    return tf.mul(tf.sign(y), tf.floor(tf.abs(y)));
  });
  let classes: { truth: Float32Array; predicted: Float32Array } | undefined;
  const classLists = () => {
    if (!classes) {
      const [t, p] = [labels(), predictedClass(spec, output)];
      classes = { truth: t.dataSync() as Float32Array, predicted: p.dataSync() as Float32Array };
      tf.dispose([t, p]);
    }
    return classes;
  };
  for (const metric of metrics) {
    const name = METRIC_WIRE_NAMES[metric];
    if (CLASSIFICATION_METRICS.has(metric)) {
      const value = classificationMetric(metric, spec, output, classLists);
      if (value !== undefined) results[name] = value;
      continue;
    }
    const value = tf.tidy(() => {
      const y = tf.reshape(tf.cast(target, 'float32'), [-1]);
      const flat = tf.reshape(output, [-1]);
      switch (metric) {
        case 'loss':
          return makeLoss(engineLoss(spec.loss))(output, target);
        case 'accuracy':
          return tf.mean(tf.cast(tf.equal(predictedClass(spec, output), labels()), 'float32'));
        case 'mse':
          return tf.mean(tf.square(tf.sub(flat, y)));
        default:
          return tf.mean(tf.abs(tf.sub(flat, y)));
      }
    });
    results[name] = value.dataSync()[0];
    value.dispose();
  }
  return results;
}

function classificationMetric(
  metric: MetricName,
  spec: PlanSpec,
  output: tf.Tensor,
  classLists: () => { truth: Float32Array; predicted: Float32Array },
): number | undefined {
  const { truth, predicted } = classLists();
  switch (metric) {
    case 'precision':
      return precisionRecallF1(truth, predicted).precision;
    case 'recall':
      return precisionRecallF1(truth, predicted).recall;
    case 'f1_score':
      return precisionRecallF1(truth, predicted).f1;
    case 'specificity':
      return specificity(binaryConfusion(truth, predicted));
    case 'balanced_accuracy':
      return balancedAccuracy(truth, predicted);
    case 'dice': {
      const c = binaryConfusion(truth, predicted);
      const denominator = 2 * c.tp + c.fp + c.fn;
      return denominator === 0 ? 1 : (2 * c.tp) / denominator;
    }
    case 'auc': {
      const scores = tf.tidy(() => positiveScore(spec, output));
      const auc = rocAuc(truth, scores.dataSync());
      scores.dispose();
      return Number.isNaN(auc) ? undefined : auc;
    }
    default:
      throw new Error(`internal: ${metric} is not a classification metric`);
  }
}

/** scikit-learn's balanced_accuracy_score: the mean recall of the classes present in the truth. */
function balancedAccuracy(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  const classes = [...new Set(Array.from(truth))];
  if (classes.length === 0) return 0;
  let sum = 0;
  for (const c of classes) {
    let hits = 0;
    let support = 0;
    for (let i = 0; i < truth.length; i++) {
      if (truth[i] !== c) continue;
      support++;
      if (predicted[i] === c) hits++;
    }
    sum += hits / support;
  }
  return sum / classes.length;
}

/**
 * A score ordered like the positive-class probability, for AUC: the output itself for BCE (logit or probability:
 * both monotone in it), logit₁ − logit₀ for two-class cross-entropy (monotone in softmax p₁, without its saturation).
 */
function positiveScore(spec: PlanSpec, output: tf.Tensor): tf.Tensor {
  if (spec.loss.type === 'cross_entropy') {
    const [l0, l1] = tf.split(output, 2, 1);
    return tf.reshape(tf.sub(l1, l0), [-1]);
  }
  return tf.reshape(output, [-1]);
}

/**
 * The generated plan's prediction, as float32: threshold 0.5 on probabilities (0 on logits) for BCE and focal, argmax for
 * cross-entropy, the raw output for regression.
 */
function predictedClass(spec: PlanSpec, output: tf.Tensor): tf.Tensor {
  switch (spec.loss.type) {
    case 'bce':
      return tf.cast(tf.greaterEqual(tf.reshape(output, [-1]), spec.loss.fromLogits ? 0 : 0.5), 'float32');
    case 'focal':
      return tf.cast(tf.greaterEqual(tf.reshape(output, [-1]), 0), 'float32');
    case 'cross_entropy':
      return tf.cast(tf.argMax(output, 1), 'float32');
    case 'mse':
    case 'l1':
      return tf.reshape(output, [-1]);
    case 'soft_dice':
    case 'weighted':
      return tf.cast(tf.greaterEqual(tf.reshape(output, [-1]), outputsLogits(spec.loss) ? 0 : 0.5), 'float32');
  }
}

/** Whether a mask loss reads logits (threshold 0) or probabilities (0.5): a weighted sum by its first term. */
export function outputsLogits(loss: LossSpec): boolean {
  if (loss.type === 'weighted') return loss.terms !== undefined && loss.terms.length > 0 && outputsLogits(loss.terms[0].loss);
  return loss.type === 'focal' || Boolean(loss.fromLogits);
}
