import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import daikon from 'daikon';
import * as dicomParser from 'dicom-parser';
import {
  deterministicUid, encodeMrSeries, encodeRtDose, MrSeriesOptions, quantise16, writeMrSeries, writeRtDose,
} from './dicom-writer';
import { parseDicomFile, readDicomSeries } from './dicom-series';
import { classifySeries, readDicomPatient } from './dicom-patient';
import { dicomSiteShape, openDicomSite } from './dicom-site';
import { describeDataset } from './registry-info';
import { DataReadError } from './errors';
import { createVolume, Orientation, Volume } from './volume';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-test-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function seriesOptions(description: string, patientId = 'P-001', number = 1): MrSeriesOptions {
  return {
    patient: { id: patientId, sex: 'F', age: 57 },
    study: { uid: deterministicUid('study', patientId), date: '20240315', time: '101500' },
    series: {
      uid: deterministicUid('series', patientId, description),
      number,
      description,
      frameOfReferenceUid: deterministicUid('for', patientId),
      instanceUid: (k) => deterministicUid('sop', patientId, description, k),
    },
    acquisition: { repetitionTime: 500, echoTime: 15 },
  };
}

/** Integer-valued test volume, different in every voxel. */
function mrVolume(dims: [number, number, number] = [6, 5, 4], orientation?: Orientation, seed = 0): Volume {
  const v = createVolume(dims, { spacing: [1.5, 1.25, 4], origin: [-20, 35.5, -12], orientation });
  v.data.forEach((_, i) => { v.data[i] = (i * 37 + seed * 11) % 3001; });
  return v;
}

function daikonImage(file: string): daikon.DaikonImage {
  const bytes = fs.readFileSync(file);
  const image = daikon.Series.parseImage(new DataView(new Uint8Array(bytes).buffer));
  if (!image) throw new Error(`daikon could not parse ${file}`);
  return image;
}

/** Pixel values as dicom-parser sees them: stored 16-bit values times RescaleSlope plus RescaleIntercept. */
function dicomParserValues(file: string): { values: number[]; dataSet: dicomParser.DataSet } {
  const bytes = fs.readFileSync(file);
  const dataSet = dicomParser.parseDicom(new Uint8Array(bytes));
  const pixel = dataSet.elements.x7fe00010;
  const signed = dataSet.uint16('x00280103') === 1;
  const slope = dataSet.floatString('x00281053') ?? 1;
  const intercept = dataSet.floatString('x00281052') ?? 0;
  const dose = dataSet.floatString('x3004000e') ?? 1;
  const view = new DataView(bytes.buffer, bytes.byteOffset + pixel.dataOffset, pixel.length);
  const values: number[] = [];
  for (let at = 0; at < pixel.length; at += 2) {
    const stored = signed ? view.getInt16(at, true) : view.getUint16(at, true);
    values.push(Math.fround(stored * slope * dose + intercept));
  }
  return { values, dataSet };
}

