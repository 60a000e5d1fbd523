/**
 * One DICOM Part 10 file: parsed with dicom-parser (Cornerstone's parser: every transfer syntax's encoding of the
 * data set, sequences, encapsulated frames), checked before anything is allocated for its pixels, and decoded to
 * modality values (RescaleSlope/Intercept, per frame for Enhanced objects, and DoseGridScaling).
 *
 * Every file is untrusted: a file too large, a deflate stream that inflates past the cap, pixel counts that the bytes
 * present cannot hold, or a codestream that does not match its header is a DataReadError naming the file and the
 * reason; compressed frames are decoded in a worker with a deadline (pixel-decoder.ts).
 */
import * as fs from 'fs';
import * as zlib from 'zlib';
import * as dicomParser from 'dicom-parser';
import { FrameLayout } from './dicom-codecs';
import { decodeRleFrame, RleError } from './dicom-rle';
import { locateDataSet } from './dicom-preamble';
import { TransferSyntax, transferSyntax } from './dicom-syntax';
import { DataReadError } from './errors';
import { decodeJobsSync, PixelDecoderLimits } from './pixel-decoder';

export interface DicomReadLimits extends PixelDecoderLimits {
  /** Largest file read, in bytes (default 2 GiB). */
  maxFileBytes?: number;
  /** Largest pixel count (rows x columns x frames) of one file (default 2^28, i.e. 1 GiB as float32). */
  maxPixels?: number;
}

export const DEFAULT_MAX_FILE_BYTES = 2 ** 31 - 1;
export const DEFAULT_MAX_PIXELS = 2 ** 28;

const PIXEL_DATA = 'x7fe00010';

/** A file that is not DICOM at all (a stray note or export manifest), as opposed to a broken DICOM file. */
export class NotDicomFileError extends DataReadError {}

/** A valid DICOM object that is not an image (RT plan, structure set, report…): skipped, not broken. */
export class NoPixelDataError extends DataReadError {
  /** Its DICOM Modality, e.g. 'RTSTRUCT'. */
  readonly modality: string;

  constructor(path: string, what: string, modality: string) {
    super(path, what);
    this.modality = modality;
  }
}

/** A parsed file and what the series assembly needs from it. */
export interface DicomSlice {
  file: string;
  dataSet: dicomParser.DataSet;
  syntax: TransferSyntax;
  layout: FrameLayout;
  frames: number;
}

/** A tag as dicom-parser names it: 'xggggeeee'. */
function tagKey(group: number, element: number): string {
  return `x${group.toString(16).padStart(4, '0')}${element.toString(16).padStart(4, '0')}`;
}

/** The trimmed string value of a tag in `dataSet`, '' when absent. */
export function stringTag(dataSet: dicomParser.DataSet, group: number, element: number): string {
  return (dataSet.string(tagKey(group, element)) ?? '').replace(/\0/g, '').trim();
}

/** The numbers of a DS/IS (or binary numeric) tag, null when absent or not all finite. */
export function numberTag(dataSet: dicomParser.DataSet, group: number, element: number): number[] | null {
  const key = tagKey(group, element);
  const element_ = dataSet.elements[key];
  if (!element_ || element_.length === 0) return null;
  let values: number[];
  const vr = element_.vr;
  if (vr === 'US') values = [dataSet.uint16(key) ?? NaN];
  else if (vr === 'SS') values = [dataSet.int16(key) ?? NaN];
  else if (vr === 'UL') values = [dataSet.uint32(key) ?? NaN];
  else if (vr === 'FD') values = Array.from({ length: element_.length / 8 }, (_, i) => dataSet.double(key, i) ?? NaN);
  else if (vr === 'FL') values = Array.from({ length: element_.length / 4 }, (_, i) => dataSet.float(key, i) ?? NaN);
  else values = (dataSet.string(key) ?? '').split('\\').map((s) => (s.trim() === '' ? NaN : Number(s)));
  return values.length > 0 && values.every(Number.isFinite) ? values : null;
}

/** The first item of a sequence tag, if any. */
export function sequenceItem(dataSet: dicomParser.DataSet, group: number, element: number, index = 0): dicomParser.DataSet | undefined {
  return dataSet.elements[tagKey(group, element)]?.items?.[index]?.dataSet;
}

/** Every item of a sequence tag (none when absent). */
export function sequenceItems(dataSet: dicomParser.DataSet, group: number, element: number): dicomParser.DataSet[] {
  return (dataSet.elements[tagKey(group, element)]?.items ?? []).map((i) => i.dataSet).filter((d): d is dicomParser.DataSet => d !== undefined);
}

