/**
 * NIfTI as nibabel reads it: on nibabel's own test files (Debian python3-nibabel), our reader brought to RAS voxel
 * order (closestCanonical) gives nibabel's `as_closest_canonical` voxels (bit-identical as float32, scl_slope/inter
 * applied) and affine; NIfTI-1 and NIfTI-2, .nii and .nii.gz, 3-D and 4-D. A DICOM series reaches the same voxel
 * order and affine as dcm2niix's conversion read by nibabel.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { seriesOptions } from './dicom-corpus.test-helper';
import { readDicomSeries } from './dicom-series';
import { writeMrSeries } from './dicom-writer';
import { readNifti, readNiftiVolumes, writeNifti } from './nifti';
import { closestCanonical, rasAffine } from './orientation';
import { runPython } from './python-oracle.test-helper';
import { createVolume, Volume } from './volume';

const DATA = '/usr/lib/python3/dist-packages/nibabel/tests/data';
const FILES = ['anatomical.nii', 'example4d.nii.gz', 'example_nifti2.nii.gz', 'functional.nii', 'standard.nii.gz',
  'reoriented_anat_moved.nii', 'resampled_anat_moved.nii'];

const NIBABEL = `
import sys, json, numpy as np, nibabel as nib
out = sys.argv[1]
result = {}
for name in sys.argv[2:]:
    img = nib.load(name if name.startswith('/') else '${DATA}/' + name)
    canon = nib.as_closest_canonical(img)
    data = np.asarray(canon.get_fdata(), dtype=np.float64)
    if data.ndim == 3:
        data = data[..., None]
    data.astype(np.float32).transpose(3, 2, 1, 0).tofile(out + '/' + name.split('/')[-1] + '.f32')
    result[name] = {'affine': canon.affine.tolist(), 'shape': list(data.shape), 'version': img.header['sizeof_hdr'].item()}
print(json.dumps(result))
`;

let scratch: string;
let oracle: Record<string, { affine: number[][]; shape: number[]; version: number }>;
/** Oblique, permuted (sagittal-like) and flipped axes written by our writer: exercises the axis permutation. */
const OBLIQUE = 'oblique-sagittal.nii.gz';
beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'nibabel-'));
  const c = Math.cos(0.2);
  const s = Math.sin(0.2);
  const v = createVolume([5, 7, 4], { spacing: [1.1, 0.9, 2.5], origin: [30, -12, 8], orientation: [0, c, s, 0, -s, c, -1, 0, 0] });
  v.data.forEach((_, i) => { v.data[i] = i * 3 - 20; });
  writeNifti(path.join(scratch, OBLIQUE), v, { datatype: 'int16', sclSlope: 0.5, sclInter: 4 });
  oracle = JSON.parse(runPython(NIBABEL, [scratch, ...FILES, path.join(scratch, OBLIQUE)], ['nibabel', 'numpy']) ?? '{}');
  oracle[OBLIQUE] = oracle[path.join(scratch, OBLIQUE)];
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function nibabelVolumes(name: string): Float32Array {
  const bytes = fs.readFileSync(path.join(scratch, `${name}.f32`));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function expectAffine(volume: Volume, expected: number[][]): void {
  const ours = rasAffine(volume);
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(ours[r][c]).toBeCloseTo(expected[r][c], 4);
}

test('the nibabel test files are installed', () => {
  expect(FILES.every((f) => fs.existsSync(path.join(DATA, f)))).toBe(true);
  expect(oracle['example_nifti2.nii.gz'].version).toBe(540);
});

test.each([...FILES, OBLIQUE])('%s: voxels and affine equal nibabel as_closest_canonical', (name) => {
  const file = name === OBLIQUE ? path.join(scratch, OBLIQUE) : path.join(DATA, name);
  const { header, volumes } = readNiftiVolumes(file);
  const expected = oracle[name];
  expect(header.version).toBe(expected.version === 540 ? 2 : 1);
  expect(volumes.length).toBe(expected.shape[3]);
  const all = nibabelVolumes(name);
  const plane = expected.shape[0] * expected.shape[1] * expected.shape[2];
  volumes.forEach((v, k) => {
    const canonical = closestCanonical(v);
    expect(canonical.dims).toEqual(expected.shape.slice(0, 3));
    expectAffine(canonical, expected.affine);
    expect(Buffer.from(canonical.data.buffer).equals(Buffer.from(all.buffer, all.byteOffset + k * plane * 4, plane * 4))).toBe(true);
  });
  if (volumes.length > 1) {
    expect(() => readNifti(file)).toThrow(`${file}: 4-D image with ${volumes.length} volumes: choose one`);
    const last = readNifti(file, { volume: volumes.length - 1 }).volume;
    expect(Array.from(last.data)).toEqual(Array.from(volumes[volumes.length - 1].data));
    expect(() => readNifti(file, { volume: volumes.length })).toThrow(`volume ${volumes.length} requested, the image has ${volumes.length}`);
  }
});

const CANONICAL_OF = `
import sys, json, numpy as np, nibabel as nib
img = nib.as_closest_canonical(nib.load(sys.argv[1]))
np.asarray(img.get_fdata(), dtype=np.float64).astype(np.float32).transpose(2, 1, 0).tofile(sys.argv[2])
print(json.dumps({'affine': img.affine.tolist(), 'shape': list(img.shape)}))
`;

test('a DICOM series in RAS order equals dcm2niix + nibabel as_closest_canonical (oblique, sagittal-like, flipped)', () => {
  const c = Math.cos(0.3);
  const s = Math.sin(0.3);
  const volume = createVolume([9, 7, 5], { spacing: [0.8, 1.1, 2], origin: [12, -40, 25], orientation: [0, -c, s, 0, s, c, -1, 0, 0] });
  volume.data.forEach((_, i) => { volume.data[i] = (i * 37) % 1000; });
  const dicomDir = path.join(scratch, 'dcm-oblique');
  writeMrSeries(dicomDir, volume, seriesOptions('T1 oblique'));
  const out = path.join(scratch, 'dcm2niix');
  fs.mkdirSync(out);
  const run = spawnSync('dcm2niix', ['-z', 'n', '-f', 'series', '-o', out, dicomDir], { encoding: 'utf8' });
  expect(run.status).toBe(0);
  const expected = JSON.parse(runPython(CANONICAL_OF, [path.join(out, 'series.nii'), path.join(out, 'canonical.f32')], ['nibabel']) ?? '{}');
  const ours = closestCanonical(readDicomSeries(dicomDir).volume);
  expect(ours.dims).toEqual(expected.shape);
  expectAffine(ours, expected.affine);
  const bytes = fs.readFileSync(path.join(out, 'canonical.f32'));
  expect(Buffer.from(ours.data.buffer).equals(bytes)).toBe(true);
});

test("a scanner's Enhanced MR object (nibabel's Philips MPRAGE, 176 frames, oblique): the geometry of dcm2niix + nibabel", () => {
  const dicomDir = path.join(scratch, 'philips-enhanced');
  fs.mkdirSync(dicomDir);
  fs.writeFileSync(path.join(dicomDir, 'mprage.dcm'), zlib.gunzipSync(fs.readFileSync('/usr/lib/python3/dist-packages/nibabel/nicom/tests/data/philips_mprage.dcm.gz')));
  const out = path.join(scratch, 'dcm2niix-enhanced');
  fs.mkdirSync(out);
  const run = spawnSync('dcm2niix', ['-z', 'n', '-f', 'series', '-o', out, dicomDir], { encoding: 'utf8' });
  expect(run.status).toBe(0);
  const expected = JSON.parse(runPython(CANONICAL_OF, [path.join(out, 'series.nii'), path.join(out, 'canonical.f32')], ['nibabel']) ?? '{}');
  const series = readDicomSeries(dicomDir);
  expect(series.volume.dims).toEqual([256, 256, 176]); // frames placed by their per-frame PlanePositionSequence
  const ours = closestCanonical(series.volume);
  expect(ours.dims).toEqual(expected.shape);
  expectAffine(ours, expected.affine);
  // (nibabel ships this file with its pixel values zeroed: the geometry is what it checks.)
  expect(Buffer.from(ours.data.buffer).equals(fs.readFileSync(path.join(out, 'canonical.f32')))).toBe(true);
});
