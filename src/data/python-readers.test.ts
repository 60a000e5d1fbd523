/**
 * Our DICOM and NIfTI files read by the reference Python readers (pydicom, nibabel), when an interpreter has them
 * (Debian: apt-get install python3-pydicom python3-nibabel). Values and geometry must match what was written.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { deterministicUid, writeMrSeries, writeRtDose } from './dicom-writer';
import { writeNifti } from './nifti';
import { runPython } from './python-oracle.test-helper';
import { createVolume, Orientation, Volume } from './volume';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'python-readers-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const SCRIPT = `
import sys, glob, json, numpy as np, pydicom, nibabel as nib
from pydicom.pixel_data_handlers.util import apply_modality_lut
root = sys.argv[1]
img = nib.load(root + '/image.nii.gz')
hdr = img.header
ds = [pydicom.dcmread(f) for f in sorted(glob.glob(root + '/series/*.dcm'))]
normal = np.cross(ds[0].ImageOrientationPatient[:3], ds[0].ImageOrientationPatient[3:])
ds.sort(key=lambda d: float(np.dot(d.ImagePositionPatient, normal)))
stack = np.stack([apply_modality_lut(d.pixel_array, d) for d in ds], axis=-1).transpose(1, 0, 2)
dose = pydicom.dcmread(root + '/dose/RD.dcm')
print(json.dumps({
  'diagnosis': hdr.diagnose_binaryblock(hdr.binaryblock),
  'affine': img.affine.tolist(),
  'nifti': np.asanyarray(img.dataobj).astype(float).ravel(order='F').tolist(),
  'dicom': stack.astype(float).ravel(order='F').tolist(),
  'sop': [ds[0].SOPClassUID.name, dose.SOPClassUID.name, str(ds[0].file_meta.TransferSyntaxUID.name)],
  'ipp': [[float(v) for v in d.ImagePositionPatient] for d in ds],
  'iop': [float(v) for v in ds[0].ImageOrientationPatient],
  'spacing': [float(v) for v in ds[0].PixelSpacing],
  'dose': (dose.pixel_array.astype(float) * float(dose.DoseGridScaling)).transpose(2, 1, 0).ravel(order='F').tolist(),
  'scaling': float(dose.DoseGridScaling),
}))
`;

test('pydicom and nibabel read our files with the values and geometry we wrote', () => {
  const c = Math.cos(0.3);
  const s = Math.sin(0.3);
  const orientation: Orientation = [c, s, 0, -s, c, 0, 0, 0, 1];
  const volume: Volume = createVolume([5, 4, 3], { spacing: [1.5, 2, 3.5], orientation, origin: [-30, 12, 40] });
  volume.data.forEach((_, i) => { volume.data[i] = (i * 131) % 2000; });
  writeNifti(path.join(dir, 'image.nii.gz'), volume, { datatype: 'int16' });
  const series = {
    uid: deterministicUid('s'), number: 1, description: 'T1', frameOfReferenceUid: deterministicUid('f'),
    instanceUid: (k: number) => deterministicUid('i', k),
  };
  const patient = { id: 'PY-1' };
  const study = { uid: deterministicUid('st') };
  writeMrSeries(path.join(dir, 'series'), volume, { patient, study, series });
  const dose = createVolume([5, 4, 3], { spacing: [1.5, 2, 3.5], orientation, origin: [-30, 12, 40] });
  dose.data.forEach((_, i) => { dose.data[i] = i * 0.77; });
  writeRtDose(path.join(dir, 'dose', 'RD.dcm'), dose, { patient, study, series: { ...series, uid: deterministicUid('d') } });

  const out = runPython(SCRIPT, [dir], ['pydicom', 'nibabel']);
  if (!out) return;
  const r = JSON.parse(out);
  expect(r.diagnosis).toBe('');
  expect(r.sop).toEqual(['MR Image Storage', 'RT Dose Storage', 'Explicit VR Little Endian']);
  // Fortran order of an [x, y, z] array is our storage order.
  expect(r.nifti).toEqual(Array.from(volume.data));
  expect(r.dicom).toEqual(Array.from(volume.data));
  (r.dose as number[]).forEach((v, i) => expect(Math.abs(v - dose.data[i])).toBeLessThanOrEqual(r.scaling / 2 + 1e-9));
  // nibabel's affine is RAS: columns are our axes times spacing with x and y negated.
  for (let a = 0; a < 3; a++) {
    for (let row = 0; row < 3; row++) {
      const sign = row < 2 ? -1 : 1;
      expect(r.affine[row][a]).toBeCloseTo(sign * orientation[a * 3 + row] * volume.spacing[a], 5);
    }
  }
  expect(r.affine[0][3]).toBeCloseTo(30, 4);
  expect(r.affine[1][3]).toBeCloseTo(-12, 4);
  expect(r.affine[2][3]).toBeCloseTo(40, 4);
  expect(r.iop.map((v: number) => Number(v.toFixed(6)))).toEqual([c, s, 0, -s, c, 0].map((v) => Number(v.toFixed(6))));
  expect(r.spacing).toEqual([2, 1.5]);
  r.ipp.forEach((p: number[], k: number) => expect(p[2]).toBeCloseTo(40 + 3.5 * k, 6));
});
