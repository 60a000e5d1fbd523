/**
 * Decodes compressed DICOM frames in worker threads (a small pool: the files of a series decode in parallel),
 * synchronously for the caller.
 *
 * Why workers: the codecs are third-party C/C++ compiled to wasm (and one JavaScript decoder) fed with bytes from
 * files no one here wrote. A decoder that loops, aborts or allocates without end must cost one file, never the
 * node: each worker has a JavaScript heap limit (resourceLimits) and every file a deadline, after which its worker
 * is terminated (V8 interrupts wasm loops too) and replaced by a fresh one. Frame sizes are checked
 * against the bytes present and the configured caps before anything is sent here (dicom-file.ts), and every codec
 * checks the codestream's own header against the DICOM header before decoding.
 *
 * Why synchronous: the readers are synchronous (batches are built on demand inside training). The caller blocks on
 * Atomics.wait until a worker signals a reply (one shared counter), then takes replies with receiveMessageOnPort. A worker that dies
 * (heap limit) cannot signal, so that case is reported when the deadline passes.
 */
import * as os from 'os';
import * as path from 'path';
import { MessageChannel, MessagePort, receiveMessageOnPort, Worker } from 'worker_threads';
import type { FrameLayout } from './dicom-codecs';
import type { PixelEncoding } from './dicom-syntax';
import type { DecodeReply, DecodeRequest } from './pixel-decoder-service';
import { FedbiomedTsError } from '../errors';

export interface PixelDecoderLimits {
  /** Deadline of one file's decoding, worker start included, in ms (default 30 000). */
  timeoutMs?: number;
  /** JavaScript heap limit of each decoding worker, in MiB (default 512). */
  workerHeapMb?: number;
  /** Decoding workers, so the files of a series decode in parallel (default: the cores, at most 4). */
  decodeWorkers?: number;
  /**
   * Decode JPEG 2000 with the native OpenJPEG helper when it was built (default true; src/data/native-decoder.ts), in
   * a child process of each worker limited to workerHeapMb of address space and timeoutMs per frame; false: the wasm
   * OpenJPEG only.
   */
  nativeJpeg2000?: boolean;
  /**
   * Decode JPEG lossless and 12-bit JPEG extended with the native DCMTK/IJG helper when it was built (default true),
   * under the same limits; false: JPEG lossless through jpeg-lossless-decoder-js, and 12-bit JPEG extended refused.
   */
  nativeJpeg?: boolean;
}

const DEFAULT_DECODE_TIMEOUT_MS = 30_000;
const DEFAULT_WORKER_HEAP_MB = 512;

/** Plain CommonJS run by the worker: load the service module (compiled .js, or the .ts source through ts-node). */
const BOOTSTRAP = `
const { workerData } = require('worker_threads');
if (workerData.service.endsWith('.ts')) {
  require('ts-node').register({ transpileOnly: true, project: workerData.tsconfig });
}
require(workerData.service);
`;

interface PoolWorker {
  worker: Worker;
  port: MessagePort;
  /** The jobs it holds, oldest first; only the oldest (the one it decodes) has a deadline yet. */
  jobs: { index: number; id: number; deadline: number }[];
}

/**
 * Jobs a worker holds at once: the second waits in its queue (its native helper already has its frames), so the
 * worker never idles between files while this thread is not scheduled. Measured on the JPEG 2000 series of
 * bench/dicom.ts on a loaded machine: one at a time left the helpers idle about half the time.
 */
const JOBS_PER_WORKER = 2;

interface Pool {
  heapMb: number;
  /** Shared counter every worker increments after each reply, so one Atomics.wait covers all of them. */
  signal: Int32Array;
  workers: PoolWorker[];
}

let pool: Pool | undefined;
let nextId = 1;

function serviceModule(): string {
  const ext = path.extname(__filename);
  return path.join(__dirname, `pixel-decoder-service${ext === '.ts' ? '.ts' : '.js'}`);
}

function startWorker(heapMb: number, signal: Int32Array): PoolWorker {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(BOOTSTRAP, {
    eval: true,
    workerData: { port: port2, signal, service: serviceModule(), tsconfig: path.join(__dirname, '..', '..', 'tsconfig.json') },
    transferList: [port2],
    resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 32, stackSizeMb: 8 },
    stdout: true, // the codecs' own prints stay out of the node's output
    stderr: true,
  });
  // Idle, the worker must not keep the process alive; its failures surface as request errors, not events.
  worker.unref();
  worker.on('error', () => undefined);
  port1.unref();
  return { worker, port: port1, jobs: [] };
}

function stopWorker(w: PoolWorker): void {
  void w.worker.terminate();
  w.port.close();
}

/** Ends the decoding workers (they are restarted on the next request). For tests and orderly shutdown. */
export function stopPixelDecoder(): void {
  pool?.workers.forEach(stopWorker);
  pool = undefined;
}

