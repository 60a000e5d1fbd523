/**
 * The training worker's side (see training-worker.ts): runs one round's computation at a time with the node's
 * engine (tfjs wasm backend and the native kernels, initialised here and only here: the main thread never trains,
 * it logs the line this worker sends) and keeps the last dataset read between rounds, as the node did in-thread.
 */
import { parentPort } from 'worker_threads';
import { backendLogLine, initBackend } from '../src/engine/backend';
import { PlanDatasetCache } from './dataset-cache';
import { computeRound, describe, RoundFailure, transferableTensors, type RoundEvent, type RoundJob, type RoundOutcome } from './round-compute';

export type ToTrainingWorker = { type: 'run'; job: RoundJob };

export type FromTrainingWorker =
  /**
   * The engine is initialised, `engine` is its log line (which backend, why); or it could not be: `error`. Sent
   * once, before any round.
   */
  | { type: 'ready'; engine?: string; error?: string }
  | { type: 'event'; event: RoundEvent }
  | { type: 'done'; outcome: RoundOutcome }
  /** `expected`: a failure the round names itself (bad data, bad weights); anything else may have left the engine broken. */
  | { type: 'failed'; message: string; expected: boolean };

const port = parentPort;
if (!port) throw new Error('training-worker-service runs only as a worker thread');

const cache = new PlanDatasetCache();
// Quiet here: the line goes to the main thread, which logs it in the node's log (the main thread has no engine).
const backend = initBackend(() => undefined);
backend.then((choice) => port.postMessage({ type: 'ready', engine: backendLogLine(choice) } satisfies FromTrainingWorker),
  (err: unknown) => port.postMessage({ type: 'ready', error: describe(err) } satisfies FromTrainingWorker));

port.on('message', (message: ToTrainingWorker) => {
  if (message.type === 'run') void run(message.job);
});

async function run(job: RoundJob): Promise<void> {
  const send = (message: FromTrainingWorker, transfer: ArrayBuffer[] = []) => port?.postMessage(message, transfer);
  try {
    await backend;
    const outcome = await computeRound(job, {
      emit: (event) => send({ type: 'event', event }),
      // The main thread stops a round by terminating this worker: nothing to poll.
      shouldStop: () => false,
      dataCache: cache,
    });
    const { tensors, transfer } = transferableTensors(outcome.weights);
    send({ type: 'done', outcome: { ...outcome, weights: tensors } }, transfer);
  } catch (err) {
    send({ type: 'failed', message: describe(err), expected: err instanceof RoundFailure });
  }
}
