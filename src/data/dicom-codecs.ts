/**
 * Decoders for compressed DICOM frames: the reference C/C++ libraries, as the web DICOM ecosystem (Cornerstone3D /
 * OHIF) ships them in WebAssembly, or natively in helper processes of ours (native-decoder.ts) where that is faster or
 * the only maintained route.
 *
 * Why these and not daikon's (which we used before): daikon decodes JPEG 2000 with a JavaScript port (pdf.js' JPX)
 * that returned wrong pixels on a *lossless* file (pixel sum 2 124 853 instead of 2 125 338 on pydicom's
 * MR_small_jp2klossless.dcm), differed from OpenJPEG by 0.6-1.3 % on lossy files, and allocated until the heap
 * ran out on a corrupt one; it has no JPEG-LS near-lossless, HTJ2K or 32-bit RLE. The choice, measured on DCMTK/GDCM
 * transcodes of our series and pydicom's test files (src/data/dicom-codecs.test.ts, bench/dicom.ts):
 *   JPEG 2000         OpenJPEG 2.x (the reference decoder; pydicom/GDCM use it too): the system's libopenjp2 in our
 *                     helper process when built, else @cornerstonejs/codec-openjpeg (wasm); bit-identical on
 *                     lossless, identical to GDCM's OpenJPEG on lossy.
 *   HTJ2K             @cornerstonejs/codec-openjph (OpenJPH, the HTJ2K reference implementation).
 *   JPEG-LS           @cornerstonejs/codec-charls (CharLS, the reference JPEG-LS library, as DCMTK/GDCM use).
 *   JPEG baseline     @cornerstonejs/codec-libjpeg-turbo-8bit (libjpeg-turbo, as Pillow/pydicom use).
 *   JPEG lossless     DCMTK's IJG (libijg8/12/16, what dcmdjpeg runs) in our helper process when built, else
 *                     jpeg-lossless-decoder-js (what Cornerstone uses); both bit-identical to dcmdjpeg.
 *   JPEG extended     8-bit: libjpeg-turbo; 12-bit: DCMTK's IJG in the helper (= dcmdjpeg, = pydicom+GDCM), refused
 *                     without it: no maintained JavaScript or wasm decoder matches IJG (see decodeJpegExtended).
 * dcmjs was evaluated too: it parses and writes data sets but has no pixel codecs of its own (it delegates to these),
 * so dicom-parser (Cornerstone's parser, lighter) reads the data sets.
 *
 * Speed (bench/dicom.ts, 256x256x160 MR series, 2 shared cores, series read through these codecs vs pydicom 2.3 with
 * GDCM/Pillow on the same files): JPEG-LS 3.3x, JPEG baseline 2.4x, HTJ2K 63 MB/s (pydicom cannot), JPEG lossless
 * through jpeg-lossless-decoder-js 0.90-1.0x (~1.8 ms of CPU per 256x256 frame; DCMTK's IJG ~0.5 ms: 1.46-1.54x).
 * JPEG 2000 was 0.38-0.58x through the wasm OpenJPEG: its decode() takes ~27 ms per 256x256 lossless frame, native
 * OpenJPEG ~7 ms of CPU (1.14-1.85x). So JPEG 2000 decodes through the system's OpenJPEG
 * (libopenjp2, the library GDCM uses), and JPEG lossless / 12-bit extended through DCMTK's IJG, in helper processes
 * of ours (native-decoder.ts, native/j2k-decode.c, native/jpeg-decode.cc), built at install when the libraries'
 * headers are there: separate processes, not the node's, because a crash in native code fed with untrusted
 * codestreams must cost one file, never the node. The JavaScript/wasm decoders stay the fallback when a helper is not
 * built (nativeJpeg2000 / nativeJpeg: false force them), and give the same pixels (native-decoder.test.ts).
 *
 * The wasm modules load asynchronously, so this module runs in the decoding workers (pixel-decoder-service.ts); the
 * readers call it through a synchronous request (pixel-decoder.ts) with a memory limit and a timeout.
 */
import { decodeRleFrame } from './dicom-rle';
import type { PixelEncoding } from './dicom-syntax';
import { NATIVE_J2K, NATIVE_JPEG, NativeCodec, NativeDecodeError, NativeFrameDecoder } from './native-decoder';
import { JpegFrameHeader, readJ2kFrameHeader, readJpegFrameHeader } from './jpeg-header';
import { FedbiomedTsError } from '../errors';