describe('DICOM writer read back by daikon and dicom-parser', () => {
  test('every MR slice: same pixel values from daikon, dicom-parser and our series reader', () => {
    const volume = mrVolume();
    const seriesDir = path.join(dir, 'mr');
    const files = writeMrSeries(seriesDir, volume, seriesOptions('T1 SE'));
    expect(files).toHaveLength(4);
    const plane = 6 * 5;
    const ours = readDicomSeries(seriesDir).volume;
    files.forEach((file, k) => {
      const expected = Array.from(volume.data.subarray(k * plane, (k + 1) * plane));
      const viaDaikon = Array.from(daikonImage(file).getInterpretedData());
      const { values: viaParser, dataSet } = dicomParserValues(file);
      expect(viaDaikon).toEqual(expected);
      expect(viaParser).toEqual(expected);
      expect(Array.from(ours.data.subarray(k * plane, (k + 1) * plane))).toEqual(expected);
      expect(dataSet.string('x00020010')).toBe('1.2.840.10008.1.2.1');
      expect(dataSet.string('x00080016')).toBe('1.2.840.10008.5.1.4.1.1.4');
      expect(dataSet.string('x00020003')).toBe(dataSet.string('x00080018'));
      expect(dataSet.string('x00100020')).toBe('P-001');
      expect(dataSet.string('x0008103e')).toBe('T1 SE');
      expect(dataSet.uint16('x00280010')).toBe(5); // Rows = y
      expect(dataSet.uint16('x00280011')).toBe(6); // Columns = x
      expect(dataSet.intString('x00200013')).toBe(k + 1);
      expect(dataSet.floatString('x00200032', 2)).toBeCloseTo(-12 + 4 * k, 6);
      expect(dataSet.string('x00280030')).toBe('1.25\\1.5');
      // Default window over the whole series' range.
      const lo = Math.min(...volume.data);
      const hi = Math.max(...volume.data);
      expect(dataSet.floatString('x00281050')).toBe((lo + hi) / 2);
      expect(dataSet.floatString('x00281051')).toBe(hi - lo);
    });
  });

  test('non-integer values are stored with a rescale slope and come back within half a step', () => {
    const volume = createVolume([4, 4, 2], { spacing: [1, 1, 2] });
    volume.data.forEach((_, i) => { volume.data[i] = -1.5 + i * 0.173; });
    const stored = quantise16(volume.data);
    expect(stored.slope).not.toBe(1);
    const seriesDir = path.join(dir, 'scaled');
    const files = writeMrSeries(seriesDir, volume, seriesOptions('scaled'));
    const ours = readDicomSeries(seriesDir).volume.data;
    ours.forEach((v, i) => expect(Math.abs(v - volume.data[i])).toBeLessThanOrEqual(stored.slope / 2 + 1e-6));
    files.forEach((file) => {
      expect(Array.from(daikonImage(file).getInterpretedData())).toEqual(dicomParserValues(file).values);
    });
  });

  test('signed integers are written with PixelRepresentation 1 and read back exactly', () => {
    const volume = createVolume([3, 3, 2]);
    volume.data.forEach((_, i) => { volume.data[i] = i * 100 - 900; });
    const seriesDir = path.join(dir, 'signed');
    const files = writeMrSeries(seriesDir, volume, seriesOptions('signed'));
    expect(dicomParserValues(files[0]).dataSet.uint16('x00280103')).toBe(1);
    expect(Array.from(readDicomSeries(seriesDir).volume.data)).toEqual(Array.from(volume.data));
    expect(Array.from(daikonImage(files[1]).getInterpretedData())).toEqual(Array.from(volume.data.subarray(9)));
  });

  test('RT dose: one multi-frame file, DoseGridScaling applied, frames placed by GridFrameOffsetVector', () => {
    const dose = createVolume([5, 4, 3], { spacing: [2, 2, 3], origin: [-4, -4, 10] });
    dose.data.forEach((_, i) => { dose.data[i] = (i % 7) * 9.3; });
    const file = writeRtDose(path.join(dir, 'dose', 'RD.dcm'), dose, { ...seriesOptions('Dose'), doseType: 'PHYSICAL' });
    const { values, dataSet } = dicomParserValues(file);
    const scaling = dataSet.floatString('x3004000e') ?? 0;
    expect(dataSet.string('x00080060')).toBe('RTDOSE');
    expect(dataSet.string('x00080016')).toBe('1.2.840.10008.5.1.4.1.1.481.2');
    expect(dataSet.intString('x00280008')).toBe(3);
    expect(dataSet.string('x3004000c')).toBe('0\\3\\6');
    expect(dataSet.attributeTag('x00280009')).toBe('x3004000c');
    const series = readDicomSeries(path.join(dir, 'dose'));
    expect(series.modality).toBe('RTDOSE');
    expect(series.volume.dims).toEqual([5, 4, 3]);
    expect(series.volume.spacing).toEqual([2, 2, 3]);
    expect(series.volume.origin).toEqual([-4, -4, 10]);
    series.volume.data.forEach((v, i) => {
      expect(Math.abs(v - dose.data[i])).toBeLessThanOrEqual(scaling / 2 + 1e-6);
      expect(v).toBeCloseTo(values[i], 4);
    });
    // daikon reads the frames too (its getInterpretedData ignores DoseGridScaling, so compare stored values).
    const stored = Array.from(daikonImage(file).getInterpretedData());
    stored.forEach((s, i) => expect(s * scaling).toBeCloseTo(values[i], 4));
  });

  test('same inputs, same bytes', () => {
    const a = encodeMrSeries(mrVolume(), seriesOptions('T2'));
    const b = encodeMrSeries(mrVolume(), seriesOptions('T2'));
    expect(a.every((bytes, i) => bytes.equals(b[i]))).toBe(true);
    const d = createVolume([2, 2, 2]);
    d.data.fill(2);
    expect(encodeRtDose(d, seriesOptions('d')).equals(encodeRtDose(d, seriesOptions('d')))).toBe(true);
  });
});

