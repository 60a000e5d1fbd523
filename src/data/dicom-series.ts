/**
 * Reads DICOM series (one folder, or a folder mixing several series) into Volumes.
 *
 * Files are grouped by SeriesInstanceUID; slices are ordered by their position along the slice normal
 * (ImagePositionPatient · (row × column direction)), not by file name or InstanceNumber; missing slices and uneven
 * spacing are reported with the gap and the file after it. RescaleSlope/Intercept are applied (per frame for
 * Enhanced objects, and DoseGridScaling for RT Dose); spacing, orientation and origin are kept in patient (LPS)
 * coordinates. Multi-frame objects are one series: RT Dose frames are placed by GridFrameOffsetVector, Enhanced
 * MR/CT/PET frames by their per-frame PlanePositionSequence.
 */
// Kept in the emitted .d.ts (preserve; the package ships src/data/daikon.d.ts): daikon has no types of its own.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- an import would not keep it in the .d.ts
/// <reference path="./daikon.d.ts" preserve="true" />
import * as fs from 'fs';
import * as path from 'path';
import type * as dicomParser from 'dicom-parser';
import {
  decodePixels, decodeSlicesInto, DicomReadLimits, DicomSlice, NoPixelDataError, NotDicomFileError, numberTag, parseDicomFile, sequenceItem, stringTag,
} from './dicom-file';
import { DataIssue, DataReadError, issueFrom } from './errors';
import { cross, dot, Orientation, Vec3, Volume } from './volume';

export { decodePixels, parseDicomFile };
export type { DicomReadLimits, DicomSlice };

/** File names in a series folder that are never slices. */
const NOT_SLICES = /^(dicomdir|.*\.(txt|json|csv|md|xml|html?|ini|log|nii|gz|png|jpe?g|zip))$/i;

export interface DicomSeries {
  /** Folder the series was read from. */
  dir: string;
  /** Files in slice order (one file for a multi-frame image). */
  files: string[];
  seriesInstanceUid: string;
  seriesDescription: string;
  /** DICOM Modality, e.g. 'MR', 'CT', 'PT', 'RTDOSE'. */
  modality: string;
  patientId: string;
  /** Data set of the first slice, for modality-specific tags (PET SUV, …). */
  header: dicomParser.DataSet;
  volume: Volume;
}

export type DicomSeriesOptions = DicomReadLimits;

/** Slices decoded together (in parallel on the decoding workers) before their values join the volume. */
const DECODE_CHUNK = 32;

function listSliceFiles(dir: string, recursive = false): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    throw new DataReadError(dir, `cannot list DICOM folder (${(error as Error).message})`);
  }
  const files: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    if (e.isFile() && !NOT_SLICES.test(e.name)) files.push(full);
    else if (recursive && e.isDirectory()) files.push(...listSliceFiles(full, true));
  }
  return files.sort();
}

/**
 * Where every slice or frame of a series goes, from headers alone (no pixel decoded): the checks that refuse a
 * series (missing slices, uneven spacing, mixed sizes or orientations, frames without positions) all happen here.
 */
interface SeriesLayout {
  geometry: SliceGeometry;
  /** Slices in order along the normal (one multi-frame slice, or single-frame slices). */
  slices: DicomSlice[];
  /** For a multi-frame slice: stored frame index of each position along the normal. */
  frameOrder?: number[];
  spacing: number;
  origin: Vec3;
}

function layoutOf(dir: string, slices: DicomSlice[]): SeriesLayout {
  return slices.length === 1 && slices[0].frames > 1 ? multiFrameLayout(slices[0]) : singleFrameLayout(dir, slices);
}

function seriesFrom(dir: string, slices: DicomSlice[], options: DicomSeriesOptions): DicomSeries {
  const first = slices[0].dataSet;
  const layout = layoutOf(dir, slices);
  return {
    dir,
    files: layout.slices.map((s) => s.file),
    seriesInstanceUid: stringTag(first, 0x0020, 0x000e),
    seriesDescription: stringTag(first, 0x0008, 0x103e),
    modality: stringTag(first, 0x0008, 0x0060),
    patientId: stringTag(first, 0x0010, 0x0020),
    header: first,
    volume: decodeLayout(layout, options),
  };
}

