/**
 * Reads one DICOM series (one folder) into a Volume with daikon.
 *
 * Slices are ordered by their position along the slice normal (ImagePositionPatient · (row × column direction)),
 * not by file name or InstanceNumber; RescaleSlope/Intercept are applied (and DoseGridScaling for RT Dose);
 * spacing, orientation and origin are kept in patient (LPS) coordinates. A multi-frame RT Dose file is one series
 * whose frames are placed by GridFrameOffsetVector.
 */
// Kept in the emitted .d.ts (preserve; the package ships src/data/daikon.d.ts): daikon has no types of its own.
/// <reference path="./daikon.d.ts" preserve="true" />
import * as fs from 'fs';
import * as path from 'path';
import daikon from 'daikon';
import { DataReadError } from './errors';
import { cross, dot, Orientation, Vec3, Volume } from './volume';

type DaikonImage = daikon.DaikonImage;

/** File names in a series folder that are never slices. */
const NOT_SLICES = /^(dicomdir|.*\.(txt|json|csv|md|xml|html?|ini|log))$/i;

export interface DicomSeries {
  /** Folder the series was read from. */
  dir: string;
  /** Files in slice order (one file for a multi-frame image). */
  files: string[];
  seriesInstanceUid: string;
  seriesDescription: string;
  /** DICOM Modality, e.g. 'MR', 'RTDOSE'. */
  modality: string;
  patientId: string;
  volume: Volume;
}

/** One parsed file plus what the series assembly needs from it. */
export interface DicomSlice {
  file: string;
  image: DaikonImage;
}

/** Parses one Part 10 file with daikon; throws DataReadError naming the file when it is not a readable image. */
export function parseDicomFile(file: string): DicomSlice {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new DataReadError(file, `cannot read DICOM file (${(error as Error).message})`);
  }
  if (bytes.length < 132 || bytes.toString('latin1', 128, 132) !== 'DICM') {
    throw new DataReadError(file, 'not a DICOM Part 10 file (no "DICM" marker after the 128-byte preamble)');
  }
  // daikon reads `data.buffer` from offset 0, so hand it an ArrayBuffer of exactly this file.
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  daikon.Series.parserError = null;
  let image: DaikonImage | null;
  try {
    image = daikon.Series.parseImage(new DataView(buffer));
  } catch (error) {
    throw new DataReadError(file, `corrupt DICOM file (${(error as Error).message})`);
  }
  if (image === null || daikon.Series.parserError) {
    throw new DataReadError(file, `corrupt DICOM file (${String(daikon.Series.parserError ?? 'parser returned nothing')})`);
  }
  if (!image.hasPixelData()) throw new DataReadError(file, 'DICOM file has no pixel data');
  return { file, image };
}

function numberTag(image: DaikonImage, group: number, element: number): number[] | null {
  const tag = image.getTag(group, element);
  if (!tag || !tag.value) return null;
  const values = tag.value.map((v) => Number(v));
  return values.every((v) => Number.isFinite(v)) ? values : null;
}

/** Stored pixel values of a slice or of all frames, rescaled to modality values. */
export function decodePixels(slice: DicomSlice): Float32Array {
  const { image, file } = slice;
  const rows = image.getRows() ?? 0;
  const cols = image.getCols() ?? 0;
  const frames = image.getNumberOfFrames() || 1;
  const bitsAllocated = image.getBitsAllocated() ?? 0;
  const bitsStored = image.getBitsStored() || bitsAllocated;
  const signed = image.getPixelRepresentation() === 1;
  if ((image.getNumberOfSamplesPerPixel() || 1) !== 1) {
    throw new DataReadError(file, 'colour images are not supported (SamplesPerPixel != 1)');
  }
  if (![8, 16, 32].includes(bitsAllocated)) throw new DataReadError(file, `unsupported BitsAllocated ${bitsAllocated}`);
  let raw: ArrayBuffer;
  try {
    raw = image.getRawData();
  } catch (error) {
    throw new DataReadError(file, `cannot decode pixel data (${(error as Error).message})`);
  }
  const count = rows * cols * frames;
  const bytesPer = bitsAllocated / 8;
  if (count === 0) throw new DataReadError(file, `empty image (${rows} rows x ${cols} columns)`);
  if (!raw || raw.byteLength < count * bytesPer) {
    throw new DataReadError(file, `pixel data truncated: ${raw ? raw.byteLength : 0} bytes, expected ${count * bytesPer}`);
  }
  const view = new DataView(raw);
  const le = image.littleEndian;
  const slope = numberTag(image, 0x0028, 0x1053)?.[0] ?? 1;
  const intercept = numberTag(image, 0x0028, 0x1052)?.[0] ?? 0;
  const doseScaling = numberTag(image, 0x3004, 0x000e)?.[0] ?? 1;
  const scale = (slope || 1) * doseScaling;
  const unusedBits = 32 - bitsStored;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * bytesPer;
    let v = bytesPer === 1 ? view.getUint8(at) : bytesPer === 2 ? view.getUint16(at, le) : view.getUint32(at, le);
    // Keep only BitsStored bits; sign-extend them for signed pixels.
    v = signed ? (v << unusedBits) >> unusedBits : bitsStored < 32 ? v & ((1 << bitsStored) - 1) : v;
    out[i] = v * scale + intercept;
  }
  return out;
}

