/**
 * Client of the native decoding helpers, separate long-lived programs built at install (src/data/native/build.js):
 *   fbts-j2k-decode   JPEG 2000 with the system's OpenJPEG (native/j2k-decode.c);
 *   fbts-jpeg-decode  JPEG lossless and JPEG extended (8/12 bits) with DCMTK's IJG libraries (native/jpeg-decode.cc).
 * Both speak the same frame protocol (native/frame-server.h), so one client serves both. The decoding workers use them
 * when they were built (pixel-decoder-service.ts).
 *
 * Why a child process: OpenJPEG in wasm takes ~3x the CPU time of native OpenJPEG per lossless frame, which left JPEG
 * 2000 series at 0.4-0.6x pydicom's speed (bench/dicom.ts), and no maintained JavaScript or wasm decoder does 12-bit
 * JPEG extended (dicom-codecs.ts); native code fed with untrusted codestreams must not run in the node's process.
 * A helper has an address-space limit (RLIMIT_AS, set by itself) and a per-frame alarm; here every frame has a
 * deadline after which the helper is killed. A helper that crashes or is killed from outside gets the frame it was on
 * once more in a fresh helper; a second death, or a frame past its deadline, fails that frame with a clear error, and
 * a fresh helper takes the next frames. Frames travel over pipes (socket pairs) only: no patient image is written to
 * disk.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** A native decoding program: its file name (build.js) and what its messages call it. */
export interface NativeCodec {
  program: string;
  label: string;
}

export const NATIVE_J2K: NativeCodec = { program: 'fbts-j2k-decode', label: 'native JPEG 2000 decoder' };
export const NATIVE_JPEG: NativeCodec = { program: 'fbts-jpeg-decode', label: 'native JPEG decoder' };

/**
 * The built helper, or undefined when it was not built (no compiler or no library headers at install). build.js puts
 * it beside its source, which a compiled copy (dist/src/data) finds three levels up.
 */
