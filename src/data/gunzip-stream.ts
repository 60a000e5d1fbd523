/**
 * A gzip file inflated by Node's native zlib, streamed, for a synchronous caller: `next()` returns the next inflated
 * chunk (or null at the end) and blocks until it is there.
 *
 * Node's zlib has no documented synchronous streaming API (only whole-buffer `gunzipSync`, or async streams), so a
 * small worker thread, one per calling thread and reused, runs `fs.createReadStream(file).pipe(zlib.createGunzip())`
 * and posts each inflated chunk on a MessagePort; the caller sleeps in Atomics.wait on a shared counter and takes
 * chunks with receiveMessageOnPort (the same bridge as pixel-decoder.ts). The worker inflates at most AHEAD chunks
 * past what the caller took, then waits for it: memory is a few chunks, whatever the file (a gzip bomb included),
 * and inflation overlaps the caller's decoding.
 *
 * Measured on bench/nifti.ts's 256x256x160 int16 .nii.gz (13 MiB), loaded 2-core machine: native zlib inflates it
 * in ~110 ms, fflate ~215 ms whole and ~245 ms in 64 KiB streaming steps, pako ~370-450 ms. The bench, before (fflate
 * streamed in this thread) and after, same session: time over nibabel's 3-D 1.60-3.01 -> 0.63-0.98, one volume of
 * 4-D 2.25-2.83 -> 0.61-0.72 (inflation overlaps decoding); peak growth over the whole-file way 3-D 0.95-1.02 ->
 * 0.75, 4-D 0.22 -> 0.06-0.07.
 * Packages that drive Node's zlib synchronously chunk by chunk (minizlib, fast-zlib) rely on its undocumented
 * `_processChunk`, and are not used.
 */
import { MessageChannel, MessagePort, receiveMessageOnPort, Worker } from 'worker_threads';

/** Why inflating stopped: the file could not be read, or its gzip data is corrupt or truncated. */
export class GunzipStreamError extends Error {
  constructor(readonly kind: 'read' | 'gzip', message: string) {
    super(message);
  }
}

/** Bytes of one ring slot, the largest inflated chunk (zlib's chunkSize); also the compressed bytes read at a time. */
const SLOT_BYTES = 256 * 1024;
/** Slots in the ring: chunks the worker may inflate ahead of the caller before it waits. */
const SLOTS = 4;
/**
 * Chunks between two young-generation collections in the worker (see WORKER_SOURCE). Measured with bench/nifti.ts's
 * child: peak growth 3-D 137 -> 107 MiB (3 runs), 4-D volume 44 -> 12 MiB; each collection costs well under 1 ms.
 */
const COLLECT_EVERY = 8;
/** A worker that signals nothing for this long is taken as gone (it is replaced for the next file). */
const SILENCE_MS = 60_000;

/**
 * Shared Int32 words. The worker bumps WOKEN after each slot it fills and each message it posts; the caller bumps
 * SIGNAL after releasing a slot or cancelling. WRITTEN and RELEASED count the current file's slots (reset by the
 * caller between files, when the worker is idle); jobs up to CANCELLED are cancelled; LENGTHS holds each slot's length.
 */
const WOKEN = 0;
const SIGNAL = 1;
const WRITTEN = 2;
const RELEASED = 3;
const CANCELLED = 4;
const LENGTHS = 5;

/**
 * Plain CommonJS (core modules only, so it starts in milliseconds): the worker's side of the bridge. The compressed
 * file is read synchronously into one buffer per file, reused once zlib has consumed it (the write callback), and
 * each inflated chunk is copied into the next free ring slot.
 */