export interface FrameLayout {
  rows: number;
  cols: number;
  bitsAllocated: 8 | 16 | 32;
  bitsStored: number;
  signed: boolean;
  samplesPerPixel: number;
}

/** A frame that cannot be decoded; the message says why in the operator's terms. */
class FrameDecodeError extends FedbiomedTsError {}

/** The Emscripten decoder classes share this shape. */
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned: boolean };
  delete?(): void;
}
type DecoderClass = new () => WasmDecoder;

interface Codecs {
  openjpeg?: DecoderClass;
  openjph?: DecoderClass;
  charls?: DecoderClass;
  libjpeg?: DecoderClass;
}
const codecs: Codecs = {};

async function loadClass(module: string, className: string): Promise<DecoderClass> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a codec loads only when a file needs it
  const factory = require(module) as (options?: object) => Promise<Record<string, DecoderClass>>;
  // Emscripten prints aborts to stderr by default; the error we throw carries the reason instead.
  const instance = await factory({ print: () => undefined, printErr: () => undefined });
  return instance[className];
}

/** Loads the wasm decoder an encoding needs (once). */
export async function loadCodec(encoding: PixelEncoding): Promise<void> {
  if (encoding === 'jpeg-2000' && !codecs.openjpeg) codecs.openjpeg = await loadClass('@cornerstonejs/codec-openjpeg/decodewasmjs', 'J2KDecoder');
  if (encoding === 'htj2k' && !codecs.openjph) codecs.openjph = await loadClass('@cornerstonejs/codec-openjph/wasmjs', 'HTJ2KDecoder');
  if (encoding === 'jpeg-ls' && !codecs.charls) codecs.charls = await loadClass('@cornerstonejs/codec-charls/decodewasmjs', 'JpegLSDecoder');
  if ((encoding === 'jpeg-baseline' || encoding === 'jpeg-extended') && !codecs.libjpeg) {
    codecs.libjpeg = await loadClass('@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs', 'JPEGDecoder');
  }
}

function expectSize(what: string, got: { width: number; height: number; components: number; bits: number }, layout: FrameLayout): void {
  if (got.width !== layout.cols || got.height !== layout.rows) {
    throw new FrameDecodeError(`${what} codestream is ${got.width}x${got.height}, the DICOM header says ${layout.cols}x${layout.rows}`);
  }
  if (got.components !== layout.samplesPerPixel) {
    throw new FrameDecodeError(`${what} codestream has ${got.components} component(s), SamplesPerPixel is ${layout.samplesPerPixel}`);
  }
  if (got.bits < 1 || got.bits > layout.bitsAllocated) {
    throw new FrameDecodeError(`${what} codestream has ${got.bits}-bit samples, BitsAllocated is ${layout.bitsAllocated}`);
  }
}

/** Copies `samples` decoded values (each `from` bytes, little endian) into `bitsAllocated`-wide little-endian ones. */
function widen(decoded: Uint8Array, from: number, layout: FrameLayout, signedSource: boolean): Uint8Array {
  const to = layout.bitsAllocated / 8;
  const count = layout.rows * layout.cols * layout.samplesPerPixel;
  if (decoded.length < count * from) {
    throw new FrameDecodeError(`decoder produced ${decoded.length} bytes, the frame needs ${count * from}`);
  }
  if (from === to) {
    // An array of its own (the native helper's) is handed on as is; a view into a wasm heap is copied out.
    const own = decoded.byteOffset === 0 && decoded.buffer.byteLength === count * to;
    return own ? decoded : decoded.slice(0, count * to);
  }
  const src = new DataView(decoded.buffer, decoded.byteOffset, decoded.byteLength);
  const out = new Uint8Array(count * to);
  const dst = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    const v = from === 1 ? (signedSource ? src.getInt8(i) : src.getUint8(i)) : signedSource ? src.getInt16(i * 2, true) : src.getUint16(i * 2, true);
    if (to === 2) dst.setUint16(i * 2, v & 0xffff, true);
    else dst.setUint32(i * 4, v >>> 0, true);
  }
  return out;
}

