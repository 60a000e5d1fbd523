/**
 * Streamed NIfTI reading (nifti-stream.ts) against nibabel: a multi-MiB 4-D .nii.gz written by nibabel (header
 * extension, scl_slope/inter, compressed data spanning many read chunks) gives nibabel's voxels volume by volume;
 * a chosen volume is read without inflating the rest of the file (a stream corrupt after it still reads), while the
 * dataset scan (checkNiftiFile) inflates it all and names the problem.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { checkNiftiFile, readNifti, readNiftiHeader, readNiftiVolumes } from './nifti';
import { runPython } from './python-oracle.test-helper';

const DIMS = [64, 48, 32, 12] as const;
const WRITE = String.raw`
import sys, numpy as np, nibabel as nib
out = sys.argv[1]
rng = np.random.default_rng(5)
data = rng.integers(-3000, 3000, size=(64, 48, 32, 12)).astype(np.int16)
img = nib.Nifti1Image(data, np.array([[0, -1.5, 0, 40], [0.9, 0, 0, -30], [0, 0, 2.0, 12], [0, 0, 0, 1]]))
img.header.extensions.append(nib.nifti1.Nifti1Extension('comment', b'an extension moves vox_offset'))
img.header.set_slope_inter(0.5, 3)
nib.save(img, out + '/series.nii.gz')
nib.save(img, out + '/series.nii')
loaded = nib.load(out + '/series.nii.gz')
# Fortran (x fastest) order, as our volumes are stored.
np.asarray(loaded.get_fdata(), dtype=np.float32).transpose(3, 2, 1, 0).tofile(out + '/expected.f32')
print(int(loaded.dataobj.offset))
`;

let dir: string;
let expected: Float32Array;
let voxOffset: number;
const plane = DIMS[0] * DIMS[1] * DIMS[2];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nifti-stream-'));
  voxOffset = Number(runPython(WRITE, [dir], ['nibabel', 'numpy']));
  const bytes = fs.readFileSync(path.join(dir, 'expected.f32'));
  expected = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a multi-MiB 4-D .nii.gz from nibabel: every volume equals nibabel, one by one or all at once', () => {
  const file = path.join(dir, 'series.nii.gz');
  expect(fs.statSync(file).size).toBeGreaterThan(1.5 * 1024 * 1024); // more than one read chunk
  expect(voxOffset).toBeGreaterThan(352);
  for (const name of ['series.nii.gz', 'series.nii']) {
    for (const k of [0, 3, DIMS[3] - 1]) {
      const { volume } = readNifti(path.join(dir, name), { volume: k });
      expect(volume.dims).toEqual([DIMS[0], DIMS[1], DIMS[2]]);
      expect(Buffer.from(volume.data.buffer).equals(Buffer.from(expected.slice(k * plane, (k + 1) * plane).buffer))).toBe(true);
    }
  }
  const all = readNiftiVolumes(file).volumes;
  expect(all).toHaveLength(DIMS[3]);
  all.forEach((v, k) => expect(Buffer.from(v.data.buffer).equals(Buffer.from(expected.slice(k * plane, (k + 1) * plane).buffer))).toBe(true));
  expect(checkNiftiFile(file).dim.slice(0, 5)).toEqual([4, ...DIMS]);
});

test('a chosen volume is read without inflating the rest: a stream corrupt after it still reads; the scan names it', () => {
  const good = fs.readFileSync(path.join(dir, 'series.nii'));
  // Volumes 0 and 1 compressed, the deflate stream left open (a full flush, no final block, no gzip trailer)…
  const open = zlib.gzipSync(good.subarray(0, voxOffset + 2 * 2 * plane), { level: 1, finishFlush: zlib.constants.Z_FULL_FLUSH });
  const file = path.join(dir, 'corrupt-tail.nii.gz');
  fs.writeFileSync(file, Buffer.concat([open, Buffer.alloc(4096, 0xff)])); // …and continued by bytes that are not deflate data
  expect(readNiftiHeader(file).dim[4]).toBe(DIMS[3]);
  const first = readNifti(file, { volume: 0 }).volume.data;
  expect(Buffer.from(first.buffer).equals(Buffer.from(expected.slice(0, plane).buffer))).toBe(true);
  expect(() => readNifti(file, { volume: 5 })).toThrow(new RegExp(`^${file}: corrupt or truncated gzip data \\(`));
  expect(() => checkNiftiFile(file)).toThrow(new RegExp(`^${file}: corrupt or truncated gzip data \\(`));
});

test('a truncated .nii names how many bytes it has and how many its header announces', () => {
  const good = fs.readFileSync(path.join(dir, 'series.nii'));
  const file = path.join(dir, 'short.nii');
  fs.writeFileSync(file, good.subarray(0, voxOffset + 3 * plane * 2 + 10));
  expect(Array.from(readNifti(file, { volume: 2 }).volume.data.subarray(0, 4))).toEqual(Array.from(expected.subarray(2 * plane, 2 * plane + 4)));
  expect(() => readNifti(file, { volume: 3 })).toThrow(
    `${file}: invalid NIfTI-1 image: truncated: ${voxOffset + 3 * plane * 2 + 10} bytes, header announces ${voxOffset + plane * 2 * DIMS[3]}`);
  expect(() => checkNiftiFile(file)).toThrow(/truncated/);
});

test('a header announcing more voxels than the cap, or than the file can hold, is refused before any allocation', () => {
  const good = fs.readFileSync(path.join(dir, 'series.nii'));
  const huge = Buffer.from(good.subarray(0, voxOffset + 1000));
  [1, 2, 3].forEach((d) => huge.writeInt16LE(30000, 40 + 2 * d)); // 30000^3 voxels claimed
  huge.writeInt16LE(1, 48);
  const plain = path.join(dir, 'huge.nii');
  fs.writeFileSync(plain, huge);
  expect(() => readNifti(plain)).toThrow(`${plain}: 30000x30000x30000 = ${30000 ** 3} voxels is more than the ${2 ** 28}-voxel limit`);
  expect(() => readNifti(path.join(dir, 'series.nii'), { volume: 0, maxVoxels: 1000 })).toThrow(/= 98304 voxels is more than the 1000-voxel limit/);
  // Within the cap, but a few kB of gzip cannot inflate to 512 MB: refused at once, nothing inflated or allocated.
  [1, 2, 3].forEach((d) => huge.writeInt16LE(512, 40 + 2 * d));
  const gz = path.join(dir, 'huge.nii.gz');
  fs.writeFileSync(gz, zlib.gzipSync(huge));
  expect(() => readNifti(gz)).toThrow(new RegExp(`^${gz}: invalid NIfTI-1 image: truncated: the header announces \\d+ bytes, a gzip file of \\d+ bytes cannot hold them$`));
});

test('a .nii.gz of several gzip members (as bgzip and parallel compressors write) reads as nibabel reads it', () => {
  const raw = fs.readFileSync(path.join(dir, 'series.nii'));
  const cuts = [0, 1000, 300_001, 1_000_003, raw.length];
  const file = path.join(dir, 'members.nii.gz');
  fs.writeFileSync(file, Buffer.concat(cuts.slice(1).map((end, i) => zlib.gzipSync(raw.subarray(cuts[i], end)))));
  const k = DIMS[3] - 1;
  expect(Buffer.from(readNifti(file, { volume: k }).volume.data.buffer).equals(Buffer.from(expected.slice(k * plane, (k + 1) * plane).buffer))).toBe(true);
  expect(checkNiftiFile(file).dim[4]).toBe(DIMS[3]);
});