/**
 * The data set of a non-image DICOM object (an RT structure set, a segmentation), read within the file-size cap;
 * throws DataReadError naming the file and `what` when it cannot be parsed or its Modality is not `modality`.
 */
export function readDicomObject(file: string, what: string, modality: string, limits: DicomReadLimits = {}): dicomParser.DataSet {
  const bytes = readBytes(file, limits);
  let dataSet: dicomParser.DataSet;
  try {
    dataSet = dicomParser.parseDicom(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (error) {
    const reason = typeof error === 'string' ? error : (error as Error)?.message ?? String(error);
    throw new DataReadError(file, `cannot read ${what} (${reason})`);
  }
  if (stringTag(dataSet, 0x0008, 0x0060) !== modality) throw new DataReadError(file, `not ${what === 'RT structure set' ? 'an' : 'a'} ${what} (Modality is not ${modality})`);
  return dataSet;
}

function readBytes(file: string, limits: DicomReadLimits): Buffer {
  const max = limits.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (error) {
    throw new DataReadError(file, `cannot read DICOM file (${(error as Error).message})`);
  }
  if (size > max) throw new DataReadError(file, `file of ${size} bytes is larger than the ${max}-byte limit`);
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new DataReadError(file, `cannot read DICOM file (${(error as Error).message})`);
  }
}

/** dicom-parser throws strings or Errors; some corrupt inputs surface as TypeErrors deep inside it. */
function parserMessage(error: unknown): string {
  // On a partial parse dicom-parser throws { exception, dataSet }.
  if (error && typeof error === 'object' && 'exception' in error) return parserMessage(error.exception);
  if (typeof error === 'string') {
    if (/buffer overrun/.test(error)) return 'truncated: an element runs past the end of the file';
    return error.replace(/^dicomParser[.:]\w+: /, '');
  }
  if (error instanceof RangeError || error instanceof TypeError) return 'malformed data set (element lengths or nesting inconsistent)';
  return error instanceof Error ? error.message : String(error);
}

/**
 * Parses a DICOM file's data set (Part 10, or without the preamble / file meta information: dicom-preamble.ts) and
 * checks its image pixel description; pixels are decoded by decodePixels. */
export function parseDicomFile(file: string, limits: DicomReadLimits = {}): DicomSlice {
  const bytes = readBytes(file, limits);
  const start = locateDataSet(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  if (start.kind === 'not-dicom') {
    throw new NotDicomFileError(file, 'not a DICOM file (no "DICM" marker after a 128-byte preamble, no file meta '
      + 'information and no data set at the start)');
  }
  const maxInflated = limits.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  let dataSet: dicomParser.DataSet;
  try {
    dataSet = dicomParser.parseDicom(start.bytes, {
      // A raw data set (no file meta information): dicom-parser reads it in the syntax guessed for it.
      ...(start.kind === 'raw' ? { TransferSyntaxUID: start.transferSyntaxUid } : {}),
      // A deflate bomb stops at the file-size cap instead of filling memory.
      inflater: (array: Uint8Array, position: number) => {
        let inflated: Buffer;
        try {
          // 256 KiB output chunks, not zlib's 16 KiB: a slice inflates in one or two steps (20 % less CPU measured).
          inflated = zlib.inflateRawSync(array.subarray(position), { maxOutputLength: maxInflated, chunkSize: 256 << 10 });
        } catch (error) {
          // eslint-disable-next-line @typescript-eslint/only-throw-error -- dicom-parser throws strings; parserMessage() reads both
          throw `deflated data set cannot be inflated (${(error as Error).message})`;
        }
        const full = new Uint8Array(position + inflated.length);
        full.set(array.subarray(0, position));
        full.set(inflated, position);
        return full;
      },
    });
  } catch (error) {
    throw new DataReadError(file, `corrupt DICOM file (${parserMessage(error)})`);
  }
  if (start.kind === 'raw') delete dataSet.elements.x00020010; // dicom-parser's stand-in element has no bytes
  // dicom-parser skips past an implicit-VR element whose length runs beyond the data without complaint; reading
  // such an element later would throw from deep inside it.
  if (overrunsData(dataSet)) throw new DataReadError(file, 'corrupt DICOM file (truncated: an element runs past the end of the file)');
  const uid = start.kind === 'raw' ? start.transferSyntaxUid : stringTag(dataSet, 0x0002, 0x0010);
  const syntax = transferSyntax(uid);
  if (!syntax) throw new DataReadError(file, `unsupported transfer syntax ${uid || '(none in the file meta information)'}`);
  if (!dataSet.elements[PIXEL_DATA]) {
    const hint = dataSet.elements.x7fe00008 || dataSet.elements.x7fe00009 ? ' (float pixel data is not supported)' : '';
    const modality = stringTag(dataSet, 0x0008, 0x0060);
    throw new NoPixelDataError(file, `DICOM file has no pixel data${hint}${modality ? ` (Modality ${modality})` : ''}`, modality);
  }
  if (stringTag(dataSet, 0x0008, 0x0060) === 'SEG') {
    // Bit-packed segment masks, not an image: dicom-seg.ts reads them as label maps on the series they reference.
    throw new NoPixelDataError(file, 'DICOM segmentation (no image pixels: read as a label map)', 'SEG');
  }
  const slice = { file, dataSet, syntax, ...describePixels(file, dataSet, limits) };
  checkPixelBytes(slice);
  return slice;
}

/** Whether an element of the data set (or of its sequence items) claims bytes past the end of the data. */
function overrunsData(dataSet: dicomParser.DataSet): boolean {
  const size = dataSet.byteArray.length;
  return Object.values(dataSet.elements).some((element) => {
    if (element.dataOffset === undefined) return false;
    if (element.tag !== PIXEL_DATA && element.length !== 0xffffffff && element.dataOffset + element.length > size) return true;
    return (element.items ?? []).some((item) => item.dataSet !== undefined && overrunsData(item.dataSet));
  });
}

/** Pixels claimed vs bytes present, before anything is allocated for them. */
function checkPixelBytes(slice: DicomSlice): void {
  const { file, dataSet, syntax, layout, frames } = slice;
  const element = dataSet.elements[PIXEL_DATA];
  if (element.encapsulatedPixelData) {
    if (syntax.encoding === 'native') throw new DataReadError(file, `${syntax.name} file with encapsulated pixel data`);
    return;
  }
  if (syntax.encoding !== 'native') throw new DataReadError(file, `${syntax.name} file with native (not encapsulated) pixel data`);
  const frameSize = layout.rows * layout.cols * layout.samplesPerPixel * (layout.bitsAllocated / 8);
  const present = Math.min(element.length, dataSet.byteArray.length - element.dataOffset);
  if (present < frameSize * frames) {
    throw new DataReadError(file, `pixel data truncated: ${present} bytes, ${layout.cols}x${layout.rows}x${frames} `
      + `frames of ${layout.bitsAllocated}-bit samples need ${frameSize * frames}`);
  }
}

function describePixels(file: string, dataSet: dicomParser.DataSet, limits: DicomReadLimits): { layout: FrameLayout; frames: number } {
  const rows = dataSet.uint16('x00280010') ?? 0;
  const cols = dataSet.uint16('x00280011') ?? 0;
  const bitsAllocated = dataSet.uint16('x00280100') ?? 0;
  const bitsStored = dataSet.uint16('x00280101') ?? bitsAllocated;
  const samplesPerPixel = dataSet.uint16('x00280002') ?? 1;
  const framesText = stringTag(dataSet, 0x0028, 0x0008);
  const frames = framesText === '' ? 1 : Number(framesText);
  if (rows < 1 || cols < 1) throw new DataReadError(file, `missing Rows/Columns (${rows} x ${cols})`);
  if (!Number.isInteger(frames) || frames < 1) throw new DataReadError(file, `invalid NumberOfFrames "${framesText}"`);
  if (samplesPerPixel !== 1) throw new DataReadError(file, `colour images are not supported (SamplesPerPixel ${samplesPerPixel})`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) {
    throw new DataReadError(file, `unsupported BitsAllocated ${bitsAllocated}`);
  }
  if (bitsStored < 1 || bitsStored > bitsAllocated) {
    throw new DataReadError(file, `BitsStored ${bitsStored} does not fit BitsAllocated ${bitsAllocated}`);
  }
  const pixels = rows * cols * frames;
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (pixels > maxPixels) {
    throw new DataReadError(file, `${cols}x${rows}x${frames} = ${pixels} pixels is more than the ${maxPixels}-pixel limit`);
  }
  const signed = (dataSet.uint16('x00280103') ?? 0) === 1;
  return { layout: { rows, cols, bitsAllocated, bitsStored, signed, samplesPerPixel }, frames };
}

/**
 * Stored sample bytes of every frame of every slice, little endian (big endian only for native big-endian files).
 * Native and RLE frames are read here; the other compressed frames of all slices go to the decoding workers at
 * once, so the files of a series decode in parallel.
 */
function framesOfSlices(slices: DicomSlice[], limits: DicomReadLimits): Uint8Array[][] {
  const out: Uint8Array[][] = new Array(slices.length);
  const pending: { index: number; frames: Uint8Array[] }[] = [];
  slices.forEach((slice, index) => {
    const { file, dataSet, syntax, layout, frames } = slice;
    const element = dataSet.elements[PIXEL_DATA];
    if (!element.encapsulatedPixelData) {
      // Sizes were checked by parseDicomFile (checkPixelBytes).
      const frameSize = layout.rows * layout.cols * layout.samplesPerPixel * (layout.bitsAllocated / 8);
      const all = dataSet.byteArray.subarray(element.dataOffset, element.dataOffset + frameSize * frames);
      out[index] = Array.from({ length: frames }, (_, k) => all.subarray(k * frameSize, (k + 1) * frameSize));
      return;
    }
    const compressed = encapsulatedFrames(slice);
    if (syntax.encoding === 'rle') {
      // Our own bounded decoder (dicom-rle.ts): no need for the worker round trip.
      out[index] = compressed.map((fragment, k) => {
        try {
          return decodeRleFrame(fragment, layout);
        } catch (error) {
          if (error instanceof RleError) throw new DataReadError(file, `frame ${k + 1}: ${error.message}`);
          throw error;
        }
      });
      return;
    }
    pending.push({ index, frames: compressed });
  });
  if (pending.length === 0) return out;
  const outcomes = decodeJobsSync(pending.map(({ index, frames }) => ({
    encoding: slices[index].syntax.encoding, frames, layout: slices[index].layout,
  })), limits);
  outcomes.forEach((outcome, j) => {
    const slice = slices[pending[j].index];
    if (!outcome.ok) {
      const frame = outcome.error.frame;
      throw new DataReadError(slice.file, `${slice.syntax.name}${slice.frames > 1 ? `, frame ${frame + 1}` : ''}: ${outcome.error.message}`);
    }
    out[pending[j].index] = outcome.frames;
  });
  return out;
}

/** The compressed bytes of each frame of an encapsulated Pixel Data element. */
function encapsulatedFrames(slice: DicomSlice): Uint8Array[] {
  const { file, dataSet, frames } = slice;
  const element = dataSet.elements[PIXEL_DATA];
  const fragments = element.fragments ?? [];
  if (fragments.length === 0) throw new DataReadError(file, 'encapsulated pixel data without fragments');
  for (const f of fragments) {
    if (f.position + f.length > dataSet.byteArray.length) throw new DataReadError(file, 'pixel data fragment runs past the end of the file');
  }
  try {
    if (frames === 1) return [dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, element, 0, fragments.length) as Uint8Array];
    const bot = element.basicOffsetTable ?? [];
    if (bot.length === frames) {
      return Array.from({ length: frames }, (_, k) => dicomParser.readEncapsulatedImageFrame(dataSet, element, k, bot) as Uint8Array);
    }
    if (bot.length > 0) throw new DataReadError(file, `basic offset table has ${bot.length} entries for ${frames} frames`);
    if (fragments.length === frames) {
      return fragments.map((_, k) => dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, element, k, 1) as Uint8Array);
    }
    if (slice.syntax.encoding.startsWith('jpeg') && slice.syntax.encoding !== 'jpeg-2000') {
      const table = dicomParser.createJPEGBasicOffsetTable(dataSet, element);
      if (table.length !== frames) throw new DataReadError(file, `found ${table.length} JPEG frames, NumberOfFrames is ${frames}`);
      return Array.from({ length: frames }, (_, k) => dicomParser.readEncapsulatedImageFrame(dataSet, element, k, table) as Uint8Array);
    }
  } catch (error) {
    if (error instanceof DataReadError) throw error;
    throw new DataReadError(file, `cannot split pixel data into frames (${parserMessage(error)})`);
  }
  throw new DataReadError(file, `${fragments.length} pixel data fragments for ${frames} frames and no offset table`);
}

