/**
 * The computing part of a round: build the plan's model, load the global weights, read the dataset, validate,
 * train, export the weights. It needs nothing of the node but the job itself (no network, no database), so that it
 * runs in the node's training worker (training-worker.ts) while the node keeps answering the network, or in-thread
 * (tests, and as the reference the worker must match bit for bit). Everything it says goes out as events: log lines
 * and add_scalar fields, turned into messages by the round (round.ts), which removes dataset paths first.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AddScalarReply } from '../src/protocol/messages';
import { bytesOf, TorchTensor, type DenseArray } from '../src/serialize';
import { typedArrayFromBytes } from '../src/serialize/dtype';
import { buildModel, type PlanModel } from '../src/plan/tfjs-model';
import { exportWeights, importWeights } from '../src/plan/weights';
import type { PlanSpec } from '../src/plan/spec';
import { trainModel, type DpRoundFacts } from '../src/engine/train';
import type { DpTrainingOptions } from '../src/engine/dp/step';
import { trainingSettings } from '../src/plan/training';
import { planMetrics } from '../src/plan/metrics';
import { SeededRandom } from '../src/engine/prng';
import { openPlanDataset, type PlanDataset } from '../src/data/plan-dataset';
import type { PlanDatasetCache } from './dataset-cache';
import type { DatasetEntry } from './datasets';
import { FedbiomedTsError } from '../src/errors';

/** A failure that ends the round with a `train` reply `success: false` and this message. */
export class RoundFailure extends FedbiomedTsError {
  override readonly errnum = 'FB314' as const;
}

/** A tensor as it crosses threads: plain fields, its data's buffer transferred (see {@link transferableTensors}). */
export interface WireTensor {
  dtype: TorchTensor['dtype'];
  shape: number[];
  data: TorchTensor['data'];
}

/** Everything a round computes from, as plain data (it is structured-cloned into the worker). */
export interface RoundJob {
  spec: PlanSpec;
  seed: number;
  /** The global weights, the node's own FedBN parameters already put back. */
  weights: Record<string, WireTensor>;
  dataset: DatasetEntry;
  training: boolean;
  testRatio: number;
  testOnGlobalUpdates: boolean;
  testOnLocalUpdates: boolean;
  train: {
    batchSize: number;
    dropLast: boolean;
    epochs: number | null;
    numUpdates: number | null;
    batchMaxnum: number | null;
    dryRun: boolean;
    logInterval: number;
    optimizerArgs: Record<string, unknown>;
    fedproxMu: number | null;
    dp: DpTrainingOptions | null;
  };
}

export type ScalarFields = Omit<AddScalarReply, 'researcher_id' | 'node_id' | 'job_id' | 'command' | 'protocol_version'>;

export type RoundEvent =
  | { type: 'log'; level: 'warning' | 'error'; text: string }
  | { type: 'scalar'; fields: ScalarFields };

export interface RoundOutcome {
  /** Every parameter and buffer of the trained model (empty for a validation-only round). */
  weights: Record<string, WireTensor>;
  /** Names of the trainable parameters (what is shared when persistent buffers are not). */
  trainable: string[];
  trainSize: number;
  stopped: boolean;
  dp?: DpRoundFacts;
  /** Wall-clock and process CPU seconds of the training loop. */
  rtime: number;
  ptime: number;
  /** How much the node process grew while the round ran, MB (measured by the training worker's host). */
  peakRoundMemoryMb?: number;
}

export interface RoundComputeIo {
  emit(event: RoundEvent): void;
  /** Checked before each batch. */
  shouldStop(): boolean;
  /** Keeps the dataset between rounds; without it every round reads the files. */
  dataCache?: PlanDatasetCache;
}

/** Samples per forward pass when validating. */
export const EVAL_CHUNK = 64;