/** Reads every slice file in `dir` (one series) into a volume. Throws DataReadError naming the folder or file. */
export function readDicomSeries(dir: string, options: DicomSeriesOptions = {}): DicomSeries {
  const files = listSliceFiles(dir);
  if (files.length === 0) throw new DataReadError(dir, 'no DICOM files in series folder');
  const slices = files.map((f) => parseDicomFile(f, options));
  const uids = [...new Set(slices.map((s) => stringTag(s.dataSet, 0x0020, 0x000e)))];
  if (uids.length > 1) {
    throw new DataReadError(dir, `folder mixes ${uids.length} series (SeriesInstanceUID ${uids.join(', ')}); expected one folder per series`);
  }
  return seriesFrom(dir, slices, options);
}

/** A series found by scanDicomFolder: what its role and usability depend on, without its pixels. */
export interface ScannedSeries {
  dir: string;
  seriesInstanceUid: string;
  seriesDescription: string;
  modality: string;
  /** Data set of the first slice. */
  header: dicomParser.DataSet;
}

export interface DicomFolderScan {
  /** Unreadable files, each with the reason; `notAnImage` for stray files (not DICOM, or DICOM without pixels). */
  files: (DataIssue & { notAnImage: boolean })[];
  /** Series whose slices can be assembled (sizes, orientations, positions and spacing checked). */
  series: ScannedSeries[];
  /** Series that cannot be assembled (a missing slice, uneven spacing, …), each with the reason. */
  seriesIssues: DataIssue[];
  structureSets: string[];
  /** DICOM segmentation files (SEG), read as label maps on the series they reference. */
  segmentations: string[];
}

/**
 * Checks every file under `dir` as far as it can be without decoding pixels (readable, a DICOM image, a supported
 * syntax, within the caps, pixel bytes present) and every series as readDicomFolder would assemble it (the
 * headers' geometry): what a round would meet, found before it starts.
 */
export function scanDicomFolder(dir: string, options: DicomSeriesOptions = {}): DicomFolderScan {
  const scan: DicomFolderScan = { files: [], series: [], seriesIssues: [], structureSets: [], segmentations: [] };
  const groups = new Map<string, DicomSlice[]>();
  for (const file of listSliceFiles(dir, true)) {
    try {
      const slice = withoutPixelBytes(parseDicomFile(file, options));
      const uid = stringTag(slice.dataSet, 0x0020, 0x000e);
      groups.set(uid, [...(groups.get(uid) ?? []), slice]);
    } catch (error) {
      if (error instanceof NoPixelDataError && error.modality === 'RTSTRUCT') scan.structureSets.push(file); // read as masks
      else if (error instanceof NoPixelDataError && error.modality === 'SEG') scan.segmentations.push(file); // read as label maps
      else scan.files.push({ ...issueFrom(file, error), notAnImage: error instanceof NotDicomFileError || error instanceof NoPixelDataError });
    }
  }
  for (const [uid, slices] of groups) {
    const seriesDir = commonFolder(slices.map((s) => s.file));
    try {
      checkNotMixed(seriesDir, uid, slices);
      layoutOf(seriesDir, slices);
      const header = slices[0].dataSet;
      scan.series.push({ dir: seriesDir, seriesInstanceUid: uid, seriesDescription: stringTag(header, 0x0008, 0x103e),
        modality: stringTag(header, 0x0008, 0x0060), header });
    } catch (error) {
      scan.seriesIssues.push(issueFrom(seriesDir, error));
    }
  }
  return scan;
}

/**
 * The slice with only the bytes before its pixel data kept (a copy: the file's buffer can be freed), for a scan
 * that holds every slice of a patient at once but needs their headers only.
 */
function withoutPixelBytes(slice: DicomSlice): DicomSlice {
  const end = slice.dataSet.elements.x7fe00010.dataOffset ?? slice.dataSet.byteArray.length;
  const bytes = slice.dataSet.byteArray.slice(0, end);
  const rebased = (dataSet: dicomParser.DataSet): dicomParser.DataSet => {
    const elements = Object.fromEntries(Object.entries(dataSet.elements).map(([tag, element]) => [tag, element.items
      ? { ...element, items: element.items.map((item) => ({ ...item, dataSet: item.dataSet && rebased(item.dataSet) })) }
      : element]));
    // Same class (its tag readers), same offsets, the header bytes only.
    return Object.assign(Object.create(Object.getPrototypeOf(dataSet) as object) as dicomParser.DataSet, dataSet, { byteArray: bytes, elements });
  };
  return { ...slice, dataSet: rebased(slice.dataSet) };
}

