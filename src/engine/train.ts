/**
 * The training loop a node runs for one Fed-BioMed round: batches from a BatchSource, Fed-BioMed's
 * epochs / num_updates / batch_maxnum / dry_run semantics, a PyTorch-defined loss and optimizer, optional FedProx
 * term, seeded shuffling, progress reports matching Fed-BioMed's history monitor values.
 *
 * Memory: every step runs in a tidy scope; batch tensors are disposed after their step; optimizer state and the
 * FedProx reference weights are disposed before returning, so nothing grows across rounds.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LossConfig, LossFn, makeLoss } from './losses';
import { IterationArgs, IterationPlan, batchesInEpoch, loaderLength, planIterations, shouldReport } from './iterations';
import { TrainableModel } from './model';
import { makeOptimizer, OptimizerSpec } from './optimizers';
import { freshSeed, SeededRandom } from './prng';
import { checkDpOptions, dpStep, DpStepContext, DpTrainingOptions } from './dp/step';
import { DpRandom, poissonSample, secureRandom } from './dp/randomness';

export interface Batch {
  inputs: Record<string, tf.Tensor>;
  target: tf.Tensor;
}

/** Where samples come from; a node dataset reads only the requested samples, never the whole set at once. */
export interface BatchSource {
  /** Number of samples. */
  readonly size: number;
  /** Tensors for the samples at `indices`, in that order. The engine disposes them after use. */
  batch(indices: number[]): Batch | Promise<Batch>;
}

interface LoaderArgs {
  batchSize: number;
  /** PyTorch DataLoader default: false. Reshuffled every epoch when true. */
  shuffle?: boolean;
  dropLast?: boolean;
}

export interface ProgressReport {
  /** 1-based epoch, or null in num_updates mode (as Fed-BioMed reports it). */
  epoch: number | null;
  /** Batch index in the epoch (epochs mode) or cumulated updates (num_updates mode), as Fed-BioMed. */
  iteration: number;
  iterationMax: number;
  /** Samples seen in this epoch (epochs mode) or in total (num_updates mode). */
  samplesSeen: number;
  samplesMax: number;
  /** Samples seen since the round started. */
  totalSamplesSeen: number;
  batchSamples: number;
  /** Uncorrected loss of this batch (without the FedProx term). */
  loss: number;
}

export interface TrainOptions extends IterationArgs {
  loader: LoaderArgs;
  /** A loss name, or a name with options (pos_weight, class weights, focal γ/α), or a loss function. */
  loss: string | LossConfig | LossFn;
  optimizer: OptimizerSpec;
  /** Seed for shuffling; Fed-BioMed's `random_seed`. A fresh one is drawn when absent. */
  seed?: number | null;
  /** FedProx: adds mu/2 * sum ||w - w_start||^2 over trainable parameters to the loss. */
  fedproxMu?: number | null;
  /** Called for every batch Fed-BioMed would log (first, last, every log_interval-th, all in dry_run). */
  onProgress?: (report: ProgressReport) => void;
  /** Checked before each batch; return true to stop early (e.g. the researcher stopped the experiment). */
  shouldStop?: () => boolean;
  /**
   * DP-SGD as Opacus runs it for Fed-BioMed: Poisson batches at rate 1 / len(loader) (shuffle and drop_last then
   * only size the loader), per-sample clipping, Gaussian noise. FedProx cannot be combined with it.
   */
  dp?: DpTrainingOptions & { random?: DpRandom };
}

/** What the privacy accountant needs of a DP round. */
export interface DpRoundFacts {
  sampleRate: number;
  noiseMultiplier: number;
  /** Noised steps taken (empty Poisson batches included). */
  steps: number;
  expectedBatchSize: number;
}

export interface TrainResult {
  /** Fed-BioMed's `num_samples_observed_in_total`, what the node reports as sample_size. */
  samplesSeen: number;
  updates: number;
  lastLoss: number;
  plan: IterationPlan;
  stopped: boolean;
  /** Present when the round trained with DP. */
  dp?: DpRoundFacts;
}

