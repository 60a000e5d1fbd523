/**
 * PNG decoder and a small RGB encoder (no dependency beyond zlib): every colour type and bit depth of non-interlaced PNG, CRC-checked, to
 * 8-bit RGB as PIL's `Image.open(f).convert('RGB')` gives it: alpha dropped, palette looked up, grey replicated,
 * 16-bit colour samples reduced to their high byte, 16-bit grey clipped at 255 (PIL opens it as 32-bit "I" and
 * clips on conversion). Interlaced (Adam7) files are refused with a clear message.
 */
import * as zlib from 'zlib';
import { crc32 } from '../serialize/crc';
import { DataReadError } from './errors';

export const PNG_SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);

export interface RgbImage {
  width: number;
  height: number;
  /** Interleaved R, G, B, row-major. */
  rgb: Uint8Array;
}


/** Channels per pixel of each PNG colour type. */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ALLOWED_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

export function decodePng(bytes: Buffer, path: string): RgbImage {
  if (bytes.length < 8 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new DataReadError(path, 'not a PNG file');
  let at = 8;
  let header: { width: number; height: number; depth: number; colourType: number; interlace: number } | undefined;
  let palette: Uint8Array | undefined;
  const data: Buffer[] = [];
  let ended = false;
  while (at < bytes.length && !ended) {
    if (at + 12 > bytes.length) throw new DataReadError(path, `truncated PNG chunk at byte ${at}`);
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString('latin1', at + 4, at + 8);
    if (at + 12 + length > bytes.length) throw new DataReadError(path, `truncated PNG: chunk ${type} runs past the end of the file`);
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== bytes.readUInt32BE(at + 8 + length)) {
      throw new DataReadError(path, `corrupt PNG: CRC mismatch in chunk ${type}`);
    }
    if (type === 'IHDR') {
      header = { width: body.readUInt32BE(0), height: body.readUInt32BE(4), depth: body[8], colourType: body[9], interlace: body[12] };
    } else if (type === 'PLTE') {
      palette = Uint8Array.from(body);
    } else if (type === 'IDAT') {
      data.push(body);
    } else if (type === 'IEND') {
      ended = true;
    }
    at += 12 + length;
  }
  if (!header) throw new DataReadError(path, 'PNG without IHDR chunk');
  const { width, height, depth, colourType, interlace } = header;
  if (!ALLOWED_DEPTHS[colourType]?.includes(depth)) {
    throw new DataReadError(path, `invalid PNG colour type ${colourType} with bit depth ${depth}`);
  }
  if (interlace !== 0) throw new DataReadError(path, 'interlaced (Adam7) PNG is not supported');
  if (width === 0 || height === 0) throw new DataReadError(path, `empty PNG (${width}x${height})`);
  if (colourType === 3 && !palette) throw new DataReadError(path, 'palette PNG without PLTE chunk');
  if (!ended) throw new DataReadError(path, 'truncated PNG: no IEND chunk');

  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(data));
  } catch (error) {
    throw new DataReadError(path, `corrupt PNG image data (${(error as Error).message})`);
  }
  const channels = CHANNELS[colourType];
  const bitsPerPixel = channels * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  if (raw.length < height * (stride + 1)) throw new DataReadError(path, 'truncated PNG image data');
  const bpp = Math.max(1, bitsPerPixel / 8);
  const pixels = unfilter(raw, height, stride, bpp, path);
  return { width, height, rgb: toRgb(pixels, width, height, stride, depth, colourType, palette) };
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

function unfilter(raw: Buffer, height: number, stride: number, bpp: number, path: string): Uint8Array {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = y * stride;
    const prev = row - stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[row + x - bpp] : 0;
      const b = y > 0 ? out[prev + x] : 0;
      const c = x >= bpp && y > 0 ? out[prev + x - bpp] : 0;
      let v: number;
      switch (filter) {
        case 0: v = line[x]; break;
        case 1: v = line[x] + a; break;
        case 2: v = line[x] + b; break;
        case 3: v = line[x] + ((a + b) >> 1); break;
        case 4: v = line[x] + paeth(a, b, c); break;
        default: throw new DataReadError(path, `corrupt PNG: unknown filter type ${filter} on row ${y}`);
      }
      out[row + x] = v & 0xff;
    }
  }
  return out;
}

function toRgb(
  pixels: Uint8Array, width: number, height: number, stride: number, depth: number, colourType: number,
  palette: Uint8Array | undefined,
): Uint8Array {
  const channels = CHANNELS[colourType];
  const rgb = new Uint8Array(width * height * 3);
  // Sample `s` (0-based, over channels) of row y, reduced to 8 bits.
  const sample = (y: number, s: number): number => {
    const row = y * stride;
    if (depth === 8) return pixels[row + s];
    if (depth === 16) {
      return colourType === 0 ? Math.min(255, (pixels[row + 2 * s] << 8) | pixels[row + 2 * s + 1]) : pixels[row + 2 * s];
    }
    const bit = s * depth;
    const v = (pixels[row + (bit >> 3)] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
    // Grey levels scale to 0..255; palette indices stay indices.
    return colourType === 3 ? v : Math.round((v * 255) / ((1 << depth) - 1));
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (colourType === 3) {
        const index = sample(y, x);
        const p = palette as Uint8Array;
        rgb[o] = p[3 * index] ?? 0;
        rgb[o + 1] = p[3 * index + 1] ?? 0;
        rgb[o + 2] = p[3 * index + 2] ?? 0;
      } else if (colourType === 0 || colourType === 4) {
        const g = sample(y, x * channels);
        rgb[o] = g;
        rgb[o + 1] = g;
        rgb[o + 2] = g;
      } else {
        rgb[o] = sample(y, x * channels);
        rgb[o + 1] = sample(y, x * channels + 1);
        rgb[o + 2] = sample(y, x * channels + 2);
      }
    }
  }
  return rgb;
}

// ---- writing (8-bit RGB, no interlace, filter 0 on every row, zlib from Node): the demo's image panels ----

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([length, body, crc]);
}

/** Encodes `rgb` (width × height × 3 bytes, row-major) as a PNG file. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (rgb.length !== width * height * 3) throw new Error(`encodePng: expected ${width * height * 3} bytes, got ${rgb.length}`);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type RGB
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + width * 3)] = 0;
    Buffer.from(rgb.buffer, rgb.byteOffset + y * width * 3, width * 3).copy(raw, y * (1 + width * 3) + 1);
  }
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', header), pngChunk('IDAT', zlib.deflateSync(raw)), pngChunk('IEND', Buffer.alloc(0))]);
}
