/**
 * DICOM RLE Lossless (PS3.5 Annex G) for one frame.
 *
 * Why our own code: RLE is the one syntax with no maintained decoder package (Cornerstone and pydicom each carry
 * their own few lines, and daikon's refuses 32-bit samples, which RT Dose uses). The format is a byte-wise PackBits
 * per byte plane, so the decoder is small; every read and write is bounds-checked, and the output size is fixed
 * by the frame's Rows x Columns x BitsAllocated before reading a byte, so a hostile segment cannot make it allocate.
 */
import { FedbiomedTsError } from '../errors';

export interface RleFrameLayout {
  rows: number;
  cols: number;
  bitsAllocated: 8 | 16 | 32;
  samplesPerPixel: number;
}

/** Thrown for a malformed RLE fragment; the message says what is wrong. */
export class RleError extends FedbiomedTsError {}

/**
 * Decodes one RLE frame into little-endian samples (pixel-interleaved when samplesPerPixel > 1), `rows * cols *
 * samplesPerPixel * bitsAllocated / 8` bytes.
 */
export function decodeRleFrame(fragment: Uint8Array, layout: RleFrameLayout): Uint8Array {
  const pixels = layout.rows * layout.cols;
  const bytesPerSample = layout.bitsAllocated / 8;
  const segmentCount = bytesPerSample * layout.samplesPerPixel;
  if (fragment.length < 64) throw new RleError(`RLE frame of ${fragment.length} bytes is shorter than its 64-byte header`);
  const header = new DataView(fragment.buffer, fragment.byteOffset, 64);
  const declared = header.getUint32(0, true);
  if (declared !== segmentCount) {
    throw new RleError(`RLE header declares ${declared} segments, the image needs ${segmentCount} `
      + `(${layout.samplesPerPixel} sample(s) x ${bytesPerSample} byte(s))`);
  }
  const offsets: number[] = [];
  for (let s = 0; s < segmentCount; s++) offsets.push(header.getUint32(4 + 4 * s, true));
  offsets.push(fragment.length);
  const out = new Uint8Array(pixels * segmentCount);
  for (let s = 0; s < segmentCount; s++) {
    const start = offsets[s];
    const end = offsets[s + 1];
    if (start < 64 || end > fragment.length || end < start) {
      throw new RleError(`RLE segment ${s + 1} has invalid bounds ${start}..${end} in a ${fragment.length}-byte frame`);
    }
    // Segments come most significant byte first, sample by sample; output is little endian, pixel-interleaved.
    const sample = Math.floor(s / bytesPerSample);
    const byteInSample = bytesPerSample - 1 - (s % bytesPerSample);
    const firstByte = sample * bytesPerSample + byteInSample;
    const stride = segmentCount;
    unpackSegment(fragment, start, end, out, firstByte, stride, pixels, s + 1);
  }
  return out;
}

/** PackBits decoding of one segment into every `stride`-th byte of `out` from `first`; must yield `count` bytes. */
function unpackSegment(
  src: Uint8Array, start: number, end: number, out: Uint8Array, first: number, stride: number, count: number, which: number,
): void {
  let at = start;
  let written = 0;
  let to = first;
  while (written < count && at < end) {
    const header = src[at++];
    if (header < 128) {
      const n = header + 1;
      if (at + n > end) throw new RleError(`RLE segment ${which}: literal run of ${n} bytes overruns the segment`);
      if (written + n > count) throw new RleError(`RLE segment ${which} decodes to more than ${count} bytes`);
      for (let i = 0; i < n; i++, to += stride) out[to] = src[at + i];
      at += n;
      written += n;
    } else if (header > 128) {
      const n = 257 - header;
      if (at >= end) throw new RleError(`RLE segment ${which}: repeat run without its byte`);
      if (written + n > count) throw new RleError(`RLE segment ${which} decodes to more than ${count} bytes`);
      const value = src[at++];
      for (let i = 0; i < n; i++, to += stride) out[to] = value;
      written += n;
    }
    // header 128 is a no-op.
  }
  if (written < count) throw new RleError(`RLE segment ${which} decodes to ${written} bytes, the frame needs ${count}`);
}
