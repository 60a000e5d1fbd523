/**
 * Synthetic glioblastoma cohort: three cancer centres (Caen, Rouen, Nice) and a held-out set, each patient with
 * pre-treatment T1, T1ce, T2 and FLAIR MRI, a radiotherapy dose map, clinical data and a responder label, written
 *   - as DICOM (one folder per patient, one sub-folder per series, RT Dose as one multi-frame file) with a
 *     clinical CSV, and
 *   - as Fed-BioMed's medical-folder layout (NIfTI per subject and modality) with a demographics CSV.
 * The generative model is described in README.md (same folder). The same seed always gives the same bytes.
 *
 *   outDir/
 *     cohort.json                  what was generated (seed, sizes, folders, label balance)
 *     ground-truth.csv             the hidden tumour features and label probabilities (for analysis, not training)
 *     <Site>/dicom/clinical.csv    index column patient_id
 *     <Site>/dicom/<patient>/<NN_series>/IM0001.dcm …, <NN_RTDOSE>/RD0001.dcm
 *     <Site>/medical-folder/demographics.csv
 *     <Site>/medical-folder/<patient>/<T1|T1ce|T2|FLAIR|dose>/<patient>_<modality>.nii.gz
 *     heldout/…                    the same, patients from all sites mixed (column `site`)
 */
import * as fs from 'fs';
import * as path from 'path';
import { deterministicUid, PatientInfo, SeriesInfo, StudyInfo, writeMrSeries, writeRtDose, writeNifti } from 'fedbiomed-ts';
import type { Vec3, Volume } from 'fedbiomed-ts';
import { imagingLogit, PatientSample, samplePatient } from './patient-model';
import { geometryFor, RenderedPatient, renderPatient } from './phantom';
import { diagnosisState, evolutionParameters, FollowUp, simulateFollowUp } from './tumour-evolution';
import { Prng } from './prng';
import { DEFAULT_SITES, Modality, MODALITY_ORDER, RT_TYPES, RtType, SiteProfile, siteProfile } from './sites';

export const DEFAULT_SEED = 42;
export const DEFAULT_HELD_OUT = 50;
export const DEFAULT_VOLUME_SIZE: Vec3 = [48, 48, 24];
export const HELD_OUT_DIR = 'heldout';
export const CLINICAL_CSV = 'clinical.csv';
export const DEMOGRAPHICS_CSV = 'demographics.csv';
/** Modality folder of the dose map in the medical-folder layout. */
export const DOSE_MODALITY = 'dose';
/** Follow-up (response-assessment) scans of each split, and the held-out set's counterfactual follow-ups. */
export const FOLLOW_UP_DIR = 'followup';
export const COUNTERFACTUAL_DIR = 'counterfactual';
/** Label-map folders of the follow-up medical folders (BraTS labels 1 necrosis, 2 oedema, 4 enhancing). */
export const SEGMENTATION_MODALITY = 'seg';
export const BASELINE_SEGMENTATION_MODALITY = 'seg_baseline';
/** Follow-up mask of radiation-injured healthy brain (1 = at least a quarter of the voxel). */
export const INJURY_MODALITY = 'injury';
/**
 * The pre-treatment medical folder of a cohort with follow-ups also holds, per patient, the baseline delineation and
 * the follow-up label maps (tumour, radiation injury): what a centre registers to train the evolution model.
 */
export const FOLLOW_UP_SEG_MODALITY = 'followup_seg';
export const FOLLOW_UP_INJURY_MODALITY = 'followup_injury';
export const FOLLOW_UP_CSV = 'followup.csv';

export interface CohortOptions {
  outDir: string;
  seed?: number | string;
  /** Sites and their sizes; default Caen 50, Rouen 40, Nice 60. Names must be Caen, Rouen or Nice. */
  sites?: { name: string; patients: number }[];
  /** Held-out patients, drawn from the configured sites at random; default 50. */
  heldOut?: number;
  /** Voxels [x, y, z] over a fixed 192 x 192 x 144 mm field of view; default 48 x 48 x 24 (4 x 4 x 6 mm). */
  volumeSize?: Vec3;
  /** Write DICOM and/or NIfTI (default both). */
  formats?: { dicom?: boolean; nifti?: boolean };
  /** Simulate and write follow-up MRI (and the held-out counterfactuals); default true. */
  followUp?: boolean;
  /** Called after each patient. */
  onProgress?: (done: number, total: number) => void;
}