function listSliceFiles(dir: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    throw new DataReadError(dir, `cannot list DICOM series folder (${(error as Error).message})`);
  }
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith('.') && !NOT_SLICES.test(e.name))
    .map((e) => path.join(dir, e.name))
    .sort();
}

/** Reads every slice file in `dir` (one series) into a volume. Throws DataReadError naming the folder or file. */
export function readDicomSeries(dir: string): DicomSeries {
  const files = listSliceFiles(dir);
  if (files.length === 0) throw new DataReadError(dir, 'no DICOM files in series folder');
  const slices = files.map(parseDicomFile);
  const uids = [...new Set(slices.map((s) => s.image.getSeriesInstanceUID() ?? ''))];
  if (uids.length > 1) {
    throw new DataReadError(dir, `folder mixes ${uids.length} series (SeriesInstanceUID ${uids.join(', ')}); expected one folder per series`);
  }
  const first = slices[0].image;
  const assembled = slices.length === 1 && (first.getNumberOfFrames() || 1) > 1
    ? assembleMultiFrame(slices[0])
    : assembleSlices(dir, slices);
  return {
    dir,
    files: assembled.files,
    seriesInstanceUid: uids[0],
    seriesDescription: (first.getSeriesDescription() ?? '').trim(),
    modality: (first.getModality() ?? '').trim(),
    patientId: (first.getPatientID() ?? '').trim(),
    volume: assembled.volume,
  };
}

interface SliceGeometry {
  rowDir: Vec3;
  colDir: Vec3;
  normal: Vec3;
  pixelSpacing: [number, number];
  rows: number;
  cols: number;
}

function geometryOf(slice: DicomSlice): SliceGeometry {
  const { image, file } = slice;
  const rows = image.getRows() ?? 0;
  const cols = image.getCols() ?? 0;
  if (rows < 1 || cols < 1) throw new DataReadError(file, `missing Rows/Columns (${rows} x ${cols})`);
  const iop = numberTag(image, 0x0020, 0x0037);
  const rowDir: Vec3 = iop && iop.length === 6 ? [iop[0], iop[1], iop[2]] : [1, 0, 0];
  const colDir: Vec3 = iop && iop.length === 6 ? [iop[3], iop[4], iop[5]] : [0, 1, 0];
  const normal = cross(rowDir, colDir);
  if (Math.abs(Math.hypot(...normal) - 1) > 1e-3) {
    throw new DataReadError(file, `ImageOrientationPatient ${iop?.join('\\')} is not two orthogonal unit vectors`);
  }
  const ps = numberTag(image, 0x0028, 0x0030);
  const pixelSpacing: [number, number] = ps && ps.length >= 2 && ps[0] > 0 && ps[1] > 0 ? [ps[0], ps[1]] : [1, 1];
  return { rowDir, colDir, normal, pixelSpacing, rows, cols };
}

function orientationOf(g: SliceGeometry): Orientation {
  return [...g.rowDir, ...g.colDir, ...g.normal] as Orientation;
}

