/**
 * A patient folder holding several DICOM series (one sub-folder each): the MRI series are mapped to the modalities
 * T1, T1ce, T2 and FLAIR from their SeriesDescription, and an RT Dose series (Modality RTDOSE) is kept as the dose
 * map. A broken or unrecognised series is reported, not fatal: the caller decides whether the patient is usable.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DataIssue, DataReadError, issueFrom } from './errors';
import { DicomReadLimits, DicomSeries, readDicomSeries } from './dicom-series';

export const MRI_MODALITIES = ['T1', 'T1ce', 'T2', 'FLAIR'] as const;
export type MriModality = (typeof MRI_MODALITIES)[number];
export type SeriesRole = MriModality | 'RTDOSE';

export interface DicomPatient {
  dir: string;
  patientId: string;
  modalities: Partial<Record<MriModality, DicomSeries>>;
  dose?: DicomSeries;
  /** Series that were read but match no modality (e.g. localisers), by folder and description. */
  unmatched: { dir: string; description: string }[];
  issues: DataIssue[];
}

export interface DicomPatientOptions {
  /** Maps a series to its role; defaults to `classifySeries`. Return null to ignore the series. */
  classify?: (seriesDescription: string, dicomModality: string) => SeriesRole | null;
  /** Size caps and decoding deadline for every file. */
  limits?: DicomReadLimits;
}

const CONTRAST = /(gado|gad\b|\bgd\b|[_\s-]gd|gd[_\s-]|\+\s*c\b|\bc\s*\+|\bpost\b|post[_\s-]|contrast|\bce\b|t1ce|t1c\b|\bdota|\binj|avec)/;
const NO_CONTRAST = /(\bpre\b|pre[_\s-]?(contrast|gd|gado|inj)|sans|without|native)/;

/**
 * The role of a series from its description, for the usual naming habits: "FLAIR", "t2_flair_tra" → FLAIR;
 * "T1 GADO", "AX T1 C+", "t1_se_tra_post_gd", "T1ce" → T1ce; "T1 SE", "t1_mprage" → T1; "T2 TSE" → T2.
 * Any series whose DICOM Modality is RTDOSE is the dose map.
 */
export function classifySeries(seriesDescription: string, dicomModality: string): SeriesRole | null {
  if (dicomModality.toUpperCase() === 'RTDOSE') return 'RTDOSE';
  const d = ` ${seriesDescription.toLowerCase()} `;
  if (d.includes('flair')) return 'FLAIR';
  const t1 = /t1|mprage|spgr|bravo|vibe/.test(d);
  if (t1) return CONTRAST.test(d) && !NO_CONTRAST.test(d) ? 'T1ce' : 'T1';
  if (d.includes('t2')) return 'T2';
  return null;
}

/** Reads every series sub-folder of a patient folder. Throws only if the folder itself cannot be listed. */
export function readDicomPatient(dir: string, options: DicomPatientOptions = {}): DicomPatient {
  const classify = options.classify ?? classifySeries;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    throw new DataReadError(dir, `cannot list patient folder (${(error as Error).message})`);
  }
  const patient: DicomPatient = { dir, patientId: path.basename(dir), modalities: {}, unmatched: [], issues: [] };
  const seriesDirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
  if (seriesDirs.length === 0) patient.issues.push({ path: dir, message: `${dir}: no series folders in patient folder` });
  const ids = new Set<string>();
  for (const name of seriesDirs) {
    const seriesDir = path.join(dir, name);
    let series: DicomSeries;
    try {
      series = readDicomSeries(seriesDir, options.limits);
    } catch (error) {
      patient.issues.push(issueFrom(seriesDir, error));
      continue;
    }
    if (series.patientId) ids.add(series.patientId);
    const role = classify(series.seriesDescription, series.modality);
    if (role === null) {
      patient.unmatched.push({ dir: seriesDir, description: series.seriesDescription });
    } else if (role === 'RTDOSE') {
      if (patient.dose) patient.issues.push({ path: seriesDir, message: `${seriesDir}: second RT dose ignored` });
      else patient.dose = series;
    } else if (patient.modalities[role]) {
      patient.issues.push({
        path: seriesDir,
        message: `${seriesDir}: second ${role} series ("${series.seriesDescription}") ignored, kept ${patient.modalities[role]?.dir}`,
      });
    } else {
      patient.modalities[role] = series;
    }
  }
  if (ids.size > 1) patient.issues.push({ path: dir, message: `${dir}: series of different PatientIDs (${[...ids].join(', ')})` });
  if (ids.size === 1) patient.patientId = [...ids][0];
  return patient;
}

/** The modalities in `required` that the patient lacks (empty when complete). */
export function missingModalities(patient: DicomPatient, required: readonly MriModality[]): MriModality[] {
  return required.filter((m) => !patient.modalities[m]);
}
