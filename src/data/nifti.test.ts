import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { DataReadError } from './errors';
import { encodeNifti, parseNiftiHeader, readNifti, readNiftiHeader, validateNiftiHeader, writeNifti } from './nifti';
import { createVolume, Orientation, Volume } from './volume';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nifti-test-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** An oblique geometry (rotated 30° about z, then flipped z) so every orientation path is exercised. */
function obliqueVolume(): Volume {
  const c = Math.cos(Math.PI / 6);
  const s = Math.sin(Math.PI / 6);
  const orientation: Orientation = [c, s, 0, -s, c, 0, 0, 0, -1];
  const v = createVolume([5, 4, 3], { spacing: [0.9, 1.1, 2.5], orientation, origin: [12.5, -30, 48] });
  v.data.forEach((_, i) => { v.data[i] = Math.sin(i) * 100 + 0.25; });
  return v;
}

function expectSameGeometry(a: Volume, b: Volume): void {
  expect(a.dims).toEqual(b.dims);
  a.spacing.forEach((x, i) => expect(x).toBeCloseTo(b.spacing[i], 5));
  a.orientation.forEach((x, i) => expect(x).toBeCloseTo(b.orientation[i], 5));
  a.origin.forEach((x, i) => expect(x).toBeCloseTo(b.origin[i], 4));
}

