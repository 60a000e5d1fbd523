/**
 * Turns a row of the cohort's clinical / demographics CSV (as returned by the readers' `rowRecord`, the DICOM site's
 * `clinical` or the medical folder's `demographics`) into the numeric vector a model's clinical branch takes.
 * Continuous values are standardised with the generator's reference values; a missing value becomes 0 (the mean,
 * or "absent" for indicators).
 */
import { REFERENCE } from './patient-model';

export const CLINICAL_FEATURES = [
  'age_z', 'male', 'kps_z', 'mgmt_methylated', 'idh_mutant', 'rt_proton', 'rt_carbon', 'hypofractionated',
] as const;

type Row = Record<string, number | string | boolean | null | undefined>;

function numberOf(row: Row, column: string): number | null {
  const v = row[column];
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'boolean' ? Number(v) : Number(v);
  if (!Number.isFinite(n)) throw new Error(`clinical column "${column}" holds ${JSON.stringify(v)}, expected a number`);
  return n;
}

export function encodeClinical(row: Row): Float32Array {
  for (const column of ['age', 'sex', 'kps', 'mgmt_methylated', 'idh_mutant', 'rt_type', 'rt_dose_gy']) {
    if (!(column in row)) throw new Error(`clinical row lacks column "${column}" (has: ${Object.keys(row).join(', ')})`);
  }
  const age = numberOf(row, 'age');
  const kps = numberOf(row, 'kps');
  const dose = numberOf(row, 'rt_dose_gy');
  const rt = String(row.rt_type ?? '');
  return Float32Array.from([
    age === null ? 0 : (age - REFERENCE.age.mean) / REFERENCE.age.sd,
    row.sex === 'M' ? 1 : 0,
    kps === null ? 0 : (kps - REFERENCE.kps.mean) / REFERENCE.kps.sd,
    numberOf(row, 'mgmt_methylated') ?? 0,
    numberOf(row, 'idh_mutant') ?? 0,
    rt === 'proton' ? 1 : 0,
    rt === 'carbon' ? 1 : 0,
    dose !== null && dose < 60 ? 1 : 0,
  ]);
}
