import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import daikon from 'daikon';
import * as dicomParser from 'dicom-parser';
import { openDicomSite, openMedicalFolder, parseNiftiHeader, validateNiftiHeader, readCsv, quantile } from 'fedbiomed-ts';
import * as zlib from 'zlib';
import { CohortOptions, CohortSummary, generateCohort } from './cohort';
import { encodeClinical } from './clinical-features';
import { imagingLogit, samplePatient } from './patient-model';
import { renderPatient } from './phantom';
import { Prng } from './prng';
import { SITE_PROFILES } from './sites';

const OPTIONS: Omit<CohortOptions, 'outDir'> = {
  seed: 7,
  sites: [{ name: 'Caen', patients: 2 }, { name: 'Rouen', patients: 2 }, { name: 'Nice', patients: 2 }],
  heldOut: 5,
  volumeSize: [16, 16, 8],
};
let root: string;
let outDir: string;
let summary: CohortSummary;

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

function digestTree(dir: string): Map<string, string> {
  return new Map(filesUnder(dir).map((f) => [f, crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, f))).digest('hex')]));
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cohort-test-'));
  outDir = path.join(root, 'a');
  summary = generateCohort({ ...OPTIONS, outDir });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('generateCohort on disk', () => {
  test('summary, manifest and layout', () => {
    expect(summary.sites.map((s) => [s.name, s.patients])).toEqual([['Caen', 2], ['Rouen', 2], ['Nice', 2]]);
    expect(summary.heldOut.patients).toBe(5);
    expect(summary.spacingMm).toEqual([12, 12, 18]);
    expect(JSON.parse(fs.readFileSync(path.join(outDir, 'cohort.json'), 'utf8'))).toEqual(summary);
    const truth = readCsv(path.join(outDir, 'ground-truth.csv'), { indexColumn: 'patient_id' });
    expect(truth.shape[0]).toBe(11);
    for (const split of [...summary.sites, summary.heldOut]) {
      const clinical = readCsv(path.join(outDir, split.clinicalCsv), { indexColumn: 0 });
      expect(clinical.shape[0]).toBe(split.patients);
      expect(fs.readFileSync(path.join(outDir, split.demographicsCsv), 'utf8'))
        .toBe(fs.readFileSync(path.join(outDir, split.clinicalCsv), 'utf8'));
      const responders = clinical.rows.filter((r) => r[clinical.header.indexOf('responder')] === '1').length;
      expect(responders).toBe(split.responders);
    }
    const heldOutSites = new Set(readCsv(path.join(outDir, summary.heldOut.clinicalCsv), { indexColumn: 0 }).rows.map((r) => r[0]));
    expect(heldOutSites.size).toBeGreaterThan(1);
  });

  test('every generated DICOM slice gives the same pixels through daikon, dicom-parser and the NIfTI copy', () => {
    const dicomRoot = path.join(outDir, 'Rouen', 'dicom', 'ROUEN-001');
    const nifti = openMedicalFolder(path.join(outDir, 'Rouen', 'medical-folder')).loadSubject('ROUEN-001');
    const seriesDirs = fs.readdirSync(dicomRoot).sort();
    expect(seriesDirs).toEqual(['01_t1_se_tra', '02_t1_se_tra_post_gd', '03_t2_tse_tra', '04_t2_flair_tra', '05_RTDOSE']);
    const modalityOf = ['T1', 'T1ce', 'T2', 'FLAIR'];
    seriesDirs.slice(0, 4).forEach((seriesDir, m) => {
      const expected = nifti.images[modalityOf[m]].data;
      for (const name of fs.readdirSync(path.join(dicomRoot, seriesDir))) {
        const bytes = fs.readFileSync(path.join(dicomRoot, seriesDir, name));
        const image = daikon.Series.parseImage(new DataView(new Uint8Array(bytes).buffer));
        const dataSet = dicomParser.parseDicom(new Uint8Array(bytes));
        const pixel = dataSet.elements.x7fe00010;
        const k = (dataSet.intString('x00200013') ?? 0) - 1;
        const slice = Array.from(expected.subarray(k * 256, (k + 1) * 256));
        const viaParser = Array.from({ length: 256 }, (_, i) => bytes.readUInt16LE(pixel.dataOffset + 2 * i)
          * (dataSet.floatString('x00281053') ?? 1) + (dataSet.floatString('x00281052') ?? 0));
        expect(Array.from(image?.getInterpretedData() ?? [])).toEqual(slice);
        expect(viaParser).toEqual(slice);
      }
    });
    const doseBytes = fs.readFileSync(path.join(dicomRoot, '05_RTDOSE', 'RD0001.dcm'));
    const dose = dicomParser.parseDicom(new Uint8Array(doseBytes));
    const scaling = dose.floatString('x3004000e') ?? 0;
    const pixel = dose.elements.x7fe00010;
    nifti.images.dose.data.forEach((gy, i) => {
      expect(Math.abs(doseBytes.readUInt16LE(pixel.dataOffset + 2 * i) * scaling - gy)).toBeLessThanOrEqual(scaling / 2 + 1e-6);
    });
  });

  test('each site reads back as a DICOM site: series mapped to modalities, same volumes as the medical folder', () => {
    for (const split of [...summary.sites, summary.heldOut]) {
      const site = openDicomSite(path.join(outDir, split.dicomDir), { requireDose: true });
      const patients = site.loadAll();
      expect(site.issues).toEqual([]);
      expect(patients).toHaveLength(split.patients);
      const folder = openMedicalFolder(path.join(outDir, split.medicalFolderDir), {
        tabularFile: path.join(outDir, split.demographicsCsv), indexCol: 0,
      });
      expect(folder.issues).toEqual([]);
      expect(folder.subjects).toEqual(patients.map((p) => p.patientId));
      for (const p of patients) {
        const sample = folder.loadSubject(p.patientId);
        for (const m of ['T1', 'T1ce', 'T2', 'FLAIR'] as const) {
          expect(Array.from(p.modalities[m]?.volume.data ?? [])).toEqual(Array.from(sample.images[m].data));
          expect(p.modalities[m]?.volume.origin).toEqual(sample.images[m].origin.map((x) => Math.fround(x)));
        }
        expect(p.clinical).toEqual(sample.demographics);
        expect(encodeClinical(p.clinical)).toHaveLength(8);
      }
    }
  });

  test('medical folder: Fed-BioMed layout, shape and valid NIfTI headers', () => {
    const site = summary.sites[0];
    const folder = openMedicalFolder(path.join(outDir, site.medicalFolderDir), {
      tabularFile: path.join(outDir, site.demographicsCsv), indexCol: 0,
    });
    // With follow-ups, the centre's folder also holds the baseline delineation and the follow-up label maps (the
    // evolution task's inputs and targets).
    expect(folder.modalities).toEqual(['FLAIR', 'T1', 'T1ce', 'T2', 'dose', 'followup_injury', 'followup_seg', 'seg_baseline']);
    const grid = [16, 16, 8];
    expect(folder.shape()).toEqual({
      FLAIR: grid, T1: grid, T1ce: grid, T2: grid, dose: grid, followup_injury: grid, followup_seg: grid, seg_baseline: grid,
      demographics: [2, 9], num_modalities: 8,
    });
    const niftiFiles = filesUnder(outDir).filter((f) => f.endsWith('.nii.gz'));
    // Pre-treatment: 4 MRI + dose + 3 label maps; follow-ups: 4 MRI + 3 label maps; held-out counterfactuals: also their dose.
    expect(niftiFiles).toHaveLength(11 * 8 + 11 * 7 + 5 * 2 * 8);
    for (const f of niftiFiles) {
      const bytes = zlib.gunzipSync(fs.readFileSync(path.join(outDir, f)));
      expect(validateNiftiHeader(parseNiftiHeader(bytes, f), bytes.length)).toEqual([]);
    }
  });

  test('follow-ups: own technique for every split, the two others for the held-out set, readable as DICOM and NIfTI', () => {
    const followUps = readCsv(path.join(outDir, 'followup.csv'), { indexColumn: 'patient_id' });
    expect(followUps.shape[0]).toBe(11 + 5 * 2);
    for (const split of [...summary.sites, summary.heldOut]) {
      const folders = split.followUp!;
      expect(folders.patients).toBe(split.patients);
      const folder = openMedicalFolder(path.join(outDir, folders.medicalFolderDir), {
        tabularFile: path.join(outDir, folders.demographicsCsv), indexCol: 0,
      });
      expect(folder.issues).toEqual([]);
      expect(folder.modalities).toEqual(['FLAIR', 'T1', 'T1ce', 'T2', 'injury', 'seg', 'seg_baseline']);
      const site = openDicomSite(path.join(outDir, folders.dicomDir));
      const patients = site.loadAll();
      expect(site.issues).toEqual([]);
      expect(patients.map((p) => p.patientId)).toEqual(folder.subjects);
      for (const p of patients) {
        const nifti = folder.loadSubject(p.patientId);
        expect(Array.from(p.modalities.FLAIR?.volume.data ?? [])).toEqual(Array.from(nifti.images.FLAIR.data));
        const labels = new Set(nifti.images.seg.data);
        expect([...labels].every((l) => [0, 1, 2, 4].includes(l))).toBe(true);
      }
    }
    const counterfactuals = summary.heldOut.counterfactuals!;
    const perPatient = new Map<string, string[]>();
    for (const [rt, folders] of Object.entries(counterfactuals)) {
      if (folders.patients === 0) continue;
      const folder = openMedicalFolder(path.join(outDir, folders.medicalFolderDir), {
        tabularFile: path.join(outDir, folders.demographicsCsv), indexCol: 0,
      });
      expect(folder.issues).toEqual([]);
      expect(folder.modalities).toContain('dose');
      for (const id of folder.subjects) perPatient.set(id, [...(perPatient.get(id) ?? []), rt]);
      const csv = readCsv(path.join(outDir, folders.demographicsCsv), { indexColumn: 0 });
      expect(csv.header).not.toContain('responder');
      expect(csv.rows.every((r) => r[csv.header.indexOf('rt_type')] === rt)).toBe(true);
    }
    const own = readCsv(path.join(outDir, summary.heldOut.clinicalCsv), { indexColumn: 0 });
    expect(perPatient.size).toBe(5);
    for (const [i, row] of own.rows.entries()) {
      const others = perPatient.get(own.index![i]) ?? [];
      expect(others).toHaveLength(2);
      expect(others).not.toContain(row[own.header.indexOf('rt_type')]);
    }
  });

  test('same seed, same bytes; another seed, other data', () => {
    const again = path.join(root, 'b');
    generateCohort({ ...OPTIONS, outDir: again });
    expect(digestTree(again)).toEqual(digestTree(outDir));
    // Another seed, a smaller cohort: each patient has its own random streams, so compare file by file.
    const other = path.join(root, 'c');
    generateCohort({ ...OPTIONS, outDir: other, seed: 8, sites: [{ name: 'Nice', patients: 1 }], heldOut: 0 });
    const a = digestTree(outDir);
    const c = [...digestTree(other)].filter(([f]) => f.startsWith('Nice/'));
    expect(c.length).toBeGreaterThan(20);
    expect(c.filter(([f, digest]) => a.get(f) === digest).map(([f]) => f)).toEqual([]);
  });

  test('refuses to write into a non-empty folder and rejects bad options', () => {
    expect(() => generateCohort({ ...OPTIONS, outDir })).toThrow(`${outDir}: output folder is not empty`);
    expect(() => generateCohort({ outDir: path.join(root, 'd'), sites: [{ name: 'Lyon', patients: 1 }] })).toThrow(/unknown site "Lyon"/);
    expect(() => generateCohort({ outDir: path.join(root, 'e'), volumeSize: [2, 16, 8] })).toThrow(/volumeSize/);
  });
});