const WORKER_SOURCE = `
const { workerData } = require('worker_threads');
const fs = require('fs');
const zlib = require('zlib');
const { port, control, ring } = workerData;
const [WOKEN, SIGNAL, WRITTEN, RELEASED, CANCELLED, LENGTHS] = [${WOKEN}, ${SIGNAL}, ${WRITTEN}, ${RELEASED}, ${CANCELLED}, ${LENGTHS}];
const SLOTS = ${SLOTS};
const SLOT_BYTES = ${SLOT_BYTES};
const COLLECT_EVERY = ${COLLECT_EVERY};
// A young-generation collection (the worker's heap is tiny: well under a millisecond) frees the output buffers zlib
// allocates for each chunk; left to V8, tens of MiB of them pile up before it collects. gc is taken the way jest's
// leak detector takes it, the flag restored at once (unless the process runs with it).
let collect = typeof gc === 'function' ? gc : undefined;
if (!collect) {
  const v8 = require('v8');
  v8.setFlagsFromString('--expose-gc');
  collect = require('vm').runInNewContext('gc');
  v8.setFlagsFromString('--no-expose-gc');
}
let filled = 0;
let active = 0;
// A fault of this worker (not of the file) ends the file being read with its reason, and the worker: the next file
// starts a fresh one.
process.on('uncaughtException', (error) => {
  post({ job: active, kind: 'read', error: 'the inflating worker failed: ' + error.message, fatal: true });
  process.exit(1);
});
function wake() {
  Atomics.add(control, WOKEN, 1);
  Atomics.notify(control, WOKEN);
}
function post(message) {
  port.postMessage(message);
  wake();
}
port.on('message', ({ job, path }) => {
  active = job;
  const cancelled = () => Atomics.load(control, CANCELLED) >= job;
  let fd;
  try {
    fd = fs.openSync(path, 'r');
  } catch (error) {
    return post({ job, kind: 'read', error: error.message });
  }
  const input = Buffer.allocUnsafe(SLOT_BYTES);
  const gunzip = zlib.createGunzip({ chunkSize: SLOT_BYTES });
  let done = false;
  const finish = (message) => {
    if (done) return;
    done = true;
    gunzip.destroy();
    fs.closeSync(fd);
    post(message);
  };
  const feed = () => {
    if (done) return;
    if (cancelled()) return finish({ job, closed: true });
    let got;
    try {
      got = fs.readSync(fd, input, 0, SLOT_BYTES, null);
    } catch (error) {
      return finish({ job, kind: 'read', error: error.message });
    }
    if (got === 0) gunzip.end();
    else gunzip.write(input.subarray(0, got), feed);
  };
  gunzip.on('data', (chunk) => {
    if (done) return;
    // Wait (this thread has nothing else to do) for a free slot, or the caller's cancel.
    for (;;) {
      const signal = Atomics.load(control, SIGNAL);
      if (cancelled()) return finish({ job, closed: true });
      if (Atomics.load(control, WRITTEN) - Atomics.load(control, RELEASED) < SLOTS) break;
      Atomics.wait(control, SIGNAL, signal);
    }
    const slot = Atomics.load(control, WRITTEN) % SLOTS;
    ring.set(chunk, slot * SLOT_BYTES);
    Atomics.store(control, LENGTHS + slot, chunk.length);
    Atomics.add(control, WRITTEN, 1);
    wake();
    if (++filled % COLLECT_EVERY === 0) collect({ type: 'minor' });
  });
  gunzip.on('end', () => finish({ job, end: true }));
  gunzip.on('error', (error) => finish({ job, kind: 'gzip', error: error.message }));
  feed();
});
`;

type WorkerMessage =
  | { job: number; end: true }
  | { job: number; closed: true }
  | { job: number; kind: 'read' | 'gzip'; error: string; fatal?: true };

interface Bridge {
  worker: Worker;
  port: MessagePort;
  control: Int32Array;
  ring: Uint8Array;
}

/** This thread's worker (module state is per thread), started on first use. */
let bridge: Bridge | undefined;
let lastJob = 0;
/** The stream open on this thread, if any. */
let current: GunzipStream | undefined;

function startBridge(): Bridge {
  const { port1, port2 } = new MessageChannel();
  const control = new Int32Array(new SharedArrayBuffer((LENGTHS + SLOTS) * Int32Array.BYTES_PER_ELEMENT));
  const ring = new Uint8Array(new SharedArrayBuffer(SLOTS * SLOT_BYTES));
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { port: port2, control, ring },
    transferList: [port2],
    // None of the parent's flags: inheriting e.g. `-r ts-node/register` loaded the TypeScript compiler into the worker
    // (measured in bench/nifti.ts: +50 MiB peak and +0.6 s for the first file).
    execArgv: [],
    // Its heap holds little (the data is in the ring); zlib's own memory is native.
    resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 },
  });
  // Idle, the worker must not keep the process alive; its failures surface as a silent worker, not events.
  worker.unref();
  worker.on('error', () => undefined);
  port1.unref();
  return { worker, port: port1, control, ring };
}