export async function computeRound(job: RoundJob, io: RoundComputeIo): Promise<RoundOutcome> {
  const { spec, seed, dataset } = job;
  const model = buildModel(spec, { seed });
  const warn = (text: string) => io.emit({ type: 'log', level: 'warning', text });
  try {
    loadGlobalWeights(model, tensorsOf(job.weights), { warning: warn });
    let data: PlanDataset;
    try {
      data = io.dataCache
        ? io.dataCache.open(spec, dataset)
        : openPlanDataset(spec, { dataType: dataset.data_type, path: dataset.path, parameters: dataset.dataset_parameters });
    } catch (err) {
      throw new RoundFailure(`FB315: Error while loading the data : ${describe(err)}`);
    }
    for (const issue of data.issues) warn(`data: ${issue.message}`);
    const { train, test } = splitIndices(data.size, job.testRatio, seed);
    if (job.training && train.length === 0) {
      throw new RoundFailure(`No training sample left: ${data.size} samples, test_ratio ${job.testRatio}`);
    }
    const validate = (phase: 'global' | 'local') => {
      if (test.length === 0) return;
      try {
        const metrics = evaluate(model, data, test, spec);
        io.emit({ type: 'scalar', fields: { train: false, test: true,
          test_on_local_updates: phase === 'local', test_on_global_updates: phase === 'global',
          metric: metrics, epoch: null, total_samples: test.length, batch_samples: test.length,
          num_batches: 1, num_samples_trained: null, iteration: 1 } });
      } catch (err) {
        // As in Fed-BioMed, a validation failure is logged and the round goes on.
        io.emit({ type: 'log', level: 'error', text: `Validation on ${phase} updates failed: ${describe(err)}` });
      }
    };

    if (job.testOnGlobalUpdates) validate('global');
    if (!job.training) return { weights: {}, trainable: [], trainSize: train.length, stopped: false, rtime: 0, ptime: 0 };

    const started = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    const t = job.train;
    const result = await trainModel(model, data.batchSource(train, { augmentSeed: seed }), {
      // The generated plan's DataManager sets shuffle=True, and a plan's own DataManager arguments win over
      // loader_args on a Python node: shuffle here too, whatever loader_args says.
      loader: { batchSize: t.batchSize, shuffle: true, dropLast: t.dropLast },
      epochs: t.epochs, numUpdates: t.numUpdates, batchMaxnum: t.batchMaxnum, dryRun: t.dryRun,
      logInterval: t.logInterval,
      ...trainingSettings(spec, t.optimizerArgs),
      seed,
      fedproxMu: t.fedproxMu,
      ...(t.dp ? { dp: t.dp } : {}),
      shouldStop: () => io.shouldStop(),
      onProgress: (p) => io.emit({ type: 'scalar', fields: { train: true, test: false, test_on_local_updates: false,
        test_on_global_updates: false, metric: { Loss: p.loss }, epoch: p.epoch, total_samples: p.samplesMax,
        batch_samples: p.batchSamples, num_batches: p.iterationMax, num_samples_trained: p.samplesSeen,
        iteration: p.iteration } }),
    });
    const rtime = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = process.cpuUsage(cpuStart);
    if (result.stopped) return { weights: {}, trainable: [], trainSize: train.length, stopped: true, rtime, ptime: 0 };
    if (job.testOnLocalUpdates) validate('local');
    return {
      weights: exportWeights(model),
      trainable: model.parameters().filter((p) => p.trainable).map((p) => p.name),
      trainSize: train.length, stopped: false, ...(result.dp ? { dp: result.dp } : {}),
      rtime, ptime: (cpu.user + cpu.system) / 1e6,
    };
  } finally {
    model.dispose();
  }
}

/**
 * PyTorch `load_state_dict(strict=False)` as a Python node applies it: absent keys keep the model's value and
 * unexpected ones are ignored (both with a warning); dtypes are converted (a Python researcher averages
 * `num_batches_tracked` into float32); a shape mismatch fails the round.
 */
function loadGlobalWeights(model: PlanModel, received: Record<string, DenseArray>, log: { warning(text: string): void }): void {
  const current = exportWeights(model);
  const merged: Record<string, TorchTensor> = {};
  const missing: string[] = [];
  for (const [name, own] of Object.entries(current)) {
    const got = received[name];
    if (got === undefined) {
      missing.push(name);
      merged[name] = own;
      continue;
    }
    if (got.shape.length !== own.shape.length || got.shape.some((n, i) => n !== own.shape[i])) {
      throw new RoundFailure(`Cannot initialize model parameters: '${name}' has shape [${got.shape.join(', ')}], ` +
        `the plan's model expects [${own.shape.join(', ')}]`);
    }
    merged[name] = new TorchTensor(own.dtype, own.shape, convertData(got, own.dtype));
  }
  const unexpected = Object.keys(received).filter((k) => !(k in current));
  if (missing.length > 0) log.warning(`Model parameters not in the received weights (kept as initialised): ${missing.join(', ')}`);
  if (unexpected.length > 0) log.warning(`Received weights the model does not have (ignored): ${unexpected.join(', ')}`);
  importWeights(model, merged);
}

