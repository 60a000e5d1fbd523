/**
 * Series as scanners and PACS write them, checked with files built by tools no one here wrote (DCMTK's dcmodify,
 * pydicom): a folder mixing series split by SeriesInstanceUID, an Enhanced (multi-frame) MR object with per-frame
 * positions and rescale, operator rules mapping series to roles, PET in SUVbw (hand computation), CT in HU.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { dcmodify, phantomVolume, seriesOptions } from './dicom-corpus.test-helper';
import { classifierFromRules, readDicomPatient } from './dicom-patient';
import { dicomTimeSeconds, suvBodyWeightFactor, suvParameters } from './dicom-pet';
import { readDicomFolder, readDicomSeries, scanDicomFolder } from './dicom-series';
import { writeMrSeries } from './dicom-writer';
import { runPython } from './python-oracle.test-helper';
import { writeRtStruct } from './dicom-rtstruct.test-helper';
import { parseDicomFile } from './dicom-file';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-series-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

test('a folder mixing two series (as a PACS export writes them) is split by SeriesInstanceUID, each sorted by position', () => {
  const mixed = path.join(root, 'export');
  const a = phantomVolume([12, 10, 5], 1);
  const b = phantomVolume([12, 10, 3], 2);
  const filesA = writeMrSeries(path.join(root, 'a'), a, seriesOptions('T1 SE'));
  const filesB = writeMrSeries(path.join(root, 'b'), b, seriesOptions('T2 TSE'));
  fs.mkdirSync(mixed);
  // Shuffled names: file order says nothing about series or slice order.
  [...filesA, ...filesB].forEach((f, i) => fs.copyFileSync(f, path.join(mixed, `${((i * 7) % 8).toString(36)}${i}.dcm`)));
  const folder = readDicomFolder(mixed);
  expect(folder.issues).toEqual([]);
  expect(folder.series.map((s) => s.seriesDescription).sort()).toEqual(['T1 SE', 'T2 TSE']);
  const t1 = folder.series.find((s) => s.seriesDescription === 'T1 SE');
  const t2 = folder.series.find((s) => s.seriesDescription === 'T2 TSE');
  expect(Array.from(t1?.volume.data ?? [])).toEqual(Array.from(a.data));
  expect(Array.from(t2?.volume.data ?? [])).toEqual(Array.from(b.data));
  expect(() => readDicomSeries(mixed)).toThrow(/folder mixes 2 series/);
});

test('a missing slice is reported with the gap and how many slices are missing', () => {
  const dir = path.join(root, 'gap');
  const files = writeMrSeries(dir, phantomVolume([8, 8, 6]), seriesOptions('T1 gap'));
  fs.rmSync(files[2]);
  fs.rmSync(files[3]);
  expect(() => readDicomSeries(dir)).toThrow(
    `${dir}: slices are not evenly spaced: gap of 3.600 mm before IM0005.dcm, mean 2.000 mm, smallest 1.200 mm (about 2 missing slices)`);
  // Found by the scan too, from the headers alone.
  expect(scanDicomFolder(dir).seriesIssues.map((i) => i.message)).toEqual([expect.stringContaining('(about 2 missing slices)')]);
});

const ENHANCED = `
import sys, copy, pydicom, numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
files, out = sys.argv[2:], sys.argv[1]
slices = [pydicom.dcmread(f) for f in files]
ds = copy.deepcopy(slices[0])
order = [2, 0, 3, 1]  # frames stored out of position order
frames = np.stack([slices[k].pixel_array for k in order])
ds.NumberOfFrames = len(order)
ds.PixelData = frames.astype(np.uint16).tobytes()
shared = Dataset()
po = Dataset(); po.ImageOrientationPatient = slices[0].ImageOrientationPatient
pm = Dataset(); pm.PixelSpacing = slices[0].PixelSpacing; pm.SliceThickness = slices[0].SliceThickness
shared.PlaneOrientationSequence = Sequence([po]); shared.PixelMeasuresSequence = Sequence([pm])
ds.SharedFunctionalGroupsSequence = Sequence([shared])
per = []
for i, k in enumerate(order):
    item = Dataset()
    pp = Dataset(); pp.ImagePositionPatient = slices[k].ImagePositionPatient
    tr = Dataset(); tr.RescaleSlope = 0.5 + i; tr.RescaleIntercept = -10 * i; tr.RescaleType = 'US'
    item.PlanePositionSequence = Sequence([pp]); item.PixelValueTransformationSequence = Sequence([tr])
    per.append(item)
ds.PerFrameFunctionalGroupsSequence = Sequence(per)
for name in ('ImagePositionPatient', 'RescaleSlope', 'RescaleIntercept', 'InstanceNumber'):
    if name in ds: delattr(ds, name)
ds.SOPClassUID = '1.2.840.10008.5.1.4.1.1.4.1'
ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
ds.save_as(out)
`;

test('an Enhanced MR object: frames placed by per-frame positions, each frame with its own rescale', () => {
  const volume = phantomVolume([10, 8, 4], 3);
  const files = writeMrSeries(path.join(root, 'enh-src'), volume, seriesOptions('T1 enhanced'));
  const out = path.join(root, 'enhanced', 'EMR.dcm');
  fs.mkdirSync(path.dirname(out));
  runPython(ENHANCED, [out, ...files], ['pydicom', 'numpy']);
  const series = readDicomSeries(path.dirname(out));
  // The scan (headers only, pixel bytes dropped) places the frames the same way without complaint.
  const scanned = scanDicomFolder(path.dirname(out));
  expect([scanned.files, scanned.seriesIssues, scanned.series.map((s) => s.seriesDescription)]).toEqual([[], [], ['T1 enhanced']]);
  expect(scanned.series[0].header.byteArray.length).toBeLessThanOrEqual(fs.statSync(out).size - 10 * 8 * 4 * 2); // no pixel bytes
  expect(series.volume.dims).toEqual([10, 8, 4]);
  expect(series.volume.origin).toEqual([-100, -110, -40]);
  expect(series.volume.spacing).toEqual([0.9, 0.9, expect.closeTo(1.2, 6)]);
  const plane = 80;
  const order = [2, 0, 3, 1];
  for (let z = 0; z < 4; z++) {
    const frame = order.indexOf(z); // stored position of slice z, and its rescale
    for (let i = 0; i < plane; i++) {
      expect(series.volume.data[z * plane + i]).toBeCloseTo(volume.data[z * plane + i] * (0.5 + frame) - 10 * frame, 3);
    }
  }
});

test('operator rules map series to roles by Modality, description pattern and tags; bad patterns are refused up front', () => {
  const classify = classifierFromRules([
    { role: 'CT', modality: 'CT' },
    { role: 'T1_3T', description: '^t1', tags: { '00180087': '^3' } },
    { role: 'T1', description: '^t1' },
  ]);
  const dir = path.join(root, 'rules');
  const files = writeMrSeries(dir, phantomVolume([4, 4, 2]), seriesOptions('T1 MPRAGE'));
  const header = parseDicomFile(files[0]).dataSet;
  expect(classify('T1 MPRAGE', 'MR', header)).toBe('T1');
  expect(classify('t2', 'CT', header)).toBe('CT');
  expect(classify('FLAIR', 'MR', header)).toBeNull();
  dcmodify(files, ['(0018,0087)=3']);
  expect(classify('T1 MPRAGE', 'MR', parseDicomFile(files[0]).dataSet)).toBe('T1_3T');
  expect(() => classifierFromRules([{ role: 'X', description: '(' }])).toThrow(/series rule 1 \(X\): invalid description pattern "\("/);
  expect(() => classifierFromRules([{ role: 'X', tags: { '0018,0087': '3' } }])).toThrow(/tag "0018,0087" is not 8 hex digits/);
});

describe('PET SUV body weight', () => {
  test('DICOM times', () => {
    expect(dicomTimeSeconds('095830.25')).toBeCloseTo(9 * 3600 + 58 * 60 + 30.25, 6);
    expect(dicomTimeSeconds('09:58:30')).toBe(35910);
    expect(dicomTimeSeconds('0958')).toBe(35880);
    expect(dicomTimeSeconds('25')).toBeNull();
  });

  /**
   * Hand computation (F-18, half-life 6586.2 s = 109.77 min): 370 MBq injected at 10:00:00, series start 11:00:00,
   * 70 kg. Decay over 3600 s: 2^(-3600 / 6586.2) = 0.684633; decayed dose 253.314 MBq; a voxel of 5000 Bq/mL has
   * SUVbw = 5000 x 70 000 g / 253.314e6 Bq = 1.38168 (the textbook example of ~1.38 for 5 kBq/mL at 1 h in 70 kg).
   */
  test('a PT series built with dcmodify: pixels in SUVbw equal the hand computation; missing tags are refused', () => {
    const volume = phantomVolume([6, 5, 3], 4);
    volume.data.fill(5000);
    volume.data[0] = 0;
    const dir = path.join(root, 'pet', 'P-1', 'pt');
    const files = writeMrSeries(dir, volume, seriesOptions('PET WB AC', 'P-1'));
    dcmodify(files, [
      '(0008,0060)=PT', '(0054,1001)=BQML', '(0054,1102)=START', '(0010,1030)=70', '(0008,0021)=20240315',
      '(0008,0031)=110000', '(0054,0016)[0].(0018,1074)=370000000', '(0054,0016)[0].(0018,1075)=6586.2',
      '(0054,0016)[0].(0018,1072)=100000',
    ]);
    const header = parseDicomFile(files[0]).dataSet;
    const parameters = suvParameters(header);
    expect(parameters).toEqual({ weightKg: 70, injectedDoseBq: 370e6, halfLifeSeconds: 6586.2, decaySeconds: 3600 });
    expect(5000 * suvBodyWeightFactor(parameters)).toBeCloseTo(1.38168, 5);
    const patient = readDicomPatient(path.dirname(dir), { rules: [{ role: 'PET', modality: 'PT' }] });
    expect(patient.issues).toEqual([]);
    const pet = patient.modalities.PET?.volume.data ?? new Float32Array();
    expect(pet[0]).toBe(0);
    expect(pet[1]).toBeCloseTo(1.38168, 4);
    expect(readDicomPatient(path.dirname(dir), { rules: [{ role: 'PET', modality: 'PT' }], pet: 'activity' }).modalities.PET?.volume.data[1]).toBe(5000);
    // Injection the evening before a past-midnight scan (time only): 23:30 -> 00:30 is one hour.
    dcmodify(files, ['(0008,0031)=003000', '(0054,0016)[0].(0018,1072)=233000']);
    expect(suvParameters(parseDicomFile(files[0]).dataSet).decaySeconds).toBe(3600);
    dcmodify(files, ['(0054,1001)=CNTS']);
    expect(() => suvParameters(parseDicomFile(files[0]).dataSet)).toThrow('PET Units are "CNTS", SUV needs BQML');
    const refused = readDicomPatient(path.dirname(dir), { rules: [{ role: 'PET', modality: 'PT' }] });
    expect(refused.modalities.PET).toBeUndefined();
    expect(refused.issues[0].message).toMatch(/PET series "PET WB AC" not usable as SUV: PET Units are "CNTS"/);
  });

  /**
   * Published reference values, not ours: the headers of a Siemens and a GE 18F-FDG PET export and their SUVbw
   * factors (SUV per Bq/mL) recorded in Cornerstone's calculate-suv test suite, which follows the QIBA
   * vendor-neutral "happy path" (github.com/cornerstonejs/calculate-suv, test/metadata/SIEMENS-instances.json and
   * GE_MEDICAL_AND_BQML-instances.json, expected factors in test/calculateSUV_SampleData.test.ts:
   * SIEMENS 0.00042748316187197236, GE_MEDICAL_AND_BQML 0.0005367387681819742). The tags are written into a PT
   * series with dcmodify, with the DateTime form of the injection time the vendors use.
   */
  test.each([
    ['Siemens', ['(0010,1030)=67', '(0008,0021)=20201217', '(0008,0031)=104829.000000', '(0054,0016)[0].(0018,1074)=374000000',
      '(0054,0016)[0].(0018,1075)=6586.2', '(0054,0016)[0].(0018,1072)=083045.000000', '(0054,0016)[0].(0018,1078)=20201217083045.000000'],
    0.00042748316187197236],
    ['GE', ['(0010,1030)=52', '(0008,0021)=20201217', '(0008,0031)=095621', '(0054,0016)[0].(0018,1074)=152022720',
      '(0054,0016)[0].(0018,1075)=6586.2001953125', '(0054,0016)[0].(0018,1072)=084500.00', '(0054,0016)[0].(0018,1078)=20201217084500.00'],
    0.0005367387681819742],
  ] as const)('%s FDG export: SUVbw factor equals the published one', (vendor, tags, factor) => {
    const volume = phantomVolume([4, 4, 2], 5);
    volume.data.fill(10000);
    const dir = path.join(root, 'pet-published', vendor, 'pt');
    const files = writeMrSeries(dir, volume, seriesOptions('PET AC', vendor));
    dcmodify(files, ['(0008,0060)=PT', '(0054,1001)=BQML', '(0054,1102)=START', ...tags]);
    const ours = suvBodyWeightFactor(suvParameters(parseDicomFile(files[0]).dataSet));
    expect(Math.abs(ours - factor) / factor).toBeLessThan(1e-9);
    const pet = readDicomPatient(path.dirname(dir), { rules: [{ role: 'PET', modality: 'PT' }] }).modalities.PET!.volume.data;
    expect(pet[3]).toBeCloseTo(10000 * factor, 5);
  });
});

