/**
 * A patient folder holding DICOM series, in one sub-folder each or all mixed (as a PACS export writes them): files
 * are grouped by SeriesInstanceUID, and each series is given a role, the name a plan uses for it. By default the
 * MRI series are mapped to T1, T1ce, T2 and FLAIR from their SeriesDescription and an RT Dose series (Modality
 * RTDOSE) is kept as the dose map; the node operator can set other rules (SeriesDescription patterns, Modality,
 * any tag), e.g. CT (values in HU through the rescale) and PT (values in SUVbw, see dicom-pet.ts). A broken or
 * unrecognised series is reported, not fatal: the caller decides whether the patient is usable.
 */
import type * as dicomParser from 'dicom-parser';
import * as path from 'path';
import { DataIssue } from './errors';
import { DicomFolderScan, DicomReadLimits, DicomSeries, readDicomFolder } from './dicom-series';
import { stringTag } from './dicom-file';
import { suvBodyWeightFactor, suvParameters } from './dicom-pet';
import { rasterizeRoi, readRtStruct, RtRoi, RtStructureSet } from './dicom-rtstruct';
import { DicomSegmentation, readSegmentation, segmentationOnGrid } from './dicom-seg';

export const MRI_MODALITIES = ['T1', 'T1ce', 'T2', 'FLAIR'] as const;
export type MriModality = (typeof MRI_MODALITIES)[number];
/** The name a plan gives a series: 'T1', 'FLAIR', 'CT', 'PET', 'RTDOSE', … */
export type SeriesRole = string;

/**
 * One operator rule: a series takes `role` when every given condition holds. `description` and tag values are
 * regular expressions (case-insensitive) matched against the trimmed text; `modality` is the DICOM Modality
 * (exact, case-insensitive); `tags` keys are 8 hex digits (group then element, e.g. "00180087" MagneticFieldStrength).
 */
export interface SeriesRule {
  role: SeriesRole;
  modality?: string;
  description?: string;
  tags?: Record<string, string>;
  /**
   * With modality RTSTRUCT: the ROI name pattern (case-insensitive regular expression) whose contours become a
   * 0/1 mask on the voxel grid of the image series the structure set references.
   */
  roi?: string;
  /**
   * With modality SEG (DICOM Segmentation): the segment label pattern (case-insensitive regular expression) whose
   * segments become a 0/1 mask; without it, the label map of segment numbers. On the series the SEG references.
   */
  segment?: string;
}

export interface DicomPatient {
  dir: string;
  patientId: string;
  /** Series by role (the RT dose map, role RTDOSE, is in `dose`). */
  modalities: Partial<Record<SeriesRole, DicomSeries>>;
  dose?: DicomSeries;
  /** Series that were read but match no role (e.g. localisers), by folder and description. */
  unmatched: { dir: string; description: string }[];
  issues: DataIssue[];
}

export interface DicomPatientOptions {
  /** Maps a series to its role; defaults to `classifySeries`. Return null to ignore the series. */
  classify?: (seriesDescription: string, dicomModality: string, header: dicomParser.DataSet) => SeriesRole | null;
  /** Operator rules, tried in order (the first that matches gives the role); replace `classify` when given. */
  rules?: SeriesRule[];
  /** PET (Modality PT) values: SUV body weight (default) or the stored activity concentration (Bq/mL). */
  pet?: 'suv' | 'activity';
  /** Size caps and decoding deadline for every file. */
  limits?: DicomReadLimits;
}

