/**
 * Notebook 2: inspect the data a hospital holds (run it as the hospital would: everything stays local).
 *   npx ts-node --transpile-only examples/notebooks/02-inspect-data.ts
 * Uses the notebooks' cohort in ./notebook-output (generated on first use).
 */
import * as path from 'path';
import { readCsv, rowRecord, openDicomSite } from 'fedbiomed-ts';
import { glioResponsePlan } from '../glioblastoma/plan';
import { openSplit } from '../glioblastoma/datasets';
import { COHORT_DIR, ensureCohort, runNotebook, show, step, table } from './notebook';

runNotebook(async () => {
  step('The cohort: three centres and a held-out set');
  const cohort = ensureCohort();
  table([['split', 'patients', 'responders', 'conventional', 'proton', 'carbon'],
    ...[...cohort.sites, cohort.heldOut].map((s) => [s.name, s.patients, s.responders, s.rtTypes.conventional, s.rtTypes.proton, s.rtTypes.carbon])]);
  show(`  volumes ${cohort.volumeSize.join(' x ')} voxels of ${cohort.spacingMm.join(' x ')} mm`);

  step('Clinical records differ from centre to centre (case mix: the data are not identically distributed)');
  const rows: (string | number)[][] = [['site', 'mean age', 'mean KPS', 'MGMT methylated', 'IDH mutant', '40 Gy schedule']];
  for (const s of cohort.sites) {
    const csv = readCsv(path.join(COHORT_DIR, s.clinicalCsv), { indexColumn: 0 });
    const recs = csv.rows.map((_, i) => rowRecord(csv, i));
    const mean = (k: string): number => recs.reduce((a, r) => a + Number(r[k]), 0) / recs.length;
    rows.push([s.name, mean('age'), mean('kps'), mean('mgmt_methylated'), mean('idh_mutant'), recs.filter((r) => Number(r['rt_dose_gy']) < 60).length / recs.length]);
  }
  table(rows);

  step('One patient of each centre as its DICOM series (each centre names its series its own way)');
  for (const s of cohort.sites) {
    const site = openDicomSite(path.join(COHORT_DIR, s.dicomDir));
    const patient = site.loadPatient(site.patients[0]);
    show(`  ${s.name} ${patient.patientId}:`);
    for (const [modality, series] of Object.entries(patient.modalities)) {
      if (!series) continue;
      const v = series.volume;
      let lo = Infinity;
      let hi = -Infinity;
      for (const x of v.data) {
        lo = Math.min(lo, x);
        hi = Math.max(hi, x);
      }
      show(`    ${modality.padEnd(5)} "${series.seriesDescription}" ${v.dims.join('x')} @ ${v.spacing.map((x) => x.toFixed(1)).join('x')} mm, values ${lo}..${hi}`);
    }
    if (patient.dose) show(`    dose  ${patient.dose.volume.dims.join('x')}, max ${Math.max(...patient.dose.volume.data).toFixed(1)} Gy`);
  }

  step('What the network sees: the plan\'s preprocessing applied to each centre\'s DICOM folder');
  const spec = glioResponsePlan({ volumeSize: cohort.volumeSize });
  for (const s of cohort.sites) {
    const data = openSplit(spec, COHORT_DIR, s);
    const sample = data.sample(0);
    const img = sample.image?.data ?? new Float32Array();
    const mean = img.reduce((a, b) => a + b, 0) / img.length;
    const std = Math.sqrt(img.reduce((a, b) => a + (b - mean) ** 2, 0) / img.length);
    show(`  ${s.name}: ${data.size} samples; image [${sample.image?.shape.join(', ')}] (channels = modality x slice), ` +
      `mean ${mean.toFixed(2)} std ${std.toFixed(2)}; clinical [${Array.from(sample.tabular ?? [], (v) => v.toFixed(2)).join(', ')}]; label ${sample.target}`);
  }

  step('Label balance per centre (what a model trained at one centre learns as its prior)');
  for (const s of [...cohort.sites, cohort.heldOut]) {
    const share = s.responders / s.patients;
    show(`  ${s.name.padEnd(8)} ${'#'.repeat(Math.round(share * 40)).padEnd(40, '.')} ${(100 * share).toFixed(0)}% responders`);
  }
});
