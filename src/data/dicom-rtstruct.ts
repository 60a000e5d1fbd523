/**
 * RT Structure Sets as masks: the closed planar contours of one ROI rasterised onto the voxel grid of the image
 * series they were drawn on. A voxel is inside when its centre is inside the slice's contours by the even-odd rule,
 * so a contour drawn inside another one is a hole (the convention of plastimatch and most TPS exports).
 */
import { numberTag, readDicomObject, sequenceItem, sequenceItems, stringTag } from './dicom-file';
import { DataReadError } from './errors';
import { axis, dot, Vec3, Volume } from './volume';

export interface RtRoi {
  number: number;
  name: string;
  /** Closed planar contours, each a list of LPS points (mm). */
  contours: Vec3[][];
}

export interface RtStructureSet {
  file: string;
  /** SeriesInstanceUID of the image series the contours were drawn on, when the file says. */
  referencedSeriesUid?: string;
  frameOfReferenceUid?: string;
  rois: RtRoi[];
}

/** Reads an RTSTRUCT file's ROIs and contours; throws DataReadError naming the file. */
export function readRtStruct(file: string): RtStructureSet {
  const dataSet = readDicomObject(file, 'RT structure set', 'RTSTRUCT');
  const names = new Map<number, string>();
  for (const roi of sequenceItems(dataSet, 0x3006, 0x0020)) {
    names.set(numberTag(roi, 0x3006, 0x0022)?.[0] ?? -1, stringTag(roi, 0x3006, 0x0026));
  }
  const rois: RtRoi[] = [];
  for (const roiContour of sequenceItems(dataSet, 0x3006, 0x0039)) {
    const number = numberTag(roiContour, 0x3006, 0x0084)?.[0] ?? -1;
    const contours: Vec3[][] = [];
    for (const contour of sequenceItems(roiContour, 0x3006, 0x0040)) {
      const type = stringTag(contour, 0x3006, 0x0042);
      if (type !== 'CLOSED_PLANAR') continue; // points and open polylines have no inside
      const data = numberTag(contour, 0x3006, 0x0050);
      if (!data || data.length < 9 || data.length % 3 !== 0) {
        throw new DataReadError(file, `ROI ${number}: a contour has ${data?.length ?? 0} coordinates, expected 3 per point and 3 points at least`);
      }
      contours.push(Array.from({ length: data.length / 3 }, (_, p) => [data[3 * p], data[3 * p + 1], data[3 * p + 2]] as Vec3));
    }
    rois.push({ number, name: names.get(number) ?? `ROI ${number}`, contours });
  }
  const frame = sequenceItem(dataSet, 0x3006, 0x0010);
  const study = frame && sequenceItem(frame, 0x3006, 0x0012);
  const series = study && sequenceItem(study, 0x3006, 0x0014);
  return {
    file,
    referencedSeriesUid: series ? stringTag(series, 0x0020, 0x000e) || undefined : undefined,
    frameOfReferenceUid: stringTag(dataSet, 0x0020, 0x0052) || (frame ? stringTag(frame, 0x0020, 0x0052) : '') || undefined,
    rois,
  };
}

/** Even-odd point-in-polygon for the point (x, y) and a polygon of [x, y] vertices. */
function inside(x: number, y: number, polygon: [number, number][]): boolean {
  let result = false;
  for (let a = 0, b = polygon.length - 1; a < polygon.length; b = a++) {
    const [xa, ya] = polygon[a];
    const [xb, yb] = polygon[b];
    if ((ya > y) !== (yb > y) && x < ((xb - xa) * (y - ya)) / (yb - ya) + xa) result = !result;
  }
  return result;
}

/**
 * The ROI as a 0/1 mask on `reference`'s voxel grid. Throws DataReadError (naming `file`) when a contour is not on
 * a slice plane of the reference (another frame of reference, or drawn between slices).
 */
export function rasterizeRoi(roi: RtRoi, reference: Volume, file: string): Float32Array {
  const [nx, ny, nz] = reference.dims;
  const [ax, ay, az] = [axis(reference.orientation, 0), axis(reference.orientation, 1), axis(reference.orientation, 2)];
  const mask = new Float32Array(nx * ny * nz);
  const toVoxel = (p: Vec3): Vec3 => {
    const rel: Vec3 = [p[0] - reference.origin[0], p[1] - reference.origin[1], p[2] - reference.origin[2]];
    return [dot(rel, ax) / reference.spacing[0], dot(rel, ay) / reference.spacing[1], dot(rel, az) / reference.spacing[2]];
  };
  for (const contour of roi.contours) {
    const voxels = contour.map(toVoxel);
    const k = Math.round(voxels[0][2]);
    if (voxels.some((v) => Math.abs(v[2] - k) > 0.25)) {
      throw new DataReadError(file, `ROI "${roi.name}": a contour is not on a slice of the reference series`);
    }
    if (k < 0 || k >= nz) continue; // outside the imaged volume
    const polygon = voxels.map((v) => [v[0], v[1]] as [number, number]);
    const xs = polygon.map((p) => p[0]);
    const ys = polygon.map((p) => p[1]);
    const [x0, x1] = [Math.max(0, Math.ceil(Math.min(...xs))), Math.min(nx - 1, Math.floor(Math.max(...xs)))];
    const [y0, y1] = [Math.max(0, Math.ceil(Math.min(...ys))), Math.min(ny - 1, Math.floor(Math.max(...ys)))];
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if (inside(x, y, polygon)) {
          const at = x + nx * (y + ny * k);
          mask[at] = 1 - mask[at]; // even-odd across contours: a contour inside another is a hole
        }
      }
    }
  }
  return mask;
}
