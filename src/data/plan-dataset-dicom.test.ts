/**
 * A training round's view of a DICOM site holding an unreadable file: by default the patient is skipped and the
 * reason is in `issues` (the node logs it); with the dataset parameter `unreadable: 'fail'` opening fails with the
 * list (the round answers success:false with it). An operator rule maps the "t1" series to the plan's modality "MR".
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { definePlan } from '../plan/define';
import { petCtPlan } from '../plan/testing/plans';
import { phantomVolume, seriesOptions, writePetCtStudy } from './dicom-corpus.test-helper';
import { writeRtStruct } from './dicom-rtstruct.test-helper';
import { writeMrSeries, writeRtDose } from './dicom-writer';
import { openPlanDataset } from './plan-dataset';

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
      writePetCtStudy(path.join(petSite, id), id, phantomVolume([16, 16, 6], n + 1), phantomVolume([8, 8, 3], n + 7));
    }
    fs.writeFileSync(path.join(petSite, 'clinical.csv'), 'id,age,relapse\nPET-1,64,1\nPET-2,58,0\n');
    const petPlan = petCtPlan('PetCtTest');
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
      const pet = phantomVolume([8, 8, 3], 4);
      pet.spacing = [1.8, 1.8, 2.4]; // same origin as the CT (0.9 x 0.9 x 1.2 mm), coarser: covers CT voxels x, y <= 14 and z <= 4
      writePetCtStudy(path.join(petSite, id), id, phantomVolume([16, 16, 6], 3), pet, id === 'G-2' ? ['(0020,0052)=1.2.3.4.5'] : []);
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

test('a plan asking for a mask gets the RT structure set ROI the operator maps to it; a patient without one is skipped', () => {
  const rtSite = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-rtstruct-'));
  try {
    // Voxel (i, j, k) centre of these series: x = -100 + 0.9 i, y = -110 + 0.9 j, z = -40 + 1.2 k.
    const square = (i0: number, i1: number, j0: number, j1: number, k: number) => [[i0, j0], [i1, j0], [i1, j1], [i0, j1]]
      .flatMap(([i, j]) => [-100 + 0.9 * i, -110 + 0.9 * j, -40 + 1.2 * k]);
    for (const id of ['R-1', 'R-2']) {
      const mr = writeMrSeries(path.join(rtSite, id, 'mr'), phantomVolume([10, 8, 3], 5), seriesOptions('t1_mprage', id));
      // A finer series of the same study (same frame of reference), to resample onto.
      const fine = phantomVolume([20, 16, 3], 6);
      fine.spacing = [0.45, 0.45, 1.2];
      writeMrSeries(path.join(rtSite, id, 'fine'), fine, seriesOptions('t2_fine', id));
      if (id === 'R-2') continue; // no structure set: no mask for this patient
      fs.mkdirSync(path.join(rtSite, id, 'rt'));
      writeRtStruct(path.join(rtSite, id, 'rt', 'RS.dcm'), mr[0], { Body: [square(-0.5, 9.5, -0.5, 7.5, 0)], 'GTV 1': [square(1.5, 5.5, 1.5, 4.5, 1)] });
    }
    const segmentation = (size: [number, number, number]) => definePlan({
      name: 'GtvSegmentation',
      inputs: { image: { modalities: ['T1'], dims: 3, size } },
      target: { channels: [{ modality: 'GTV', labels: [1] }] },
      model: { nodes: [{ name: 'conv', type: 'conv3d', outChannels: 1, kernelSize: 3, padding: 1, input: 'image' }], output: 'conv' },
      loss: { type: 'bce', fromLogits: true },
      optimizer: { type: 'sgd', lr: 0.1 },
    });
    const rules = [{ role: 'T1', description: '^t1' }, { role: 'FINE', description: '^t2' }, { role: 'GTV', modality: 'RTSTRUCT', roi: '^gtv' }];
    const data = openPlanDataset(segmentation([10, 8, 3]), { dataType: 'dicom', path: rtSite, parameters: { series_rules: rules } });
    expect(data.size).toBe(1);
    expect(data.issues.map((i) => i.message)).toEqual([expect.stringMatching(/R-2: patient lacks GTV/)]);
    const target = data.sample(0).target as { shape: number[]; data: Float32Array };
    expect(target.shape).toEqual([1, 10, 8, 3]);
    // C-order [x, y, z]: 1 on slice 1 for i 2..5, j 2..4 (4 x 3 voxels), 0 elsewhere.
    const inside = (x: number, y: number, z: number) => z === 1 && x >= 2 && x <= 5 && y >= 2 && y <= 4;
    target.data.forEach((v, n) => expect(v).toBe(inside(Math.floor(n / 24), Math.floor(n / 3) % 8, n % 3) ? 1 : 0));

    // Resampled onto the finer series' grid, the mask stays 0/1, around the same area.
    const fine = openPlanDataset(segmentation([20, 16, 3]), { dataType: 'dicom', path: rtSite, parameters: { series_rules: rules, resample_to: 'FINE' } });
    const onFine = fine.sample(0).target as { shape: number[]; data: Float32Array };
    expect(onFine.shape).toEqual([1, 20, 16, 3]);
    expect(onFine.data.every((v) => v === 0 || v === 1)).toBe(true);
    const area = onFine.data.reduce((a, b) => a + b, 0) * 0.45 * 0.45;
    expect(area).toBeGreaterThan(0.7 * 12 * 0.81);
    expect(area).toBeLessThan(1.5 * 12 * 0.81);
  } finally {
    fs.rmSync(rtSite, { recursive: true, force: true });
  }
});

test('a patient whose series cannot be assembled (a missing slice) or lacks the plan\'s series is skipped before the round, with the reason', () => {
  const gapSite = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-gap-'));
  try {
    for (const id of ['P-1', 'P-2', 'P-3']) {
      const files = writeMrSeries(path.join(gapSite, id, 'mr'), phantomVolume([8, 8, 4], 2), seriesOptions(id === 'P-3' ? 'flair' : 't1_mprage', id));
      if (id === 'P-2') fs.rmSync(files[2]);
    }
    fs.writeFileSync(path.join(gapSite, 'clinical.csv'), 'id,age,responder\nP-1,50,1\nP-2,60,0\nP-3,70,1\n');
    const data = openPlanDataset(plan, { dataType: 'dicom', path: gapSite, parameters: {
      tabular_file: path.join(gapSite, 'clinical.csv'), index_col: 0, series_rules: [{ role: 'MR', modality: 'MR', description: 't1' }] } });
    expect(data.size).toBe(1);
    expect(data.issues.map((i) => i.message)).toEqual([
      `${path.join(gapSite, 'P-2')}: patient lacks MR (${path.join(gapSite, 'P-2', 'mr')}: slices are not evenly spaced: gap of 2.400 mm before IM0004.dcm, `
        + 'mean 1.800 mm, smallest 1.200 mm (about 1 missing slice)) (patient skipped)',
      `${path.join(gapSite, 'P-3')}: patient lacks MR (patient skipped)`,
    ]);
    expect(data.sample(0).image?.data.length).toBe(8 * 8 * 4); // P-1, read whole
  } finally {
    fs.rmSync(gapSite, { recursive: true, force: true });
  }
});

test('a plan reading the RT dose map beside the MR: dose in Gy as a channel; a patient without dose skipped before the round', () => {
  const doseSite = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-dose-'));
  try {
    for (const id of ['D-1', 'D-2']) {
      const mr = phantomVolume([8, 8, 4], 3);
      writeMrSeries(path.join(doseSite, id, 'mr'), mr, seriesOptions('t1_mprage', id));
      if (id === 'D-2') continue;
      const dose = { ...mr, data: Float32Array.from(mr.data, (_, i) => (i % 5) * 12.5) }; // same grid, 0..50 Gy
      writeRtDose(path.join(doseSite, id, 'dose', 'RD.dcm'), dose, { ...seriesOptions('RT dose', id), doseType: 'PHYSICAL' });
    }
    fs.writeFileSync(path.join(doseSite, 'clinical.csv'), 'id,responder\nD-1,1\nD-2,0\n');
    const dosePlan = definePlan({
      name: 'DoseChannel',
      inputs: { image: { modalities: ['MR', 'RTDOSE'], dims: 3, size: [8, 8, 4] } },
      target: { column: 'responder' },
      model: { image: [{ type: 'global_avg_pool' }], head: [{ type: 'dense', outFeatures: 1 }] },
      loss: { type: 'bce', fromLogits: true },
      optimizer: { type: 'sgd', lr: 0.1 },
    });
    const data = openPlanDataset(dosePlan, { dataType: 'dicom', path: doseSite, parameters: {
      tabular_file: path.join(doseSite, 'clinical.csv'), index_col: 0,
      series_rules: [{ role: 'MR', modality: 'MR', description: 't1' }, { role: 'RTDOSE', modality: 'RTDOSE' }] } });
    expect(data.size).toBe(1);
    expect(data.issues.map((i) => i.message)).toEqual([`${path.join(doseSite, 'D-2')}: patient lacks RTDOSE (patient skipped)`]);
    const image = data.sample(0).image!;
    expect(image.shape).toEqual([2, 8, 8, 4]);
    const doseChannel = Array.from(image.data.subarray(8 * 8 * 4));
    expect(Math.max(...doseChannel)).toBeCloseTo(50, 2);
    expect(new Set(doseChannel.map((v) => Math.round(v * 10) / 10))).toEqual(new Set([0, 12.5, 25, 37.5, 50]));
  } finally {
    fs.rmSync(doseSite, { recursive: true, force: true });
  }
});
