/**
 * A hospital's DICOM dataset: a site folder with one folder per patient (each holding one folder per series) and a
 * clinical CSV whose index column holds the patient folder names.
 *
 *   site/
 *     clinical.csv              patient_id,age,sex,…
 *     <patient_id>/<series>/*.dcm
 *
 * Opening the site only lists folders and reads the CSV; patients are loaded on demand, and a patient whose series
 * are broken or incomplete is reported in `issues` and skipped.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CsvTable, readCsv, rowOf, rowRecord } from './csv';
import { DataIssue, DataReadError } from './errors';
import { scanDicomFolder } from './dicom-series';
import {
  classifierFromRules, DicomPatient, DicomPatientOptions, MRI_MODALITIES, missingModalities, readDicomPatient, scannedRoles, SeriesRole, SeriesRule,
} from './dicom-patient';

export const DEFAULT_CLINICAL_FILE = 'clinical.csv';

export interface DicomSiteOptions extends DicomPatientOptions {
  /** Clinical CSV; default `<dir>/clinical.csv` when it exists. */
  clinicalCsv?: string;
  /** Index column of the clinical CSV (name or position); default 0. */
  indexColumn?: string | number;
  /** Roles (modalities) a patient must have to be used; default the four MRI ones. */
  modalities?: readonly SeriesRole[];
  /** Also require an RT dose series. */
  requireDose?: boolean;
  /**
   * What `scan()` does with a patient holding an unreadable file: 'skip' the patient and report it in `issues`
   * (default), or 'fail' with a DataReadError listing every unreadable file.
   */
  unreadable?: 'skip' | 'fail';
}

export interface LoadedDicomPatient extends DicomPatient {
  /** The patient's clinical row (typed values), empty without a clinical CSV. */
  clinical: Record<string, number | string | boolean | null>;
}

export interface DicomSite {
  dir: string;
  clinical?: CsvTable;
  /** Patient folder names usable so far (with a clinical row when there is a CSV), sorted. */
  patients: string[];
  modalities: readonly SeriesRole[];
  issues: DataIssue[];
  /** Loads one patient; throws DataReadError naming the patient folder if it lacks a required series. */
  loadPatient(patientId: string): LoadedDicomPatient;
  /** Loads every patient, skipping (and reporting in `issues`) those that cannot be used. */
  loadAll(): LoadedDicomPatient[];
  /**
   * Checks every file and series of every patient without decoding pixels. Unreadable files are reported in
   * `issues` and their patients dropped from `patients` ('skip'), or thrown as one DataReadError ('fail'). Patients
   * lacking a required role (no such series, a series that cannot be assembled, no matching RT structure set ROI)
   * are dropped and reported whatever the policy. Returns the unreadable files and the incomplete patients.
   */
  scan(): DataIssue[];
}

/**
 * The operator's DICOM choices stored in a dataset's parameters (set at `node dataset add`): `series_rules`
 * (SeriesRule[]), `pet` ('suv' | 'activity'), `unreadable` ('skip' | 'fail'), and the caps `max_pixels` (per file),
 * `max_file_bytes`, `decode_timeout_ms` (per file). Invalid values are refused.
 */
export function dicomSiteRuleOptions(
  parameters: Record<string, unknown> | null | undefined,
): Pick<DicomSiteOptions, 'rules' | 'pet' | 'unreadable' | 'limits'> {
  const p = parameters ?? {};
  const out: Pick<DicomSiteOptions, 'rules' | 'pet' | 'unreadable' | 'limits'> = {};
  const limits: NonNullable<DicomSiteOptions['limits']> = {};
  for (const [key, field] of [['max_pixels', 'maxPixels'], ['max_file_bytes', 'maxFileBytes'], ['decode_timeout_ms', 'timeoutMs']] as const) {
    const value = p[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new Error(`dataset parameter ${key} must be a positive integer, not ${JSON.stringify(value)}`);
    }
    limits[field] = value;
  }
  if (Object.keys(limits).length > 0) out.limits = limits;
  if (p['series_rules'] !== undefined) {
    const rules = p['series_rules'];
    if (!Array.isArray(rules) || !rules.every((r) => r && typeof r === 'object' && typeof (r as SeriesRule).role === 'string')) {
      throw new Error('dataset parameter series_rules must be a list of {role, modality?, description?, tags?}');
    }
    classifierFromRules(rules as SeriesRule[]); // refuses bad patterns now
    out.rules = rules as SeriesRule[];
  }
  if (p['pet'] !== undefined) {
    if (p['pet'] !== 'suv' && p['pet'] !== 'activity') throw new Error(`dataset parameter pet must be "suv" or "activity", not ${JSON.stringify(p['pet'])}`);
    out.pet = p['pet'];
  }
  if (p['unreadable'] !== undefined) {
    if (p['unreadable'] !== 'skip' && p['unreadable'] !== 'fail') {
      throw new Error(`dataset parameter unreadable must be "skip" or "fail", not ${JSON.stringify(p['unreadable'])}`);
    }
    out.unreadable = p['unreadable'];
  }
  return out;
}

