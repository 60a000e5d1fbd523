/**
 * A node dataset seen through a training plan: where the samples come from (`csv` rows, `medical-folder` NIfTI
 * subjects with their demographics, `dicom` site patients with their clinical row, `images` pictures of an image
 * folder with their class index), turned into what the plan's
 * network consumes by src/plan/pipeline.ts (the preprocessing the generated PyTorch plan applies on Python nodes,
 * checked against PyTorch) and src/plan/batch.ts (tensors). Preprocessed samples are cached up to a memory budget
 * because every epoch revisits them.
 */
import type { Batch, BatchSource } from '../engine/train';
import { DenseVolume, headTargetValues, imageInput, imageSample, PreprocessError, tabularInput, targetValue } from '../plan/pipeline';
import { makeBatch, PlanSample } from '../plan/batch';
import { targetModalities } from '../plan/image-target';
import { isImageTarget, PlanSpec } from '../plan/spec';
import { augmentBatch, batchSeeds } from '../plan/augment';
import { readCsv, rowRecord } from './csv';
import { openDicomSite } from './dicom-site';
import { dicomSiteRuleOptions } from './dicom-site';
import { DataIssue, DataReadError } from './errors';
import { openMedicalFolder, volumesParameter } from './medical-folder';
import { resampleOnto } from './resample-grid';
import { stringTag } from './dicom-file';
import type { DicomSeries } from './dicom-series';
import * as path from 'path';
import { openImageFolder, pictureBands, readRgbImage } from './image-folder';
import { IMAGE_FOLDER_TARGET, isImageFolderPlan } from '../plan/image-folder-plan';
import type { Volume } from './volume';
import { rasAffine } from './orientation';

export interface PlanDataSource {
  dataType: string;
  path: string;
  parameters: Record<string, unknown> | null;
}

export interface PlanDataset {
  readonly size: number;
  /** Problems met while indexing (skipped patients, …): paths stay on the node, in its logs. */
  readonly issues: DataIssue[];
  sample(index: number): PlanSample;
  /** Tensors for the samples at `indices` (inputs keyed 'image' / 'tabular', target `[N]` float32). */
  batchSync(indices: number[]): Batch;
  /**
   * The samples at `subset` as an engine BatchSource for training (its indices are positions in `subset`): the
   * plan's augmentation, if any, is applied to every batch, seeded by `augmentSeed` (the round's random seed).
   */
  batchSource(subset: number[], options?: { augmentSeed?: number }): BatchSource;
  /** Targets of the samples at `indices`. */
  targets(indices: number[]): Float32Array;
}

export interface OpenPlanDatasetOptions {
  /** Memory budget of the preprocessed-sample cache, in bytes (default 512 MiB). */
  cacheBytes?: number;
}

type Record_ = Record<string, number | string | boolean | null>;

/** What each source kind provides: raw per-sample material, before the plan's preprocessing. */
interface RawSource {
  size: number;
  issues: DataIssue[];
  /**
   * Volumes by modality (image plans; or `pictures`, already dense, for image folders) and the row of
   * clinical/tabular values.
   */
  load(index: number): { volumes?: Record<string, Volume>; pictures?: Record<string, DenseVolume>; row: Record_ };
}

