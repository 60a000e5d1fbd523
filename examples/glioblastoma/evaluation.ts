/**
 * Judging a model on the held-out patients: predicted probabilities, then AUC, sensitivity, specificity and the
 * confusion matrix at a 0.5 threshold, and the ROC curve for the plots.
 */
import * as tf from '@tensorflow/tfjs-core';
import { binaryConfusion, Confusion, rocAuc, rocCurve, sensitivity, specificity } from '../../src/engine/metrics';
import type { PlanDataset } from '../../src/data/plan-dataset';
import { buildModel } from '../../src/plan/tfjs-model';
import type { PlanSpec } from '../../src/plan/spec';
import type { DenseArray } from '../../src/serialize';

export const DECISION_THRESHOLD = 0.5;

export interface Predictions {
  truth: Float32Array;
  /** P(responder) per patient. */
  scores: Float32Array;
}

export interface BinaryEvaluation {
  auc: number;
  sensitivity: number;
  specificity: number;
  accuracy: number;
  confusion: Confusion;
  roc: { fpr: number[]; tpr: number[] };
}

/** P(responder) for every sample of `data`, from the plan's network with `weights` (inference mode). */
export function predict(spec: PlanSpec, weights: Record<string, DenseArray>, data: PlanDataset, chunk = 32): Predictions {
  const model = buildModel(spec, { weights: weights as never });
  const scores = new Float32Array(data.size);
  try {
    for (let start = 0; start < data.size; start += chunk) {
      const indices = Array.from({ length: Math.min(chunk, data.size - start) }, (_, k) => start + k);
      const batch = data.batchSync(indices);
      try {
        const out = tf.tidy(() => {
          const y = model.forward(batch.inputs, false);
          return spec.loss.type === 'bce' && spec.loss.fromLogits ? tf.sigmoid(y) : y;
        });
        scores.set(out.dataSync() as Float32Array, start);
        out.dispose();
      } finally {
        Object.values(batch.inputs).forEach((t) => t.dispose());
        batch.target.dispose();
      }
    }
  } finally {
    model.dispose();
  }
  return { truth: data.targets(Array.from({ length: data.size }, (_, i) => i)), scores };
}

export function evaluateBinary(p: Predictions, threshold = DECISION_THRESHOLD): BinaryEvaluation {
  const predicted = Array.from(p.scores, (s) => (s >= threshold ? 1 : 0));
  const confusion = binaryConfusion(p.truth, predicted);
  const roc = rocCurve(p.truth, p.scores);
  return {
    auc: rocAuc(p.truth, p.scores),
    sensitivity: sensitivity(confusion),
    specificity: specificity(confusion),
    accuracy: (confusion.tp + confusion.tn) / p.truth.length,
    confusion,
    roc: { fpr: roc.fpr, tpr: roc.tpr },
  };
}

/** Standard error of an AUC (Hanley & McNeil, 1982), for `positives` and `negatives` cases. */
export function aucStandardError(auc: number, positives: number, negatives: number): number {
  const q1 = auc / (2 - auc);
  const q2 = (2 * auc * auc) / (1 + auc);
  const variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives);
  return Math.sqrt(Math.max(0, variance));
}