export function openDicomSite(dir: string, options: DicomSiteOptions = {}): DicomSite {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new DataReadError(dir, 'DICOM site folder not found');
  const modalities = options.modalities ?? MRI_MODALITIES;
  const issues: DataIssue[] = [];
  const csvPath = options.clinicalCsv ?? path.join(dir, DEFAULT_CLINICAL_FILE);
  const clinical = options.clinicalCsv !== undefined || fs.existsSync(csvPath)
    ? readCsv(csvPath, { indexColumn: options.indexColumn ?? 0 })
    : undefined;
  const folders = fs.readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  if (folders.length === 0) throw new DataReadError(dir, 'no patient folders in DICOM site folder');
  let patients = folders;
  if (clinical) {
    const known = new Set(clinical.index);
    for (const f of folders.filter((f) => !known.has(f))) {
      issues.push({ path: path.join(dir, f), message: `${path.join(dir, f)}: patient folder has no row in ${csvPath}` });
    }
    patients = folders.filter((f) => known.has(f));
  }

  const loadPatient = (patientId: string): LoadedDicomPatient => {
    const patientDir = path.join(dir, patientId);
    const patient = readDicomPatient(patientDir, options);
    const missing = missingModalities(patient, modalities);
    if (missing.length > 0 || (options.requireDose && !patient.dose)) {
      const lacking = [...missing, ...(options.requireDose && !patient.dose ? ['RTDOSE'] : [])];
      const why = patient.issues.map((i) => i.message).join('; ');
      throw new DataReadError(patientDir, `patient lacks ${lacking.join(', ')}${why ? ` (${why})` : ''}`);
    }
    const row = clinical ? rowOf(clinical, patientId) : -1;
    return { ...patient, clinical: clinical && row >= 0 ? rowRecord(clinical, row) : {} };
  };

  const site: DicomSite = {
    dir,
    clinical,
    patients,
    modalities,
    issues,
    loadPatient,
    loadAll() {
      const loaded: LoadedDicomPatient[] = [];
      for (const id of site.patients) {
        try {
          const patient = loadPatient(id);
          issues.push(...patient.issues);
          loaded.push(patient);
        } catch (error) {
          const where = path.join(dir, id);
          issues.push({ path: where, message: error instanceof Error ? error.message : `${where}: ${String(error)}` });
        }
      }
      return loaded;
    },
    scan() {
      const found: DataIssue[] = [];
      const broken: DataIssue[] = [];
      const unusable = new Set<string>();
      const incomplete: DataIssue[] = [];
      for (const id of site.patients) {
        const patientDir = path.join(dir, id);
        const scanned = scanDicomFolder(patientDir, options.limits);
        for (const { notAnImage, ...issue } of scanned.files) {
          found.push(issue);
          // A stray file (not DICOM, or a DICOM object without pixels) is reported but leaves the series whole.
          if (notAnImage) continue;
          broken.push(issue);
          unusable.add(id);
        }
        if (unusable.has(id)) continue;
        // The roles the plan needs, from the headers: a patient lacking one is skipped now, not when a round reaches it.
        const { roles, issues: why } = scannedRoles(scanned, options);
        const lacking = [...modalities.filter((m) => !roles.has(m)), ...(options.requireDose && !roles.has('RTDOSE') ? ['RTDOSE'] : [])];
        if (lacking.length > 0) {
          unusable.add(id);
          const reasons = why.map((i) => i.message).join('; ');
          incomplete.push({ path: patientDir, message: `${patientDir}: patient lacks ${lacking.join(', ')}${reasons ? ` (${reasons})` : ''} (patient skipped)` });
        }
      }
      if (broken.length > 0 && options.unreadable === 'fail') {
        throw new DataReadError(dir, `${broken.length} unreadable DICOM file(s): ${broken.map((i) => i.message).join('; ')}`);
      }
      for (const issue of found) {
        issues.push({ path: issue.path, message: `${issue.message} (${broken.includes(issue) ? 'patient skipped' : 'ignored'})` });
      }
      issues.push(...incomplete);
      site.patients = site.patients.filter((id) => !unusable.has(id));
      return [...found, ...incomplete];
    },
  };
  return site;
}

/**
 * Registry shape of a DICOM site, in the form Fed-BioMed gives a medical-folder dataset: the dims of each modality
 * of the first usable patient, the clinical table's [rows, columns] and the number of modalities.
 */
export function dicomSiteShape(site: DicomSite): Record<string, number[] | number | null> {
  for (const id of site.patients) {
    let patient: LoadedDicomPatient;
    try {
      patient = site.loadPatient(id);
    } catch {
      continue;
    }
    const shape: Record<string, number[] | number | null> = {};
    for (const m of site.modalities) shape[m] = [...(patient.modalities[m]?.volume.dims ?? [])];
    let count = site.modalities.length;
    if (patient.dose) {
      shape.RTDOSE = [...patient.dose.volume.dims];
      count++;
    }
    shape.demographics = site.clinical ? [...site.clinical.shape] : null;
    shape.num_modalities = count;
    return shape;
  }
  throw new DataReadError(site.dir, 'no usable patient in DICOM site folder');
}