function checkNotMixed(seriesDir: string, uid: string, slices: DicomSlice[]): void {
  if (slices.length > 1 && slices.some((s) => s.frames > 1)) {
    throw new DataReadError(seriesDir, `series ${uid} mixes multi-frame and single-frame files`);
  }
}

export interface DicomFolder {
  series: DicomSeries[];
  /** RT structure set files (no pixels: their ROIs become masks on the series they reference). */
  structureSets: string[];
  /** DICOM segmentation files (SEG: label maps on the series they reference, dicom-seg.ts). */
  segmentations: string[];
  /** Unreadable files and series that cannot be assembled, each with the reason. */
  issues: DataIssue[];
}

/**
 * Reads every DICOM file under `dir` (sub-folders included), as a PACS export or a scanner's folder holds them:
 * files are grouped by SeriesInstanceUID (whatever folder they are in), and each group becomes one series. An
 * unreadable file or a series that cannot be assembled is reported in `issues`, not thrown.
 */
export function readDicomFolder(dir: string, options: DicomSeriesOptions = {}): DicomFolder {
  const issues: DataIssue[] = [];
  const groups = new Map<string, DicomSlice[]>();
  const structureSets: string[] = [];
  const segmentations: string[] = [];
  for (const file of listSliceFiles(dir, true)) {
    let slice: DicomSlice;
    try {
      slice = parseDicomFile(file, options);
    } catch (error) {
      if (error instanceof NoPixelDataError && error.modality === 'RTSTRUCT') structureSets.push(file);
      else if (error instanceof NoPixelDataError && error.modality === 'SEG') segmentations.push(file);
      else issues.push(issueFrom(file, error));
      continue;
    }
    const uid = stringTag(slice.dataSet, 0x0020, 0x000e);
    const group = groups.get(uid) ?? [];
    group.push(slice);
    groups.set(uid, group);
  }
  const series: DicomSeries[] = [];
  for (const [uid, slices] of groups) {
    // A series' folder: the deepest folder holding all its files.
    const seriesDir = commonFolder(slices.map((s) => s.file));
    try {
      checkNotMixed(seriesDir, uid, slices);
      series.push(seriesFrom(seriesDir, slices, options));
    } catch (error) {
      issues.push(issueFrom(seriesDir, error));
    }
  }
  series.sort((a, b) => a.dir.localeCompare(b.dir) || a.seriesInstanceUid.localeCompare(b.seriesInstanceUid));
  return { series, structureSets, segmentations, issues };
}

