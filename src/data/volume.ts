/**
 * The in-memory image every reader produces and every preprocessing step consumes.
 *
 * Geometry follows DICOM's patient coordinate system (LPS, millimetres), whatever the file format was:
 * the world position of voxel (i, j, k) is
 *   origin + i * spacing[0] * axisX + j * spacing[1] * axisY + k * spacing[2] * axisZ
 * where axisX, axisY, axisZ are the three unit vectors stored one after the other in `orientation`.
 * NIfTI files (RAS) are converted on read and write, so a DICOM series and its NIfTI export compare equal.
 */

export type Vec3 = [number, number, number];

/** Three unit column vectors, flattened: [axisX(3), axisY(3), axisZ(3)]. */
export type Orientation = [number, number, number, number, number, number, number, number, number];

export interface Volume {
  /** Voxel values, x fastest: index = x + y * dims[0] + z * dims[0] * dims[1]. */
  data: Float32Array;
  /** Number of voxels along x (columns), y (rows), z (slices). */
  dims: Vec3;
  /** Voxel size in millimetres along x, y, z. */
  spacing: Vec3;
  /** Direction cosines of the x, y and z voxel axes in patient (LPS) coordinates. */
  orientation: Orientation;
  /** Patient (LPS) position of the centre of voxel (0, 0, 0), in millimetres. */
  origin: Vec3;
}

/** Axial identity: x to the patient's left, y to posterior, z to superior (DICOM's default axial orientation). */
export const AXIAL_ORIENTATION: Orientation = [1, 0, 0, 0, 1, 0, 0, 0, 1];

export function voxelCount(dims: readonly number[]): number {
  return dims.reduce((product, n) => product * n, 1);
}

/** Index of voxel (x, y, z) in `Volume.data`. */
export function voxelIndex(dims: Vec3, x: number, y: number, z: number): number {
  return x + dims[0] * (y + dims[1] * z);
}

/** A volume of zeros with the given geometry (defaults: 1 mm isotropic, axial, origin at 0). */
export function createVolume(
  dims: Vec3,
  geometry: Partial<Pick<Volume, 'spacing' | 'orientation' | 'origin'>> = {},
): Volume {
  return {
    data: new Float32Array(voxelCount(dims)),
    dims: [...dims],
    spacing: geometry.spacing ? [...geometry.spacing] : [1, 1, 1],
    orientation: geometry.orientation ? [...geometry.orientation] : [...AXIAL_ORIENTATION],
    origin: geometry.origin ? [...geometry.origin] : [0, 0, 0],
  };
}

/** Same geometry, new data (data length must match). */
export function withData(volume: Volume, data: Float32Array): Volume {
  if (data.length !== volume.data.length) {
    throw new Error(`withData: expected ${volume.data.length} values, got ${data.length}`);
  }
  return { ...volume, data, dims: [...volume.dims], spacing: [...volume.spacing], origin: [...volume.origin] };
}

export function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function dot(a: readonly number[], b: readonly number[]): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

export function axis(orientation: Orientation, which: 0 | 1 | 2): Vec3 {
  return [orientation[which * 3], orientation[which * 3 + 1], orientation[which * 3 + 2]];
}

/** Patient (LPS) position of voxel (i, j, k). */
export function voxelToWorld(volume: Volume, i: number, j: number, k: number): Vec3 {
  const out: Vec3 = [...volume.origin];
  const steps = [i * volume.spacing[0], j * volume.spacing[1], k * volume.spacing[2]];
  for (let a = 0; a < 3; a++) {
    for (let c = 0; c < 3; c++) out[c] += steps[a] * volume.orientation[a * 3 + c];
  }
  return out;
}
