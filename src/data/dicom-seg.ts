/**
 * DICOM Segmentation objects (SEG, SOP class 1.2.840.10008.5.1.4.1.1.66.4) as label maps: each frame is one
 * segment's binary mask on one plane, placed by its per-frame PlanePositionSequence onto the voxel grid of the
 * image series the SEG references (the voxel whose centre the pixel's centre falls on). The result is a label map
 * of segment numbers (where segments overlap, the highest number), or the 0/1 mask of the segments whose label a
 * rule names. BINARY segmentations only: a FRACTIONAL one (probabilities) is refused with its type.
 */
import type * as dicomParser from 'dicom-parser';
import { numberTag, readDicomObject, sequenceItem, sequenceItems, stringTag } from './dicom-file';
import { DataReadError } from './errors';
import { axis, dot, Vec3, Volume } from './volume';

interface DicomSegment {
  number: number;
  label: string;
}

export interface DicomSegmentation {
  file: string;
  seriesDescription: string;
  /** SeriesInstanceUID of the image series the segmentation was made on, when the file says. */
  referencedSeriesUid?: string;
  segments: DicomSegment[];
  rows: number;
  cols: number;
  /** Per frame: the segment it belongs to and the LPS position of its first pixel's centre. */
  frames: { segment: number; position: Vec3 }[];
  /** Row and column directions (LPS) and pixel spacing (row spacing, column spacing), shared by every frame. */
  rowDir: Vec3;
  colDir: Vec3;
  pixelSpacing: [number, number];
  /** Bit-packed frames (bit n = pixel n of the concatenated frames, least significant bit first). */
  bits: Uint8Array;
}

/** A functional group's value: the frame's own item first, else the shared one. */
function functional(frame: dicomParser.DataSet | undefined, shared: dicomParser.DataSet | undefined, group: number, element: number): dicomParser.DataSet | undefined {
  return (frame && sequenceItem(frame, group, element)) ?? (shared && sequenceItem(shared, group, element));
}

/** Reads a SEG file's segments and frames; throws DataReadError naming the file. */
export function readSegmentation(file: string): DicomSegmentation {
  const dataSet = readDicomObject(file, 'DICOM segmentation', 'SEG');
  const type = stringTag(dataSet, 0x0062, 0x0001);
  if (type !== 'BINARY') throw new DataReadError(file, `segmentation type ${type || '(none)'} is not supported (BINARY only)`);
  const rows = dataSet.uint16('x00280010') ?? 0;
  const cols = dataSet.uint16('x00280011') ?? 0;
  const count = Number(stringTag(dataSet, 0x0028, 0x0008) || '1');
  if ((dataSet.uint16('x00280100') ?? 0) !== 1) throw new DataReadError(file, 'a BINARY segmentation must have BitsAllocated 1');
  const syntax = stringTag(dataSet, 0x0002, 0x0010);
  if (syntax !== '1.2.840.10008.1.2.1' && syntax !== '1.2.840.10008.1.2') {
    throw new DataReadError(file, `segmentation pixel data in transfer syntax ${syntax || '(none)'}: only uncompressed little endian is read`);
  }
  const pixels = dataSet.elements.x7fe00010;
  if (!pixels || rows < 1 || cols < 1 || !(count >= 1)) throw new DataReadError(file, 'segmentation without frames (Rows, Columns, NumberOfFrames, PixelData)');
  const needed = Math.ceil((rows * cols * count) / 8);
  if (pixels.length < needed || pixels.dataOffset + needed > dataSet.byteArray.length) {
    throw new DataReadError(file, `segmentation pixel data truncated: ${count} frames of ${cols}x${rows} need ${needed} bytes`);
  }
  const shared = sequenceItem(dataSet, 0x5200, 0x9229);
  const perFrame = sequenceItems(dataSet, 0x5200, 0x9230);
  if (perFrame.length !== count) throw new DataReadError(file, `${perFrame.length} per-frame functional groups for ${count} frames`);
  const orientation = numberTag(functional(perFrame[0], shared, 0x0020, 0x9116) ?? dataSet, 0x0020, 0x0037);
  const spacing = numberTag(functional(perFrame[0], shared, 0x0028, 0x9110) ?? dataSet, 0x0028, 0x0030);
  if (!orientation || orientation.length !== 6 || !spacing || spacing.length < 2) {
    throw new DataReadError(file, 'segmentation without plane orientation or pixel spacing (functional groups)');
  }
  const frames = perFrame.map((frame, k) => {
    const segment = numberTag(sequenceItem(frame, 0x0062, 0x000a) ?? frame, 0x0062, 0x000b)?.[0];
    const position = numberTag(functional(frame, shared, 0x0020, 0x9113) ?? frame, 0x0020, 0x0032);
    if (segment === undefined || !position || position.length !== 3) {
      throw new DataReadError(file, `frame ${k + 1}: no referenced segment number or plane position`);
    }
    return { segment, position: position as Vec3 };
  });
  const referenced = sequenceItem(dataSet, 0x0008, 0x1115);
  return {
    file,
    seriesDescription: stringTag(dataSet, 0x0008, 0x103e),
    referencedSeriesUid: referenced ? stringTag(referenced, 0x0020, 0x000e) || undefined : undefined,
    segments: sequenceItems(dataSet, 0x0062, 0x0002).map((s) => ({ number: numberTag(s, 0x0062, 0x0004)?.[0] ?? -1, label: stringTag(s, 0x0062, 0x0005) })),
    rows,
    cols,
    frames,
    rowDir: [orientation[0], orientation[1], orientation[2]],
    colDir: [orientation[3], orientation[4], orientation[5]],
    pixelSpacing: [spacing[0], spacing[1]],
    bits: dataSet.byteArray.subarray(pixels.dataOffset, pixels.dataOffset + needed),
  };
}