function commonFolder(files: string[]): string {
  let dir = path.dirname(files[0]);
  while (!files.every((f) => f.startsWith(dir + path.sep)) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

interface SliceGeometry {
  rowDir: Vec3;
  colDir: Vec3;
  normal: Vec3;
  pixelSpacing: [number, number];
  rows: number;
  cols: number;
}

/** Orientation and pixel spacing from a data set (the top level, or an Enhanced object's functional groups). */
function geometryFrom(file: string, rows: number, cols: number, iop: number[] | null, ps: number[] | null): SliceGeometry {
  const rowDir: Vec3 = iop && iop.length === 6 ? [iop[0], iop[1], iop[2]] : [1, 0, 0];
  const colDir: Vec3 = iop && iop.length === 6 ? [iop[3], iop[4], iop[5]] : [0, 1, 0];
  const normal = cross(rowDir, colDir);
  if (Math.abs(Math.hypot(...normal) - 1) > 1e-3) {
    throw new DataReadError(file, `ImageOrientationPatient ${iop?.join('\\')} is not two orthogonal unit vectors`);
  }
  const pixelSpacing: [number, number] = ps && ps.length >= 2 && ps[0] > 0 && ps[1] > 0 ? [ps[0], ps[1]] : [1, 1];
  return { rowDir, colDir, normal, pixelSpacing, rows, cols };
}

function geometryOf(slice: DicomSlice): SliceGeometry {
  const { dataSet, file, layout } = slice;
  return geometryFrom(file, layout.rows, layout.cols, numberTag(dataSet, 0x0020, 0x0037), numberTag(dataSet, 0x0028, 0x0030));
}

function orientationOf(g: SliceGeometry): Orientation {
  return [...g.rowDir, ...g.colDir, ...g.normal] as Orientation;
}

/** Mean gap of positions sorted along the normal; throws on duplicates and on gaps off the mean by more than 1 %. */
function evenSpacing(where: string, along: number[], names: string[]): number {
  const gaps = along.slice(1).map((a, i) => a - along[i]);
  const duplicate = gaps.findIndex((g) => g < 1e-4);
  if (duplicate >= 0) {
    throw new DataReadError(where, `two slices at the same position (${names[duplicate]} and ${names[duplicate + 1]}; `
      + 'several stacks or time points in one series are not supported)');
  }
  const smallest = Math.min(...gaps);
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  if (gaps.some((g) => Math.abs(g - mean) > 0.01 * mean + 1e-3)) {
    // Name the gap furthest from the smallest one: where slices are missing.
    const uneven = gaps.reduce((worst, g, i) => (g - smallest > gaps[worst] - smallest ? i : worst), 0);
    const missing = Math.round(gaps[uneven] / smallest) - 1;
    throw new DataReadError(where, `slices are not evenly spaced: gap of ${gaps[uneven].toFixed(3)} mm before `
      + `${names[uneven + 1]}, mean ${mean.toFixed(3)} mm, smallest ${smallest.toFixed(3)} mm`
      + (missing >= 1 ? ` (about ${missing} missing slice${missing > 1 ? 's' : ''})` : ''));
  }
  return mean;
}

function singleFrameLayout(dir: string, slices: DicomSlice[]): SeriesLayout {
  const geometry = geometryOf(slices[0]);
  for (const slice of slices.slice(1)) {
    const g = geometryOf(slice);
    if (g.rows !== geometry.rows || g.cols !== geometry.cols) {
      throw new DataReadError(slice.file, `slice is ${g.cols}x${g.rows}, series is ${geometry.cols}x${geometry.rows}`);
    }
    if (dot(g.normal, geometry.normal) < 0.999) {
      throw new DataReadError(slice.file, 'slice orientation differs from the rest of the series');
    }
    if (slice.frames !== 1) throw new DataReadError(slice.file, 'multi-frame slice inside a series of single frames');
  }
  const positions = slices.map((s) => numberTag(s.dataSet, 0x0020, 0x0032));
  const havePositions = positions.every((p) => p !== null && p.length === 3);
  const ordered = slices.map((slice, i) => ({
    slice,
    position: (havePositions ? positions[i] : [0, 0, 0]) as number[],
    along: havePositions ? dot(positions[i] as number[], geometry.normal) : (numberTag(slice.dataSet, 0x0020, 0x0013)?.[0] ?? i),
  }));
  ordered.sort((a, b) => a.along - b.along);

  let spacing: number;
  if (ordered.length === 1 || !havePositions) {
    const first = slices[0].dataSet;
    const thickness = numberTag(first, 0x0018, 0x0088)?.[0] ?? numberTag(first, 0x0018, 0x0050)?.[0];
    spacing = thickness && thickness > 0 ? thickness : 1;
  } else {
    spacing = evenSpacing(dir, ordered.map((o) => o.along), ordered.map((o) => path.basename(o.slice.file)));
  }
  return { geometry, slices: ordered.map((o) => o.slice), spacing, origin: [...ordered[0].position] as Vec3 };
}

/** Decodes the slices (or frames) of a layout into one volume. */
function decodeLayout(layout: SeriesLayout, options: DicomSeriesOptions): Volume {
  const { geometry, slices } = layout;
  const plane = geometry.rows * geometry.cols;
  let data: Float32Array;
  if (layout.frameOrder) {
    data = reorderFrames(decodePixels(slices[0], options), plane, layout.frameOrder);
  } else {
    data = new Float32Array(plane * slices.length);
    // Chunks of slices decode in parallel on the workers while memory stays bounded by the chunk.
    for (let from = 0; from < slices.length; from += DECODE_CHUNK) {
      decodeSlicesInto(slices.slice(from, from + DECODE_CHUNK), data, from * plane, options);
    }
  }
  return {
    data,
    dims: [geometry.cols, geometry.rows, data.length / plane],
    spacing: [geometry.pixelSpacing[1], geometry.pixelSpacing[0], layout.spacing],
    orientation: orientationOf(geometry),
    origin: layout.origin,
  };
}

/** Reorders frames of `data` (plane values each) as `order` lists them. */
function reorderFrames(data: Float32Array, plane: number, order: number[]): Float32Array {
  if (order.every((k, i) => k === i)) return data;
  const out = new Float32Array(data.length);
  order.forEach((k, i) => out.set(data.subarray(k * plane, (k + 1) * plane), i * plane));
  return out;
}

/** An Enhanced (multi-frame) MR/CT/PET object: frames placed by their per-frame PlanePositionSequence. */
function enhancedLayout(slice: DicomSlice): SeriesLayout {
  const { dataSet, file, frames, layout } = slice;
  const shared = sequenceItem(dataSet, 0x5200, 0x9229);
  const groupTag = (frame: number, seqGroup: number, seqElement: number, group: number, element: number): number[] | null => {
    for (const holder of [sequenceItem(dataSet, 0x5200, 0x9230, frame), shared]) {
      const item = holder && sequenceItem(holder, seqGroup, seqElement);
      const value = item && numberTag(item, group, element);
      if (value) return value;
    }
    return null;
  };
  const geometry = geometryFrom(file, layout.rows, layout.cols,
    groupTag(0, 0x0020, 0x9116, 0x0020, 0x0037), groupTag(0, 0x0028, 0x9110, 0x0028, 0x0030));
  const positions: Vec3[] = [];
  for (let k = 0; k < frames; k++) {
    const p = groupTag(k, 0x0020, 0x9113, 0x0020, 0x0032);
    if (!p || p.length !== 3) throw new DataReadError(file, `frame ${k + 1} has no PlanePositionSequence ImagePositionPatient`);
    const o = groupTag(k, 0x0020, 0x9116, 0x0020, 0x0037);
    if (o && dot(cross([o[0], o[1], o[2]], [o[3], o[4], o[5]]), geometry.normal) < 0.999) {
      throw new DataReadError(file, `frame ${k + 1} has another orientation than frame 1`);
    }
    positions.push([p[0], p[1], p[2]]);
  }
  const order = positions.map((p, k) => ({ k, along: dot(p, geometry.normal) })).sort((a, b) => a.along - b.along);
  const spacing = frames > 1
    ? evenSpacing(file, order.map((o) => o.along), order.map((o) => `frame ${o.k + 1}`))
    : groupTag(0, 0x0028, 0x9110, 0x0018, 0x0050)?.[0] ?? 1;
  return { geometry, slices: [slice], frameOrder: order.map((o) => o.k), spacing, origin: [...positions[order[0].k]] as Vec3 };
}

/**
 * A multi-frame file: an Enhanced object (per-frame functional groups), or an RT Dose / legacy multi-frame image
 * whose frame k sits at ImagePositionPatient + GridFrameOffsetVector[k] * normal.
 */
function multiFrameLayout(slice: DicomSlice): SeriesLayout {
  const { dataSet, file, frames } = slice;
  if (dataSet.elements.x52009230) return enhancedLayout(slice);
  const geometry = geometryOf(slice);
  const offsets = numberTag(dataSet, 0x3004, 0x000c);
  if (!offsets || offsets.length !== frames) {
    throw new DataReadError(file, `multi-frame image with ${frames} frames needs a GridFrameOffsetVector of the same length`);
  }
  const position = numberTag(dataSet, 0x0020, 0x0032);
  if (!position || position.length !== 3) throw new DataReadError(file, 'multi-frame image without ImagePositionPatient');
  // Offsets are relative to ImagePositionPatient (or absolute along the normal when the first one is not 0).
  const relative = offsets[0] === 0 ? offsets : offsets.map((o) => o - offsets[0]);
  const order = relative.map((along, k) => ({ k, along })).sort((a, b) => a.along - b.along);
  const spacing = evenSpacing(file, order.map((o) => o.along), order.map((o) => `frame ${o.k + 1}`));
  const origin = position.map((p, c) => p + order[0].along * geometry.normal[c]) as Vec3;
  return { geometry, slices: [slice], frameOrder: order.map((o) => o.k), spacing, origin };
}