function stopBridge(b: Bridge): void {
  void b.worker.terminate();
  b.port.close();
  if (bridge === b) bridge = undefined;
}

/** One gzip file being inflated; close() when done (early closing cancels the rest). */
export class GunzipStream {
  private ended = false;
  /** Slots taken so far; the last one taken is held (its view handed out) until the next call. */
  private taken = 0;
  private holding = false;
  /** The worker's last message for this file, once received (slots written before it are taken first). */
  private final: WorkerMessage | undefined;
  /** Closed because another file was opened on this thread first. */
  private superseded = false;

  private constructor(private readonly b: Bridge, private readonly job: number) {}

  /**
   * Starts inflating `path` (in the background: read and inflate errors come from next()). One stream per thread at a
   * time: a stream still open is closed first (its next() then throws).
   */
  static open(path: string): GunzipStream {
    if (current && !current.ended) {
      current.close();
      current.superseded = true;
    }
    bridge ??= startBridge();
    const job = ++lastJob;
    // The worker is idle (the previous stream ended or was closed): the ring starts empty.
    Atomics.store(bridge.control, WRITTEN, 0);
    Atomics.store(bridge.control, RELEASED, 0);
    bridge.port.postMessage({ job, path });
    current = new GunzipStream(bridge, job);
    return current;
  }

  /**
   * The next inflated chunk (a view of the shared ring, valid until the next call or close()), null after the last;
   * throws GunzipStreamError when the file is unreadable or corrupt.
   */
  next(): Uint8Array | null {
    this.release();
    if (this.superseded) throw new GunzipStreamError('read', 'another file was opened on this thread before this one was closed');
    if (this.ended) return null;
    const { control, ring } = this.b;
    for (;;) {
      const woken = Atomics.load(control, WOKEN);
      if (Atomics.load(control, WRITTEN) > this.taken) {
        const slot = this.taken % SLOTS;
        this.taken++;
        this.holding = true;
        return ring.subarray(slot * SLOT_BYTES, slot * SLOT_BYTES + Atomics.load(control, LENGTHS + slot));
      }
      if (this.final) {
        this.ended = true;
        if ('kind' in this.final) throw new GunzipStreamError(this.final.kind, this.final.error);
        return null;
      }
      this.final = this.receive(woken);
    }
  }

  /** Stops the worker's inflating of this file and waits until it has (so the ring is free for the next file). */
  close(): void {
    this.release();
    const finished = this.ended || this.final !== undefined;
    this.ended = true;
    if (finished) return;
    const { control } = this.b;
    Atomics.store(control, CANCELLED, this.job);
    Atomics.add(control, SIGNAL, 1);
    Atomics.notify(control, SIGNAL);
    try {
      while (!this.receive(Atomics.load(control, WOKEN))) { /* slots filled before the cancel are dropped */ }
    } catch {
      // a silent worker was stopped: the next file starts a fresh one
    }
  }

  /** Gives the slot handed out last back to the worker. */
  private release(): void {
    if (!this.holding) return;
    this.holding = false;
    Atomics.add(this.b.control, RELEASED, 1);
    Atomics.add(this.b.control, SIGNAL, 1);
    Atomics.notify(this.b.control, SIGNAL);
  }

  /**
   * This file's last message (end, error or closed) if the worker posted it, else waits for the worker's next signal
   * after `woken` and returns undefined. Throws when the worker stays silent.
   */
  private receive(woken: number): WorkerMessage | undefined {
    for (let received = receiveMessageOnPort(this.b.port); received; received = receiveMessageOnPort(this.b.port)) {
      const message = received.message as WorkerMessage;
      if ('fatal' in message) stopBridge(this.b);
      if (message.job === this.job) return message;
    }
    if (Atomics.wait(this.b.control, WOKEN, woken, SILENCE_MS) === 'timed-out') {
      this.ended = true;
      stopBridge(this.b);
      throw new GunzipStreamError('read', `the inflating worker did not answer within ${SILENCE_MS} ms`);
    }
    return undefined;
  }
}