function runWasm(name: string, Decoder: DecoderClass | undefined, data: Uint8Array, layout: FrameLayout): Uint8Array {
  if (!Decoder) throw new FrameDecodeError(`${name} decoder not loaded`);
  const decoder = new Decoder();
  try {
    decoder.getEncodedBuffer(data.length).set(data);
    decoder.decode();
    const info = decoder.getFrameInfo();
    expectSize(name, { width: info.width, height: info.height, components: info.componentCount, bits: info.bitsPerSample }, layout);
    const from = info.bitsPerSample > 8 ? 2 : 1;
    return widen(decoder.getDecodedBuffer(), from, layout, info.isSigned);
  } catch (error) {
    if (error instanceof FrameDecodeError) throw error;
    throw new FrameDecodeError(`corrupt ${name} data (${describeWasmError(error)})`);
  } finally {
    decoder.delete?.();
  }
}

/** Emscripten throws C++ exceptions as numbers (pointers) and aborts as RuntimeError: say something useful. */
function describeWasmError(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'number') return 'the decoder rejected the codestream';
  return String(error);
}

function decodeJpegLossless(data: Uint8Array, layout: FrameLayout): Uint8Array {
  const header = checkJpegHeader('jpeg-lossless', data, layout);
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loads only when a file needs it
  const { Decoder } = require('jpeg-lossless-decoder-js') as { Decoder: new () => { decode(b: ArrayBuffer, o: number, l: number, n?: number): ArrayBufferView } };
  let decoded: ArrayBufferView;
  try {
    const copy = data.slice();
    decoded = new Decoder().decode(copy.buffer, 0, copy.length, header.bits > 8 ? 2 : 1);
  } catch (error) {
    throw new FrameDecodeError(`corrupt JPEG lossless data (${describeWasmError(error)})`);
  }
  const bytes = new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
  return widen(bytes, header.bits > 8 ? 2 : 1, layout, false);
}

/**
 * Decodes one compressed frame to little-endian samples of BitsAllocated bits (sign and BitsStored are applied by
 * the caller, as for uncompressed data). Throws FrameDecodeError for anything malformed.
 */
export function decodeFrame(encoding: PixelEncoding, data: Uint8Array, layout: FrameLayout): Uint8Array {
  switch (encoding) {
    case 'rle':
      return decodeRleFrame(data, layout);
    case 'jpeg-lossless':
      return decodeJpegLossless(data, layout);
    case 'jpeg-ls': {
      // CharLS has no header-only call: check the SOF55 segment ourselves before it allocates.
      const header = readJpegFrameHeader(data);
      expectSize('JPEG-LS', header, layout);
      if (header.process !== 'jpeg-ls') throw new FrameDecodeError(`JPEG-LS syntax holds a ${header.process} JPEG stream`);
      return runWasm('JPEG-LS', codecs.charls, data, layout);
    }
    case 'jpeg-baseline': {
      const header = readJpegFrameHeader(data);
      expectSize('JPEG', header, layout);
      if (header.bits !== 8) throw new FrameDecodeError(`JPEG baseline stream with ${header.bits}-bit samples`);
      // Progressive JPEG (image folders) decodes through libjpeg-turbo too; lossless or JPEG-LS streams do not.
      if (header.process !== 'baseline' && header.process !== 'extended' && header.process !== 'progressive') {
        throw new FrameDecodeError(`JPEG baseline syntax holds a ${header.process} JPEG stream`);
      }
      return runWasm('JPEG', codecs.libjpeg, data, layout);
    }
    case 'jpeg-extended':
      return decodeJpegExtended(data, layout);
    case 'jpeg-2000':
    case 'htj2k': {
      // Check the codestream's own size before the decoder allocates for it.
      const name = encoding === 'htj2k' ? 'HTJ2K' : 'JPEG 2000';
      expectSize(name, readJ2kFrameHeader(data), layout);
      return runWasm(name, encoding === 'htj2k' ? codecs.openjph : codecs.openjpeg, data, layout);
    }
    default:
      throw new FrameDecodeError(`no decoder for ${encoding}`);
  }
}

/**
 * The native helper that decodes a file's frames, when one does: JPEG 2000 (OpenJPEG), JPEG lossless and JPEG
 * extended with more than 8 bits (DCMTK's IJG; 8-bit extended stays on libjpeg-turbo, which matches Pillow/pydicom).
 * The first frame's header decides for JPEG extended; an unreadable one is left to decodeFrame's clear error.
 */
export function nativeCodecFor(encoding: PixelEncoding, firstFrame: Uint8Array | undefined): NativeCodec | undefined {
  if (encoding === 'jpeg-2000') return NATIVE_J2K;
  if (encoding === 'jpeg-lossless') return NATIVE_JPEG;
  if (encoding !== 'jpeg-extended' || !firstFrame) return undefined;
  try {
    return readJpegFrameHeader(firstFrame).bits !== 8 ? NATIVE_JPEG : undefined;
  } catch {
    return undefined;
  }
}

