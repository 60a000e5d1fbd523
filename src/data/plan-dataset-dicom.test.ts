/**
 * A training round's view of a DICOM site holding an unreadable file: by default the patient is skipped and the
 * reason is in `issues` (the node logs it); with the dataset parameter `unreadable: 'fail'` opening fails with the
 * list (the round answers success:false with it). An operator rule maps the "t1" series to the plan's modality "MR".
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { definePlan } from '../plan/define';
import { phantomVolume, seriesOptions } from './dicom-corpus.test-helper';
import { writeMrSeries } from './dicom-writer';
import { openPlanDataset } from './plan-dataset';

function dcmodify(files: string[], edits: string[]): void {
  const run = spawnSync('dcmodify', ['-nb', ...edits.flatMap((e) => ['-i', e]), ...files], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`dcmodify failed: ${run.stderr}`);
}

let site: string;
let victim: string;
beforeAll(() => {
  site = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-dicom-'));
  for (const id of ['P-1', 'P-2', 'P-3']) writeMrSeries(path.join(site, id, 'mr'), phantomVolume([8, 8, 4], id.length), seriesOptions('t1_mprage', id));
  fs.writeFileSync(path.join(site, 'clinical.csv'), 'id,age,responder\nP-1,50,1\nP-2,60,0\nP-3,70,1\n');
  victim = path.join(site, 'P-2', 'mr', 'IM0003.dcm');
  const bytes = fs.readFileSync(victim);
  fs.writeFileSync(victim, bytes.subarray(0, bytes.length - 64)); // pixel data cut short
});
afterAll(() => fs.rmSync(site, { recursive: true, force: true }));

const plan = definePlan({
  name: 'DicomSiteTest',
  inputs: { image: { modalities: ['MR'], dims: 3, size: [8, 8, 4] }, tabular: { columns: ['age'] } },
  target: { column: 'responder' },
  model: { image: [{ type: 'global_avg_pool' }], tabular: [{ type: 'dense', outFeatures: 2 }], head: [{ type: 'dense', outFeatures: 1 }] },
  loss: { type: 'bce', fromLogits: true },
  optimizer: { type: 'sgd', lr: 0.1 },
});

const parameters = (extra: Record<string, unknown>) => ({
  tabular_file: path.join(site, 'clinical.csv'), index_col: 0, series_rules: [{ role: 'MR', modality: 'MR', description: 't1' }], ...extra,
});

test('default: the patient with an unreadable file is skipped, the reason in issues; the others train', () => {
  const data = openPlanDataset(plan, { dataType: 'dicom', path: site, parameters: parameters({}) });
  expect(data.size).toBe(2);
  expect(data.issues.map((i) => i.path)).toEqual([victim]);
  expect(data.issues[0].message).toBe(`${victim}: corrupt DICOM file (truncated: an element runs past the end of the file) (patient skipped)`);
  expect(Array.from(data.targets([0, 1]))).toEqual([1, 1]); // P-1 and P-3
  expect(data.sample(1).image?.data.length).toBe(8 * 8 * 4);
});

test("unreadable: 'fail' refuses the dataset with every unreadable file and why", () => {
  expect(() => openPlanDataset(plan, { dataType: 'dicom', path: site, parameters: parameters({ unreadable: 'fail' }) }))
    .toThrow(new RegExp(`^${site}: 1 unreadable DICOM file\\(s\\): ${victim}: corrupt DICOM file \\(truncated`));
  expect(() => openPlanDataset(plan, { dataType: 'dicom', path: site, parameters: parameters({ unreadable: 'sometimes' }) }))
    .toThrow('dataset parameter unreadable must be "skip" or "fail", not "sometimes"');
});

test('the operator caps apply: a pixel cap below the image size makes every file unreadable, with the reason', () => {
  expect(() => openPlanDataset(plan, { dataType: 'dicom', path: site, parameters: parameters({ max_pixels: 10, unreadable: 'fail' }) }))
    .toThrow(/64 pixels is more than the 10-pixel limit/);
  expect(() => openPlanDataset(plan, { dataType: 'dicom', path: site, parameters: parameters({ decode_timeout_ms: -1 }) }))
    .toThrow('dataset parameter decode_timeout_ms must be a positive integer, not -1');
});

test('an 18F-FDG PET/CT site from DICOM: CT in HU and PET in SUVbw feed a plan through operator rules', () => {
  const petSite = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-petct-'));
  try {
    for (const [n, id] of ['PET-1', 'PET-2'].entries()) {
      const ct = phantomVolume([16, 16, 6], n + 1);
      const ctFiles = writeMrSeries(path.join(petSite, id, 'ct'), ct, seriesOptions('CT WB', id));
      dcmodify(ctFiles, ['(0008,0060)=CT', '(0028,1052)=-1024']);
      const pet = phantomVolume([8, 8, 3], n + 7);
      pet.data.fill(5000);
      const petFiles = writeMrSeries(path.join(petSite, id, 'pt'), pet, seriesOptions('PET WB AC', id));
      dcmodify(petFiles, ['(0008,0060)=PT', '(0054,1001)=BQML', '(0054,1102)=START', '(0010,1030)=70', '(0008,0021)=20240315',
        '(0008,0031)=110000', '(0054,0016)[0].(0018,1074)=370000000', '(0054,0016)[0].(0018,1075)=6586.2',
        '(0054,0016)[0].(0018,1072)=100000']);
    }
    fs.writeFileSync(path.join(petSite, 'clinical.csv'), 'id,age,relapse\nPET-1,64,1\nPET-2,58,0\n');
    const petPlan = definePlan({
      name: 'PetCtTest',
      inputs: { image: { modalities: ['CT', 'PET'], dims: 3, size: [8, 8, 3] }, tabular: { columns: ['age'] } },
      target: { column: 'relapse' },
      preprocessing: [{ op: 'resize', size: [8, 8, 3] }],
      model: { image: [{ type: 'global_avg_pool' }], tabular: [{ type: 'dense', outFeatures: 2 }], head: [{ type: 'dense', outFeatures: 1 }] },
      loss: { type: 'bce', fromLogits: true },
      optimizer: { type: 'sgd', lr: 0.1 },
    });
    const data = openPlanDataset(petPlan, { dataType: 'dicom', path: petSite, parameters: {
      tabular_file: path.join(petSite, 'clinical.csv'), index_col: 0,
      series_rules: [{ role: 'CT', modality: 'CT' }, { role: 'PET', modality: 'PT' }],
    } });
    expect(data.issues).toEqual([]);
    expect(data.size).toBe(2);
    const image = data.sample(0).image;
    expect(image?.shape).toEqual([2, 8, 8, 3]);
    const plane = 8 * 8 * 3;
    const pet = Array.from(image?.data.subarray(plane) ?? []);
    pet.forEach((v) => expect(v).toBeCloseTo(1.38168, 4)); // uniform 5 kBq/mL -> SUVbw (see dicom-series.test.ts)
    const ct = Array.from(image?.data.subarray(0, plane) ?? []);
    expect(Math.min(...ct)).toBeLessThan(-900); // air around the phantom, in HU
    expect(Array.from(data.targets([0, 1]))).toEqual([1, 0]);
  } finally {
    fs.rmSync(petSite, { recursive: true, force: true });
  }
});

test('PET/CT on different grids: resample_to CT puts the PET onto the CT grid; different frames of reference are refused', () => {
  const petSite = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-petct-grid-'));
  try {
    for (const id of ['G-1', 'G-2']) {
      const ct = phantomVolume([16, 16, 6], 3); // 0.9 x 0.9 x 1.2 mm from (-100, -110, -40)
      dcmodify(writeMrSeries(path.join(petSite, id, 'ct'), ct, seriesOptions('CT WB', id)), ['(0008,0060)=CT', '(0028,1052)=-1024']);
      const pet = phantomVolume([8, 8, 3], 4);
      pet.spacing = [1.8, 1.8, 2.4]; // same origin, coarser: covers CT voxels x, y <= 14 and z <= 4
      pet.data.fill(5000);
      const petFiles = writeMrSeries(path.join(petSite, id, 'pt'), pet, seriesOptions('PET WB AC', id));
      dcmodify(petFiles, ['(0008,0060)=PT', '(0054,1001)=BQML', '(0054,1102)=START', '(0010,1030)=70', '(0008,0021)=20240315',
        '(0008,0031)=110000', '(0054,0016)[0].(0018,1074)=370000000', '(0054,0016)[0].(0018,1075)=6586.2',
        '(0054,0016)[0].(0018,1072)=100000', ...(id === 'G-2' ? ['(0020,0052)=1.2.3.4.5'] : [])]);
    }
    fs.writeFileSync(path.join(petSite, 'clinical.csv'), 'patient,relapse\nG-1,1\nG-2,0\n');
    const gridPlan = definePlan({
      name: 'PetCtGrid',
      inputs: { image: { modalities: ['CT', 'PET'], dims: 3, size: [16, 16, 6] } },
      target: { column: 'relapse' },
      model: { image: [{ type: 'global_avg_pool' }], head: [{ type: 'dense', outFeatures: 1 }] },
      loss: { type: 'bce', fromLogits: true },
      optimizer: { type: 'sgd', lr: 0.1 },
    });
    const data = openPlanDataset(gridPlan, { dataType: 'dicom', path: petSite, parameters: {
      tabular_file: path.join(petSite, 'clinical.csv'), index_col: 0, resample_to: 'CT',
      series_rules: [{ role: 'CT', modality: 'CT' }, { role: 'PET', modality: 'PT' }],
    } });
    const image = data.sample(0).image!;
    expect(image.shape).toEqual([2, 16, 16, 6]);
    const plane = 16 * 16 * 6;
    // C-order [x, y, z]: inside the PET field of view the uniform SUV, outside 0 (counted by hand: 15 x 15 x 5)
    let inside = 0;
    for (let x = 0; x < 16; x++) {
      for (let y = 0; y < 16; y++) {
        for (let z = 0; z < 6; z++) {
          const v = image.data[plane + (x * 16 + y) * 6 + z];
          const covered = x <= 14 && y <= 14 && z <= 4;
          if (covered) inside++;
          if (covered) expect(v).toBeCloseTo(1.38168, 4);
          else expect(v).toBe(0);
        }
      }
    }
    expect(inside).toBe(1125);
    expect(() => data.sample(1)).toThrow(/PET and CT are not in the same frame of reference \(1\.2\.3\.4\.5 vs /);
  } finally {
    fs.rmSync(petSite, { recursive: true, force: true });
  }
});