function convertData(t: DenseArray, dtype: string): Float32Array | BigInt64Array {
  const src = t.data as ArrayLike<number | bigint>;
  if (dtype === 'int64') return BigInt64Array.from(Array.from(src, (v) => BigInt(Math.round(Number(v)))));
  if (t.dtype === 'float32') return t.data as Float32Array;
  return Float32Array.from(Array.from(src, (v) => Number(v)));
}

/**
 * Tensors from their wire form, as views on the same memory (no copy). Re-viewed because a typed array posted from
 * another thread may belong to another JavaScript realm (Jest runs tests in one), where `instanceof` fails.
 */
export function tensorsOf(wire: Record<string, WireTensor>): Record<string, TorchTensor> {
  return Object.fromEntries(Object.entries(wire).map(([name, t]) =>
    [name, new TorchTensor(t.dtype, t.shape, typedArrayFromBytes(t.dtype, bytesOf(t.data)))]));
}

/**
 * Tensors ready to be posted to another thread with their buffers transferred, not copied. A tensor whose data is
 * a view on a larger buffer (a decoded file, Node's shared Buffer pool) is copied first: transferring that buffer
 * would detach memory others still use.
 */
export function transferableTensors(tensors: Record<string, DenseArray | WireTensor>): { tensors: Record<string, WireTensor>; transfer: ArrayBuffer[] } {
  const out: Record<string, WireTensor> = {};
  const transfer = new Set<ArrayBuffer>();
  for (const [name, t] of Object.entries(tensors)) {
    const view = t.data;
    // Tested by tag, not instanceof: the buffer may come from another realm; a SharedArrayBuffer is never transferred.
    const owns = Object.prototype.toString.call(view.buffer) === '[object ArrayBuffer]' && view.byteOffset === 0 &&
      view.byteLength === view.buffer.byteLength && !transfer.has(view.buffer as ArrayBuffer);
    const data = owns ? view : view.slice();
    transfer.add(data.buffer as ArrayBuffer);
    out[name] = { dtype: t.dtype, shape: [...t.shape], data };
  }
  return { tensors: out, transfer: [...transfer] };
}

/** Fed-BioMed's split: floor(N · test_ratio) validation samples drawn at random, the rest for training. */
function splitIndices(n: number, testRatio: number, seed: number): { train: number[]; test: number[] } {
  const nTest = Math.floor(n * testRatio);
  const order = new SeededRandom(seed ^ 0x9e3779b9).permutation(n);
  return { test: order.slice(0, nTest).sort((a, b) => a - b), train: order.slice(nTest).sort((a, b) => a - b) };
}

/**
 * The plan's validation metrics on the validation subset, as one batch (Fed-BioMed's validation loader holds the
 * whole subset): the forward pass runs in chunks to bound memory, the metrics on all outputs at once.
 */
function evaluate(model: PlanModel, data: PlanDataset, indices: number[], spec: PlanSpec): Record<string, number> {
  const outputs: tf.Tensor[] = [];
  const targets: tf.Tensor[] = [];
  try {
    for (let i = 0; i < indices.length; i += EVAL_CHUNK) {
      const batch = data.batchSync(indices.slice(i, i + EVAL_CHUNK));
      try {
        outputs.push(model.forward(batch.inputs, false));
        targets.push(tf.clone(batch.target));
      } finally {
        Object.values(batch.inputs).forEach((t: tf.Tensor) => t.dispose());
        batch.target.dispose();
      }
    }
    return tf.tidy(() => planMetrics(spec, tf.concat(outputs, 0), tf.concat(targets, 0)));
  } finally {
    outputs.forEach((t) => t.dispose());
    targets.forEach((t) => t.dispose());
  }
}

export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
