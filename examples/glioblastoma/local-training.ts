/**
 * Training without federation, for the baselines the federated model is compared with: each site alone, and all
 * sites' data pooled in one place (what federation tries to match without moving data). Same plan, same engine,
 * same optimizer and batch size as the nodes use.
 */
import { trainModel, BatchSource } from '../../src/engine/train';
import { buildModel } from '../../src/plan/tfjs-model';
import { exportWeights } from '../../src/plan/weights';
import { trainingSettings } from '../../src/plan/training';
import type { PlanSpec } from '../../src/plan/spec';
import type { TorchTensor } from '../../src/serialize';

export interface LocalTrainingOptions {
  epochs: number;
  batchSize: number;
  /** Seed of the initial weights (the federated run starts from the same ones) and of shuffling. */
  initSeed: number;
  shuffleSeed: number;
  /** Called after each epoch with the mean training loss of that epoch. */
  onEpoch?: (epoch: number, meanLoss: number) => void;
}

export interface LocalTrainingResult {
  weights: Record<string, TorchTensor>;
  epochLosses: number[];
  seconds: number;
}

export async function trainLocally(spec: PlanSpec, data: BatchSource, options: LocalTrainingOptions): Promise<LocalTrainingResult> {
  const model = buildModel(spec, { seed: options.initSeed });
  const { loss, optimizer } = trainingSettings(spec);
  const started = Date.now();
  const epochLosses: number[] = [];
  try {
    // One optimizer for the whole run (a single trainModel call), as a centralised PyTorch script would have.
    let sum = 0;
    let count = 0;
    let epoch = 1;
    await trainModel(model, data, {
      loader: { batchSize: options.batchSize, shuffle: true },
      epochs: options.epochs,
      loss,
      optimizer,
      seed: options.shuffleSeed,
      logInterval: 1,
      onProgress: (p) => {
        if (p.epoch !== null && p.epoch !== epoch) {
          close();
          epoch = p.epoch;
        }
        sum += p.loss * p.batchSamples;
        count += p.batchSamples;
      },
    });
    close();
    return { weights: exportWeights(model), epochLosses, seconds: (Date.now() - started) / 1000 };

    function close(): void {
      if (count === 0) return;
      epochLosses.push(sum / count);
      options.onEpoch?.(epoch, sum / count);
      sum = 0;
      count = 0;
    }
  } finally {
    model.dispose();
  }
}