test('CT: stored values through RescaleSlope/Intercept are Hounsfield units (pydicom CT_small.dcm)', () => {
  const file = '/usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm';
  const dir = path.join(root, 'ct');
  fs.mkdirSync(dir);
  fs.copyFileSync(file, path.join(dir, 'CT.dcm'));
  const series = readDicomSeries(dir);
  expect(series.modality).toBe('CT');
  const hu = JSON.parse(runPython(`
import pydicom, json
from pydicom.pixel_data_handlers.util import apply_modality_lut
ds = pydicom.dcmread('${file}')
v = apply_modality_lut(ds.pixel_array, ds)
print(json.dumps([float(v.min()), float(v.max()), float(ds.RescaleIntercept)]))`, [], ['pydicom']) ?? '[]') as number[];
  expect(Math.min(...series.volume.data)).toBe(hu[0]);
  expect(Math.max(...series.volume.data)).toBe(hu[1]);
  expect(hu[2]).not.toBe(0); // the file really has an intercept
});


test('an RT structure set ROI becomes a mask on the series it references (holes by the even-odd rule)', () => {
  const patientDir = path.join(root, 'rt', 'P-9');
  const volume = phantomVolume([10, 8, 3], 5);
  const files = writeMrSeries(path.join(patientDir, 'mr'), volume, seriesOptions('T1 SE', 'P-9'));
  // Voxel (i, j, k) centre: x = -100 + 0.9 i, y = -110 + 0.9 j, z = -40 + 1.2 k.
  const square = (i0: number, i1: number, j0: number, j1: number, k: number) => [[i0, j0], [i1, j0], [i1, j1], [i0, j1]]
    .flatMap(([i, j]) => [-100 + 0.9 * i, -110 + 0.9 * j, -40 + 1.2 * k]);
  const rois = {
    Body: [square(-0.5, 9.5, -0.5, 7.5, 0)],
    GTV_primary: [square(1.5, 5.5, 1.5, 4.5, 1), square(2.5, 3.5, 2.5, 3.5, 1), square(0.5, 2.5, 0.5, 1.5, 2)],
  };
  fs.mkdirSync(path.join(patientDir, 'rt'));
  writeRtStruct(path.join(patientDir, 'rt', 'RS.dcm'), files[0], rois);
  const patient = readDicomPatient(patientDir, { rules: [{ role: 'T1', description: 't1' }, { role: 'GTV', modality: 'RTSTRUCT', roi: '^gtv' }] });
  expect(patient.issues).toEqual([]);
  const mask = patient.modalities.GTV?.volume;
  expect(mask?.dims).toEqual([10, 8, 3]);
  expect(mask?.origin).toEqual(patient.modalities.T1?.volume.origin);
  const on = (x: number, y: number, z: number) => mask?.data[x + 10 * (y + 8 * z)];
  // Slice 1: 4 x 3 voxels (i 2..5, j 2..4) minus the hole at (3, 3); slice 2: i 1..2, j 1.
  expect(mask?.data.reduce((a, b) => a + b, 0)).toBe(11 + 2);
  expect([on(2, 2, 1), on(5, 4, 1), on(3, 3, 1), on(6, 2, 1), on(1, 1, 2), on(2, 1, 2), on(3, 1, 2), on(2, 2, 0)]).toEqual([1, 1, 0, 0, 1, 1, 0, 0]);
  // The structure set is not an unreadable file for the site scan.
  expect(patient.unmatched).toEqual([]);
});
