/**
 * Reads the frame header (SOF segment) of a JPEG, JPEG lossless or JPEG-LS stream without decoding it, so a frame
 * whose codestream claims another size than its DICOM header is refused before a decoder allocates for it.
 */
import { FedbiomedTsError } from '../errors';

export interface JpegFrameHeader {
  process: 'baseline' | 'extended' | 'progressive' | 'lossless' | 'jpeg-ls' | 'other';
  bits: number;
  height: number;
  width: number;
  components: number;
}

/** Thrown when the stream has no readable frame header. */
export class JpegHeaderError extends FedbiomedTsError {}

function processOf(marker: number): JpegFrameHeader['process'] | null {
  if (marker === 0xc0) return 'baseline';
  if (marker === 0xc1) return 'extended';
  if (marker === 0xc2) return 'progressive';
  if (marker === 0xc3) return 'lossless';
  if (marker === 0xf7) return 'jpeg-ls';
  if ((marker >= 0xc5 && marker <= 0xc7) || (marker >= 0xc9 && marker <= 0xcb) || (marker >= 0xcd && marker <= 0xcf)) return 'other';
  return null;
}

export function readJpegFrameHeader(data: Uint8Array): JpegFrameHeader {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) throw new JpegHeaderError('not a JPEG stream (no SOI marker)');
  let at = 2;
  while (at + 4 <= data.length) {
    if (data[at] !== 0xff) throw new JpegHeaderError(`JPEG stream: expected a marker at byte ${at}`);
    const marker = data[at + 1];
    if (marker === 0xff) { at++; continue; } // fill byte
    const length = (data[at + 2] << 8) | data[at + 3];
    if (length < 2 || at + 2 + length > data.length) throw new JpegHeaderError(`JPEG stream: segment at byte ${at} overruns the frame`);
    const process = processOf(marker);
    if (process) {
      if (length < 8) throw new JpegHeaderError('JPEG stream: frame header too short');
      const header = {
        process,
        bits: data[at + 4],
        height: (data[at + 5] << 8) | data[at + 6],
        width: (data[at + 7] << 8) | data[at + 8],
        components: data[at + 9],
      };
      if (header.height === 0) throw new JpegHeaderError('JPEG stream without a height in its frame header (DNL) is not supported');
      return header;
    }
    if (marker === 0xda || marker === 0xd9) break;
    at += 2 + length;
  }
  throw new JpegHeaderError('JPEG stream has no frame header');
}

/** Image size and first-component precision from a JPEG 2000 codestream's SIZ segment (HTJ2K included). */
export function readJ2kFrameHeader(data: Uint8Array): { width: number; height: number; components: number; bits: number } {
  // The codestream starts with SOC (FF4F) then SIZ (FF51); some files wrap it in a JP2 box structure first.
  let at = -1;
  const limit = Math.min(data.length - 4, 4096);
  for (let i = 0; i <= limit; i++) {
    if (data[i] === 0xff && data[i + 1] === 0x4f && data[i + 2] === 0xff && data[i + 3] === 0x51) { at = i + 4; break; }
  }
  if (at < 0) throw new JpegHeaderError('not a JPEG 2000 codestream (no SOC and SIZ markers)');
  if (at + 38 + 3 > data.length) throw new JpegHeaderError('JPEG 2000 SIZ segment truncated');
  const view = new DataView(data.buffer, data.byteOffset + at, data.length - at);
  const width = view.getUint32(4) - view.getUint32(12);
  const height = view.getUint32(8) - view.getUint32(16);
  const components = view.getUint16(36);
  const bits = (view.getUint8(38) & 0x7f) + 1;
  return { width, height, components, bits };
}