describe('readDicomSeries', () => {
  test('orders slices by position along the normal, not by file name, and keeps oblique geometry', () => {
    const c = Math.cos(0.4);
    const s = Math.sin(0.4);
    const volume = mrVolume([4, 3, 5], [1, 0, 0, 0, c, s, 0, -s, c]);
    const seriesDir = path.join(dir, 'shuffled');
    fs.mkdirSync(seriesDir);
    const names = ['zz.dcm', 'aa.dcm', 'mm', 'bb.dcm', '0001.dcm'];
    encodeMrSeries(volume, seriesOptions('oblique')).forEach((bytes, k) => fs.writeFileSync(path.join(seriesDir, names[k]), bytes));
    fs.writeFileSync(path.join(seriesDir, 'notes.txt'), 'not a slice');
    const series = readDicomSeries(seriesDir);
    expect(Array.from(series.volume.data)).toEqual(Array.from(volume.data));
    expect(series.files.map((f) => path.basename(f))).toEqual(names);
    series.volume.orientation.forEach((x, i) => expect(x).toBeCloseTo(volume.orientation[i], 6));
    series.volume.origin.forEach((x, i) => expect(x).toBeCloseTo(volume.origin[i], 6));
    series.volume.spacing.forEach((x, i) => expect(x).toBeCloseTo(volume.spacing[i], 6));
    expect(series.seriesDescription).toBe('oblique');
    expect(series.patientId).toBe('P-001');
  });

  test('a corrupt slice refuses the series with an error naming the file', () => {
    const seriesDir = path.join(dir, 'corrupt');
    const files = writeMrSeries(seriesDir, mrVolume(), seriesOptions('T1'));
    fs.writeFileSync(files[2], fs.readFileSync(files[2]).subarray(0, 700));
    expect(() => readDicomSeries(seriesDir)).toThrow(DataReadError);
    expect(() => readDicomSeries(seriesDir)).toThrow(files[2]);
  });

  test('a file that is not DICOM and a slice with truncated pixel data name the file', () => {
    const notDicom = path.join(dir, 'random.dcm');
    fs.writeFileSync(notDicom, Buffer.alloc(300, 7));
    expect(() => parseDicomFile(notDicom)).toThrow(`${notDicom}: not a DICOM file`);
    const seriesDir = path.join(dir, 'shortpixels');
    const files = writeMrSeries(seriesDir, mrVolume(), seriesOptions('T1'));
    const bytes = fs.readFileSync(files[0]);
    fs.writeFileSync(files[0], bytes.subarray(0, bytes.length - 10));
    expect(() => readDicomSeries(seriesDir)).toThrow(files[0]);
  });

  test('a missing slice (uneven spacing) refuses the series, naming the folder', () => {
    const seriesDir = path.join(dir, 'gap');
    const files = writeMrSeries(seriesDir, mrVolume([3, 3, 5]), seriesOptions('T1'));
    fs.rmSync(files[2]);
    expect(() => readDicomSeries(seriesDir)).toThrow(new RegExp(`^${seriesDir}: slices are not evenly spaced`));
  });

  test('two series in one folder are refused', () => {
    const seriesDir = path.join(dir, 'mixed');
    writeMrSeries(seriesDir, mrVolume(), seriesOptions('T1'));
    const other = encodeMrSeries(mrVolume(), seriesOptions('T2'));
    fs.writeFileSync(path.join(seriesDir, 'other.dcm'), other[0]);
    expect(() => readDicomSeries(seriesDir)).toThrow(/mixes 2 series/);
  });
});