export function openPlanDataset(spec: PlanSpec, source: PlanDataSource, options: OpenPlanDatasetOptions = {}): PlanDataset {
  const raw = openRawSource(spec, source);
  const cache = new Map<number, PlanSample>();
  const cacheLimit = options.cacheBytes ?? 512 * 1024 * 1024;
  let cached = 0;

  const build = (index: number): PlanSample => {
    try {
      return buildUnlabelled(index);
    } catch (err) {
      // Name the sample (the row of a CSV, header excluded), so the operator finds the cell; never its value.
      if (err instanceof PreprocessError) throw new PreprocessError(`${err.message} in sample ${index} (data row ${index + 1})`);
      throw err;
    }
  };
  const buildUnlabelled = (index: number): PlanSample => {
    const { volumes, pictures, row } = raw.load(index);
    const tabular = spec.inputs.tabular ? { tabular: tabularInput(spec, row) } : {};
    const headTargets = spec.heads ? { headTargets: headTargetValues(spec, row) } : {};
    if (isImageTarget(spec.target)) {
      // The input and the target together: the target goes through the input's geometry (pipeline.ts imageSample).
      const { image, target } = imageSample(spec, denseVolumes(volumes, [...spec.inputs.image!.modalities, ...targetModalities(spec)]));
      return { image, target: target!, ...tabular, ...headTargets };
    }
    const made: PlanSample = { target: targetValue(spec, row), ...tabular, ...headTargets };
    if (spec.inputs.image) {
      const dense: Record<string, DenseVolume> = { ...pictures, ...denseVolumes(volumes, spec.inputs.image.modalities) };
      made.image = imageInput(spec, dense);
    }
    return made;
  };

  const sample = (index: number): PlanSample => {
    if (!Number.isInteger(index) || index < 0 || index >= raw.size) {
      throw new RangeError(`sample index ${index} is outside the dataset (size ${raw.size})`);
    }
    const hit = cache.get(index);
    if (hit) return hit;
    const made = build(index);
    const bytes = (made.image?.data.byteLength ?? 0) + (made.tabular?.byteLength ?? 0) + (typeof made.target === 'number' ? 8 : made.target.data.byteLength);
    if (cached + bytes <= cacheLimit) {
      cache.set(index, made);
      cached += bytes;
    }
    return made;
  };

  const batchSync = (indices: number[]): Batch => makeBatch(spec, indices.map(sample));

  return {
    size: raw.size,
    issues: raw.issues,
    sample,
    batchSync,
    batchSource(subset: number[], options: { augmentSeed?: number } = {}): BatchSource {
      const steps = spec.augmentation ?? [];
      if (steps.length === 0) return { size: subset.length, batch: (positions: number[]) => batchSync(positions.map((p) => subset[p])) };
      const nextSeed = batchSeeds(options.augmentSeed ?? 0);
      return {
        size: subset.length,
        batch: (positions: number[]) => makeBatch(spec, augmentBatch(steps, positions.map((p) => sample(subset[p])), nextSeed())),
      };
    },
    targets(indices: number[]): Float32Array {
      const picked = indices.map((i) => sample(i).target);
      if (picked.every((t): t is number => typeof t === 'number')) return Float32Array.from(picked);
      // Image targets: the samples' channels-first arrays one after the other.
      const images = picked as DenseVolume[];
      const out = new Float32Array(images.reduce((n, t) => n + t.data.length, 0));
      let offset = 0;
      for (const t of images) {
        out.set(t.data, offset);
        offset += t.data.length;
      }
      return out;
    },
  };
}

function openRawSource(spec: PlanSpec, source: PlanDataSource): RawSource {
  const params = source.parameters ?? {};
  const tabularFile = typeof params['tabular_file'] === 'string' ? params['tabular_file'] : undefined;
  const indexCol = params['index_col'] as number | string | undefined;
  const reference = resampleToParameter(params['resample_to']);
  const pictures = isImageFolderPlan(spec);
  if (pictures !== (source.dataType === 'images')) {
    throw new DataReadError(source.path, pictures
      ? `the plan reads an image folder (inputs.image.source 'image_folder') but the dataset is ${source.dataType}`
      : 'the dataset is an image folder but the plan does not read one (inputs.image.source must be \'image_folder\')');
  }
  switch (source.dataType) {
    case 'csv': {
      if (spec.inputs.image) {
        throw new DataReadError(source.path, 'the plan needs images but the dataset is a CSV table');
      }
      const table = readCsv(source.path);
      return { size: table.rows.length, issues: [], load: (i) => ({ row: rowRecord(table, i) }) };
    }
    case 'medical-folder': {
      const folder = openMedicalFolder(source.path, { tabularFile, indexCol, volumes: volumesParameter(params['volumes']) });
      // Unreadable images are found before training: their subjects are skipped (logged) or the round fails.
      folder.scan(params['unreadable'] === 'fail' ? 'fail' : 'skip');
      const modalities = [...new Set([...(spec.inputs.image?.modalities ?? []), ...targetModalities(spec)])];
      const wanted = reference && !modalities.includes(reference) ? [...modalities, reference] : modalities;
      return {
        size: folder.subjects.length,
        issues: folder.issues,
        load: (i) => {
          const s = folder.loadSubject(folder.subjects[i], wanted);
          return { volumes: onReferenceGrid(s.images, reference, path.join(source.path, folder.subjects[i])), row: s.demographics };
        },
      };
    }
    case 'dicom': {
      // An image target's label maps are series roles too: an RT structure set's ROI rasterised as a 0/1 mask on
      // the series it references (a series rule with modality RTSTRUCT and roi), or a label-map image series.
      const modalities = [...new Set([...(spec.inputs.image?.modalities ?? []), ...targetModalities(spec)])];
      const site = openDicomSite(source.path, { clinicalCsv: tabularFile, indexColumn: indexCol, modalities, ...dicomSiteRuleOptions(params) });
      // Unreadable files are found before training: their patients are skipped (logged from `issues`) or the
      // round fails with the list, by the dataset's `unreadable` parameter.
      site.scan();
      return {
        size: site.patients.length,
        issues: site.issues,
        load: (i) => {
          const p = site.loadPatient(site.patients[i]);
          const series: Record<string, DicomSeries> = {};
          for (const [m, s] of Object.entries(p.modalities)) if (s) series[m] = s;
          if (p.dose) series['RTDOSE'] = p.dose;
          if (reference) checkSameFrameOfReference(series, reference, p.dir);
          const volumes = Object.fromEntries(Object.entries(series).map(([m, s]) => [m, s.volume]));
          const masks = new Set(Object.keys(series).filter((m) => series[m].modality === 'RTSTRUCT'));
          const onGrid = onReferenceGrid(volumes, reference, p.dir);
          return { volumes: reference ? binarised(onGrid, masks) : onGrid, row: p.clinical };
        },
      };
    }
    case 'images': {
      const folder = openImageFolder(source.path);
      // Unreadable pictures are found before training: skipped (logged from `issues`) or the round fails.
      folder.scan(unreadablePolicy(params['unreadable']));
      const bands = spec.inputs.image?.modalities ?? [];
      return {
        size: folder.samples.length,
        issues: folder.issues,
        load: (i) => {
          const { file, label } = folder.samples[i];
          return { pictures: pictureBands(readRgbImage(file), bands), row: { [IMAGE_FOLDER_TARGET]: label } };
        },
      };
    }
    default:
      throw new DataReadError(source.path, `dataset type "${source.dataType}" cannot feed a plan (csv, medical-folder, dicom, images)`);
  }
}