export interface SplitSummary {
  /** Site name, or "heldout". */
  name: string;
  patients: number;
  responders: number;
  rtTypes: Record<RtType, number>;
  /** Folders and files, relative to outDir. */
  dicomDir: string;
  clinicalCsv: string;
  medicalFolderDir: string;
  demographicsCsv: string;
  /** The split's follow-up scans under its own technique (when follow-ups are generated). */
  followUp?: ScanFolders;
  /** Held-out only: follow-ups under the two other techniques, by technique (each patient in two of the three). */
  counterfactuals?: Record<RtType, ScanFolders>;
}

/** Where a set of scans is written, relative to outDir. */
export interface ScanFolders {
  patients: number;
  dicomDir: string;
  medicalFolderDir: string;
  demographicsCsv: string;
}

export interface CohortSummary {
  generator: string;
  seed: number | string;
  volumeSize: Vec3;
  spacingMm: Vec3;
  modalities: Modality[];
  sites: SplitSummary[];
  heldOut: SplitSummary;
  /** Index column of the clinical and demographics CSVs. */
  indexColumn: string;
  labelColumn: string;
  /** Follow-up volumes of every simulated follow-up (factual and counterfactual), relative to outDir. */
  followUpCsv?: string;
}

export const GENERATOR = 'fedbiomed-ts glioblastoma cohort v1';
const DEMOGRAPHICS_HEADER = [
  'patient_id', 'site', 'age', 'sex', 'kps', 'mgmt_methylated', 'idh_mutant', 'rt_type', 'rt_dose_gy', 'responder',
];
const FOLLOW_UP_HEADER = [
  'patient_id', 'split', 'site', 'rt_type', 'factual', 'day', 'volume_before_ml', 'volume_after_ml', 'volume_change',
  'necrosis_before_ml', 'necrosis_after_ml', 'radius_after_mm', 'oedema_extent_after', 'responder',
];
const GROUND_TRUTH_HEADER = [
  'patient_id', 'split', 'site', 'radius_mm', 'tumour_volume_ml', 'necrosis_fraction', 'rim_enhancement',
  'oedema_extent', 'centre_x_vox', 'centre_y_vox', 'centre_z_vox', 'imaging_logit', 'logit', 'p_responder', 'responder',
];
/** MR acquisition parameters written in each series (typical values, per modality). */
const ACQUISITION: Record<Modality, { repetitionTime: number; echoTime: number; inversionTime?: number; scanningSequence: string }> = {
  T1: { repetitionTime: 550, echoTime: 12, scanningSequence: 'SE' },
  T1ce: { repetitionTime: 550, echoTime: 12, scanningSequence: 'SE' },
  T2: { repetitionTime: 4500, echoTime: 100, scanningSequence: 'SE' },
  FLAIR: { repetitionTime: 9000, echoTime: 120, inversionTime: 2500, scanningSequence: 'IR' },
};

interface PlannedPatient {
  id: string;
  split: string;
  site: SiteProfile;
  stream: string;
  index: number;
}

function plan(seed: number | string, sites: { name: string; patients: number }[], heldOut: number): PlannedPatient[] {
  const planned: PlannedPatient[] = [];
  for (const s of sites) {
    const site = siteProfile(s.name);
    if (!Number.isInteger(s.patients) || s.patients < 1) throw new Error(`site ${s.name}: patients must be a positive integer`);
    for (let i = 0; i < s.patients; i++) {
      planned.push({ id: `${site.code}-${String(i + 1).padStart(3, '0')}`, split: site.name, site, stream: site.name, index: i });
    }
  }
  if (!Number.isInteger(heldOut) || heldOut < 0) throw new Error('heldOut must be a non-negative integer');
  for (let i = 0; i < heldOut; i++) {
    const site = siteProfile(sites[new Prng(seed, HELD_OUT_DIR, i, 'site').categorical(sites.map(() => 1))].name);
    planned.push({ id: `HOLD-${String(i + 1).padStart(3, '0')}`, split: HELD_OUT_DIR, site, stream: HELD_OUT_DIR, index: i });
  }
  return planned;
}

