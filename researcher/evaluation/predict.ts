/** A plan's predictions on a dataset, from given weights, as a hospital or a researcher would compute them. */
import * as tf from '@tensorflow/tfjs-core';
import type { PlanDataset } from '../../src/data/plan-dataset';
import { buildModel } from '../../src/plan/tfjs-model';
import type { PlanSpec } from '../../src/plan/spec';
import type { DenseArray } from '../../src/serialize';

/** Ground truth and model scores, one per sample, in the dataset's order. */
export interface Predictions {
  truth: Float32Array;
  /** The model's output per sample: P(positive) for a binary plan (a sigmoid is applied to logits). */
  scores: Float32Array;
}

/**
 * Scores every sample of `data` with the plan's network and `weights` (PyTorch names, as aggregated or as a node
 * exports them), in inference mode, `chunk` samples at a time.
 *
 * @example
 * ```ts
 * import { predict, evaluateBinary, openPlanDataset } from 'fedbiomed-ts';
 * const heldOut = openPlanDataset(plan, { dataType: 'csv', path: 'held-out.csv', parameters: null });
 * const report = evaluateBinary(predict(plan, weights, heldOut), { threshold: 0.5 });
 * console.log(report.auc, report.aucInterval, report.sensitivity, report.specificity);
 * ```
 */
export function predict(spec: PlanSpec, weights: Record<string, DenseArray>, data: PlanDataset, chunk = 32): Predictions {
  // Only a single-output plan has one score per sample: a softmax head would give several.
  const model = buildModel(spec, { weights: weights });
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
        if (out.size !== indices.length) {
          out.dispose();
          throw new Error(`predict: plan ${spec.name} gives ${out.size / indices.length} outputs per sample; one score per sample is needed`);
        }
        scores.set(out.dataSync(), start);
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