/** The dataset parameter `unreadable`: 'skip' (default) or 'fail'; anything else is refused. */
function unreadablePolicy(value: unknown): 'skip' | 'fail' {
  if (value === undefined || value === null || value === 'skip') return 'skip';
  if (value === 'fail') return 'fail';
  throw new Error(`dataset parameter unreadable must be "skip" or "fail", not ${JSON.stringify(value)}`);
}

/** The dataset parameter `resample_to`: the modality (role) whose voxel grid the others are resampled onto. */
function resampleToParameter(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw new Error(`dataset parameter resample_to must be a modality name, not ${JSON.stringify(value)}`);
  return value;
}

/**
 * With `resample_to` (e.g. 'CT' for a PET/CT study whose two series have different grids), every other volume of
 * the sample resampled into the reference volume's voxel grid (linear, through both geometries; resample-grid.ts).
 */
function onReferenceGrid(volumes: Record<string, Volume>, reference: string | undefined, where: string): Record<string, Volume> {
  if (!reference) return volumes;
  const grid = volumes[reference];
  if (!grid) throw new DataReadError(where, `no ${reference} image to resample the other modalities onto (dataset parameter resample_to)`);
  return Object.fromEntries(Object.entries(volumes).map(([m, v]) => [m, m === reference ? v : resampleOnto(v, grid, `${where} ${m}`)]));
}

/**
 * Masks (0/1) resampled onto another grid are blended at their edges by the linear interpolation: a voxel is inside
 * when at least half of it was (threshold 0.5), so a mask stays a mask.
 */
function binarised(volumes: Record<string, Volume>, masks: Set<string>): Record<string, Volume> {
  return Object.fromEntries(Object.entries(volumes).map(([m, v]) => [m, masks.has(m)
    ? { ...v, data: Float32Array.from(v.data, (x) => (x >= 0.5 ? 1 : 0)) }
    : v]));
}

/** Series resampled onto each other must share the patient coordinate system (FrameOfReferenceUID), when they say. */
function checkSameFrameOfReference(series: Record<string, DicomSeries>, reference: string, where: string): void {
  const frameOf = (s: DicomSeries): string => stringTag(s.header, 0x0020, 0x0052);
  const wanted = series[reference] ? frameOf(series[reference]) : '';
  for (const [m, s] of Object.entries(series)) {
    const other = frameOf(s);
    if (wanted && other && other !== wanted) {
      throw new DataReadError(where, `${m} and ${reference} are not in the same frame of reference (${other} vs ${wanted}): `
        + 'their positions cannot be matched to resample one onto the other');
    }
  }
}

/** The named volumes in the pipeline's layout (a missing one is left out: the pipeline names it). */
function denseVolumes(volumes: Record<string, Volume> | undefined, names: string[]): Record<string, DenseVolume> {
  const dense: Record<string, DenseVolume> = {};
  for (const m of names) if (volumes?.[m]) dense[m] = volumeToDense(volumes[m]);
  return dense;
}

/**
 * A volume (x fastest) as the C-order array `[x, y, z]` the plan pipeline expects (torch's view of the stored array:
 * last axis fastest), i.e. transposed.
 */
export function volumeToDense(volume: Volume): DenseVolume {
  const [dx, dy, dz] = volume.dims;
  const out = new Float32Array(dx * dy * dz);
  let o = 0;
  for (let x = 0; x < dx; x++) {
    for (let y = 0; y < dy; y++) {
      for (let z = 0; z < dz; z++) out[o++] = volume.data[x + dx * (y + dy * z)];
    }
  }
  // The RAS affine of these (x, y, z) axes: what the plan's resample step reads.
  return { shape: [dx, dy, dz], data: out, affine: rasAffine(volume) };
}
