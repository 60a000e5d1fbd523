/**
 * Decodes compressed DICOM frames in a worker thread, synchronously for the caller.
 *
 * Why a worker: the codecs are third-party C/C++ compiled to wasm (and one JavaScript decoder) fed with bytes from
 * files no one here wrote. A decoder that loops, aborts or allocates without end must cost one file, never the
 * node: the worker has a JavaScript heap limit (resourceLimits) and every request a deadline, after which the worker
 * is terminated (V8 interrupts wasm loops too) and the next request starts a fresh one. Frame sizes are checked
 * against the bytes present and the configured caps before anything is sent here (dicom-file.ts), and every codec
 * checks the codestream's own header against the DICOM header before decoding.
 *
 * Why synchronous: the readers are synchronous (batches are built on demand inside training). The caller blocks on
 * Atomics.wait until the worker signals its reply, then takes it with receiveMessageOnPort. A worker that dies
 * (heap limit) cannot signal, so that case is reported when the deadline passes.
 */
import * as path from 'path';
import { MessageChannel, MessagePort, receiveMessageOnPort, Worker } from 'worker_threads';
import type { FrameLayout } from './dicom-codecs';
import type { PixelEncoding } from './dicom-syntax';
import type { DecodeReply, DecodeRequest } from './pixel-decoder-service';

export interface PixelDecoderLimits {
  /** Deadline of one file's decoding, worker start included, in ms (default 30 000). */
  timeoutMs?: number;
  /** JavaScript heap limit of the decoding worker, in MiB (default 512). */
  workerHeapMb?: number;
}

export const DEFAULT_DECODE_TIMEOUT_MS = 30_000;
export const DEFAULT_WORKER_HEAP_MB = 512;

/** Plain CommonJS run by the worker: load the service module (compiled .js, or the .ts source through ts-node). */
const BOOTSTRAP = `
const { workerData } = require('worker_threads');
if (workerData.service.endsWith('.ts')) {
  require('ts-node').register({ transpileOnly: true, project: workerData.tsconfig });
}
require(workerData.service);
`;

interface RunningWorker {
  worker: Worker;
  port: MessagePort;
  signal: Int32Array;
  heapMb: number;
}

let current: RunningWorker | undefined;
let nextId = 1;

function serviceModule(): string {
  const ext = path.extname(__filename);
  return path.join(__dirname, `pixel-decoder-service${ext === '.ts' ? '.ts' : '.js'}`);
}

function startWorker(heapMb: number): RunningWorker {
  const { port1, port2 } = new MessageChannel();
  const signal = new Int32Array(new SharedArrayBuffer(4));
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
  return { worker, port: port1, signal, heapMb };
}

function stopWorker(): void {
  if (!current) return;
  void current.worker.terminate();
  current.port.close();
  current = undefined;
}

/** Ends the decoding worker (it is restarted on the next request). For tests and orderly shutdown. */
export function stopPixelDecoder(): void {
  stopWorker();
}

export class PixelDecodeError extends Error {
  /** Index of the frame that failed (0 for timeouts). */
  readonly frame: number;

  constructor(message: string, frame: number) {
    super(message);
    this.frame = frame;
  }
}

/**
 * Decodes `frames` (one compressed frame each) to little-endian samples of layout.bitsAllocated bits.
 * Throws PixelDecodeError with the codec's reason, or when the deadline passes.
 */
export function decodeFramesSync(
  encoding: PixelEncoding, frames: Uint8Array[], layout: FrameLayout, limits: PixelDecoderLimits = {},
): Uint8Array[] {
  const timeoutMs = limits.timeoutMs ?? DEFAULT_DECODE_TIMEOUT_MS;
  const heapMb = limits.workerHeapMb ?? DEFAULT_WORKER_HEAP_MB;
  if (current && current.heapMb !== heapMb) stopWorker();
  current ??= startWorker(heapMb);
  const running = current;
  const id = nextId++;
  const request: DecodeRequest = { id, encoding, frames, layout };
  running.port.postMessage(request);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const message = receiveMessageOnPort(running.port);
    if (message) {
      const reply = message.message as DecodeReply;
      if (reply.id !== id) continue; // a late reply to a request that timed out before this worker was replaced
      if (!reply.ok) throw new PixelDecodeError(reply.message, reply.frame);
      return reply.frames;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    Atomics.wait(running.signal, 0, Atomics.load(running.signal, 0), Math.min(left, 1000));
  }
  stopWorker();
  throw new PixelDecodeError(`decoding did not finish within ${timeoutMs} ms (the decoder was stopped; `
    + `a corrupt codestream, or the ${heapMb} MiB decoder heap limit was reached)`, 0);
}
