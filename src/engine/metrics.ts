/**
 * Validation metrics, named as Fed-BioMed's `test_metric` values, plus the clinical ones the researcher reports
 * (sensitivity, specificity, ROC AUC). Plain arrays in, numbers out: no tensors, so both sides can use them.
 *
 * Conventions follow scikit-learn's defaults as Fed-BioMed v4.5 calls them: binary problems with labels {0,1},
 * positive label 1; multi-class precision/recall/F1 use `average="weighted"`… unless told otherwise.
 */

import type { TestMetric } from '../protocol/training-args';

/** Fed-BioMed's `test_metric` names (one list, in src/protocol). */
export type FedbiomedMetric = TestMetric;

/** Binary decisions from probabilities (threshold 0.5) or class ids from per-class scores (argmax). */
export function predictedLabels(scores: ArrayLike<number>, numClasses: number): number[] {
  const out: number[] = [];
  if (numClasses <= 1) {
    for (let i = 0; i < scores.length; i++) out.push(scores[i] >= 0.5 ? 1 : 0);
    return out;
  }
  for (let i = 0; i < scores.length / numClasses; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (scores[i * numClasses + c] > scores[i * numClasses + best]) best = c;
    out.push(best);
  }
  return out;
}

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export function binaryConfusion(truth: ArrayLike<number>, predicted: ArrayLike<number>): Confusion {
  assertSameLength(truth, predicted);
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i] === 1;
    const p = predicted[i] === 1;
    if (t && p) c.tp++;
    else if (!t && p) c.fp++;
    else if (!t && !p) c.tn++;
    else c.fn++;
  }
  return c;
}

/** Sensitivity (recall of the positive class); 0 when there is no positive case, as scikit-learn does. */
export function sensitivity(c: Confusion): number {
  return c.tp + c.fn === 0 ? 0 : c.tp / (c.tp + c.fn);
}

export function specificity(c: Confusion): number {
  return c.tn + c.fp === 0 ? 0 : c.tn / (c.tn + c.fp);
}

export function accuracy(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  assertSameLength(truth, predicted);
  if (truth.length === 0) return 0;
  let ok = 0;
  for (let i = 0; i < truth.length; i++) if (truth[i] === predicted[i]) ok++;
  return ok / truth.length;
}

/** Per-class precision, recall, F1 averaged: binary → positive class 1; multi-class → support-weighted. */
export function precisionRecallF1(truth: ArrayLike<number>, predicted: ArrayLike<number>):
  { precision: number; recall: number; f1: number } {
  assertSameLength(truth, predicted);
  const classes = [...new Set([...Array.from(truth), ...Array.from(predicted)])].sort((a, b) => a - b);
  const binary = classes.every((c) => c === 0 || c === 1);
  const perClass = (cls: number) => {
    let tp = 0, fp = 0, fn = 0;
    for (let i = 0; i < truth.length; i++) {
      if (predicted[i] === cls && truth[i] === cls) tp++;
      else if (predicted[i] === cls) fp++;
      else if (truth[i] === cls) fn++;
    }
    const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
    const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    return { precision, recall, f1, support: tp + fn };
  };
  if (binary) {
    const { precision, recall, f1 } = perClass(1);
    return { precision, recall, f1 };
  }
  let total = 0;
  const sum = { precision: 0, recall: 0, f1: 0 };
  for (const cls of classes) {
    const m = perClass(cls);
    total += m.support;
    sum.precision += m.precision * m.support;
    sum.recall += m.recall * m.support;
    sum.f1 += m.f1 * m.support;
  }
  return total === 0 ? { precision: 0, recall: 0, f1: 0 }
    : { precision: sum.precision / total, recall: sum.recall / total, f1: sum.f1 / total };
}

export function meanSquaredError(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  assertSameLength(truth, predicted);
  let s = 0;
  for (let i = 0; i < truth.length; i++) s += (truth[i] - predicted[i]) ** 2;
  return truth.length === 0 ? 0 : s / truth.length;
}