function prepareOutDir(outDir: string): void {
  if (fs.existsSync(outDir) && fs.readdirSync(outDir).length > 0) {
    throw new Error(`${outDir}: output folder is not empty; choose a new folder (a cohort is never written over other files)`);
  }
  fs.mkdirSync(outDir, { recursive: true });
}

function demographicsRow(p: PlannedPatient, sample: PatientSample): (string | number)[] {
  const c = sample.clinical;
  return [
    p.id, p.site.name, c.age, c.sex, c.kps, c.mgmtMethylated ? 1 : 0, c.idhMutant ? 1 : 0, c.rtType, c.rtDoseGy,
    sample.outcome.responder ? 1 : 0,
  ];
}

function groundTruthRow(p: PlannedPatient, sample: PatientSample, centre: Vec3): (string | number)[] {
  const t = sample.tumour;
  const f = (x: number, digits = 4): string => x.toFixed(digits);
  return [
    p.id, p.split, p.site.name, f(t.radiusMm, 2), f((4 / 3) * Math.PI * t.radiusMm ** 3 / 1000, 2), f(t.necrosisFraction),
    f(t.rimEnhancement), f(t.oedemaExtent), f(centre[0], 2), f(centre[1], 2), f(centre[2], 2), f(imagingLogit(t)),
    f(sample.outcome.logit), f(sample.outcome.probability), sample.outcome.responder ? 1 : 0,
  ];
}

function scanFolders(dir: string): ScanFolders {
  return {
    patients: 0,
    dicomDir: path.join(dir, 'dicom'),
    medicalFolderDir: path.join(dir, 'medical-folder'),
    demographicsCsv: path.join(dir, 'medical-folder', DEMOGRAPHICS_CSV),
  };
}

function followUpRow(p: PlannedPatient, sample: PatientSample, f: FollowUp, factual: boolean): (string | number)[] {
  const x = (v: number, digits = 3): string => v.toFixed(digits);
  return [
    p.id, p.split, p.site.name, f.rtType, factual ? 1 : 0, f.day, x(f.volumeBeforeMl), x(f.volumeAfterMl), x(f.volumeChange, 4),
    x(f.necrosisBeforeMl), x(f.necrosisAfterMl), x(f.tumour.radiusMm, 2), x(f.tumour.oedemaExtent, 3), sample.outcome.responder ? 1 : 0,
  ];
}

function csvText(header: string[], rows: (string | number)[][]): string {
  return [header, ...rows].map((r) => r.join(',')).join('\n') + '\n';
}

function safeName(text: string): string {
  return text.replace(/[^A-Za-z0-9+-]+/g, '_').replace(/^_+|_+$/g, '');
}

/** Which scan a DICOM study holds: the pre-treatment one (with the RT plan's dose) or a follow-up. */
interface DicomStudyKind {
  /** '' for the pre-treatment study (its UIDs predate follow-ups), else a key making its UIDs distinct. */
  key: string;
  description: string;
  /** Days after the pre-treatment study. */
  dayOffset: number;
  /** Technique of the dose map written with it; none for a follow-up of the patient's own plan. */
  doseOf?: RtType;
}
const PRE_TREATMENT_STUDY: DicomStudyKind = { key: '', description: 'Pre-treatment MRI and RT plan', dayOffset: 0 };