/** Modality rescale of frame k: Enhanced objects carry it per frame (or shared), others at the top level. */
function rescaleOf(dataSet: dicomParser.DataSet, frame: number): { slope: number; intercept: number } {
  const perFrame = sequenceItem(dataSet, 0x5200, 0x9230, frame);
  const shared = sequenceItem(dataSet, 0x5200, 0x9229);
  for (const group of [perFrame, shared]) {
    const transform = group && sequenceItem(group, 0x0028, 0x9145);
    if (transform) {
      return {
        slope: numberTag(transform, 0x0028, 0x1053)?.[0] ?? 1,
        intercept: numberTag(transform, 0x0028, 0x1052)?.[0] ?? 0,
      };
    }
  }
  return { slope: numberTag(dataSet, 0x0028, 0x1053)?.[0] ?? 1, intercept: numberTag(dataSet, 0x0028, 0x1052)?.[0] ?? 0 };
}

/**
 * Stored values of every frame (frame after frame, row-major), as modality values: stored * RescaleSlope *
 * DoseGridScaling + RescaleIntercept, with only BitsStored bits kept (sign-extended for PixelRepresentation 1).
 */
export function decodePixels(slice: DicomSlice, limits: DicomReadLimits = {}): Float32Array {
  return decodePixelsOfSlices([slice], limits)[0];
}

