/**
 * The training worker on the real engine (wasm backend and native kernels in the worker thread): a round computed
 * there equals, byte for byte, the same round computed in-thread (also its second round, from the dataset the
 * worker kept); an unexpected failure costs one round and the next gets a fresh worker; stop ends a long round at
 * once.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { backendLogLine, initBackend } from '../src/engine/backend';
import { loadNativeKernels } from '../src/engine/native';
import { initialWeights } from '../src/plan/init';
import { definePlan } from '../src/plan/define';
import { mlpPlan } from '../src/plan/testing/plans';
import type { PlanSpec } from '../src/plan/spec';
import { bytesOf } from '../src/serialize';
import { computeRound, RoundFailure, type RoundEvent, type RoundJob } from './round-compute';
import { PlanDatasetCache } from './dataset-cache';
import type { DatasetEntry } from './datasets';
import { TrainingStopped, TrainingWorker } from './training-worker';

jest.setTimeout(60_000);

let dir: string;
let dataset: DatasetEntry;
const worker = new TrainingWorker({ maxRoundMemoryMb: 2048 });

beforeAll(async () => {
  await initBackend(() => undefined);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-trainworker-'));
  const file = path.join(dir, 'data.csv');
  const rows = Array.from({ length: 200 }, (_, i) => `${(i * 7) % 13},${(i * 3) % 5},${i % 2},${(i % 11) / 10},${(i * 5) % 3 === 0 ? 1 : 0}`);
  fs.writeFileSync(file, ['f0,f1,f2,f3,label', ...rows].join('\n') + '\n');
  dataset = { name: 'tab', data_type: 'csv', tags: ['t'], description: '', shape: [200, 5], path: file,
    dataset_id: 'dataset_w', dtypes: [], dataset_parameters: null };
});

afterAll(async () => {
  await worker.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A ReLU MLP (the native bias+ReLU kernel) trained with Adam, validated before and after. */
function reluPlan(): PlanSpec {
  return definePlan({ ...mlpPlan(), name: 'ReluMlp',
    model: { tabular: [{ type: 'dense', outFeatures: 32 }, { type: 'relu' }, { type: 'dense', outFeatures: 16 }, { type: 'relu' }],
      head: [{ type: 'dense', outFeatures: 2 }] },
    optimizer: { type: 'adam', lr: 0.01 } });
}

function job(spec: PlanSpec, seed: number, overrides: Partial<RoundJob['train']> = {}): RoundJob {
  return {
    spec, seed, dataset, training: true, testRatio: 0.2, testOnGlobalUpdates: true, testOnLocalUpdates: true,
    // A fresh copy each time: the worker takes the buffers.
    weights: initialWeights(spec, 3),
    train: { batchSize: 16, dropLast: false, epochs: 2, numUpdates: null, batchMaxnum: null, dryRun: false,
      logInterval: 3, optimizerArgs: {}, fedproxMu: null, dp: null, ...overrides },
  };
}

function bytesByName(weights: Record<string, { data: ArrayBufferView }>): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(weights).map(([name, t]) => [name, Buffer.from(bytesOf(t.data))]));
}