function writeDicomPatient(
  dir: string, p: PlannedPatient, sample: PatientSample, rendered: RenderedPatient, seed: number | string,
  kind: DicomStudyKind = { ...PRE_TREATMENT_STUDY, doseOf: sample.clinical.rtType },
): void {
  const uid = (...parts: (string | number)[]): string =>
    (kind.key ? deterministicUid(GENERATOR, seed, p.id, kind.key, ...parts) : deterministicUid(GENERATOR, seed, p.id, ...parts));
  const dates = new Prng(seed, p.stream, p.index, 'dates');
  const day = new Date(Date.UTC(2019, 0, 1) + (Math.floor(dates.uniform(0, 5 * 365)) + kind.dayOffset) * 86400000);
  const date = day.toISOString().slice(0, 10).replace(/-/g, '');
  const time = `${String(8 + Math.floor(dates.uniform(0, 10))).padStart(2, '0')}${String(Math.floor(dates.uniform(0, 60))).padStart(2, '0')}00`;
  const patient: PatientInfo = { id: p.id, name: `SYNTHETIC^${p.id}`, sex: sample.clinical.sex, age: sample.clinical.age };
  const study: StudyInfo = {
    uid: uid('study'), id: kind.key ? '2' : '1', date, time, description: kind.description,
  };
  // One frame of reference for all of a patient's scans: the follow-ups are registered to the planning MRI.
  const frameOfReferenceUid = deterministicUid(GENERATOR, seed, p.id, 'frame');
  const scanner = p.site.scanner;
  const seriesInfo = (number: number, description: string): SeriesInfo => ({
    uid: uid('series', number),
    number,
    description,
    frameOfReferenceUid,
    instanceUid: (k) => uid('instance', number, k),
    manufacturer: scanner.manufacturer,
    institution: p.site.institution,
  });
  MODALITY_ORDER.forEach((modality, m) => {
    const description = scanner.seriesNames[m];
    const number = m + 1;
    writeMrSeries(path.join(dir, `${String(number).padStart(2, '0')}_${safeName(description)}`), rendered.images[modality], {
      patient, study, series: seriesInfo(number, description),
      acquisition: { ...ACQUISITION[modality], fieldStrength: scanner.fieldStrength },
    });
  });
  if (!kind.doseOf) return;
  const doseNumber = MODALITY_ORDER.length + 1;
  writeRtDose(path.join(dir, `${String(doseNumber).padStart(2, '0')}_RTDOSE`, 'RD0001.dcm'), rendered.dose, {
    patient, study, series: seriesInfo(doseNumber, scanner.doseSeriesName),
    doseType: kind.doseOf === 'conventional' ? 'PHYSICAL' : 'EFFECTIVE',
  });
}

/**
 * Writes a patient's MRI as NIfTI, plus the dose map (`withDose`) and label maps (`labels`: folder name → volume,
 * uint8 BraTS labels) as further modality folders.
 */
function writeNiftiPatient(
  dir: string, p: PlannedPatient, rendered: RenderedPatient, withDose = true, labels: Record<string, Volume> = {},
): void {
  for (const modality of MODALITY_ORDER) {
    const folder = path.join(dir, modality);
    fs.mkdirSync(folder, { recursive: true });
    writeNifti(path.join(folder, `${p.id}_${modality}.nii.gz`), rendered.images[modality], {
      datatype: 'int16', description: `${GENERATOR} ${modality}`,
    });
  }
  writeLabelVolumes(dir, p, labels);
  if (!withDose) return;
  const folder = path.join(dir, DOSE_MODALITY);
  fs.mkdirSync(folder, { recursive: true });
  writeNifti(path.join(folder, `${p.id}_${DOSE_MODALITY}.nii.gz`), rendered.dose, { datatype: 'float32', description: `${GENERATOR} dose Gy` });
}

function writeLabelVolumes(dir: string, p: PlannedPatient, labels: Record<string, Volume>): void {
  for (const [name, volume] of Object.entries(labels)) {
    const folder = path.join(dir, name);
    fs.mkdirSync(folder, { recursive: true });
    writeNifti(path.join(folder, `${p.id}_${name}.nii.gz`), volume, { datatype: 'uint8', description: `${GENERATOR} ${name} BraTS labels` });
  }
}

