/**
 * The decoding worker's side of pixel-decoder.ts: receives compressed frames, decodes them with dicom-codecs.ts,
 * replies on its port and wakes the waiting reader through the shared signal word.
 * Runs only inside the worker thread (it is started by pixel-decoder.ts).
 */
import { MessagePort, workerData } from 'worker_threads';
import { decodeFrame, decodeFrameNative, FrameLayout, loadCodec, nativeCodecFor } from './dicom-codecs';
import type { PixelEncoding } from './dicom-syntax';
import { NATIVE_J2K, NativeCodec, NativeDecoderOptions, NativeFrameDecoder, nativeHelper } from './native-decoder';

/** The native helpers' limits, and which of them may be used (when built). */
interface NativeRequestOptions extends NativeDecoderOptions {
  jpeg2000: boolean;
  jpeg: boolean;
}

export interface DecodeRequest {
  id: number;
  encoding: PixelEncoding;
  frames: Uint8Array[];
  layout: FrameLayout;
  /** Decode with the native helpers allowed here (when built) under these limits; else the JavaScript/wasm ones. */
  native?: NativeRequestOptions;
}

export type DecodeReply =
  | { id: number; ok: true; frames: Uint8Array[] }
  | { id: number; ok: false; frame: number; message: string };

const { port, signal } = workerData as { port: MessagePort; signal: Int32Array };

function reply(message: DecodeReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

/** This worker's native helpers, by program (long-lived processes, restarted after a failure or new limits). */
const decoders = new Map<string, NativeFrameDecoder>();
/** Where each helper was built (undefined: not built), looked up once per worker. */
const helpers = new Map<string, string | undefined>();

function nativeDecoder(request: DecodeRequest): NativeFrameDecoder | undefined {
  const options = request.native;
  const codec: NativeCodec | undefined = options && nativeCodecFor(request.encoding, request.frames[0]);
  if (!options || !codec || !(codec === NATIVE_J2K ? options.jpeg2000 : options.jpeg)) return undefined;
  if (!helpers.has(codec.program)) helpers.set(codec.program, nativeHelper(codec));
  const helper = helpers.get(codec.program);
  if (!helper) return undefined;
  let decoder = decoders.get(codec.program);
  if (decoder && (decoder.options.memoryMb !== options.memoryMb || decoder.options.frameTimeoutMs !== options.frameTimeoutMs)) {
    decoder.stop();
    decoder = undefined;
  }
  if (!decoder) {
    decoder = new NativeFrameDecoder(codec, helper, { memoryMb: options.memoryMb, frameTimeoutMs: options.frameTimeoutMs });
    decoders.set(codec.program, decoder);
  }
  return decoder;
}

/** Requests are handled one after another, in the order they came (the pool gives a worker up to two at a time). */
let previous: Promise<void> = Promise.resolve();

async function handle(request: DecodeRequest, submitted: Promise<Uint8Array>[] | undefined): Promise<void> {
  let frame = 0;
  try {
    if (!submitted) await loadCodec(request.encoding);
    const out: Uint8Array[] = [];
    for (; frame < request.frames.length; frame++) {
      out.push(submitted ? await submitted[frame] : decodeFrame(request.encoding, request.frames[frame], request.layout));
    }
    reply({ id: request.id, ok: true, frames: out }, out.map((f) => f.buffer as ArrayBuffer));
  } catch (error) {
    reply({ id: request.id, ok: false, frame, message: error instanceof Error ? error.message : String(error) });
  }
}

port.on('message', (request: DecodeRequest) => {
  const native = nativeDecoder(request);
  // Native frames go to the helper at once, so it decodes the next file's frames while this one's reply travels.
  const submitted = native ? request.frames.map((data) => decodeFrameNative(native, request.encoding, data, request.layout)) : undefined;
  for (const decoding of submitted ?? []) void decoding.catch(() => undefined); // awaited in order by handle(), not lost
  previous = previous.then(() => handle(request, submitted));
});
