/**
 * DP-SGD in the training loop: Poisson batches at Opacus's rate, the noise on the clipped sum at the right scale,
 * the exact non-DP step when nothing clips and nothing is noised, Fed-BioMed's iteration counts, and no way into
 * the DP path without a clipping bound.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend';
import { Batch, BatchSource, trainModel, TrainOptions } from '../train';
import { buildModel, PlanModel } from '../../plan/tfjs-model';
import { exportWeights } from '../../plan/weights';
import { definePlan } from '../../plan/define';
import { SeededRandom } from '../prng';

beforeAll(async () => {
  await initBackend(() => undefined);
});

const plan = () => definePlan({
  name: 'DpMlp',
  inputs: { tabular: { columns: ['a', 'b', 'c'] } },
  target: { column: 'y' },
  model: { tabular: [{ type: 'dense', outFeatures: 16 }, { type: 'relu' }], head: [{ type: 'dense', outFeatures: 2 }] },
  loss: { type: 'cross_entropy' },
  optimizer: { type: 'sgd', lr: 1 },
  metrics: ['accuracy'],
});

/** N rows of 3 features and a class, recording every batch's indices. */
class TableSource implements BatchSource {
  readonly batches: number[][] = [];
  private readonly x: number[][];
  private readonly y: number[];

  constructor(readonly size: number, seed: number) {
    const rng = new SeededRandom(seed);
    this.x = Array.from({ length: size }, () => [rng.next(), rng.next() * 2 - 1, rng.next() * 4]);
    this.y = this.x.map((r) => (r[0] + r[1] > 0.5 ? 1 : 0));
  }

  batch(indices: number[]): Batch {
    this.batches.push(indices);
    return {
      inputs: { tabular: tf.tensor2d(indices.map((i) => this.x[i]), [indices.length, 3]) },
      target: tf.tensor1d(indices.map((i) => this.y[i]), 'int32'),
    };
  }
}

const BASE: TrainOptions = { loader: { batchSize: 8 }, numUpdates: 1, loss: 'CrossEntropyLoss',
  optimizer: { name: 'SGD', lr: 1 }, seed: 3 };

async function trained(options: Partial<TrainOptions>, size = 30): Promise<{ weights: Record<string, Float32Array>; source: TableSource; model: PlanModel; result: Awaited<ReturnType<typeof trainModel>> }> {
  const model = buildModel(plan(), { seed: 9 });
  const source = new TableSource(size, 4);
  const result = await trainModel(model, source, { ...BASE, ...options });
  const weights = Object.fromEntries(Object.entries(exportWeights(model)).map(([k, t]) => [k, t.data as Float32Array]));
  model.dispose();
  return { weights, source, model, result };
}

describe('DP-SGD training loop', () => {
  it('with a bound no sample reaches and no noise, one full-batch step is the plain SGD step', async () => {
    // batch_size >= N: one batch per epoch, sample rate 1, every sample taken, expected batch size N.
    const plain = await trained({ loader: { batchSize: 40 } });
    const dp = await trained({ loader: { batchSize: 40 }, dp: { noiseMultiplier: 0, maxGradNorm: 1e6 } });
    expect(dp.source.batches[0]).toHaveLength(30);
    for (const [name, w] of Object.entries(plain.weights)) {
      w.forEach((v, i) => expect(Math.abs(dp.weights[name][i] - v)).toBeLessThan(1e-6));
    }
    expect(dp.result.dp).toEqual({ sampleRate: 1, noiseMultiplier: 0, steps: 1, expectedBatchSize: 30 });
  });

  it('adds N(0, (sigma*clip)^2) to the clipped sum and divides by the expected batch size', async () => {
    const sigma = 2;
    const clip = 0.5;
    // Same step without noise, then with: with lr 1 and SGD, the difference is -noise / expected batch size.
    const quiet = await trained({ loader: { batchSize: 40 }, dp: { noiseMultiplier: 0, maxGradNorm: clip } });
    const noisy = await trained({ loader: { batchSize: 40 }, dp: { noiseMultiplier: sigma, maxGradNorm: clip } });
    const diffs: number[] = [];
    for (const [name, w] of Object.entries(quiet.weights)) w.forEach((v, i) => diffs.push(-(noisy.weights[name][i] - v) * 30));
    const n = diffs.length; // 3*16 + 16 + 16*2 + 2 = 98 coordinates
    const mean = diffs.reduce((a, b) => a + b, 0) / n;
    const variance = diffs.reduce((a, b) => a + b * b, 0) / n;
    const std = sigma * clip;
    expect(Math.abs(mean)).toBeLessThan(5 * std / Math.sqrt(n));
    expect(Math.abs(variance / (std * std) - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
  });

  it('draws Poisson batches at rate 1/len(loader) with Fed-BioMed iteration counts', async () => {
    // N = 30, batch_size 8: len(loader) 4, sample rate 1/4, 4 batches per epoch; 2 epochs -> 8 steps.
    const epochs = await trained({ numUpdates: null, epochs: 2, dp: { noiseMultiplier: 1, maxGradNorm: 1 } });
    expect(epochs.result.dp?.steps).toBe(8);
    expect(epochs.result.dp?.expectedBatchSize).toBe(7); // int(30 * 0.25)
    const many = await trained({ numUpdates: 300, dp: { noiseMultiplier: 1, maxGradNorm: 1 } });
    const sizes = many.source.batches.map((b) => b.length);
    // Empty batches step without reading data: count them as zeros.
    while (sizes.length < 300) sizes.push(0);
    const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
    const variance = sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / (sizes.length - 1);
    // Bin(30, 1/4): mean 7.5, variance 5.625.
    expect(Math.abs(mean - 7.5)).toBeLessThan(5 * Math.sqrt(5.625 / 300));
    expect(variance).toBeGreaterThan(5.625 * 0.6);
    expect(variance).toBeLessThan(5.625 * 1.5);
    // Not the shuffled fixed-size batches of the plain loader.
    expect(new Set(sizes).size).toBeGreaterThan(3);
    expect(many.result.dp?.steps).toBe(300);
  });

  it('never returns the weights of the same run without DP', async () => {
    const plain = await trained({ numUpdates: 4 });
    const dp = await trained({ numUpdates: 4, dp: { noiseMultiplier: 0.5, maxGradNorm: 1 } });
    const same = Object.keys(plain.weights).some((k) => plain.weights[k].every((v, i) => v === dp.weights[k][i]));
    expect(same).toBe(false);
  });

  it('has no DP path without a clipping bound, and refuses FedProx with DP', async () => {
    for (const maxGradNorm of [0, -1, NaN, Infinity]) {
      await expect(trained({ dp: { noiseMultiplier: 1, maxGradNorm } })).rejects.toThrow(/clip .*must be a finite number > 0/);
    }
    await expect(trained({ dp: { noiseMultiplier: -1, maxGradNorm: 1 } })).rejects.toThrow(/sigma/);
    await expect(trained({ fedproxMu: 0.1, dp: { noiseMultiplier: 1, maxGradNorm: 1 } })).rejects.toThrow(/fedprox_mu/);
  });
});
