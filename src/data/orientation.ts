/**
 * Voxel order in RAS, as nibabel's `as_closest_canonical` and dicom2nifti give it: the voxel axes are permuted and
 * flipped so that the first runs (mostly) towards +R, the second towards +A and the third towards +S, keeping the
 * world position of every voxel. Readers keep each file's own voxel order (LPS geometry in
 * volume.ts); a plan that compares images across sites and formats brings them to this order first.
 */
import { closestWorldAxes } from '../plan/closest-axes';
import { Orientation, Vec3, Volume, voxelToWorld } from './volume';

/** The 4x4 voxel-to-RAS affine of a volume (rows), as nibabel's `img.affine`. */
export function rasAffine(volume: Volume): number[][] {
  const rows: number[][] = [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]];
  const flip = [-1, -1, 1]; // LPS -> RAS
  for (let axis = 0; axis < 3; axis++) {
    for (let c = 0; c < 3; c++) rows[c][axis] = flip[c] * volume.orientation[axis * 3 + c] * volume.spacing[axis];
  }
  for (let c = 0; c < 3; c++) rows[c][3] = flip[c] * volume.origin[c];
  return rows;
}

/**
 * For each voxel axis, the RAS world axis it runs closest to and its sign, chosen greedily by the largest
 * direction cosine (nibabel's io_orientation on an orthonormal affine).
 */
export function axisCodes(volume: Volume): { world: number; sign: 1 | -1 }[] {
  const flip = [-1, -1, 1];
  const ras = [0, 1, 2].map((a) => [0, 1, 2].map((c) => flip[c] * volume.orientation[a * 3 + c]));
  const worldOf = closestWorldAxes(ras.map((row) => row.map(Math.abs)));
  return worldOf.map((world, a) => ({ world, sign: ras[a][world] < 0 ? -1 : 1 }));
}

/** The same image with voxel axes permuted and flipped to RAS order (a copy; the input is unchanged). */
export function closestCanonical(volume: Volume): Volume {
  const codes = axisCodes(volume);
  // newAxis[w] = the old axis that becomes new axis w.
  const oldOf = [0, 1, 2].map((w) => codes.findIndex((c) => c.world === w));
  const dims = oldOf.map((a) => volume.dims[a]) as Vec3;
  const spacing = oldOf.map((a) => volume.spacing[a]) as Vec3;
  const orientation = oldOf.flatMap((a) => [0, 1, 2].map((c) => codes[a].sign * volume.orientation[a * 3 + c])) as Orientation;
  // Old index of new voxel (0,0,0): the far end of every flipped axis.
  const start = [0, 1, 2].map((a) => (codes[a].sign < 0 ? volume.dims[a] - 1 : 0));
  const origin = voxelToWorld(volume, start[0], start[1], start[2]);
  const data = new Float32Array(volume.data.length);
  const oldStride = [1, volume.dims[0], volume.dims[0] * volume.dims[1]];
  // Step in old storage for one step along each new axis.
  const step = oldOf.map((a) => codes[a].sign * oldStride[a]);
  const base = start[0] * oldStride[0] + start[1] * oldStride[1] + start[2] * oldStride[2];
  let o = 0;
  for (let z = 0; z < dims[2]; z++) {
    for (let y = 0; y < dims[1]; y++) {
      let at = base + z * step[2] + y * step[1];
      for (let x = 0; x < dims[0]; x++, at += step[0]) data[o++] = volume.data[at];
    }
  }
  return { data, dims, spacing, orientation, origin };
}