/** Checks a JPEG stream's frame header against the DICOM header and its transfer syntax, before any decoder runs. */
function checkJpegHeader(encoding: 'jpeg-lossless' | 'jpeg-extended', data: Uint8Array, layout: FrameLayout): JpegFrameHeader {
  const header = readJpegFrameHeader(data);
  expectSize(encoding === 'jpeg-lossless' ? 'JPEG lossless' : 'JPEG', header, layout);
  if (encoding === 'jpeg-lossless' && header.process !== 'lossless') {
    throw new FrameDecodeError(`JPEG lossless syntax holds a ${header.process} JPEG stream`);
  }
  // Progressive streams are let through as for the baseline syntax (libjpeg-turbo and IJG decode them).
  if (encoding === 'jpeg-extended' && header.process !== 'baseline' && header.process !== 'extended' && header.process !== 'progressive') {
    throw new FrameDecodeError(`JPEG extended syntax holds a ${header.process} JPEG stream`);
  }
  return header;
}

/**
 * Decodes one frame through a native helper (native-decoder.ts), with the same checks and output as the JavaScript
 * and wasm paths: the codestream's size against the DICOM header before decoding, and after.
 */
export async function decodeFrameNative(
  decoder: NativeFrameDecoder, encoding: PixelEncoding, data: Uint8Array, layout: FrameLayout,
): Promise<Uint8Array> {
  const name = encoding === 'jpeg-2000' ? 'JPEG 2000' : 'JPEG';
  if (encoding === 'jpeg-2000') expectSize(name, readJ2kFrameHeader(data), layout);
  else if (encoding === 'jpeg-lossless' || encoding === 'jpeg-extended') checkJpegHeader(encoding, data, layout);
  else throw new FrameDecodeError(`no native decoder for ${encoding}`);
  try {
    const image = await decoder.decode(data);
    expectSize(name, { width: image.width, height: image.height, components: image.components, bits: image.precision }, layout);
    return widen(image.samples, image.bytesPerSample, layout, image.signed);
  } catch (error) {
    // The JPEG helper's messages name the problem already ("corrupt JPEG data (...)"); OpenJPEG's get the context.
    if (error instanceof NativeDecodeError) throw new FrameDecodeError(encoding === 'jpeg-2000' ? `corrupt JPEG 2000 data (${error.message})` : error.message);
    throw error;
  }
}

/**
 * JPEG extended (process 2 & 4): 8-bit streams go through libjpeg-turbo; 12-bit streams through DCMTK's IJG in the
 * native helper (decodeFrameNative; bit-identical to dcmdjpeg and pydicom+GDCM). Without the helper they are refused
 * with the way out, because no maintained npm decoder gives IJG's values (checked 2026-12 on a `dcmcjpeg +ee` 12-bit
 * MR frame, reference `dcmdjpeg`, which GDCM matches exactly):
 * - @cornerstonejs/codec-libjpeg-turbo-8bit: an 8-bit build (12-bit precision is refused by libjpeg-turbo there);
 * - @cornerstonejs/dicom-image-loader's JavaScript JpegImage (a pdf.js derivative, what OHIF uses for 4.51):
 *   decodes, but every pixel is 14-16 grey levels above dcmdjpeg's (mean +15.0 over 5 561 pixels), and it comes with
 *   Cornerstone's core as a peer dependency;
 * - dcmjs-codecs (DCMTK/IJG in wasm) does not offer 1.2.840.10008.1.2.4.51; @cornerstonejs/dicom-codec lists its
 *   12-bit libjpeg-turbo as not implemented; jpeg-js decodes the frame to 8-bit RGB (values clamped to 0..255);
 *   jay-peg parses markers only; jpeg-lossless-decoder-js is process 14 only.
 */
function decodeJpegExtended(data: Uint8Array, layout: FrameLayout): Uint8Array {
  if (checkJpegHeader('jpeg-extended', data, layout).bits === 8) return runWasm('JPEG', codecs.libjpeg, data, layout);
  throw new FrameDecodeError('12-bit JPEG extended (process 4) needs the native JPEG decoder, which is not built here '
    + '(DCMTK\'s IJG: apt-get install g++ libdcmtk-dev, then npm run build:native) or was turned off (nativeJpeg: false); '
    + 'or decompress the series first (e.g. DCMTK `dcmdjpeg in.dcm out.dcm`)');
}