test('the worker trains with the same engine as this thread: wasm backend, native kernels loaded there too', async () => {
  const here = await initBackend(() => undefined);
  await worker.ready();
  expect(worker.engineDescription).toBe(backendLogLine(here));
  // Where this thread has the native kernels (built, AVX2 CPU), the addon (N-API, context-aware) loaded in the
  // worker thread as well; and both run the wasm backend.
  expect(worker.engineDescription).toMatch(loadNativeKernels().ok ? /^\[engine\] tfjs backend: wasm \(.*native kernels \(AVX2\+FMA[,)]/ : /^\[engine\] tfjs backend: wasm /);
});

test('a round in the worker gives the same bytes and the same scalars as in-thread, round after round', async () => {
  const spec = reluPlan();
  const cache = new PlanDatasetCache();
  for (const seed of [11, 12]) {
    const inThreadEvents: RoundEvent[] = [];
    const inThread = await computeRound(job(spec, seed), { emit: (e) => inThreadEvents.push(e), shouldStop: () => false, dataCache: cache });
    const workerEvents: RoundEvent[] = [];
    const inWorker = await worker.run(job(spec, seed), (e) => workerEvents.push(e));
    expect(Object.keys(inWorker.weights).sort()).toEqual(Object.keys(inThread.weights).sort());
    expect(bytesByName(inWorker.weights)).toEqual(bytesByName(inThread.weights));
    expect(inWorker.trainable).toEqual(inThread.trainable);
    expect(inWorker.trainSize).toBe(160);
    // Losses and validation metrics, in order: the same numbers.
    expect(workerEvents).toEqual(inThreadEvents);
    expect(workerEvents.filter((e) => e.type === 'scalar').length).toBeGreaterThan(4);
  }
});

test('an unexpected failure in the worker fails that round only; the next round gets a fresh worker', async () => {
  const broken = { ...job(reluPlan(), 1), spec: { ...reluPlan(), model: { head: [{ type: 'no_such_layer' }] } } as unknown as PlanSpec };
  await expect(worker.run(broken, () => undefined)).rejects.toThrow(/invalid training plan/);
  const data = { ...job(reluPlan(), 1), dataset: { ...dataset, path: path.join(dir, 'missing.csv') } };
  // A failure the round names itself (unreadable data) is a RoundFailure.
  await expect(worker.run(data, () => undefined)).rejects.toBeInstanceOf(RoundFailure);
  const ok = await worker.run(job(reluPlan(), 2), () => undefined);
  expect(ok.trainSize).toBe(160);
});

test('stop ends a long round at once, and the worker trains again afterwards', async () => {
  const long = job(reluPlan(), 5, { epochs: null, numUpdates: 1_000_000 });
  let firstLoss = false;
  const running = worker.run(long, (e) => { if (e.type === 'scalar' && e.fields.train) firstLoss = true; });
  const settled = running.catch((err: unknown) => err);
  for (let i = 0; i < 400 && !firstLoss; i++) await new Promise((r) => setTimeout(r, 25));
  expect(firstLoss).toBe(true);
  const t0 = Date.now();
  worker.stop('the test stops it');
  const err = await settled;
  expect(Date.now() - t0).toBeLessThan(500);
  expect(err).toBeInstanceOf(TrainingStopped);
  expect((await worker.run(job(mlpPlan(), 2), () => undefined)).trainSize).toBe(160);
});

test('a worker that runs out of its JavaScript heap fails that round with a plain reason; the next round trains', async () => {
  // A 64 MB heap and a 30 MB CSV: reading it (text, lines, cells) needs several times that in JavaScript objects.
  const small = new TrainingWorker({ maxRoundMemoryMb: 8192, heapMb: 64 });
  const big = path.join(dir, 'big.csv');
  const row = '1.25,2.5,0,0.75,1\n';
  fs.writeFileSync(big, 'f0,f1,f2,f3,label\n' + row.repeat(Math.ceil(30e6 / row.length)));
  try {
    const oversized = { ...job(reluPlan(), 1), dataset: { ...dataset, path: big } };
    await expect(small.run(oversized, () => undefined)).rejects.toThrow(
      /^Training stopped: the round ran out of its JavaScript heap limit of 64 MB \(limits.max_round_memory_mb\)/);
    expect((await small.run(job(reluPlan(), 2), () => undefined)).trainSize).toBe(160);
  } finally {
    await small.close();
  }
});

test('a node started outside the clone trains in its worker (the worker finds its TypeScript loader from any directory)', async () => {
  const elsewhere = new TrainingWorker({ maxRoundMemoryMb: 2048 });
  const cwd = process.cwd();
  process.chdir(dir); // no node_modules here nor above
  try {
    expect((await elsewhere.run(job(mlpPlan(), 2), () => undefined)).trainSize).toBe(160);
  } finally {
    process.chdir(cwd);
    await elsewhere.close();
  }
});