/** decodePixels for several files at once (their compressed frames decode in parallel); throws on the first bad file. */
function decodePixelsOfSlices(slices: DicomSlice[], limits: DicomReadLimits = {}): Float32Array[] {
  const raw = framesOfSlices(slices, limits);
  return slices.map((slice, i) => {
    const out = new Float32Array(slice.layout.rows * slice.layout.cols * slice.frames);
    modalityValues(slice, raw[i], out, 0);
    return out;
  });
}

/**
 * Like decodePixelsOfSlices, writing slice i's values into `target` from `offset + i * (its pixel count)`: a series
 * is assembled without a copy per slice.
 */
export function decodeSlicesInto(slices: DicomSlice[], target: Float32Array, offset: number, limits: DicomReadLimits = {}): void {
  const raw = framesOfSlices(slices, limits);
  let at = offset;
  slices.forEach((slice, i) => {
    modalityValues(slice, raw[i], target, at);
    at += slice.layout.rows * slice.layout.cols * slice.frames;
  });
}

/** Stored samples of one frame as a typed array (a view when aligned and little endian, else a copy). */
function samplesOf(bytes: Uint8Array, layout: FrameLayout, littleEndian: boolean): Uint8Array | Uint16Array | Int16Array | Uint32Array | Int32Array {
  const count = layout.rows * layout.cols;
  const bytesPer = layout.bitsAllocated / 8;
  if (bytesPer === 1) return bytes.subarray(0, count);
  const signedFull = layout.signed && layout.bitsStored === layout.bitsAllocated;
  const Type = bytesPer === 2 ? (signedFull ? Int16Array : Uint16Array) : signedFull ? Int32Array : Uint32Array;
  if (littleEndian && bytes.byteOffset % bytesPer === 0) return new Type(bytes.buffer as ArrayBuffer, bytes.byteOffset, count);
  // Big endian or misaligned: an aligned copy, byte-swapped in place by Node's native swap16/swap32 (a DataView read
  // per sample took most of a big-endian series' read time, bench/dicom.ts).
  const copy = new Uint8Array(count * bytesPer);
  copy.set(bytes.subarray(0, count * bytesPer));
  if (!littleEndian) {
    const swapped = Buffer.from(copy.buffer, 0, copy.length);
    if (bytesPer === 2) swapped.swap16();
    else swapped.swap32();
  }
  return new Type(copy.buffer, 0, count);
}