/**
 * Longest stretch of training steps without letting the event loop run. The kernels are synchronous: without
 * these pauses a long round would starve the network (a Fed-BioMed v6 researcher marks a node that has not polled
 * for 10 s DISCONNECTED and drops its round), stop requests and log forwarding.
 */
const YIELD_EVERY_MS = 50;

export async function trainModel(model: TrainableModel, data: BatchSource, options: TrainOptions): Promise<TrainResult> {
  const { batchSize } = options.loader;
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new Error(`loader_args.batch_size must be a positive integer, got ${batchSize}`);
  }
  if (!Number.isInteger(data.size) || data.size < 0) throw new Error(`training set size is invalid: ${data.size}`);
  const mu = options.fedproxMu ?? null;
  if (mu !== null && !(Number.isFinite(mu) && mu >= 0)) throw new Error(`fedprox_mu must be >= 0, got ${mu}`);

  const dp = options.dp ?? null;
  if (dp) {
    checkDpOptions(dp);
    if (mu !== null && mu > 0) throw new Error('fedprox_mu cannot be combined with differential privacy (dp_args)');
  }
  const batchesPerLoader = loaderLength(data.size, batchSize, options.loader.dropLast ?? false);
  if (dp && batchesPerLoader === 0) throw new Error('differential privacy needs a non-empty training set');
  // Opacus DPDataLoader.from_data_loader: sample_rate = 1 / len(loader), int(1 / sample_rate) batches per epoch.
  const sampleRate = dp ? 1 / batchesPerLoader : 0;
  const plan = planIterations(options, dp ? Math.trunc(1 / sampleRate) : batchesPerLoader);
  const logInterval = options.logInterval ?? 10;
  if (!Number.isInteger(logInterval) || logInterval <= 0) {
    throw new Error(`training_args.log_interval must be a positive integer, got ${logInterval}`);
  }
  const rng = new SeededRandom(options.seed ?? freshSeed());
  const lossFn = makeLoss(options.loss);
  const trainable = model.parameters().filter((p) => p.trainable);
  if (trainable.length === 0) throw new Error('the model has no trainable parameter');
  const variables = trainable.map((p) => p.variable);
  const optimizer = makeOptimizer(options.optimizer);
  const anchors = mu !== null && mu > 0 ? variables.map((v) => tf.keep(tf.clone(v))) : [];
  const dpContext: DpStepContext | null = dp && {
    model, variables: new Map(trainable.map((p) => [p.name, p.variable])), lossFn, optimizer, dp,
    // Opacus make_private: expected_batch_size = int(len(dataset) * sample_rate).
    expectedBatchSize: Math.trunc(data.size * sampleRate), random: dp.random ?? secureRandom(),
  };

  let total = 0;
  let updates = 0;
  let lastLoss = NaN;
  let stopped = false;
  let lastYield = Date.now();
  try {
    for (let epoch = 1; epoch <= plan.epochs && !stopped; epoch++) {
      const order = options.loader.shuffle ? rng.permutation(data.size) : identity(data.size);
      const batches = batchesInEpoch(plan, epoch);
      let epochSamples = 0;
      for (let b = 1; b <= batches; b++) {
        if (options.shouldStop?.()) {
          stopped = true;
          break;
        }
        const indices = dpContext
          ? poissonSample(data.size, sampleRate, dpContext.random)
          : order.slice((b - 1) * batchSize, Math.min(b * batchSize, data.size));
        if (dpContext && indices.length === 0) {
          // An empty Poisson batch: Opacus still steps, on noise alone; there is no loss to report.
          dpStep(dpContext, null);
          updates += 1;
          if (options.dryRun) break;
          continue;
        }
        const batch = await data.batch(indices);
        let loss: number;
        let n: number;
        try {
          n = batch.target.shape[0] ?? 1;
          loss = dpContext ? dpStep(dpContext, batch) : trainStep(model, batch, variables, anchors, mu, lossFn, optimizer);
        } finally {
          disposeBatch(batch);
        }
        updates += 1;
        epochSamples += n;
        total += n;
        lastLoss = loss;
        if (!Number.isFinite(loss)) throw new Error(`training diverged: loss is ${loss} at epoch ${epoch} batch ${b}`);
        const dryRun = options.dryRun ?? false;
        if (options.onProgress && shouldReport(plan, epoch, b, logInterval, dryRun)) {
          options.onProgress(report(plan, epoch, b, batches, batchSize, n, epochSamples, total, loss));
        }
        if (dryRun) return { samplesSeen: total, updates, lastLoss, plan, stopped: false, ...dpFacts(dpContext, sampleRate, updates) };
        if (Date.now() - lastYield >= YIELD_EVERY_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          lastYield = Date.now();
        }
      }
    }
  } finally {
    optimizer.dispose();
    for (const a of anchors) a.dispose();
  }
  return { samplesSeen: total, updates, lastLoss, plan, stopped, ...dpFacts(dpContext, sampleRate, updates) };
}

