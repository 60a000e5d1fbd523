/**
 * Runs a node's rounds in a worker thread, so that a long round never stops the node from answering: pings,
 * searches, approvals, its v6 long poll and a stop signal are served by the main thread while the worker trains.
 *
 * It is also the node's guard against a round that grows too large at run time (the plan's estimate is checked
 * before anything is allocated, see plan-resources.ts, but an estimate can be wrong): the worker's JavaScript heap
 * is capped (resourceLimits) and the process's resident memory is sampled while a round runs; a round that adds more
 * than the node's `max_round_memory_mb` gets its worker terminated (V8 interrupts JavaScript and wasm alike) and
 * fails with a reply that says so, and the node goes on serving. A worker that crashes or fails unexpectedly is
 * replaced by a fresh one at the next round; one that only met a bad input keeps its engine and dataset cache.
 * Weights cross threads as transferred buffers, never copied or serialised.
 *
 * Not covered: a native abort (a C `abort()` or a segfault in an addon) ends the whole process, worker thread or
 * not; only a separate process would contain it.
 */
import * as path from 'path';
import { Worker } from 'worker_threads';
import { RoundFailure, transferableTensors, type RoundEvent, type RoundJob, type RoundOutcome } from './round-compute';
import type { FromTrainingWorker, ToTrainingWorker } from './training-worker-service';
import { FedbiomedTsError } from '../src/errors';

/**
 * Plain CommonJS run by the worker: loads the service module, compiled (.js, an installed package) or from a
 * clone's TypeScript sources (tests, the CLI in a clone). Sources go through jiti, not ts-node as in the main
 * thread: ts-node keeps nothing between processes and transpiles the engine, plan and data modules again in every
 * worker (4.5 s on a loaded 2-core machine), jiti caches the transpiled files on disk (0.3 s once cached).
 */
const BOOTSTRAP = `
const { workerData } = require('worker_threads');
if (workerData.service.endsWith('.ts')) {
  const { createJiti } = require(workerData.jiti);
  createJiti(workerData.service, { fsCache: true, interopDefault: false })(workerData.service);
} else {
  require(workerData.service);
}
`;

/** How often the process's memory is sampled while a round runs. */
const MEMORY_SAMPLE_MS = 100;
const MB = 1024 * 1024;

export interface TrainingWorkerOptions {
  /** Memory a round may add to the node process (resident set), MB; also the worker's JavaScript heap limit. */
  maxRoundMemoryMb: number;
  /** The worker's JavaScript heap limit when it should differ from `maxRoundMemoryMb` (tests), MB. */
  heapMb?: number;
}

/** Why a running round was ended from outside (stop signal, round deadline). */
export class TrainingStopped extends FedbiomedTsError {}

interface RunningRound {
  settle(result: { outcome: RoundOutcome } | { error: Error }): void;
}

export class TrainingWorker {
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  private running: RunningRound | undefined;
  /** The worker's backend and kernels as its engine described them when it started (its `[engine]` log line). */
  engineDescription: string | undefined;
  /** Ends a worker start in progress (stop() during a start). */
  private abortStart: ((err: Error) => void) | undefined;

  constructor(private readonly options: TrainingWorkerOptions) {}

  /** Runs one round in the worker (started if needed); events arrive through `emit` while it runs. */
  async run(job: RoundJob, emit: (event: RoundEvent) => void): Promise<RoundOutcome> {
    if (this.running) throw new Error('the training worker already runs a round');
    // Ready before the memory baseline is taken: the engine's own start-up is not the round's memory.
    const worker = await this.ready();
    return this.runOn(worker, job, emit);
  }

  /**
   * The worker, started now if there is none, once its engine is initialised. A node calls it when it starts, so
   * that its first round does not wait for the engine (seconds on a loaded machine).
   */
  ready(): Promise<Worker> {
    if (this.starting) return this.starting;
    if (this.worker) return Promise.resolve(this.worker);
    const starting = this.start().finally(() => {
      if (this.starting === starting) this.starting = undefined;
    });
    this.starting = starting;
    return starting;
  }