export function nativeHelper(codec: NativeCodec): string | undefined {
  const candidates = [
    path.join(__dirname, 'native', 'build', codec.program),
    path.join(__dirname, '..', '..', '..', 'src', 'data', 'native', 'build', codec.program),
  ];
  return candidates.find((p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export interface NativeDecoderOptions {
  /** The helper's address-space limit, in MiB. */
  memoryMb: number;
  /** Deadline of one frame, in ms. */
  frameTimeoutMs: number;
}

export interface NativeImage {
  width: number;
  height: number;
  components: number;
  precision: number;
  signed: boolean;
  bytesPerSample: 1 | 2;
  /** Samples interleaved by component, little endian (an array of its own: it can be transferred). */
  samples: Uint8Array;
}

/** A frame the helper could not decode (its reason), or a helper that died or was stopped on it. */
export class NativeDecodeError extends Error {}

const EMPTY = Buffer.alloc(0);

interface InFlight {
  data: Uint8Array;
  resolve(image: NativeImage): void;
  reject(error: Error): void;
  /** A helper died on this frame once already (it was sent again to a fresh one). */
  retried?: boolean;
}

export class NativeFrameDecoder {
  private child?: ChildProcess;
  /** Reply bytes before the samples: a status and a message, or the image's header. */
  private head: Buffer = EMPTY;
  /** The image whose samples are arriving, written straight into their final array (no copy, little garbage). */
  private image?: { reply: NativeImage; filled: number };
  /** Frames sent and not yet answered, in the helper's (first in, first out) order. */
  private inFlight: InFlight[] = [];
  /** The deadline of the oldest frame in flight (the one the helper is decoding). */
  private timer?: NodeJS.Timeout;

  constructor(private readonly codec: NativeCodec, private readonly helper: string, readonly options: NativeDecoderOptions) {}

  /** The running helper's process id (tests kill it to check recovery). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Decodes one codestream. Frames may be queued before earlier ones are answered: the helper then decodes the next
   * frame while this process is busy or not scheduled (that idle time halved the throughput on a loaded machine).
   * Each frame has frameTimeoutMs from when the helper starts on it.
   */
  decode(codestream: Uint8Array): Promise<NativeImage> {
    return new Promise<NativeImage>((resolve, reject) => {
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
    for (const frame of frames) frame.reject(new NativeDecodeError(`the ${this.codec.label} was stopped`));
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
    this.head = EMPTY;
    this.image = undefined;
    child?.stdin?.destroy();
    child?.stdout?.destroy();
    child?.kill('SIGKILL');
  }

  private armTimer(): void {
    clearTimeout(this.timer);
    if (this.inFlight.length === 0) return;
    this.timer = setTimeout(() => {
      this.failOldest(new NativeDecodeError(`the ${this.codec.label} did not finish the frame within ${this.options.frameTimeoutMs} ms (stopped)`));
    }, this.options.frameTimeoutMs);
  }

  private start(): ChildProcess {
    const alarmSeconds = Math.ceil(this.options.frameTimeoutMs / 1000) + 1;
    const child = spawn(this.helper, [String(this.options.memoryMb), String(alarmSeconds)], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.child = child;
    child.stdin?.on('error', () => undefined); // EPIPE when the helper died: reported through 'exit'
    child.stdout?.on('data', (chunk: Buffer) => {
      if (this.child === child) this.receive(chunk);
    });
    child.on('error', (error) => {
      if (this.child === child) this.failOldest(new NativeDecodeError(`the ${this.codec.label} could not run (${error.message})`));
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      const how = signal === 'SIGALRM' ? 'ran out of time' : signal ? `was killed (${signal})` : `exited (code ${code})`;
      // A helper that died on a frame (a crash, or a kill from outside: an operator, the kernel's OOM killer) gets
      // that frame once more in a fresh helper, so a passing accident costs no file; its own alarm does not.
      this.failOldest(new NativeDecodeError(`the ${this.codec.label} ${how} on this frame`), signal !== 'SIGALRM');
    });
    return child;
  }

  /**
   * The frame the helper was on fails (or, when `retry` and it is its first failure, is tried again); the frames
   * queued behind it go to a fresh helper.
   */
  private failOldest(error: Error, retry = false): void {
    this.kill();
    const [oldest, ...rest] = this.inFlight;
    if (oldest && retry && !oldest.retried) {
      oldest.retried = true;
    } else {
      this.inFlight = rest;
      oldest?.reject(oldest.retried ? new NativeDecodeError(`${error.message} (a second time: it was retried once in a fresh helper)`) : error);
    }
    if (this.inFlight.length === 0) return;
    const child = this.start();
    for (const frame of this.inFlight) this.send(child, frame);
    this.armTimer();
  }

  /** Consumes reply bytes: completes the frames whose whole reply has arrived, oldest first. */
  private receive(chunk: Buffer): void {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.image) {
        const { reply } = this.image;
        const n = Math.min(rest.length, reply.samples.length - this.image.filled);
        reply.samples.set(rest.subarray(0, n), this.image.filled);
        this.image.filled += n;
        rest = rest.subarray(n);
        if (this.image.filled === reply.samples.length) {
          this.image = undefined;
          this.complete(reply);
        }
        continue;
      }
      this.head = this.head.length > 0 ? Buffer.concat([this.head, rest]) : rest;
      rest = this.readHead();
    }
  }

  /** Parses the replies whose head has arrived; returns the bytes after an image's header (its first samples). */
  private readHead(): Buffer {
    for (;;) {
      const head = this.head;
      if (head.length < 8) return EMPTY;
      if (head.readUInt32LE(0) === 1) {
        const used = 8 + head.readUInt32LE(4);
        if (head.length < used) return EMPTY;
        this.head = head.subarray(used);
        this.complete(new NativeDecodeError(head.subarray(8, used).toString('utf8')));
        continue;
      }
      if (head.length < 32) return EMPTY;
      const reply: NativeImage = {
        width: head.readUInt32LE(4),
        height: head.readUInt32LE(8),
        components: head.readUInt32LE(12),
        precision: head.readUInt32LE(16),
        signed: head.readUInt32LE(20) !== 0,
        bytesPerSample: head.readUInt32LE(24) === 1 ? 1 : 2,
        samples: new Uint8Array(head.readUInt32LE(28)),
      };
      this.head = EMPTY;
      if (reply.samples.length === 0) {
        this.complete(reply);
        this.head = head.subarray(32);
        continue;
      }
      this.image = { reply, filled: 0 };
      return head.subarray(32);
    }
  }

  private complete(reply: NativeImage | NativeDecodeError): void {
    const frame = this.inFlight.shift();
    if (!frame) return; // a reply no one waits for: the frame was given up already
    this.armTimer();
    if (reply instanceof NativeDecodeError) frame.reject(reply);
    else frame.resolve(reply);
  }
}
