/**
 * Training without federation, for the baselines a federated model is compared with: one site alone, and all sites'
 * data pooled in one place (what federation tries to match without moving data). Same plan, same engine, same
 * optimizer as the nodes use; one optimizer for the whole run, as a centralised PyTorch script would have.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PlanDataset } from '../../src/data/plan-dataset';
import { trainModel, type Batch, type BatchSource } from '../../src/engine/train';
import { buildModel } from '../../src/plan/tfjs-model';
import { exportWeights } from '../../src/plan/weights';
import { trainingSettings } from '../../src/plan/training';
import type { PlanSpec } from '../../src/plan/spec';
import type { TorchTensor } from '../../src/serialize';

export interface LocalTrainingOptions {
  epochs: number;
  batchSize: number;
  /** Seed of the initial weights (give the federated run's to start from the same ones) and of shuffling. */
  initSeed: number;
  shuffleSeed: number;
  /** Called after each epoch with the mean training loss of that epoch. */
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

export interface LocalTrainingResult {
  /** The trained model's state dict with PyTorch names (what `predict`, ONNX export and weight files take). */
  weights: Record<string, TorchTensor>;
  epochLosses: number[];
  seconds: number;
}

/**
 * Trains the plan on `data` in this process, e.g. one site's dataset for a local-only baseline.
 *
 * @example
 * ```ts
 * const site = openPlanDataset(plan, { dataType: 'csv', path: 'site-a.csv', parameters: null });
 * const alone = await trainLocally(plan, site.batchSource([...Array(site.size).keys()]),
 *                                  { epochs: 30, batchSize: 8, initSeed: 42, shuffleSeed: 42 });
 * ```
 */
export async function trainLocally(spec: PlanSpec, data: BatchSource, options: LocalTrainingOptions): Promise<LocalTrainingResult> {
  const model = buildModel(spec, { seed: options.initSeed });
  const { loss, optimizer } = trainingSettings(spec);
  const started = Date.now();
  const epochLosses: number[] = [];
  let sum = 0;
  let count = 0;
  let epoch = 1;
  const closeEpoch = (): void => {
    if (count === 0) return;
    epochLosses.push(sum / count);
    options.onEpoch?.(epoch, sum / count);
    sum = 0;
    count = 0;
  };
  try {
    await trainModel(model, data, {
      loader: { batchSize: options.batchSize, shuffle: true },
      epochs: options.epochs,
      loss,
      optimizer,
      seed: options.shuffleSeed,
      logInterval: 1,
      onProgress: (p) => {
        if (p.epoch !== null && p.epoch !== epoch) {
          closeEpoch();
          epoch = p.epoch;
        }
        sum += p.loss * p.batchSamples;
        count += p.batchSamples;
      },
    });
    closeEpoch();
    return { weights: exportWeights(model), epochLosses, seconds: (Date.now() - started) / 1000 };
  } finally {
    model.dispose();
  }
}

/** Every sample of every dataset, in order, as one BatchSource: the data of all sites pooled in one place. */
export function pooledSource(datasets: PlanDataset[]): BatchSource {
  const owners: { data: PlanDataset; index: number }[] = [];
  for (const data of datasets) for (let i = 0; i < data.size; i++) owners.push({ data, index: i });
  return {
    size: owners.length,
    batch: (positions: number[]): Batch => {
      // Runs of consecutive samples from one dataset become one batch each, then the runs are concatenated.
      const runs: { data: PlanDataset; indices: number[] }[] = [];
      for (const p of positions) {
        const owner = owners[p];
        const last = runs[runs.length - 1];
        if (last && last.data === owner.data) last.indices.push(owner.index);
        else runs.push({ data: owner.data, indices: [owner.index] });
      }
      if (runs.length === 1) return runs[0].data.batchSync(runs[0].indices);
      const parts = runs.map((r) => r.data.batchSync(r.indices));
      try {
        const inputs = Object.fromEntries(Object.keys(parts[0].inputs).map((k) => [k, tf.concat(parts.map((b) => b.inputs[k]), 0)]));
        return { inputs, target: tf.concat(parts.map((b) => b.target), 0) };
      } finally {
        for (const b of parts) {
          Object.values(b.inputs).forEach((t) => t.dispose());
          b.target.dispose();
        }
      }
    },
  };
}

/** The centralised baseline: the plan trained on all `datasets` pooled (see {@link pooledSource}). */
export function trainPooled(spec: PlanSpec, datasets: PlanDataset[], options: LocalTrainingOptions): Promise<LocalTrainingResult> {
  return trainLocally(spec, pooledSource(datasets), options);
}
