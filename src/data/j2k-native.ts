/**
 * Client of the native JPEG 2000 helper (src/data/native/j2k-decode.c: the system's OpenJPEG in a separate, long-lived
 * process), used by the decoding workers when the helper was built (src/data/native/build.js, at install).
 *
 * Why a child process: OpenJPEG in wasm takes ~3x the CPU time of native OpenJPEG per lossless frame, which left JPEG
 * 2000 series at 0.4-0.6x pydicom's speed (bench/dicom.ts); native code fed with untrusted codestreams must not run
 * in the node's process. The helper has an address-space limit (RLIMIT_AS, set by itself) and a per-frame alarm; here
 * every frame has a deadline after which the helper is killed. A helper that crashes, is killed or times out fails
 * that frame with a clear FrameDecodeError and is started afresh for the next one. Frames travel over pipes only:
 * no patient image is written to disk.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** Where build.js puts the helper: beside its source, which a compiled copy (dist/src/data) finds three levels up. */
const HELPER_CANDIDATES = [
  path.join(__dirname, 'native', 'build', 'fbts-j2k-decode'),
  path.join(__dirname, '..', '..', '..', 'src', 'data', 'native', 'build', 'fbts-j2k-decode'),
];

/** The built helper, or undefined when it was not built (no compiler or no OpenJPEG headers at install). */
export function nativeJ2kHelper(): string | undefined {
  return HELPER_CANDIDATES.find((p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export interface NativeJ2kOptions {
  /** The helper's address-space limit, in MiB. */
  memoryMb: number;
  /** Deadline of one frame, in ms. */
  frameTimeoutMs: number;
}

export interface NativeJ2kImage {
  width: number;
  height: number;
  components: number;
  precision: number;
  signed: boolean;
  bytesPerSample: 1 | 2;
  /** Samples interleaved by component, little endian. */
  samples: Uint8Array;
}

/** A frame the helper could not decode (its reason), or a helper that died or was stopped on it. */
export class NativeJ2kError extends Error {}

interface InFlight {
  data: Uint8Array;
  resolve(image: NativeJ2kImage): void;
  reject(error: Error): void;
}

export class NativeJ2kDecoder {
  private child?: ChildProcess;
  private received: Buffer[] = [];
  private receivedBytes = 0;
  /** Frames sent and not yet answered, in the helper's (first in, first out) order. */
  private inFlight: InFlight[] = [];
  /** The deadline of the oldest frame in flight (the one the helper is decoding). */
  private timer?: NodeJS.Timeout;

  constructor(private readonly helper: string, readonly options: NativeJ2kOptions) {}

  /** The running helper's process id (tests kill it to check recovery). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Decodes one codestream. Frames may be queued before earlier ones are answered: the helper then decodes the next
   * frame while this process is busy or not scheduled (that idle time halved the throughput on a loaded machine).
   * Each frame has frameTimeoutMs from when the helper starts on it.
   */
  decode(codestream: Uint8Array): Promise<NativeJ2kImage> {
    return new Promise<NativeJ2kImage>((resolve, reject) => {
      const frame = { data: codestream, resolve, reject };
      this.inFlight.push(frame);
      this.send(this.child ?? this.start(), frame);
      if (this.inFlight.length === 1) this.armTimer();
    });
  }

  /** Stops the helper; frames in flight fail. It is started again by the next decode. */
  stop(): void {
    const frames = this.inFlight;
    this.inFlight = [];
    this.kill();
    for (const frame of frames) frame.reject(new NativeJ2kError('the native JPEG 2000 decoder was stopped'));
  }

  private send(child: ChildProcess, frame: InFlight): void {
    const length = Buffer.alloc(4);
    length.writeUInt32LE(frame.data.length);
    child.stdin?.write(length);
    child.stdin?.write(frame.data);
  }

  private kill(): void {
    clearTimeout(this.timer);
    const child = this.child;
    this.child = undefined;
    this.received = [];
    this.receivedBytes = 0;
    child?.stdin?.destroy();
    child?.stdout?.destroy();
    child?.kill('SIGKILL');
  }

  private armTimer(): void {
    clearTimeout(this.timer);
    if (this.inFlight.length === 0) return;
    this.timer = setTimeout(() => {
      this.failOldest(new NativeJ2kError(`the native JPEG 2000 decoder did not finish the frame within ${this.options.frameTimeoutMs} ms (stopped)`));
    }, this.options.frameTimeoutMs);
  }

  private start(): ChildProcess {
    const alarmSeconds = Math.ceil(this.options.frameTimeoutMs / 1000) + 1;
    const child = spawn(this.helper, [String(this.options.memoryMb), String(alarmSeconds)], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.child = child;
    child.stdin?.on('error', () => undefined); // EPIPE when the helper died: reported through 'exit'
    child.stdout?.on('data', (chunk: Buffer) => {
      if (this.child !== child) return;
      this.received.push(chunk);
      this.receivedBytes += chunk.length;
      this.parse();
    });
    child.on('error', (error) => {
      if (this.child === child) this.failOldest(new NativeJ2kError(`the native JPEG 2000 decoder could not run (${error.message})`));
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      const how = signal === 'SIGALRM' ? 'ran out of time' : signal ? `was killed (${signal})` : `exited (code ${code})`;
      this.failOldest(new NativeJ2kError(`the native JPEG 2000 decoder ${how} on this frame`));
    });
    return child;
  }

  /** The frame the helper was on fails; the frames queued behind it go to a fresh helper. */
  private failOldest(error: Error): void {
    this.kill();
    const [oldest, ...rest] = this.inFlight;
    this.inFlight = rest;
    oldest?.reject(error);
    if (rest.length === 0) return;
    const child = this.start();
    for (const frame of rest) this.send(child, frame);
    this.armTimer();
  }

  /** Completes the frames whose whole reply has arrived, oldest first. */
  private parse(): void {
    for (;;) {
      if (this.inFlight.length === 0 || this.receivedBytes < 8) return;
      const data = this.received.length === 1 ? this.received[0] : Buffer.concat(this.received);
      this.received = [data];
      let reply: NativeJ2kImage | NativeJ2kError;
      let used: number;
      if (data.readUInt32LE(0) === 1) {
        used = 8 + data.readUInt32LE(4);
        if (data.length < used) return;
        reply = new NativeJ2kError(data.subarray(8, used).toString('utf8'));
      } else {
        if (data.length < 32) return;
        used = 32 + data.readUInt32LE(28);
        if (data.length < used) return;
        reply = {
          width: data.readUInt32LE(4),
          height: data.readUInt32LE(8),
          components: data.readUInt32LE(12),
          precision: data.readUInt32LE(16),
          signed: data.readUInt32LE(20) !== 0,
          bytesPerSample: data.readUInt32LE(24) === 1 ? 1 : 2,
          samples: new Uint8Array(data.subarray(32, used)),
        };
      }
      const rest = data.subarray(used);
      this.received = rest.length > 0 ? [rest] : [];
      this.receivedBytes = rest.length;
      const frame = this.inFlight.shift() as InFlight;
      this.armTimer();
      if (reply instanceof NativeJ2kError) frame.reject(reply);
      else frame.resolve(reply);
    }
  }
}
