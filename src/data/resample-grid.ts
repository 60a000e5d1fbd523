/**
 * One volume resampled into another's voxel grid, through both geometries (the patient-space position of every
 * target voxel, then its continuous index in the source), with trilinear interpolation: e.g. a PET series onto the
 * CT grid of the same study, so that the two can be stacked as channels voxel for voxel. Target voxels whose
 * position falls outside the source volume get `outside` (0: no activity was measured there), as
 * scipy.ndimage.affine_transform(order=1, mode='constant', cval=0) does.
 */
import { DataReadError } from './errors';
import { Volume, voxelCount } from './volume';

export type Grid = Pick<Volume, 'dims' | 'spacing' | 'orientation' | 'origin'>;

/** Index→patient matrix (3×3, row-major) of a grid: column a is axis a times its spacing. */
function indexToWorld(grid: Grid): number[] {
  const m = new Array<number>(9);
  for (let row = 0; row < 3; row++) {
    for (let a = 0; a < 3; a++) m[row * 3 + a] = grid.orientation[a * 3 + row] * grid.spacing[a];
  }
  return m;
}

function invert3(m: number[]): number[] | null {
  const [a, b, c, d, e, f, g, h, i] = m;
  const det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12) return null;
  return [
    (e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det,
    (f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det,
    (d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det,
  ];
}

/** `source` sampled at the centres of `target`'s voxels; the result has `target`'s geometry. */
export function resampleOnto(source: Volume, target: Grid, what = 'volume', outside = 0): Volume {
  const inverse = invert3(indexToWorld(source));
  if (!inverse) throw new DataReadError(what, 'cannot resample: its voxel axes are degenerate (zero spacing or parallel axes)');
  const forward = indexToWorld(target);
  // source index = inverse · (target origin − source origin + forward · target index): affine in the target index
  const offset = [0, 1, 2].map((r) => target.origin[r] - source.origin[r]);
  const base = [0, 1, 2].map((r) => inverse[r * 3] * offset[0] + inverse[r * 3 + 1] * offset[1] + inverse[r * 3 + 2] * offset[2]);
  const step = (a: number): number[] => [0, 1, 2].map((r) => inverse[r * 3] * forward[a] + inverse[r * 3 + 1] * forward[3 + a] + inverse[r * 3 + 2] * forward[6 + a]);
  const [sx, sy, sz] = [step(0), step(1), step(2)];
  const [nx, ny, nz] = source.dims;
  const [tx, ty, tz] = target.dims;
  const data = new Float32Array(voxelCount(target.dims));
  const src = source.data;
  const slab = nx * ny;
  // scipy's mode='constant' treats an index within 1e-? of the edge as inside; allow rounding noise only
  const eps = 1e-6;
  let o = 0;
  for (let k = 0; k < tz; k++) {
    for (let j = 0; j < ty; j++) {
      let x = base[0] + j * sy[0] + k * sz[0];
      let y = base[1] + j * sy[1] + k * sz[1];
      let z = base[2] + j * sy[2] + k * sz[2];
      for (let i = 0; i < tx; i++, o++, x += sx[0], y += sx[1], z += sx[2]) {
        if (x < -eps || y < -eps || z < -eps || x > nx - 1 + eps || y > ny - 1 + eps || z > nz - 1 + eps) {
          data[o] = outside;
          continue;
        }
        const cx = Math.min(Math.max(x, 0), nx - 1);
        const cy = Math.min(Math.max(y, 0), ny - 1);
        const cz = Math.min(Math.max(z, 0), nz - 1);
        const x0 = Math.min(Math.floor(cx), Math.max(nx - 2, 0));
        const y0 = Math.min(Math.floor(cy), Math.max(ny - 2, 0));
        const z0 = Math.min(Math.floor(cz), Math.max(nz - 2, 0));
        const fx = cx - x0;
        const fy = cy - y0;
        const fz = cz - z0;
        const x1 = nx > 1 ? 1 : 0;
        const y1 = ny > 1 ? nx : 0;
        const z1 = nz > 1 ? slab : 0;
        const p = x0 + nx * y0 + slab * z0;
        const c00 = src[p] * (1 - fx) + src[p + x1] * fx;
        const c10 = src[p + y1] * (1 - fx) + src[p + y1 + x1] * fx;
        const c01 = src[p + z1] * (1 - fx) + src[p + z1 + x1] * fx;
        const c11 = src[p + z1 + y1] * (1 - fx) + src[p + z1 + y1 + x1] * fx;
        data[o] = (c00 * (1 - fy) + c10 * fy) * (1 - fz) + (c01 * (1 - fy) + c11 * fy) * fz;
      }
    }
  }
  return { data, dims: [...target.dims], spacing: [...target.spacing], orientation: [...target.orientation], origin: [...target.origin] };
}
