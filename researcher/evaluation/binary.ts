/**
 * Judging binary predictions: AUC with a confidence interval, sensitivity / specificity / accuracy at a threshold,
 * the confusion matrix, the ROC curve, and the same broken down by site.
 */
import { binaryConfusion, Confusion, rocAuc, rocCurve, sensitivity, specificity } from '../../src/engine/metrics';
import type { Predictions } from './predict';

export const DEFAULT_THRESHOLD = 0.5;
export const DEFAULT_CONFIDENCE = 0.95;

export interface BinaryEvaluation {
  /** Samples, positives (truth 1) and negatives (truth 0). */
  samples: number;
  positives: number;
  negatives: number;
  auc: number;
  /** Confidence interval of the AUC (Hanley & McNeil standard error, normal approximation, clipped to [0, 1]). */
  aucInterval: { low: number; high: number; level: number };
  threshold: number;
  sensitivity: number;
  specificity: number;
  accuracy: number;
  confusion: Confusion;
  roc: { fpr: number[]; tpr: number[] };
}

export interface BinaryEvaluationOptions {
  /** A score at or above it is a positive prediction (default 0.5). */
  threshold?: number;
  /** Level of the AUC confidence interval, in (0, 1) (default 0.95). */
  confidence?: number;
}

/** Standard error of an AUC (Hanley & McNeil, 1982), for `positives` and `negatives` cases. */
export function aucStandardError(auc: number, positives: number, negatives: number): number {
  const q1 = auc / (2 - auc);
  const q2 = (2 * auc * auc) / (1 + auc);
  const variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives);
  return Math.sqrt(Math.max(0, variance));
}

/** The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low || p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(p < low ? p : 1 - p));
    const x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    return p < low ? x : -x;
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** Two-sided confidence interval of an AUC measured on `positives` and `negatives` cases. */
export function aucConfidenceInterval(auc: number, positives: number, negatives: number, level = DEFAULT_CONFIDENCE):
  { low: number; high: number; level: number } {
  if (!(level > 0 && level < 1)) throw new RangeError(`confidence level must be in (0, 1), got ${level}`);
  const half = normalQuantile(0.5 + level / 2) * aucStandardError(auc, positives, negatives);
  return { low: Math.max(0, auc - half), high: Math.min(1, auc + half), level };
}

/**
 * AUC (with its confidence interval), sensitivity, specificity, accuracy and the confusion matrix at `threshold`.
 *
 * @example
 * ```ts
 * const e = evaluateBinary(predict(plan, weights, heldOut), { threshold: 0.4, confidence: 0.95 });
 * console.log(`AUC ${e.auc.toFixed(3)} [${e.aucInterval.low.toFixed(3)}, ${e.aucInterval.high.toFixed(3)}]`);
 * ```
 */
export function evaluateBinary(p: Predictions, options: BinaryEvaluationOptions = {}): BinaryEvaluation {
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  if (p.truth.length !== p.scores.length) throw new RangeError(`evaluateBinary: ${p.truth.length} truths for ${p.scores.length} scores`);
  const positives = p.truth.reduce((n, t) => n + (t === 1 ? 1 : 0), 0);
  const negatives = p.truth.reduce((n, t) => n + (t === 0 ? 1 : 0), 0);
  if (positives + negatives !== p.truth.length) throw new RangeError('evaluateBinary: every truth must be 0 or 1');
  if (positives === 0 || negatives === 0) {
    throw new RangeError(`evaluateBinary: an AUC needs both classes (${positives} positives, ${negatives} negatives)`);
  }
  const predicted = Array.from(p.scores, (s) => (s >= threshold ? 1 : 0));
  const confusion = binaryConfusion(p.truth, predicted);
  const roc = rocCurve(p.truth, p.scores);
  const auc = rocAuc(p.truth, p.scores);
  return {
    samples: p.truth.length, positives, negatives,
    auc,
    aucInterval: aucConfidenceInterval(auc, positives, negatives, options.confidence ?? DEFAULT_CONFIDENCE),
    threshold,
    sensitivity: sensitivity(confusion),
    specificity: specificity(confusion),
    accuracy: (confusion.tp + confusion.tn) / p.truth.length,
    confusion,
    roc: { fpr: roc.fpr, tpr: roc.tpr },
  };
}

export interface SiteEvaluation {
  site: string;
  evaluation: BinaryEvaluation;
}

/**
 * The same evaluation per site and over all sites together (site `all`: the predictions pooled). A site whose
 * samples hold one class only cannot have an AUC: it is refused with its name rather than reported as NaN.
 */
export function evaluateBySite(sites: { site: string; predictions: Predictions }[], options: BinaryEvaluationOptions = {}): SiteEvaluation[] {
  const per = sites.map(({ site, predictions }) => {
    try {
      return { site, evaluation: evaluateBinary(predictions, options) };
    } catch (err) {
      throw new RangeError(`site ${site}: ${(err as Error).message}`);
    }
  });
  const concat = (key: keyof Predictions): Float32Array => {
    const out = new Float32Array(sites.reduce((n, s) => n + s.predictions[key].length, 0));
    let offset = 0;
    for (const s of sites) {
      out.set(s.predictions[key], offset);
      offset += s.predictions[key].length;
    }
    return out;
  };
  return [...per, { site: 'all', evaluation: evaluateBinary({ truth: concat('truth'), scores: concat('scores') }, options) }];
}
