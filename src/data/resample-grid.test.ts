/**
 * A PET volume resampled onto a CT grid (different spacing, extent, origin, and a tilted PET orientation) equals an
 * independent computation: both volumes written as NIfTI, their affines read by nibabel, and
 * scipy.ndimage.affine_transform(order=1, mode='constant', cval=0) with inv(A_pet) @ A_ct.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeNifti } from './nifti';
import { resampleOnto } from './resample-grid';
import { runPython } from './python-oracle.test-helper';
import { createVolume, Orientation } from './volume';

const ORACLE = String.raw`
import sys, json, numpy as np, nibabel as nib
from scipy.ndimage import affine_transform
ct, pet = nib.load(sys.argv[1]), nib.load(sys.argv[2])
m = np.linalg.inv(pet.affine) @ ct.affine
out = affine_transform(pet.get_fdata(dtype=np.float64), m[:3, :3], offset=m[:3, 3], output_shape=ct.shape, order=1, mode='constant', cval=0.0)
print(json.dumps(out.ravel(order='F').tolist()))
`;

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resample-grid-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('PET onto the CT grid: equal to nibabel affines + scipy affine_transform (linear)', () => {
  const ct = createVolume([22, 19, 13], { spacing: [1.1, 1.3, 2.5], origin: [-12.2, -9.7, -15.1] });
  const t = 0.12;
  const tilt: Orientation = [Math.cos(t), Math.sin(t), 0, -Math.sin(t), Math.cos(t), 0, 0, 0, 1];
  const pet = createVolume([11, 10, 8], { spacing: [2.7, 2.6, 3.3], orientation: tilt, origin: [-14.3, -12.9, -13.4] });
  pet.data.forEach((_, i) => {
    const x = i % 11; const y = Math.floor(i / 11) % 10; const z = Math.floor(i / 110);
    pet.data[i] = 1000 * Math.exp(-((x - 5) ** 2 + (y - 4) ** 2 + (z - 3) ** 2) / 12) + 37 * ((x * 7 + y * 3 + z) % 5);
  });
  writeNifti(path.join(dir, 'ct.nii'), ct);
  writeNifti(path.join(dir, 'pet.nii'), pet);
  const expected = JSON.parse(runPython(ORACLE, [path.join(dir, 'ct.nii'), path.join(dir, 'pet.nii')], ['nibabel', 'scipy'])!) as number[];
  const ours = resampleOnto(pet, ct, 'pet');
  expect(ours.dims).toEqual(ct.dims);
  expect(ours.origin).toEqual(ct.origin);
  expect(expected).toHaveLength(ours.data.length);
  let worst = 0;
  let inside = 0;
  expected.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(ours.data[i] - v));
    if (v !== 0) inside++;
  });
  expect(worst).toBeLessThan(1e-3); // float32 output of values up to ~1150
  // the CT field of view is partly outside the PET's: both kinds of voxels are exercised
  expect(inside).toBeGreaterThan(ours.data.length / 4);
  expect(inside).toBeLessThan(ours.data.length);
});

test('the same grid gives the volume back; a degenerate geometry is refused', () => {
  const v = createVolume([4, 3, 2], { spacing: [2, 1, 3], origin: [5, 6, 7] });
  v.data.forEach((_, i) => { v.data[i] = i * 1.5; });
  expect(Array.from(resampleOnto(v, v).data)).toEqual(Array.from(v.data));
  const flat = { ...v, spacing: [2, 0, 3] as [number, number, number] };
  expect(() => resampleOnto(flat, v, 'pet.nii')).toThrow('pet.nii: cannot resample: its voxel axes are degenerate');
});