describe('patients and sites', () => {
  test.each([
    ['T1 SE', 'MR', 'T1'], ['T1 GADO', 'MR', 'T1ce'], ['AX T1 C+', 'MR', 'T1ce'], ['t1_se_tra_post_gd', 'MR', 'T1ce'],
    ['T1ce', 'MR', 'T1ce'], ['T1 pre-contrast', 'MR', 'T1'], ['T1 sans gado', 'MR', 'T1'], ['T1 avec gado', 'MR', 'T1ce'],
    ['t1_mprage_sag', 'MR', 'T1'], ['T2 TSE', 'MR', 'T2'], ['AX T2 FLAIR', 'MR', 'FLAIR'], ['t2_flair_tra', 'MR', 'FLAIR'],
    ['Localizer', 'MR', null], ['Dose plan', 'RTDOSE', 'RTDOSE'],
  ])('classifySeries(%j, %s) = %s', (description, modality, role) => {
    expect(classifySeries(description, modality)).toBe(role);
  });

  function writePatient(siteDir: string, id: string, descriptions: string[], withDose = true): string {
    const patientDir = path.join(siteDir, id);
    descriptions.forEach((d, n) => {
      writeMrSeries(path.join(patientDir, `${n + 1}_${d.replace(/\W+/g, '_')}`), mrVolume(undefined, undefined, n), seriesOptions(d, id, n + 1));
    });
    if (withDose) {
      const dose = createVolume([6, 5, 4], { spacing: [1.5, 1.25, 4] });
      dose.data.fill(1.5);
      writeRtDose(path.join(patientDir, '9_dose', 'RD.dcm'), dose, seriesOptions('RT dose', id, 9));
    }
    return patientDir;
  }

  test('readDicomPatient maps series to modalities, keeps the dose, reports broken and unknown series', () => {
    const siteDir = path.join(dir, 'site-a');
    const patientDir = writePatient(siteDir, 'P-010', ['AX T1', 'AX T1 C+', 'AX T2', 'AX T2 FLAIR', 'Localizer']);
    const broken = writeMrSeries(path.join(patientDir, '7_extra'), mrVolume(), seriesOptions('T2 extra', 'P-010', 7));
    fs.writeFileSync(broken[0], 'garbage');
    const patient = readDicomPatient(patientDir);
    expect(Object.keys(patient.modalities).sort()).toEqual(['FLAIR', 'T1', 'T1ce', 'T2']);
    expect(patient.modalities.T1ce?.seriesDescription).toBe('AX T1 C+');
    expect(Array.from(patient.modalities.T2?.volume.data ?? [])).toEqual(Array.from(mrVolume(undefined, undefined, 2).data));
    expect(patient.dose?.volume.data.every((v) => Math.abs(v - 1.5) < 1e-3)).toBe(true);
    expect(patient.unmatched.map((u) => u.description)).toEqual(['Localizer']);
    // The broken file is reported; the rest of its series (same SeriesInstanceUID) is a second T2, ignored.
    expect(patient.issues.map((i) => i.path)).toEqual([broken[0], path.dirname(broken[0])]);
    expect(patient.issues[1].message).toMatch(/second T2 series \("T2 extra"\) ignored/);
    expect(patient.patientId).toBe('P-010');
  });

  test('a site: clinical CSV index, incomplete patients skipped with an issue, registry shape', () => {
    const siteDir = path.join(dir, 'site-b');
    writePatient(siteDir, 'P-1', ['T1', 'T1 GADO', 'T2', 'FLAIR']);
    writePatient(siteDir, 'P-2', ['T1', 'T1 GADO', 'T2', 'FLAIR']);
    writePatient(siteDir, 'P-3', ['T1', 'T2', 'FLAIR']); // no T1ce
    writePatient(siteDir, 'P-4', ['T1', 'T1 GADO', 'T2', 'FLAIR']); // not in the CSV
    fs.writeFileSync(path.join(siteDir, 'clinical.csv'), 'patient_id,age,responder\nP-1,61,1\nP-2,48,0\nP-3,70,0\n');
    const site = openDicomSite(siteDir);
    expect(site.patients).toEqual(['P-1', 'P-2', 'P-3']);
    expect(site.issues.map((i) => i.path)).toEqual([path.join(siteDir, 'P-4')]);
    const loaded = site.loadAll();
    expect(loaded.map((p) => p.patientId)).toEqual(['P-1', 'P-2']);
    expect(loaded[1].clinical).toEqual({ age: 48, responder: 0 });
    expect(site.issues[1].path).toBe(path.join(siteDir, 'P-3'));
    expect(site.issues[1].message).toMatch(/lacks T1ce/);
    const expectedShape = {
      T1: [6, 5, 4], T1ce: [6, 5, 4], T2: [6, 5, 4], FLAIR: [6, 5, 4], RTDOSE: [6, 5, 4], demographics: [3, 2], num_modalities: 5,
    };
    expect(dicomSiteShape(site)).toEqual(expectedShape);
    // Registering names the incomplete patient (found from the headers alone).
    expect(describeDataset('dicom', siteDir)).toEqual({ shape: expectedShape, dtypes: [], issues: [
      { path: path.join(siteDir, 'P-3'), message: `${path.join(siteDir, 'P-3')}: patient lacks T1ce (patient skipped)` }] });
    expect(() => describeDataset('flamby', siteDir)).toThrow(`${siteDir}: data type "flamby" has no reader here`);
  });

  test('unreadable files: listed when the dataset is added; their patient skipped, or the open fails, by policy', () => {
    const siteDir = path.join(dir, 'site-unreadable');
    writePatient(siteDir, 'P-1', ['T1', 'T1 GADO', 'T2', 'FLAIR']);
    writePatient(siteDir, 'P-2', ['T1', 'T1 GADO', 'T2', 'FLAIR']);
    const series = path.join(siteDir, 'P-2', fs.readdirSync(path.join(siteDir, 'P-2')).sort()[0]);
    const victim = path.join(series, fs.readdirSync(series).sort()[1]);
    fs.writeFileSync(victim, fs.readFileSync(victim).subarray(0, 400)); // truncated in the data set
    const stray = path.join(siteDir, 'P-1', 'notes.bin');
    fs.writeFileSync(stray, 'not an image');

    const info = describeDataset('dicom', siteDir);
    expect(info.issues?.map((i) => i.path).sort()).toEqual([stray, victim].sort());
    expect(info.issues?.find((i) => i.path === stray)?.message).toBe(`${stray}: not a DICOM file (no "DICM" marker after a 128-byte preamble, no file meta information and no data set at the start)`);
    expect(info.issues?.find((i) => i.path === victim)?.message).toMatch(new RegExp(`^${victim}: (corrupt DICOM file|pixel data truncated)`));

    fs.rmSync(stray);
    const skipping = openDicomSite(siteDir);
    expect(skipping.scan().map((i) => i.path)).toEqual([victim]);
    expect(skipping.patients).toEqual(['P-1']);
    expect(skipping.issues[0].message).toMatch(/\(patient skipped\)$/);
    const failing = openDicomSite(siteDir, { unreadable: 'fail' });
    expect(() => failing.scan()).toThrow(new RegExp(`^${siteDir}: 1 unreadable DICOM file\\(s\\): ${victim}: `));
  });
});