  private runOn(worker: Worker, job: RoundJob, emit: (event: RoundEvent) => void): Promise<RoundOutcome> {
    const capMb = this.options.maxRoundMemoryMb;
    const baseline = process.memoryUsage.rss();
    let peak = baseline;
    return new Promise<RoundOutcome>((resolve, reject) => {
      const sampler = setInterval(() => {
        const rss = process.memoryUsage.rss();
        peak = Math.max(peak, rss);
        if ((rss - baseline) / MB > capMb) {
          this.discard(worker);
          round.settle({ error: new RoundFailure(`Training stopped: the round used ${Math.round((rss - baseline) / MB)} MB ` +
            `of memory, over this node's limit of ${capMb} MB (limits.max_round_memory_mb); the plan or its data are ` +
            'too large for this node') });
        }
      }, MEMORY_SAMPLE_MS);
      sampler.unref();
      const onMessage = (message: FromTrainingWorker) => {
        if (message.type === 'event') emit(message.event);
        else if (message.type === 'done') round.settle({ outcome: message.outcome });
        else if (message.type === 'failed') {
          // An unexpected failure may leave the wasm engine in a broken state: the next round gets a fresh worker.
          if (!message.expected) this.discard(worker);
          round.settle({ error: message.expected ? new RoundFailure(message.message)
            : new Error(message.message) });
        }
      };
      const onError = (err: Error & { code?: string }) => {
        this.discard(worker);
        round.settle({ error: new RoundFailure(err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `Training stopped: the round ran out of its JavaScript heap limit of ${this.options.heapMb ?? capMb} MB ` +
            '(limits.max_round_memory_mb); the plan or its data are too large for this node'
          : `Training failed: the training worker crashed (${err.name}: ${err.message.split('\n')[0]})`) });
      };
      const onExit = (code: number) => {
        this.discard(worker);
        round.settle({ error: new RoundFailure(`Training failed: the training worker stopped unexpectedly (exit code ${code})`) });
      };
      const round: RunningRound = {
        settle: (result) => {
          if (this.running !== round) return;
          this.running = undefined;
          clearInterval(sampler);
          worker.off('message', onMessage).off('error', onError).off('exit', onExit);
          if ('outcome' in result) resolve({ ...result.outcome, peakRoundMemoryMb: Math.round((peak - baseline) / MB) });
          else reject(result.error);
        },
      };
      this.running = round;
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      const { tensors, transfer } = transferableTensors(job.weights);
      const message: ToTrainingWorker = { type: 'run', job: { ...job, weights: tensors } };
      worker.postMessage(message, transfer);
    });
  }

  /** Ends the running round at once (its promise rejects with `reason`) and the worker with it. */
  stop(reason: string): void {
    const round = this.running;
    this.abortStart?.(new TrainingStopped(reason));
    if (this.worker) this.discard(this.worker);
    round?.settle({ error: new TrainingStopped(reason) });
  }

  /** Ends the worker (the dataset it kept goes with it); the next round starts a fresh one. */
  async close(): Promise<void> {
    this.stop('the node is shutting down');
  }

  /** A fresh worker, once its engine is initialised. */
  private start(): Promise<Worker> {
    const ext = path.extname(__filename);
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: {
        service: path.join(__dirname, `training-worker-service${ext === '.ts' ? '.ts' : '.js'}`),
        // Resolved here: the evaluated bootstrap resolves bare names from the working directory, which may be
        // anywhere (a node started outside the clone failed every round with "Cannot find module 'jiti'").
        jiti: ext === '.ts' ? require.resolve('jiti') : undefined,
      },
      resourceLimits: { maxOldGenerationSizeMb: Math.max(32, this.options.heapMb ?? this.options.maxRoundMemoryMb) },
      // The engine's and libraries' own prints are not the node's log: drained and dropped.
      stdout: true,
      stderr: true,
    });
    worker.stdout.resume();
    worker.stderr.resume();
    // Idle, the worker must not keep the process alive (the node's connection does, while it runs).
    worker.unref();
    // An idle worker that dies is replaced at the next round; its errors are never unhandled events.
    worker.on('error', () => undefined);
    worker.once('exit', () => {
      if (this.worker === worker) this.worker = undefined;
    });
    this.worker = worker;
    return new Promise<Worker>((resolve, reject) => {
      const end = (err?: Error) => {
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        this.abortStart = undefined;
        if (!err) {
          resolve(worker);
          return;
        }
        this.discard(worker);
        reject(err);
      };
      const failed = (why: string) => end(new RoundFailure(`Training failed: the training engine did not start (${why})`));
      const onMessage = (message: FromTrainingWorker) => {
        if (message.type !== 'ready') return;
        if (message.error !== undefined) {
          failed(message.error);
          return;
        }
        this.engineDescription = message.engine;
        end();
      };
      const onError = (err: Error) => failed(`${err.name}: ${err.message.split('\n')[0]}`);
      const onExit = (code: number) => failed(`exit code ${code}`);
      this.abortStart = end;
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    });
  }

  private discard(worker: Worker): void {
    if (this.worker === worker) this.worker = undefined;
    void worker.terminate().catch(() => undefined);
  }
}
