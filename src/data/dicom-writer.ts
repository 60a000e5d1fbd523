/**
 * A small DICOM writer of our own: Part 10 files (128-byte preamble, "DICM", File Meta group) in Explicit VR Little
 * Endian, for MR Image Storage (one file per slice) and RT Dose Storage (one multi-frame file).
 *
 * It writes the attributes a real reader needs to rebuild the volume (geometry, pixel format, rescale) and to sort
 * series into studies and patients (UIDs, PatientID, SeriesDescription, Modality). Output bytes depend only on the
 * inputs: no clock, no random numbers (UIDs are given by the caller, see `deterministicUid`).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { axis, cross, Vec3, Volume, voxelToWorld } from './volume';

export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
export const MR_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.4';
export const RT_DOSE_STORAGE = '1.2.840.10008.5.1.4.1.1.481.2';
/** Our implementation class UID (a 2.25 UUID-derived root) and version name, written in every File Meta group. */
export const IMPLEMENTATION_CLASS_UID = '2.25.229543710113526146376089212946364128147';
export const IMPLEMENTATION_VERSION_NAME = 'FEDBIOMED_TS_1';

export type VR =
  | 'AE' | 'AS' | 'AT' | 'CS' | 'DA' | 'DS' | 'DT' | 'FD' | 'FL' | 'IS' | 'LO' | 'LT' | 'OB' | 'OW' | 'PN' | 'SH'
  | 'SL' | 'SS' | 'ST' | 'TM' | 'UI' | 'UL' | 'US' | 'UT';

/** VRs whose length field is 4 bytes (after 2 reserved bytes) in explicit VR encoding. */
const LONG_LENGTH_VRS = new Set<VR>(['OB', 'OW', 'UT']);

export interface DicomElement {
  /** (group << 16) | element, e.g. 0x00100020 for PatientID. */
  tag: number;
  vr: VR;
  /** Strings (joined with "\" when several), numbers (binary VRs, or formatted for DS/IS), raw bytes for OB/OW. */
  value: string | number | readonly (string | number)[] | Uint8Array;
}

/** A UID under the 2.25 root derived from SHA-256 of the parts: stable for the same inputs, unique in practice. */
export function deterministicUid(...parts: (string | number)[]): string {
  const digest = crypto.createHash('sha256').update(parts.join('\u0000')).digest();
  return `2.25.${BigInt(`0x${digest.subarray(0, 16).toString('hex')}`).toString()}`;
}

/** A decimal string (DS) of at most 16 characters. */
export function formatDS(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`formatDS: ${x} cannot be written as a DICOM decimal string`);
  if (Object.is(x, -0)) x = 0;
  for (let precision = 15; precision >= 1; precision--) {
    const text = String(Number(x.toPrecision(precision)));
    if (text.length <= 16) return text;
  }
  return x.toExponential(6);
}

function encodeValue(element: DicomElement): Buffer {
  const { vr, value } = element;
  const list = (Array.isArray(value) ? value : [value]) as (string | number)[];
  switch (vr) {
    case 'OB':
    case 'OW': {
      if (!(value instanceof Uint8Array)) throw new Error(`${tagName(element.tag)}: ${vr} needs raw bytes`);
      return padEven(Buffer.from(value.buffer, value.byteOffset, value.byteLength), 0);
    }
    case 'US': return binary(list, 2, (b, v, at) => b.writeUInt16LE(v, at));
    case 'SS': return binary(list, 2, (b, v, at) => b.writeInt16LE(v, at));
    case 'UL': return binary(list, 4, (b, v, at) => b.writeUInt32LE(v, at));
    case 'SL': return binary(list, 4, (b, v, at) => b.writeInt32LE(v, at));
    case 'FL': return binary(list, 4, (b, v, at) => b.writeFloatLE(v, at));
    case 'FD': return binary(list, 8, (b, v, at) => b.writeDoubleLE(v, at));
    case 'AT': return binary(list.flatMap((t) => [Number(t) >>> 16, Number(t) & 0xffff]), 2,
      (b, v, at) => b.writeUInt16LE(v, at));
    case 'DS': return padEven(Buffer.from(list.map((v) => (typeof v === 'number' ? formatDS(v) : v)).join('\\'),
      'latin1'), 0x20);
    case 'IS': return padEven(Buffer.from(list.map((v) => String(v)).join('\\'), 'latin1'), 0x20);
    case 'UI': return padEven(Buffer.from(list.join('\\'), 'latin1'), 0);
    default: return padEven(Buffer.from(list.join('\\'), 'latin1'), 0x20);
  }
}