export function meanAbsoluteError(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  assertSameLength(truth, predicted);
  let s = 0;
  for (let i = 0; i < truth.length; i++) s += Math.abs(truth[i] - predicted[i]);
  return truth.length === 0 ? 0 : s / truth.length;
}

/** 1 − Var(y − ŷ) / Var(y), scikit-learn's explained_variance_score (1 when Var(y) = 0 and residuals are 0). */
export function explainedVariance(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  assertSameLength(truth, predicted);
  const n = truth.length;
  if (n === 0) return 0;
  const residual = Array.from(truth, (t, i) => t - predicted[i]);
  const variance = (xs: ArrayLike<number>) => {
    let m = 0;
    for (let i = 0; i < xs.length; i++) m += xs[i];
    m /= xs.length;
    let v = 0;
    for (let i = 0; i < xs.length; i++) v += (xs[i] - m) ** 2;
    return v / xs.length;
  };
  const vy = variance(truth);
  const vr = variance(residual);
  if (vy === 0) return vr === 0 ? 1 : 0;
  return 1 - vr / vy;
}

/**
 * Area under the ROC curve by the rank statistic (Mann–Whitney U), ties counted as one half.
 * Undefined (NaN) when only one class is present, as in scikit-learn which raises there.
 */
export function rocAuc(truth: ArrayLike<number>, scores: ArrayLike<number>): number {
  assertSameLength(truth, scores);
  const idx = Array.from({ length: truth.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const ranks = new Array<number>(truth.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[idx[k]] = rank;
    i = j + 1;
  }
  let pos = 0, rankSum = 0;
  for (let i = 0; i < truth.length; i++) if (truth[i] === 1) { pos++; rankSum += ranks[i]; }
  const neg = truth.length - pos;
  if (pos === 0 || neg === 0) return Number.NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** ROC curve points (false-positive rate, true-positive rate), from the highest threshold down. */
export function rocCurve(truth: ArrayLike<number>, scores: ArrayLike<number>): { fpr: number[]; tpr: number[]; thresholds: number[] } {
  assertSameLength(truth, scores);
  const idx = Array.from({ length: truth.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let pos = 0;
  for (let i = 0; i < truth.length; i++) if (truth[i] === 1) pos++;
  const neg = truth.length - pos;
  const fpr = [0], tpr = [0], thresholds = [Infinity];
  let tp = 0, fp = 0;
  for (let i = 0; i < idx.length; i++) {
    if (truth[idx[i]] === 1) tp++; else fp++;
    const last = i === idx.length - 1 || scores[idx[i + 1]] !== scores[idx[i]];
    if (last) {
      fpr.push(neg === 0 ? 0 : fp / neg);
      tpr.push(pos === 0 ? 0 : tp / pos);
      thresholds.push(scores[idx[i]]);
    }
  }
  return { fpr, tpr, thresholds };
}

/** Fed-BioMed's `test_metric` computed from targets and model outputs. */
export function fedbiomedMetric(name: FedbiomedMetric, truth: ArrayLike<number>, outputs: ArrayLike<number>,
  numClasses: number): number {
  switch (name) {
    case 'ACCURACY':
      return accuracy(truth, predictedLabels(outputs, numClasses));
    case 'F1_SCORE':
      return precisionRecallF1(truth, predictedLabels(outputs, numClasses)).f1;
    case 'PRECISION':
      return precisionRecallF1(truth, predictedLabels(outputs, numClasses)).precision;
    case 'RECALL':
      return precisionRecallF1(truth, predictedLabels(outputs, numClasses)).recall;
    case 'MEAN_SQUARE_ERROR':
      return meanSquaredError(truth, outputs);
    case 'MEAN_ABSOLUTE_ERROR':
      return meanAbsoluteError(truth, outputs);
    case 'EXPLAINED_VARIANCE':
      return explainedVariance(truth, outputs);
  }
}

function assertSameLength(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new RangeError(`metric inputs differ in length: ${a.length} vs ${b.length}`);
}