/** Area under the ROC curve of `scores` for boolean `labels`. */
function auc(scores: number[], labels: boolean[]): number {
  let wins = 0;
  let pairs = 0;
  scores.forEach((p, i) => {
    if (!labels[i]) return;
    scores.forEach((n, j) => {
      if (labels[j]) return;
      pairs++;
      wins += p > n ? 1 : p === n ? 0.5 : 0;
    });
  });
  return wins / pairs;
}

function spearman(a: number[], b: number[]): number {
  const rank = (x: number[]): number[] => {
    const r = new Array<number>(x.length);
    x.map((v, i) => [v, i]).sort((p, q) => p[0] - q[0]).forEach(([, i], k) => { r[i] = k; });
    return r;
  };
  const ra = rank(a);
  const rb = rank(b);
  const mean = (a.length - 1) / 2;
  let num = 0;
  let den = 0;
  ra.forEach((x, i) => { num += (x - mean) * (rb[i] - mean); den += (x - mean) ** 2; });
  return num / den;
}

describe('generative model', () => {
  const sampled = Object.fromEntries(['Caen', 'Rouen', 'Nice'].map((site) => [
    site, Array.from({ length: 800 }, (_, i) => samplePatient(11, SITE_PROFILES[site], site, i)),
  ]));

  test('the label depends on both the imaging and the clinical features', () => {
    const all = Object.values(sampled).flat();
    const labels = all.map((p) => p.outcome.responder);
    const imaging = all.map((p) => imagingLogit(p.tumour));
    const clinical = all.map((p, i) => p.outcome.logit - imaging[i]);
    expect(auc(imaging, labels)).toBeGreaterThan(0.75);
    expect(auc(clinical, labels)).toBeGreaterThan(0.7);
    expect(auc(all.map((p) => p.outcome.logit), labels)).toBeGreaterThan(auc(imaging, labels) + 0.03);
    expect(auc(all.map((p) => p.outcome.logit), labels)).toBeLessThan(0.95); // noisy, not a toy
  });

  test('sites differ in label balance and case mix (non-IID)', () => {
    const rate = (site: string): number => sampled[site].filter((p) => p.outcome.responder).length / 800;
    const share = (site: string, rt: string): number => sampled[site].filter((p) => p.clinical.rtType === rt).length / 800;
    const meanAge = (site: string): number => sampled[site].reduce((a, p) => a + p.clinical.age, 0) / 800;
    expect(rate('Nice')).toBeGreaterThan(rate('Caen') + 0.08);
    expect(rate('Caen')).toBeGreaterThan(rate('Rouen') + 0.08);
    expect(share('Nice', 'proton')).toBeGreaterThan(share('Caen', 'proton') + 0.15);
    expect(share('Rouen', 'carbon')).toBe(0);
    expect(meanAge('Rouen') - meanAge('Nice')).toBeGreaterThan(5);
  });

  test('the images show the tumour features, whatever the scanner', () => {
    // Oedema and enhancing-rim volumes measured on the pixels track the hidden features across all three scanners.
    const measured: { flair: number; oedema: number; rim: number; rimTrue: number }[] = [];
    for (const site of ['Caen', 'Rouen', 'Nice']) {
      for (let i = 0; i < 6; i++) {
        const s = sampled[site][i];
        const { images } = renderPatient(s, SITE_PROFILES[site].scanner, [32, 32, 16], new Prng(11, site, i, 'render'));
        const head = (data: Float32Array): Float32Array => data.filter((_, j) => images.T1.data[j] > 200);
        const flairMedian = quantile(head(images.FLAIR.data), 0.5);
        const ratio = images.T1ce.data.map((v, j) => v / Math.max(images.T1.data[j], 1));
        const ratioMedian = quantile(head(ratio), 0.5);
        let flair = 0;
        let rim = 0;
        images.T1.data.forEach((t1, j) => {
          if (t1 <= 200) return;
          if (images.FLAIR.data[j] > 1.5 * flairMedian) flair++;
          if (ratio[j] > 1.4 * ratioMedian) rim++;
        });
        const r = s.tumour.radiusMm;
        measured.push({
          flair, rim,
          oedema: r ** 3 * (1 + s.tumour.oedemaExtent) ** 3,
          rimTrue: r ** 3 * (1 - s.tumour.necrosisFraction) * s.tumour.rimEnhancement,
        });
      }
    }
    const flairRho = spearman(measured.map((m) => m.flair), measured.map((m) => m.oedema));
    const rimRho = spearman(measured.map((m) => m.rim), measured.map((m) => m.rimTrue));
    console.log(`image signal on 18 patients: Spearman FLAIR-bright volume vs oedema ${flairRho.toFixed(2)}, enhancing volume vs rim ${rimRho.toFixed(2)}`);
    expect(flairRho).toBeGreaterThan(0.8);
    expect(rimRho).toBeGreaterThan(0.8);
  });
});