function binary(values: (string | number)[], size: number, write: (b: Buffer, v: number, at: number) => void): Buffer {
  const out = Buffer.alloc(values.length * size);
  values.forEach((v, i) => write(out, Number(v), i * size));
  return out;
}

function padEven(bytes: Buffer, pad: number): Buffer {
  return bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.from([pad])]);
}

function tagName(tag: number): string {
  const hex = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${hex.slice(0, 4)},${hex.slice(4)})`;
}

function encodeElement(element: DicomElement): Buffer {
  const value = encodeValue(element);
  const long = LONG_LENGTH_VRS.has(element.vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(element.tag >>> 16, 0);
  head.writeUInt16LE(element.tag & 0xffff, 2);
  head.write(element.vr, 4, 'latin1');
  if (long) {
    head.writeUInt32LE(value.length, 8);
  } else {
    if (value.length > 0xffff) throw new Error(`${tagName(element.tag)}: value too long for VR ${element.vr}`);
    head.writeUInt16LE(value.length, 6);
  }
  return Buffer.concat([head, value]);
}

/** A complete Part 10 file: preamble, File Meta group, then `elements` (sorted by tag) in Explicit VR LE. */
export function encodeDicomFile(sopClassUid: string, sopInstanceUid: string, elements: DicomElement[]): Buffer {
  const metaBody = Buffer.concat([
    encodeElement({ tag: 0x00020001, vr: 'OB', value: Uint8Array.from([0, 1]) }),
    encodeElement({ tag: 0x00020002, vr: 'UI', value: sopClassUid }),
    encodeElement({ tag: 0x00020003, vr: 'UI', value: sopInstanceUid }),
    encodeElement({ tag: 0x00020010, vr: 'UI', value: EXPLICIT_VR_LITTLE_ENDIAN }),
    encodeElement({ tag: 0x00020012, vr: 'UI', value: IMPLEMENTATION_CLASS_UID }),
    encodeElement({ tag: 0x00020013, vr: 'SH', value: IMPLEMENTATION_VERSION_NAME }),
  ]);
  const groupLength = encodeElement({ tag: 0x00020000, vr: 'UL', value: metaBody.length });
  const sorted = [...elements].sort((a, b) => a.tag - b.tag);
  sorted.forEach((e, i) => {
    if (e.tag >>> 16 === 0x0002) throw new Error(`${tagName(e.tag)}: File Meta elements are written by the writer`);
    if (i > 0 && sorted[i - 1].tag === e.tag) throw new Error(`${tagName(e.tag)}: element given twice`);
  });
  return Buffer.concat([
    Buffer.alloc(128),
    Buffer.from('DICM', 'latin1'),
    groupLength,
    metaBody,
    ...sorted.map(encodeElement),
  ]);
}

export interface PatientInfo {
  id: string;
  name?: string;
  /** 'M', 'F' or 'O'. */
  sex?: string;
  /** Years. */
  age?: number;
}

export interface StudyInfo {
  uid: string;
  id?: string;
  /** YYYYMMDD. */
  date?: string;
  /** HHMMSS. */
  time?: string;
  description?: string;
}

export interface SeriesInfo {
  uid: string;
  number: number;
  description: string;
  frameOfReferenceUid: string;
  /** Instance UID of each slice (MR) or of the single dose file (RTDOSE): given so files stay deterministic. */
  instanceUid: (index: number) => string;
  manufacturer?: string;
  institution?: string;
}

export interface MrAcquisition {
  repetitionTime?: number;
  echoTime?: number;
  inversionTime?: number;
  fieldStrength?: number;
  /** e.g. 'SE', 'IR', 'GR'. */
  scanningSequence?: string;
}

/** 16-bit stored pixels plus the rescale that maps them back to the volume's values. */
export interface StoredPixels {
  pixels: Uint16Array | Int16Array;
  signed: boolean;
  slope: number;
  intercept: number;
}

/**
 * Chooses the 16-bit encoding: integer data that fits is stored as is (slope 1), anything else is mapped linearly
 * onto 0..65535 (the values then come back within half a step of (max - min) / 65535).
 */
export function quantise16(data: Float32Array): StoredPixels {
  let min = Infinity;
  let max = -Infinity;
  let integral = true;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) throw new Error(`quantise16: voxel ${i} is ${v}`);
    if (v < min) min = v;
    if (v > max) max = v;
    if (integral && v !== Math.round(v)) integral = false;
  }
  if (data.length === 0) return { pixels: new Uint16Array(0), signed: false, slope: 1, intercept: 0 };
  if (integral && min >= 0 && max <= 65535) {
    return { pixels: Uint16Array.from(data), signed: false, slope: 1, intercept: 0 };
  }
  if (integral && min >= -32768 && max <= 32767) {
    return { pixels: Int16Array.from(data), signed: true, slope: 1, intercept: 0 };
  }
  // Round the scale to what DS can hold so the reader's slope equals the one used here.
  const slope = Number(formatDS((max - min) / 65535 || 1));
  const intercept = Number(formatDS(min));
  const pixels = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) pixels[i] = Math.min(65535, Math.max(0, Math.round((data[i] - intercept) / slope)));
  return { pixels, signed: false, slope, intercept };
}

function pixelBytes(pixels: Uint16Array | Int16Array, from: number, to: number): Uint8Array {
  const out = Buffer.alloc((to - from) * 2);
  for (let i = from; i < to; i++) {
    if (pixels instanceof Int16Array) out.writeInt16LE(pixels[i], (i - from) * 2);
    else out.writeUInt16LE(pixels[i], (i - from) * 2);
  }
  return out;
}

function commonElements(
  modality: string, patient: PatientInfo, study: StudyInfo, series: SeriesInfo,
): DicomElement[] {
  const elements: DicomElement[] = [
    { tag: 0x00080005, vr: 'CS', value: 'ISO_IR 100' },
    { tag: 0x00080020, vr: 'DA', value: study.date ?? '' },
    { tag: 0x00080030, vr: 'TM', value: study.time ?? '' },
    { tag: 0x00080050, vr: 'SH', value: '' },
    { tag: 0x00080060, vr: 'CS', value: modality },
    { tag: 0x00080070, vr: 'LO', value: series.manufacturer ?? 'fedbiomed-ts synthetic' },
    { tag: 0x00080090, vr: 'PN', value: '' },
    { tag: 0x00081030, vr: 'LO', value: study.description ?? '' },
    { tag: 0x0008103e, vr: 'LO', value: series.description },
    { tag: 0x00100010, vr: 'PN', value: patient.name ?? patient.id },
    { tag: 0x00100020, vr: 'LO', value: patient.id },
    { tag: 0x00100030, vr: 'DA', value: '' },
    { tag: 0x00100040, vr: 'CS', value: patient.sex ?? '' },
    { tag: 0x0020000d, vr: 'UI', value: study.uid },
    { tag: 0x0020000e, vr: 'UI', value: series.uid },
    { tag: 0x00200010, vr: 'SH', value: study.id ?? '' },
    { tag: 0x00200011, vr: 'IS', value: series.number },
    { tag: 0x00200052, vr: 'UI', value: series.frameOfReferenceUid },
    { tag: 0x00201040, vr: 'LO', value: '' },
  ];
  if (patient.age !== undefined) {
    elements.push({ tag: 0x00101010, vr: 'AS', value: `${String(Math.round(patient.age)).padStart(3, '0')}Y` });
  }
  if (series.institution) elements.push({ tag: 0x00080080, vr: 'LO', value: series.institution });
  return elements;
}

function imagePixelElements(volume: Volume, stored: StoredPixels): DicomElement[] {
  return [
    { tag: 0x00280002, vr: 'US', value: 1 },
    { tag: 0x00280004, vr: 'CS', value: 'MONOCHROME2' },
    { tag: 0x00280010, vr: 'US', value: volume.dims[1] },
    { tag: 0x00280011, vr: 'US', value: volume.dims[0] },
    // PixelSpacing is (row spacing, column spacing) = (y, x).
    { tag: 0x00280030, vr: 'DS', value: [volume.spacing[1], volume.spacing[0]] },
    { tag: 0x00280100, vr: 'US', value: 16 },
    { tag: 0x00280101, vr: 'US', value: 16 },
    { tag: 0x00280102, vr: 'US', value: 15 },
    { tag: 0x00280103, vr: 'US', value: stored.signed ? 1 : 0 },
  ];
}

function orientationValue(volume: Volume): number[] {
  return [...axis(volume.orientation, 0), ...axis(volume.orientation, 1)];
}

export interface MrSeriesOptions {
  patient: PatientInfo;
  study: StudyInfo;
  series: SeriesInfo;
  acquisition?: MrAcquisition;
}

/**
 * One MR Image Storage file per axial slice of `volume` (slice k of the volume is InstanceNumber k + 1).
 * Pixel values are stored on 16 bits with RescaleSlope/Intercept (see quantise16).
 */
export function encodeMrSeries(volume: Volume, options: MrSeriesOptions): Buffer[] {
  const { patient, study, series, acquisition = {} } = options;
  const [nx, ny, nz] = volume.dims;
  const stored = quantise16(volume.data);
  const normal = cross(axis(volume.orientation, 0), axis(volume.orientation, 1));
  // A default display window over the series' value range, so viewers show the whole range at first.
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < volume.data.length; i++) {
    lo = Math.min(lo, volume.data[i]);
    hi = Math.max(hi, volume.data[i]);
  }
  const base = [
    ...commonElements('MR', patient, study, series),
    ...imagePixelElements(volume, stored),
    { tag: 0x00080008, vr: 'CS', value: ['ORIGINAL', 'PRIMARY', 'OTHER'] },
    { tag: 0x00080016, vr: 'UI', value: MR_IMAGE_STORAGE },
    { tag: 0x00180015, vr: 'CS', value: 'BRAIN' },
    { tag: 0x00180020, vr: 'CS', value: acquisition.scanningSequence ?? 'SE' },
    { tag: 0x00180021, vr: 'CS', value: 'NONE' },
    { tag: 0x00180022, vr: 'CS', value: '' },
    { tag: 0x00180023, vr: 'CS', value: '2D' },
    { tag: 0x00180050, vr: 'DS', value: volume.spacing[2] },
    { tag: 0x00180088, vr: 'DS', value: volume.spacing[2] },
    { tag: 0x00185100, vr: 'CS', value: 'HFS' },
    { tag: 0x00200037, vr: 'DS', value: orientationValue(volume) },
    { tag: 0x00281050, vr: 'DS', value: (lo + hi) / 2 },
    { tag: 0x00281051, vr: 'DS', value: Math.max(1, hi - lo) },
    { tag: 0x00281052, vr: 'DS', value: stored.intercept },
    { tag: 0x00281053, vr: 'DS', value: stored.slope },
    { tag: 0x00281054, vr: 'LO', value: 'US' },
  ] as DicomElement[];
  if (acquisition.repetitionTime !== undefined) base.push({ tag: 0x00180080, vr: 'DS', value: acquisition.repetitionTime });
  if (acquisition.echoTime !== undefined) base.push({ tag: 0x00180081, vr: 'DS', value: acquisition.echoTime });
  if (acquisition.inversionTime !== undefined) base.push({ tag: 0x00180082, vr: 'DS', value: acquisition.inversionTime });
  if (acquisition.fieldStrength !== undefined) base.push({ tag: 0x00180087, vr: 'DS', value: acquisition.fieldStrength });

  const files: Buffer[] = [];
  for (let k = 0; k < nz; k++) {
    const position = voxelToWorld(volume, 0, 0, k);
    const sopInstanceUid = series.instanceUid(k);
    files.push(encodeDicomFile(MR_IMAGE_STORAGE, sopInstanceUid, [
      ...base,
      { tag: 0x00080018, vr: 'UI', value: sopInstanceUid },
      { tag: 0x00200013, vr: 'IS', value: k + 1 },
      { tag: 0x00200032, vr: 'DS', value: position },
      { tag: 0x00201041, vr: 'DS', value: position[0] * normal[0] + position[1] * normal[1] + position[2] * normal[2] },
      { tag: 0x7fe00010, vr: 'OW', value: pixelBytes(stored.pixels, k * nx * ny, (k + 1) * nx * ny) },
    ]));
  }
  return files;
}

/** Writes the series as `<dir>/IM0001.dcm`, … (dir created if needed); returns the file paths in slice order. */
export function writeMrSeries(dir: string, volume: Volume, options: MrSeriesOptions): string[] {
  fs.mkdirSync(dir, { recursive: true });
  return encodeMrSeries(volume, options).map((bytes, k) => {
    const file = path.join(dir, `IM${String(k + 1).padStart(4, '0')}.dcm`);
    fs.writeFileSync(file, bytes);
    return file;
  });
}

export interface RtDoseOptions {
  patient: PatientInfo;
  study: StudyInfo;
  series: SeriesInfo;
  /** 'PHYSICAL' (photons) or 'EFFECTIVE' (RBE-weighted, particle therapy). */
  doseType?: 'PHYSICAL' | 'EFFECTIVE';
}

/**
 * One multi-frame RT Dose Storage file: frame k is slice k of `volume` (values in Gy), stored as unsigned 16-bit
 * integers times DoseGridScaling; frame positions are given by GridFrameOffsetVector along the slice normal.
 */
export function encodeRtDose(volume: Volume, options: RtDoseOptions): Buffer {
  const { patient, study, series } = options;
  let max = 0;
  for (let i = 0; i < volume.data.length; i++) {
    const v = volume.data[i];
    if (!(v >= 0) || !Number.isFinite(v)) throw new Error(`encodeRtDose: dose at voxel ${i} is ${v}, must be >= 0`);
    if (v > max) max = v;
  }
  const scaling = Number(formatDS(max > 0 ? max / 65000 : 1));
  const pixels = new Uint16Array(volume.data.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = Math.min(65535, Math.round(volume.data[i] / scaling));
  const stored: StoredPixels = { pixels, signed: false, slope: 1, intercept: 0 };
  const offsets = Array.from({ length: volume.dims[2] }, (_, k) => k * volume.spacing[2]);
  const sopInstanceUid = series.instanceUid(0);
  const origin: Vec3 = voxelToWorld(volume, 0, 0, 0);
  return encodeDicomFile(RT_DOSE_STORAGE, sopInstanceUid, [
    ...commonElements('RTDOSE', patient, study, series),
    ...imagePixelElements(volume, stored),
    { tag: 0x00080016, vr: 'UI', value: RT_DOSE_STORAGE },
    { tag: 0x00080018, vr: 'UI', value: sopInstanceUid },
    { tag: 0x00180050, vr: 'DS', value: volume.spacing[2] },
    { tag: 0x00200013, vr: 'IS', value: 1 },
    { tag: 0x00200032, vr: 'DS', value: origin },
    { tag: 0x00200037, vr: 'DS', value: orientationValue(volume) },
    { tag: 0x00280008, vr: 'IS', value: volume.dims[2] },
    { tag: 0x00280009, vr: 'AT', value: 0x3004000c },
    { tag: 0x30040002, vr: 'CS', value: 'GY' },
    { tag: 0x30040004, vr: 'CS', value: options.doseType ?? 'PHYSICAL' },
    { tag: 0x3004000a, vr: 'CS', value: 'PLAN' },
    { tag: 0x3004000c, vr: 'DS', value: offsets },
    { tag: 0x3004000e, vr: 'DS', value: scaling },
    { tag: 0x7fe00010, vr: 'OW', value: pixelBytes(pixels, 0, pixels.length) },
  ]);
}

export function writeRtDose(file: string, volume: Volume, options: RtDoseOptions): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, encodeRtDose(volume, options));
  return file;
}
