import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openMedicalFolder } from './medical-folder';
import { writeNifti } from './nifti';
import { describeDataset } from './registry-info';
import { createVolume } from './volume';

let root: string;
let csv: string;

function image(subject: string, modality: string, value: number, dims: [number, number, number] = [4, 3, 2]): string {
  const folder = path.join(root, subject, modality);
  fs.mkdirSync(folder, { recursive: true });
  const v = createVolume(dims, { spacing: [2, 2, 3] });
  v.data.fill(value);
  const file = path.join(folder, `${subject}_${modality}.nii.gz`);
  writeNifti(file, v, { datatype: 'int16' });
  return file;
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'medical-folder-test-'));
  for (const [i, s] of ['sub-03', 'sub-01', 'sub-02', 'sub-04'].entries()) {
    image(s, 'T1', 10 + i);
    if (s !== 'sub-04') image(s, 'FLAIR', 20 + i); // sub-04 lacks FLAIR
  }
  image('sub-05', 'T1', 1); // no demographics row
  image('sub-05', 'FLAIR', 1);
  fs.mkdirSync(path.join(root, 'sub-01', '_derived'), { recursive: true }); // ignored: starts with "_"
  fs.mkdirSync(path.join(root, '.cache', 'T2'), { recursive: true }); // ignored: hidden subject
  csv = path.join(root, 'participants.csv');
  // sub-02 appears twice: the first row wins, as pandas' duplicated(keep="first").
  fs.writeFileSync(csv, 'subject,age,sex\nsub-01,61,M\nsub-02,54,F\nsub-03,47,F\nsub-04,70,M\nsub-02,99,M\n');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('medical folder (Fed-BioMed layout)', () => {
  test('modalities, usable subjects and issues follow MedicalFolderController rules', () => {
    const dataset = openMedicalFolder(root, { tabularFile: csv, indexCol: 0 });
    expect(dataset.modalities).toEqual(['FLAIR', 'T1']);
    expect(dataset.subjects).toEqual(['sub-01', 'sub-02', 'sub-03']);
    expect(dataset.issues.map((i) => path.basename(i.path))).toEqual(['sub-04', 'sub-05']);
    expect(dataset.issues[0].message).toMatch(/no image for modality FLAIR/);
    expect(dataset.issues[1].message).toMatch(/no row in/);
  });

  test('shape is the registry entry Fed-BioMed computes: dims per modality, demographics, num_modalities', () => {
    const dataset = openMedicalFolder(root, { tabularFile: csv, indexCol: 'subject' });
    const expected = { FLAIR: [4, 3, 2], T1: [4, 3, 2], demographics: [4, 2], num_modalities: 2 };
    expect(dataset.shape()).toEqual(expected);
    expect(describeDataset('medical-folder', root, { tabular_file: csv, index_col: 0 })).toEqual({ shape: expected, dtypes: [], issues: [] });
  });

  test('without demographics every complete subject is used and demographics is null', () => {
    const dataset = openMedicalFolder(root);
    expect(dataset.subjects).toEqual(['sub-01', 'sub-02', 'sub-03', 'sub-05']);
    expect(dataset.shape().demographics).toBeNull();
  });

  test('loadSubject returns each modality image and the first demographics row', () => {
    const dataset = openMedicalFolder(root, { tabularFile: csv, indexCol: 0 });
    const sample = dataset.loadSubject('sub-02');
    expect(sample.images.T1.data.every((v) => v === 12)).toBe(true);
    expect(sample.images.FLAIR.data.every((v) => v === 22)).toBe(true);
    expect(sample.images.T1.spacing).toEqual([2, 2, 3]);
    expect(sample.demographics).toEqual({ age: 54, sex: 'F' });
  });

  test('a truncated image names the file when loaded; bad roots and tabular files name the path', () => {
    const file = image('sub-06', 'T1', 5);
    image('sub-06', 'FLAIR', 5);
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length / 2));
    const dataset = openMedicalFolder(root);
    expect(() => dataset.loadSubject('sub-06')).toThrow(`${file}: corrupt or truncated gzip data`);
    // Found before any training: `dataset add` lists it, a round skips the subject (or fails, by policy).
    expect(() => openMedicalFolder(root).scan('fail')).toThrow(new RegExp(`^${root}: 1 unreadable image\\(s\\): ${file}: corrupt or truncated gzip data`));
    expect(dataset.subjects).toContain('sub-06');
    expect(dataset.scan().map((i) => i.path)).toEqual([file]);
    expect(dataset.subjects).not.toContain('sub-06');
    expect(dataset.issues.at(-1)?.message).toMatch(/; subject skipped$/);
    fs.rmSync(path.join(root, 'sub-06'), { recursive: true });

    const missing = path.join(root, 'nope');
    expect(() => openMedicalFolder(missing)).toThrow(`${missing}: medical folder root not found`);
    expect(() => openMedicalFolder(csv)).toThrow(`${csv}: medical folder root is not a folder`);
    expect(() => openMedicalFolder(root, { tabularFile: path.join(root, 'x.xlsx'), indexCol: 0 })).toThrow('should be a CSV or TSV');
    expect(() => openMedicalFolder(root, { tabularFile: csv })).toThrow(`${csv}: index column is not provided`);
    const flat = fs.mkdtempSync(path.join(os.tmpdir(), 'flat-'));
    fs.mkdirSync(path.join(flat, 'sub-01'));
    expect(() => openMedicalFolder(flat)).toThrow(/should contain modality folders/);
    fs.rmSync(flat, { recursive: true });
  });
});