/** A classifier from operator rules; invalid patterns are refused when the rules are set, not when a series comes. */
export function classifierFromRules(rules: SeriesRule[]): NonNullable<DicomPatientOptions['classify']> {
  const compiled = rules.map((rule, i) => {
    const pattern = (what: string, source: string) => {
      try {
        return new RegExp(source, 'i');
      } catch (error) {
        throw new Error(`series rule ${i + 1} (${rule.role}): invalid ${what} pattern "${source}": ${(error as Error).message}`, { cause: error });
      }
    };
    const tags = Object.entries(rule.tags ?? {}).map(([key, source]) => {
      if (!/^[0-9a-fA-F]{8}$/.test(key)) throw new Error(`series rule ${i + 1} (${rule.role}): tag "${key}" is not 8 hex digits`);
      return { group: parseInt(key.slice(0, 4), 16), element: parseInt(key.slice(4), 16), pattern: pattern(`tag ${key}`, source) };
    });
    if (!rule.role) throw new Error(`series rule ${i + 1} has no role`);
    return {
      role: rule.role,
      modality: rule.modality?.toUpperCase(),
      description: rule.description === undefined ? undefined : pattern('description', rule.description),
      tags,
    };
  });
  return (description, modality, header) => {
    for (const rule of compiled) {
      if (rule.modality !== undefined && rule.modality !== modality.toUpperCase()) continue;
      if (rule.description && !rule.description.test(description)) continue;
      if (!rule.tags.every((t) => t.pattern.test(stringTag(header, t.group, t.element)))) continue;
      return rule.role;
    }
    return null;
  };
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

/** Reads every DICOM file under a patient folder, series by series. Throws only if the folder cannot be listed. */
export function readDicomPatient(dir: string, options: DicomPatientOptions = {}): DicomPatient {
  const classify = options.rules ? classifierFromRules(options.rules) : options.classify ?? classifySeries;
  const folder = readDicomFolder(dir, options.limits);
  const patient: DicomPatient = { dir, patientId: path.basename(dir), modalities: {}, unmatched: [], issues: [...folder.issues] };
  if (folder.series.length === 0 && folder.issues.length === 0) {
    patient.issues.push({ path: dir, message: `${dir}: no DICOM series in patient folder` });
  }
  const ids = new Set<string>();
  for (const series of folder.series) {
    if (series.patientId) ids.add(series.patientId);
    const role = classify(series.seriesDescription, series.modality, series.header);
    if (role === null) {
      patient.unmatched.push({ dir: series.dir, description: series.seriesDescription });
      continue;
    }
    if (series.modality.toUpperCase() === 'PT' && (options.pet ?? 'suv') === 'suv') {
      try {
        const factor = suvBodyWeightFactor(suvParameters(series.header));
        for (let i = 0; i < series.volume.data.length; i++) series.volume.data[i] *= factor;
      } catch (error) {
        patient.issues.push({ path: series.dir, message: `${series.dir}: PET series "${series.seriesDescription}" not usable as SUV: ${(error as Error).message}` });
        continue;
      }
    }
    if (role === 'RTDOSE') {
      if (patient.dose) patient.issues.push({ path: series.dir, message: `${series.dir}: second RT dose ignored` });
      else patient.dose = series;
    } else if (patient.modalities[role]) {
      patient.issues.push({
        path: series.dir,
        message: `${series.dir}: second ${role} series ("${series.seriesDescription}") ignored, kept ${patient.modalities[role]?.dir}`,
      });
    } else {
      patient.modalities[role] = series;
    }
  }
  addStructureMasks(patient, folder.structureSets, folder.series, options.rules ?? []);
  addSegmentations(patient, folder.segmentations, folder.series, options.rules ?? []);
  if (ids.size > 1) patient.issues.push({ path: dir, message: `${dir}: series of different PatientIDs (${[...ids].join(', ')})` });
  if (ids.size === 1) patient.patientId = [...ids][0];
  return patient;
}

/*
 * How RTSTRUCT and SEG rules pick from a file, one definition for reading a patient (readDicomPatient) and for the
 * header scan that predicts its roles (scannedRoles), so the two cannot disagree.
 */

/** The RTSTRUCT rules: each takes the first ROI whose name matches its `roi` pattern. */
function structureRules(rules: readonly SeriesRule[]): SeriesRule[] {
  return rules.filter((r) => r.modality?.toUpperCase() === 'RTSTRUCT' && r.roi !== undefined);
}

/** The ROI of `set` a structure rule takes, if any. */
function roiTaken(rule: SeriesRule, set: RtStructureSet): RtRoi | undefined {
  const pattern = new RegExp(rule.roi as string, 'i');
  return set.rois.find((r) => pattern.test(r.name));
}

/** The SEG rules. */
function segmentationRules(rules: readonly SeriesRule[]): SeriesRule[] {
  return rules.filter((r) => r.modality?.toUpperCase() === 'SEG');
}

/**
 * What a SEG rule takes from a segmentation: null when the file's description does not match the rule's, or none of
 * its segments' labels matches the rule's `segment`; else the segments `segment` chose (`chosen` absent: the rule
 * names none, the whole label map).
 */
function segmentsTaken(rule: SeriesRule, seg: DicomSegmentation): { chosen?: DicomSegmentation['segments'] } | null {
  if (rule.description !== undefined && !new RegExp(rule.description, 'i').test(seg.seriesDescription)) return null;
  if (rule.segment === undefined) return {};
  const pattern = new RegExp(rule.segment, 'i');
  const chosen = seg.segments.filter((s) => pattern.test(s.label));
  return chosen.length > 0 ? { chosen } : null;
}

/** Masks for the RTSTRUCT rules: the first ROI matching each rule, on the series its structure set references. */
function addStructureMasks(patient: DicomPatient, files: string[], series: DicomSeries[], rules: SeriesRule[]): void {
  const maskRules = structureRules(rules);
  for (const file of files) {
    try {
      const set = readRtStruct(file);
      for (const rule of maskRules) {
        if (patient.modalities[rule.role]) continue;
        const roi = roiTaken(rule, set);
        if (!roi) continue;
        const reference = series.find((s) => s.seriesInstanceUid === set.referencedSeriesUid);
        if (!reference) {
          patient.issues.push({ path: file, message: `${file}: ROI "${roi.name}" references series ${set.referencedSeriesUid ?? '(none)'}, not found` });
          continue;
        }
        const data = rasterizeRoi(roi, reference.volume, file);
        patient.modalities[rule.role] = {
          ...reference,
          files: [file],
          modality: 'RTSTRUCT',
          seriesDescription: roi.name,
          volume: { ...reference.volume, data },
        };
      }
    } catch (error) {
      patient.issues.push({ path: file, message: error instanceof Error ? error.message : `${file}: ${String(error)}` });
    }
  }
}

/**
 * Label maps (or masks) for the SEG rules: each rule takes the first segmentation file that matches it (its
 * description pattern, and with `segment` a segment whose label matches), on the series the file references.
 */
function addSegmentations(patient: DicomPatient, files: string[], series: DicomSeries[], rules: SeriesRule[]): void {
  const segRules = segmentationRules(rules);
  for (const file of files) {
    try {
      const seg = readSegmentation(file);
      for (const rule of segRules) {
        if (patient.modalities[rule.role]) continue;
        const taken = segmentsTaken(rule, seg);
        if (!taken) continue;
        const { chosen } = taken;
        const reference = series.find((s) => s.seriesInstanceUid === seg.referencedSeriesUid);
        if (!reference) {
          patient.issues.push({ path: file, message: `${file}: segmentation references series ${seg.referencedSeriesUid ?? '(none)'}, not found` });
          continue;
        }
        const data = segmentationOnGrid(seg, reference.volume, chosen?.map((s) => s.number));
        patient.modalities[rule.role] = {
          ...reference,
          files: [file],
          modality: 'SEG',
          seriesDescription: chosen ? chosen.map((s) => s.label).join(', ') : seg.seriesDescription,
          volume: { ...reference.volume, data },
        };
      }
    } catch (error) {
      patient.issues.push({ path: file, message: error instanceof Error ? error.message : `${file}: ${String(error)}` });
    }
  }
}

/**
 * The roles a scanned patient folder (scanDicomFolder: headers only) would have once read, as readDicomPatient
 * gives them: series classified, PET usable as SUV when SUV is asked for, RTSTRUCT masks whose ROI matches a rule
 * and SEG label maps whose description/segment match a rule, when their referenced series is there. What keeps a
 * series from its role is in `issues`.
 */
export function scannedRoles(scan: DicomFolderScan, options: DicomPatientOptions = {}): { roles: Set<SeriesRole>; issues: DataIssue[] } {
  const classify = options.rules ? classifierFromRules(options.rules) : options.classify ?? classifySeries;
  const roles = new Set<SeriesRole>();
  const issues: DataIssue[] = [...scan.seriesIssues];
  for (const series of scan.series) {
    const role = classify(series.seriesDescription, series.modality, series.header);
    if (role === null) continue;
    if (series.modality.toUpperCase() === 'PT' && (options.pet ?? 'suv') === 'suv') {
      try {
        suvBodyWeightFactor(suvParameters(series.header));
      } catch (error) {
        issues.push({ path: series.dir, message: `${series.dir}: PET series "${series.seriesDescription}" not usable as SUV: ${(error as Error).message}` });
        continue;
      }
    }
    roles.add(role);
  }
  const maskRules = structureRules(options.rules ?? []);
  for (const file of maskRules.length > 0 ? scan.structureSets : []) {
    try {
      const set = readRtStruct(file);
      if (!scan.series.some((s) => s.seriesInstanceUid === set.referencedSeriesUid)) continue;
      for (const rule of maskRules) {
        if (roiTaken(rule, set)) roles.add(rule.role);
      }
    } catch (error) {
      issues.push({ path: file, message: error instanceof Error ? error.message : `${file}: ${String(error)}` });
    }
  }
  const segRules = segmentationRules(options.rules ?? []);
  for (const file of segRules.length > 0 ? scan.segmentations : []) {
    try {
      const seg = readSegmentation(file);
      if (!scan.series.some((s) => s.seriesInstanceUid === seg.referencedSeriesUid)) continue;
      for (const rule of segRules) {
        if (segmentsTaken(rule, seg)) roles.add(rule.role);
      }
    } catch (error) {
      issues.push({ path: file, message: error instanceof Error ? error.message : `${file}: ${String(error)}` });
    }
  }
  return { roles, issues };
}

/** The modalities in `required` that the patient lacks (empty when complete); RTDOSE is the patient's dose map. */
export function missingModalities(patient: DicomPatient, required: readonly SeriesRole[]): SeriesRole[] {
  return required.filter((m) => !patient.modalities[m] && !(m === 'RTDOSE' && patient.dose));
}