/** Generates the cohort on disk and returns what was written (also saved as outDir/cohort.json). */
export function generateCohort(options: CohortOptions): CohortSummary {
  const seed = options.seed ?? DEFAULT_SEED;
  const sites = options.sites ?? DEFAULT_SITES;
  const heldOut = options.heldOut ?? DEFAULT_HELD_OUT;
  const volumeSize = options.volumeSize ?? DEFAULT_VOLUME_SIZE;
  if (volumeSize.some((n) => !Number.isInteger(n) || n < 4 || n > 512)) {
    throw new Error(`volumeSize must be three integers in 4..512, got ${volumeSize.join('x')}`);
  }
  if (sites.length === 0) throw new Error('at least one site is needed');
  if (new Set(sites.map((s) => s.name)).size !== sites.length) throw new Error('site names must be unique');
  const writeDicom = options.formats?.dicom ?? true;
  const writeNii = options.formats?.nifti ?? true;
  const withFollowUp = options.followUp ?? true;
  const outDir = options.outDir;
  prepareOutDir(outDir);

  const patients = plan(seed, sites, heldOut);
  const splits = [...sites.map((s) => s.name), ...(heldOut > 0 ? [HELD_OUT_DIR] : [])];
  const demographics = new Map<string, (string | number)[][]>(splits.map((s) => [s, []]));
  const truth: (string | number)[][] = [];
  const summaries = new Map<string, SplitSummary>(splits.map((name) => [name, {
    name,
    patients: 0,
    responders: 0,
    rtTypes: Object.fromEntries(RT_TYPES.map((t) => [t, 0])) as Record<RtType, number>,
    dicomDir: path.join(name, 'dicom'),
    clinicalCsv: path.join(name, 'dicom', CLINICAL_CSV),
    medicalFolderDir: path.join(name, 'medical-folder'),
    demographicsCsv: path.join(name, 'medical-folder', DEMOGRAPHICS_CSV),
    ...(withFollowUp ? { followUp: scanFolders(path.join(name, FOLLOW_UP_DIR)) } : {}),
    ...(withFollowUp && name === HELD_OUT_DIR ? {
      counterfactuals: Object.fromEntries(RT_TYPES.map((rt) => [rt, scanFolders(path.join(name, COUNTERFACTUAL_DIR, rt))])) as Record<RtType, ScanFolders>,
    } : {}),
  }]));
  // Demographics rows of each follow-up folder, keyed by its medical-folder path.
  const followUpRows = new Map<string, (string | number)[][]>();
  const followUpTruth: (string | number)[][] = [];

  patients.forEach((p, done) => {
    const sample = samplePatient(seed, p.site, p.stream, p.index);
    const rendered = renderPatient(sample, p.site.scanner, volumeSize, new Prng(seed, p.stream, p.index, 'render'));
    const split = summaries.get(p.split) as SplitSummary;
    if (writeDicom) writeDicomPatient(path.join(outDir, split.dicomDir, p.id), p, sample, rendered, seed);
    if (writeNii) writeNiftiPatient(path.join(outDir, split.medicalFolderDir, p.id), p, rendered);
    if (split.followUp) {
      // Follow-ups: the patient's own technique for everyone, the two others too for the held-out set.
      const diagnosis = diagnosisState(sample, evolutionParameters(sample, seed, p.stream, p.index));
      const techniques = split.counterfactuals ? RT_TYPES : [sample.clinical.rtType];
      for (const rt of techniques) {
        const followUp = simulateFollowUp(sample, diagnosis, rt);
        const factual = rt === sample.clinical.rtType;
        const scan = renderPatient(sample, p.site.scanner, volumeSize, new Prng(seed, p.stream, p.index, 'render'), {
          rtType: rt, tumour: followUp.tumour, injury: followUp.injury, noise: new Prng(seed, p.stream, p.index, 'followup', rt),
        });
        const folders = factual ? split.followUp : (split.counterfactuals as Record<RtType, ScanFolders>)[rt];
        const kind: DicomStudyKind = {
          key: factual ? 'followup' : `counterfactual-${rt}`, dayOffset: 7 + followUp.day,
          description: factual ? 'Response assessment MRI' : `Simulated response assessment MRI (${rt} plan)`,
          doseOf: factual ? undefined : rt,
        };
        if (writeDicom) writeDicomPatient(path.join(outDir, folders.dicomDir, p.id), p, sample, scan, seed, kind);
        if (writeNii) {
          writeNiftiPatient(path.join(outDir, folders.medicalFolderDir, p.id), p, scan, !factual, {
            [SEGMENTATION_MODALITY]: scan.labels, [BASELINE_SEGMENTATION_MODALITY]: rendered.labels, [INJURY_MODALITY]: scan.injury,
          });
          if (factual) {
            writeLabelVolumes(path.join(outDir, split.medicalFolderDir, p.id), p, {
              [BASELINE_SEGMENTATION_MODALITY]: rendered.labels, [FOLLOW_UP_SEG_MODALITY]: scan.labels, [FOLLOW_UP_INJURY_MODALITY]: scan.injury,
            });
          }
        }
        const row = demographicsRow(p, sample);
        row[DEMOGRAPHICS_HEADER.indexOf('rt_type')] = rt;
        followUpRows.set(folders.medicalFolderDir, [...(followUpRows.get(folders.medicalFolderDir) ?? []), factual ? row : row.slice(0, -1)]);
        folders.patients++;
        followUpTruth.push(followUpRow(p, sample, followUp, factual));
      }
    }
    demographics.get(p.split)?.push(demographicsRow(p, sample));
    truth.push(groundTruthRow(p, sample, rendered.tumourCentreVoxel));
    split.patients++;
    split.responders += sample.outcome.responder ? 1 : 0;
    split.rtTypes[sample.clinical.rtType]++;
    options.onProgress?.(done + 1, patients.length);
  });

  for (const [name, rows] of demographics) {
    const split = summaries.get(name) as SplitSummary;
    const text = csvText(DEMOGRAPHICS_HEADER, rows);
    if (writeDicom) fs.writeFileSync(path.join(outDir, split.clinicalCsv), text);
    if (writeNii) fs.writeFileSync(path.join(outDir, split.demographicsCsv), text);
  }
  fs.writeFileSync(path.join(outDir, 'ground-truth.csv'), csvText(GROUND_TRUTH_HEADER, truth));
  for (const split of summaries.values()) {
    for (const folders of [split.followUp, ...Object.values(split.counterfactuals ?? {})]) {
      if (!folders || folders.patients === 0) continue;
      // Counterfactual rows have no responder column: the label of an untaken treatment is unknown.
      const factual = folders === split.followUp;
      const text = csvText(factual ? DEMOGRAPHICS_HEADER : DEMOGRAPHICS_HEADER.slice(0, -1), followUpRows.get(folders.medicalFolderDir) ?? []);
      if (writeDicom) fs.writeFileSync(path.join(outDir, folders.dicomDir, CLINICAL_CSV), text);
      if (writeNii) fs.writeFileSync(path.join(outDir, folders.demographicsCsv), text);
    }
  }
  if (withFollowUp) fs.writeFileSync(path.join(outDir, FOLLOW_UP_CSV), csvText(FOLLOW_UP_HEADER, followUpTruth));

  const summary: CohortSummary = {
    generator: GENERATOR,
    seed,
    volumeSize: [...volumeSize],
    spacingMm: geometryFor(volumeSize).spacing,
    modalities: [...MODALITY_ORDER],
    sites: sites.map((s) => summaries.get(s.name) as SplitSummary),
    heldOut: summaries.get(HELD_OUT_DIR) ?? {
      name: HELD_OUT_DIR, patients: 0, responders: 0, rtTypes: { conventional: 0, proton: 0, carbon: 0 },
      dicomDir: '', clinicalCsv: '', medicalFolderDir: '', demographicsCsv: '',
    },
    indexColumn: 'patient_id',
    labelColumn: 'responder',
    ...(withFollowUp ? { followUpCsv: FOLLOW_UP_CSV } : {}),
  };
  fs.writeFileSync(path.join(outDir, 'cohort.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}