/**
 * The segmentation on `reference`'s voxel grid: segment numbers (0 outside every segment), or 1 inside the
 * segments listed in `only`. Throws DataReadError (naming the file) when its planes are not the reference's.
 */
export function segmentationOnGrid(seg: DicomSegmentation, reference: Volume, only?: readonly number[]): Float32Array {
  const [nx, ny, nz] = reference.dims;
  const axes = [axis(reference.orientation, 0), axis(reference.orientation, 1), axis(reference.orientation, 2)];
  const fail = (why: string): never => {
    throw new DataReadError(seg.file, `segmentation planes do not lie on the referenced series' voxels (${why})`);
  };
  if (dot(seg.rowDir, axes[0]) < 1 - 1e-3 || dot(seg.colDir, axes[1]) < 1 - 1e-3) fail('another orientation');
  // PixelSpacing is (row spacing = along a column, column spacing = along a row) = (y, x).
  if (Math.abs(seg.pixelSpacing[1] - reference.spacing[0]) > 1e-3 || Math.abs(seg.pixelSpacing[0] - reference.spacing[1]) > 1e-3) fail('another pixel spacing');
  const out = new Float32Array(nx * ny * nz);
  const plane = seg.rows * seg.cols;
  seg.frames.forEach((frame, f) => {
    if (only && !only.includes(frame.segment)) return;
    const rel = [0, 1, 2].map((d) => frame.position[d] - reference.origin[d]);
    const [i0, j0, k] = axes.map((a, d) => dot(rel, a) / reference.spacing[d]);
    if ([i0, j0, k].some((v) => Math.abs(v - Math.round(v)) > 0.25)) fail(`frame ${f + 1} at voxel (${i0.toFixed(2)}, ${j0.toFixed(2)}, ${k.toFixed(2)})`);
    const [di, dj, dk] = [Math.round(i0), Math.round(j0), Math.round(k)];
    if (dk < 0 || dk >= nz) return; // outside the imaged volume
    const value = only ? 1 : frame.segment;
    for (let r = 0; r < seg.rows; r++) {
      const y = dj + r;
      if (y < 0 || y >= ny) continue;
      for (let c = 0; c < seg.cols; c++) {
        const x = di + c;
        const bit = f * plane + r * seg.cols + c;
        if (x < 0 || x >= nx || !((seg.bits[bit >> 3] >> (bit & 7)) & 1)) continue;
        const at = x + nx * (y + ny * dk);
        if (value > out[at]) out[at] = value;
      }
    }
  });
  return out;
}