function modalityValues(slice: DicomSlice, raw: Uint8Array[], out: Float32Array, offset: number): void {
  const { layout, frames, dataSet, syntax } = slice;
  const plane = layout.rows * layout.cols;
  const littleEndian = !(syntax.bigEndian && syntax.encoding === 'native');
  const doseScaling = numberTag(dataSet, 0x3004, 0x000e)?.[0] ?? 1;
  const unusedBits = 32 - layout.bitsStored;
  const mask = layout.bitsStored >= 32 ? 0xffffffff : 2 ** layout.bitsStored - 1;
  // Samples that need no masking or sign extension (BitsStored = BitsAllocated) are used as they are.
  const plain = layout.bitsStored === layout.bitsAllocated;
  for (let k = 0; k < frames; k++) {
    const samples = samplesOf(raw[k], layout, littleEndian);
    const { slope, intercept } = rescaleOf(dataSet, k);
    const scale = (slope || 1) * doseScaling;
    const base = offset + k * plane;
    if (plain && scale === 1 && intercept === 0) {
      out.set(samples, base);
    } else if (plain) {
      for (let i = 0; i < plane; i++) out[base + i] = samples[i] * scale + intercept;
    } else if (layout.signed) {
      for (let i = 0; i < plane; i++) out[base + i] = ((samples[i] << unusedBits) >> unusedBits) * scale + intercept;
    } else {
      for (let i = 0; i < plane; i++) out[base + i] = (samples[i] & mask) * scale + intercept;
    }
  }
}