/** Default number of decoding workers: the cores, at most 4 (files of one series decode in parallel). */
export function defaultDecodeWorkers(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

class PixelDecodeError extends FedbiomedTsError {
  /** Index of the frame that failed (0 for timeouts). */
  readonly frame: number;

  constructor(message: string, frame: number) {
    super(message);
    this.frame = frame;
  }
}

/** One file's compressed frames. */
export interface DecodeJob {
  encoding: PixelEncoding;
  frames: Uint8Array[];
  layout: FrameLayout;
}

export type DecodeOutcome = { ok: true; frames: Uint8Array[] } | { ok: false; error: PixelDecodeError };

/**
 * Decodes several files' frames on the worker pool, each file with its own deadline (from when a worker takes it).
 * Returns one outcome per job, in order; a failing or timed-out job does not stop the others.
 */
export function decodeJobsSync(jobs: DecodeJob[], limits: PixelDecoderLimits = {}): DecodeOutcome[] {
  const timeoutMs = limits.timeoutMs ?? DEFAULT_DECODE_TIMEOUT_MS;
  const heapMb = limits.workerHeapMb ?? DEFAULT_WORKER_HEAP_MB;
  const size = Math.max(1, Math.min(jobs.length, limits.decodeWorkers ?? defaultDecodeWorkers()));
  const native = { memoryMb: heapMb, frameTimeoutMs: timeoutMs, jpeg2000: limits.nativeJpeg2000 !== false, jpeg: limits.nativeJpeg !== false };
  if (pool && pool.heapMb !== heapMb) stopPixelDecoder();
  pool ??= { heapMb, signal: new Int32Array(new SharedArrayBuffer(4)), workers: [] };
  const p = pool;
  while (p.workers.length < size) p.workers.push(startWorker(heapMb, p.signal));
  const outcomes: (DecodeOutcome | undefined)[] = new Array(jobs.length);
  /** Jobs not yet given to a worker (or given back by a worker that was stopped), in order. */
  const waiting = jobs.map((_, index) => index);
  let done = 0;
  const workers = p.workers.slice(0, size);
  while (done < jobs.length) {
    const seen = Atomics.load(p.signal, 0);
    const now = Date.now();
    for (let w = 0; w < workers.length; w++) {
      const worker = workers[w];
      // Collect replies (late replies to replaced jobs have unknown ids and are dropped).
      for (let message = receiveMessageOnPort(worker.port); message; message = receiveMessageOnPort(worker.port)) {
        const reply = message.message as DecodeReply;
        const at = worker.jobs.findIndex((job) => job.id === reply.id);
        if (at < 0) continue;
        const [job] = worker.jobs.splice(at, 1);
        outcomes[job.index] = reply.ok
          ? { ok: true, frames: reply.frames }
          : { ok: false, error: new PixelDecodeError(reply.message, reply.frame) };
        done++;
        // The next job's deadline runs from when the worker starts on it.
        if (at === 0 && worker.jobs.length > 0) worker.jobs[0].deadline = Date.now() + timeoutMs;
      }
      const [oldest, ...behind] = worker.jobs;
      if (oldest && now >= oldest.deadline) {
        outcomes[oldest.index] = {
          ok: false,
          error: new PixelDecodeError(`decoding did not finish within ${timeoutMs} ms (the decoder was stopped; `
            + `a corrupt codestream, or the ${heapMb} MiB decoder heap limit was reached)`, 0),
        };
        done++;
        waiting.unshift(...behind.map((job) => job.index)); // not their fault: they go to the next free worker
        stopWorker(worker);
        const fresh = startWorker(heapMb, p.signal);
        p.workers[p.workers.indexOf(worker)] = fresh;
        workers[w] = fresh;
      }
      const current = workers[w];
      while (current.jobs.length < JOBS_PER_WORKER && waiting.length > 0) {
        const index = waiting.shift() as number;
        const id = nextId++;
        const request: DecodeRequest = { id, ...jobs[index], native };
        current.jobs.push({ index, id, deadline: current.jobs.length === 0 ? Date.now() + timeoutMs : Infinity });
        current.port.postMessage(request);
      }
    }
    if (done >= jobs.length) break;
    const nearest = Math.min(...workers.map((w) => w.jobs[0]?.deadline ?? Infinity));
    const wait = Math.max(1, Math.min(1000, nearest - Date.now()));
    Atomics.wait(p.signal, 0, seen, wait);
  }
  return outcomes as DecodeOutcome[];
}

/**
 * Decodes `frames` (one compressed frame each) to little-endian samples of layout.bitsAllocated bits.
 * Throws PixelDecodeError with the codec's reason, or when the deadline passes.
 */
export function decodeFramesSync(
  encoding: PixelEncoding, frames: Uint8Array[], layout: FrameLayout, limits: PixelDecoderLimits = {},
): Uint8Array[] {
  const [outcome] = decodeJobsSync([{ encoding, frames, layout }], limits);
  if (!outcome.ok) throw outcome.error;
  return outcome.frames;
}
