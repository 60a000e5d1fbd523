/**
 * The decoding worker's side of pixel-decoder.ts: receives compressed frames, decodes them with dicom-codecs.ts,
 * replies on its port and wakes the waiting reader through the shared signal word.
 * Runs only inside the worker thread (it is started by pixel-decoder.ts).
 */
import { MessagePort, workerData } from 'worker_threads';
import { decodeFrame, decodeJ2kFrameNative, FrameLayout, loadCodec } from './dicom-codecs';
import type { PixelEncoding } from './dicom-syntax';
import { NativeJ2kDecoder, NativeJ2kOptions, nativeJ2kHelper } from './j2k-native';

export interface DecodeRequest {
  id: number;
  encoding: PixelEncoding;
  frames: Uint8Array[];
  layout: FrameLayout;
  /** Decode JPEG 2000 with the native OpenJPEG helper under these limits (when it is built); else the wasm one. */
  nativeJ2k?: NativeJ2kOptions;
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

/** This worker's native JPEG 2000 helper (one long-lived process, restarted after a failure or new limits). */
let nativeJ2k: NativeJ2kDecoder | undefined;
const helper = nativeJ2kHelper();

function nativeDecoder(request: DecodeRequest): NativeJ2kDecoder | undefined {
  const options = request.nativeJ2k;
  if (request.encoding !== 'jpeg-2000' || !options || !helper) return undefined;
  if (nativeJ2k && (nativeJ2k.options.memoryMb !== options.memoryMb || nativeJ2k.options.frameTimeoutMs !== options.frameTimeoutMs)) {
    nativeJ2k.stop();
    nativeJ2k = undefined;
  }
  nativeJ2k ??= new NativeJ2kDecoder(helper, options);
  return nativeJ2k;
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
  const submitted = native ? request.frames.map((data) => decodeJ2kFrameNative(native, data, request.layout)) : undefined;
  for (const decoding of submitted ?? []) void decoding.catch(() => undefined); // awaited in order by handle(), not lost
  previous = previous.then(() => handle(request, submitted));
});