describe('NIfTI-1', () => {
  test('header fields at their NIfTI-1 byte offsets (checked without our parser)', () => {
    const bytes = encodeNifti(obliqueVolume(), { datatype: 'int16', sclSlope: 0.5, sclInter: 1 });
    expect(bytes.readInt32LE(0)).toBe(348);
    expect(bytes.toString('latin1', 344, 348)).toBe('n+1\0');
    expect([0, 1, 2, 3, 4].map((i) => bytes.readInt16LE(40 + 2 * i))).toEqual([3, 5, 4, 3, 1]);
    expect(bytes.readInt16LE(70)).toBe(4); // datatype int16
    expect(bytes.readInt16LE(72)).toBe(16); // bitpix
    expect(bytes.readFloatLE(80)).toBeCloseTo(0.9, 6); // pixdim[1]
    expect(bytes.readFloatLE(108)).toBe(352); // vox_offset
    expect(bytes.readFloatLE(112)).toBe(0.5); // scl_slope
    expect(bytes.readFloatLE(116)).toBe(1); // scl_inter
    expect(bytes.readInt16LE(252)).toBe(1); // qform_code
    expect(bytes.readInt16LE(254)).toBe(1); // sform_code
    expect(bytes.length).toBe(352 + 5 * 4 * 3 * 2);
    expect(validateNiftiHeader(parseNiftiHeader(bytes, 'x.nii'), bytes.length)).toEqual([]);
  });

  test('float32 .nii round-trips values and oblique geometry exactly', () => {
    const v = obliqueVolume();
    const file = path.join(dir, 'oblique.nii');
    writeNifti(file, v);
    const back = readNifti(file);
    expect(Array.from(back.volume.data)).toEqual(Array.from(v.data));
    expectSameGeometry(back.volume, v);
  });

  test('qform alone gives the same geometry as sform (sform_code cleared)', () => {
    const v = obliqueVolume();
    const bytes = encodeNifti(v);
    bytes.writeInt16LE(0, 254);
    const file = path.join(dir, 'qform-only.nii');
    fs.writeFileSync(file, bytes);
    expectSameGeometry(readNifti(file).volume, v);
  });

  test('int16 .nii.gz with scl_slope/scl_inter round-trips within the quantisation step', () => {
    const v = obliqueVolume();
    const file = path.join(dir, 'scaled.nii.gz');
    writeNifti(file, v, { datatype: 'int16', sclSlope: 0.01, sclInter: -3 });
    expect(fs.readFileSync(file)[0]).toBe(0x1f); // really gzip
    const back = readNifti(file);
    back.volume.data.forEach((x, i) => expect(Math.abs(x - v.data[i])).toBeLessThanOrEqual(0.005 + 1e-4));
    expect(readNiftiHeader(file).datatype).toBe(4);
  });

  test('a big-endian file is read the same as the little-endian one', () => {
    const v = createVolume([3, 2, 2], { spacing: [1, 2, 3], origin: [1, 2, 3] });
    v.data.forEach((_, i) => { v.data[i] = i - 5; });
    const le = encodeNifti(v, { datatype: 'int16' });
    const be = Buffer.from(le);
    const swap = (at: number, size: number): void => { be.subarray(at, at + size).reverse(); };
    swap(0, 4);
    for (let at = 40; at < 56; at += 2) swap(at, 2);
    for (const at of [68, 70, 72, 74, 120, 252, 254]) swap(at, 2);
    for (let at = 76; at < 120; at += 4) swap(at, 4);
    for (let at = 124; at < 148; at += 4) swap(at, 4);
    for (let at = 256; at < 328; at += 4) swap(at, 4);
    for (let at = 352; at < be.length; at += 2) swap(at, 2);
    const file = path.join(dir, 'big-endian.nii');
    fs.writeFileSync(file, be);
    const back = readNifti(file);
    expect(back.header.littleEndian).toBe(false);
    expect(Array.from(back.volume.data)).toEqual(Array.from(v.data));
    expectSameGeometry(back.volume, v);
  });

  test('same volume, same bytes (gzip included)', () => {
    const a = path.join(dir, 'a.nii.gz');
    const b = path.join(dir, 'b.nii.gz');
    writeNifti(a, obliqueVolume(), { datatype: 'float32' });
    writeNifti(b, obliqueVolume(), { datatype: 'float32' });
    expect(fs.readFileSync(a).equals(fs.readFileSync(b))).toBe(true);
  });

  test('values that do not fit the integer type are refused at write time', () => {
    const v = createVolume([2, 1, 1]);
    v.data[0] = 70000;
    expect(() => encodeNifti(v, { datatype: 'int16' })).toThrow(/does not fit int16/);
  });

  describe('broken files are refused with an error naming the path', () => {
    const broken = (name: string, bytes: Buffer): string => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, bytes);
      return file;
    };
    const good = (): Buffer => encodeNifti(obliqueVolume());

    test('truncated .nii (voxels cut off)', () => {
      const file = broken('cut.nii', good().subarray(0, 400));
      expect(() => readNifti(file)).toThrow(DataReadError);
      expect(() => readNifti(file)).toThrow(new RegExp(`^${file}: invalid NIfTI-1 image: truncated`));
    });

    test('truncated .nii.gz', () => {
      const gz = zlib.gzipSync(good());
      const file = broken('cut.nii.gz', gz.subarray(0, gz.length - 40));
      expect(() => readNifti(file)).toThrow(`${file}: corrupt or truncated gzip data`);
    });

    test('header shorter than 348 bytes', () => {
      const file = broken('tiny.nii', good().subarray(0, 100));
      expect(() => readNifti(file)).toThrow(`${file}: file too short for a NIfTI header`);
    });

    test.each([
      ['sizeof_hdr', (b: Buffer) => b.writeInt32LE(500, 0), /sizeof_hdr is 500, expected 348 \(NIfTI-1\) or 540 \(NIfTI-2\)/],
      ['magic', (b: Buffer) => b.write('XXXX', 344, 'latin1'), /bad magic/],
      ['two-file magic', (b: Buffer) => b.write('ni1\0', 344, 'latin1'), /two-file NIfTI/],
      ['dim[0]', (b: Buffer) => b.writeInt16LE(9, 40), /dim\[0\] = 9/],
      ['5-D', (b: Buffer) => { b.writeInt16LE(5, 40); b.writeInt16LE(1, 48); b.writeInt16LE(2, 50); }, /only 3-D and 4-D images are supported, dim\[5\] = 2/],
      ['datatype', (b: Buffer) => b.writeInt16LE(32, 70), /unsupported datatype 32/],
      ['bitpix', (b: Buffer) => b.writeInt16LE(8, 72), /bitpix 8 does not match datatype float32/],
      ['vox_offset', (b: Buffer) => b.writeFloatLE(100, 108), /vox_offset 100/],
      ['pixdim', (b: Buffer) => b.writeFloatLE(0, 80), /pixdim\[1\] = 0/],
      ['scl_inter', (b: Buffer) => { b.writeFloatLE(2, 112); b.writeFloatLE(NaN, 116); }, /scl_inter NaN/],
    ])('bad %s', (name, corrupt, why) => {
      const bytes = good();
      corrupt(bytes);
      const file = broken(`bad-${name.replace(/\W/g, '')}.nii`, bytes);
      expect(() => readNifti(file)).toThrow(why);
      expect(() => readNifti(file)).toThrow(file);
    });

    test('missing file', () => {
      const file = path.join(dir, 'nowhere.nii');
      expect(() => readNifti(file)).toThrow(`${file}: cannot read NIfTI file`);
    });
  });
});