function dpFacts(ctx: DpStepContext | null, sampleRate: number, steps: number): { dp?: DpRoundFacts } {
  if (!ctx) return {};
  return { dp: { sampleRate, noiseMultiplier: ctx.dp.noiseMultiplier, steps, expectedBatchSize: ctx.expectedBatchSize } };
}

function trainStep(
  model: TrainableModel,
  batch: Batch,
  variables: tf.Variable[],
  anchors: tf.Tensor[],
  mu: number | null,
  lossFn: (p: tf.Tensor, t: tf.Tensor) => tf.Scalar,
  optimizer: ReturnType<typeof makeOptimizer>,
): number {
  let plainLoss: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const prediction = model.forward(batch.inputs, true);
    const loss = lossFn(prediction, batch.target);
    plainLoss = tf.keep(tf.clone(loss));
    if (anchors.length === 0 || mu === null) return loss;
    const proximal = tf.addN(variables.map((v, i) => tf.sum(tf.squaredDifference(v, anchors[i]))));
    return tf.add<tf.Scalar>(loss, tf.mul(proximal, mu / 2));
  }, variables);
  try {
    const byVariable = new Map<tf.Variable, tf.Tensor>();
    for (const v of variables) {
      const g = grads[v.name];
      if (g) byVariable.set(v, g);
    }
    optimizer.step(byVariable);
    return (plainLoss as tf.Scalar).dataSync()[0];
  } finally {
    value.dispose();
    plainLoss?.dispose();
    for (const g of Object.values(grads)) g.dispose();
  }
}

function report(
  plan: IterationPlan,
  epoch: number,
  batch: number,
  batchesThisEpoch: number,
  batchSize: number,
  batchSamples: number,
  epochSamples: number,
  total: number,
  loss: number,
): ProgressReport {
  if (plan.numUpdatesMode) {
    return {
      epoch: null,
      iteration: (epoch - 1) * plan.batchesPerEpoch + batch,
      iterationMax: plan.totalBatches,
      samplesSeen: total,
      samplesMax: batchSize * plan.totalBatches,
      totalSamplesSeen: total,
      batchSamples,
      loss,
    };
  }
  return {
    epoch,
    iteration: batch,
    iterationMax: plan.batchesPerEpoch,
    samplesSeen: epochSamples,
    samplesMax: batch < batchesThisEpoch ? batchSize * batchesThisEpoch : epochSamples,
    totalSamplesSeen: total,
    batchSamples,
    loss,
  };
}

function identity(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function disposeBatch(batch: Batch): void {
  for (const t of Object.values(batch.inputs)) t.dispose();
  batch.target.dispose();
}
