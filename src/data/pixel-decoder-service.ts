/**
 * The decoding worker's side of pixel-decoder.ts: receives compressed frames, decodes them with dicom-codecs.ts,
 * replies on its port and wakes the waiting reader through the shared signal word.
 * Runs only inside the worker thread (it is started by pixel-decoder.ts).
 */
import { MessagePort, workerData } from 'worker_threads';
import { decodeFrame, FrameLayout, loadCodec } from './dicom-codecs';
import type { PixelEncoding } from './dicom-syntax';

export interface DecodeRequest {
  id: number;
  encoding: PixelEncoding;
  frames: Uint8Array[];
  layout: FrameLayout;
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

port.on('message', (request: DecodeRequest) => {
  void (async () => {
    let frame = 0;
    try {
      await loadCodec(request.encoding);
      const out: Uint8Array[] = [];
      for (; frame < request.frames.length; frame++) out.push(decodeFrame(request.encoding, request.frames[frame], request.layout));
      reply({ id: request.id, ok: true, frames: out }, out.map((f) => f.buffer as ArrayBuffer));
    } catch (error) {
      reply({ id: request.id, ok: false, frame, message: error instanceof Error ? error.message : String(error) });
    }
  })();
});