function assembleSlices(dir: string, slices: DicomSlice[]): { volume: Volume; files: string[] } {
  const geometry = geometryOf(slices[0]);
  for (const slice of slices.slice(1)) {
    const g = geometryOf(slice);
    if (g.rows !== geometry.rows || g.cols !== geometry.cols) {
      throw new DataReadError(slice.file, `slice is ${g.cols}x${g.rows}, series is ${geometry.cols}x${geometry.rows}`);
    }
    if (dot(g.normal, geometry.normal) < 0.999) {
      throw new DataReadError(slice.file, 'slice orientation differs from the rest of the series');
    }
  }
  const positions = slices.map((s) => numberTag(s.image, 0x0020, 0x0032));
  const havePositions = positions.every((p) => p !== null && p.length === 3);
  const ordered = slices.map((slice, i) => ({
    slice,
    position: (havePositions ? positions[i] : [0, 0, 0]) as number[],
    along: havePositions ? dot(positions[i] as number[], geometry.normal) : (slice.image.getImageNumber() ?? i),
  }));
  ordered.sort((a, b) => a.along - b.along);

  let sliceSpacing: number;
  if (ordered.length === 1 || !havePositions) {
    const thickness = numberTag(slices[0].image, 0x0018, 0x0088)?.[0] ?? slices[0].image.getSliceThickness();
    sliceSpacing = thickness && thickness > 0 ? thickness : 1;
  } else {
    const gaps = ordered.slice(1).map((o, i) => o.along - ordered[i].along);
    const duplicate = gaps.findIndex((g) => g < 1e-4);
    if (duplicate >= 0) {
      throw new DataReadError(ordered[duplicate + 1].slice.file,
        `two slices at the same position (${ordered[duplicate].slice.file})`);
    }
    sliceSpacing = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    const uneven = gaps.findIndex((g) => Math.abs(g - sliceSpacing) > 0.01 * sliceSpacing + 1e-3);
    if (uneven >= 0) {
      throw new DataReadError(dir, `slices are not evenly spaced: gap of ${gaps[uneven].toFixed(3)} mm before `
        + `${path.basename(ordered[uneven + 1].slice.file)}, mean ${sliceSpacing.toFixed(3)} mm (missing slice?)`);
    }
  }
  const plane = geometry.rows * geometry.cols;
  const data = new Float32Array(plane * ordered.length);
  ordered.forEach((o, k) => {
    const pixels = decodePixels(o.slice);
    if (pixels.length !== plane) throw new DataReadError(o.slice.file, 'multi-frame slice inside a series of single frames');
    data.set(pixels, k * plane);
  });
  return {
    files: ordered.map((o) => o.slice.file),
    volume: {
      data,
      dims: [geometry.cols, geometry.rows, ordered.length],
      spacing: [geometry.pixelSpacing[1], geometry.pixelSpacing[0], sliceSpacing],
      orientation: orientationOf(geometry),
      origin: [...ordered[0].position] as Vec3,
    },
  };
}

/** A multi-frame file (RT Dose): frame k sits at ImagePositionPatient + GridFrameOffsetVector[k] * normal. */
function assembleMultiFrame(slice: DicomSlice): { volume: Volume; files: string[] } {
  const { image, file } = slice;
  const geometry = geometryOf(slice);
  const frames = image.getNumberOfFrames();
  const offsets = numberTag(image, 0x3004, 0x000c);
  if (!offsets || offsets.length !== frames) {
    throw new DataReadError(file, `multi-frame image with ${frames} frames needs a GridFrameOffsetVector of the same length`);
  }
  const gaps = offsets.slice(1).map((o, i) => o - offsets[i]);
  const spacing = gaps.length > 0 ? gaps.reduce((a, b) => a + b, 0) / gaps.length : (image.getSliceThickness() || 1);
  if (gaps.some((g) => Math.abs(g - spacing) > 0.01 * Math.abs(spacing) + 1e-3) || spacing === 0) {
    throw new DataReadError(file, `GridFrameOffsetVector is not evenly spaced (${offsets.join('\\')})`);
  }
  const position = numberTag(image, 0x0020, 0x0032);
  if (!position || position.length !== 3) throw new DataReadError(file, 'multi-frame image without ImagePositionPatient');
  const data = decodePixels(slice);
  const plane = geometry.rows * geometry.cols;
  // Frames may be stored in decreasing position: flip to increasing order along the normal.
  const increasing = spacing > 0;
  const ordered = increasing ? data : new Float32Array(data.length);
  if (!increasing) {
    for (let k = 0; k < frames; k++) ordered.set(data.subarray(k * plane, (k + 1) * plane), (frames - 1 - k) * plane);
  }
  const firstOffset = increasing ? offsets[0] : offsets[frames - 1];
  const origin = position.map((p, c) => p + firstOffset * geometry.normal[c]) as Vec3;
  return {
    files: [file],
    volume: {
      data: ordered,
      dims: [geometry.cols, geometry.rows, frames],
      spacing: [geometry.pixelSpacing[1], geometry.pixelSpacing[0], Math.abs(spacing)],
      orientation: orientationOf(geometry),
      origin,
    },
  };
}
