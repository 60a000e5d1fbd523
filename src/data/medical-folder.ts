/**
 * Fed-BioMed's medical-folder layout, read the way fedbiomed.common.data.MedicalFolderDataset /
 * MedicalFolderController (v4.5.0) do:
 *
 *   root/
 *     <subject>/<modality>/<any name>.nii(.gz)     one image per subject and modality (the first file found)
 *     demographics.csv                             optional; its index column holds the subject folder names
 *
 * - subjects are the non-hidden folders of root; modalities are the folder names found under any subject, except
 *   those starting with "." or "_";
 * - a subject is usable when it has a folder for every modality and, with a demographics file, a row in it;
 * - the demographics file must be .csv or .tsv; duplicated index values keep their first row;
 * - `shape()` is what the node stores in its dataset registry: {<modality>: dims of the first subject's image, …,
 *   demographics: [rows, columns] or null, num_modalities}.
 * Subjects are sorted by name (Python's order comes from a set, so it is arbitrary there).
 * 4-D images (a chosen volume, or the volumes as `<modality>_<t>` channels) follow the dataset parameter `volumes`
 * (ours; a Python node's plan refuses a 4-D image).
 */
import * as fs from 'fs';
import * as path from 'path';
import { CsvTable, readCsv, rowOf, rowRecord } from './csv';
import { DataIssue, DataReadError, issueFrom } from './errors';
import { checkNiftiFile, readNifti, readNiftiHeader, readNiftiVolumes, volumeCount } from './nifti';
import { Volume } from './volume';

const IMAGE_FILE = /\.nii(\.gz)?$/;

export interface MedicalFolderOptions {
  /** Demographics CSV/TSV (Fed-BioMed's dataset_parameters.tabular_file). */
  tabularFile?: string;
  /** Its index column (Fed-BioMed's dataset_parameters.index_col): position or name. Required with tabularFile. */
  indexCol?: number | string;
  /**
   * 4-D images (dataset parameter `volumes`), by modality folder: a volume index (the modality is that volume), or
   * 'channels' (the modality gives one modality per volume, named `<modality>_<t>`, e.g. `DWI_0`, `DWI_1`, for plans
   * that stack them as channels). A 4-D image of a modality not listed here is refused, saying so.
   */
  volumes?: Record<string, FourDimensionalChoice>;
}

export type FourDimensionalChoice = number | 'channels';

/** The dataset parameter `volumes`, checked (an invalid value is refused, never ignored). */
export function volumesParameter(value: unknown): Record<string, FourDimensionalChoice> | undefined {
  if (value === undefined || value === null) return undefined;
  const ok = typeof value === 'object' && !Array.isArray(value)
    && Object.values(value as Record<string, unknown>).every((v) => v === 'channels' || (typeof v === 'number' && Number.isInteger(v) && v >= 0));
  if (!ok) {
    throw new Error(`dataset parameter volumes must map modality folders to a volume index or "channels", not ${JSON.stringify(value)}`);
  }
  return value as Record<string, FourDimensionalChoice>;
}

export interface MedicalFolderSample {
  subject: string;
  images: Record<string, Volume>;
  /** The subject's demographics row (typed values), empty without a demographics file. */
  demographics: Record<string, number | string | boolean | null>;
}

export type MedicalFolderShape = Record<string, number[] | number | null>;

export interface MedicalFolderDataset {
  root: string;
  modalities: string[];
  /** Usable subjects, sorted. */
  subjects: string[];
  demographics?: CsvTable;
  issues: DataIssue[];
  /** Image file of a subject's modality (first .nii/.nii.gz under its folder, recursive, by sorted path). */
  imageFile(subject: string, modality: string): string;
  loadSubject(subject: string, modalities?: readonly string[]): MedicalFolderSample;
  shape(): MedicalFolderShape;
  /**
   * Checks every subject's images without reading voxels (header, length). Subjects with an unreadable image are
   * dropped from `subjects` with an issue ('skip', default) or one DataReadError lists them all ('fail').
   * Returns the unreadable files' issues.
   */
  scan(policy?: 'skip' | 'fail'): DataIssue[];
}

function subdirectories(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

function imageFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (IMAGE_FILE.test(e.name)) found.push(p);
    }
  };
  walk(dir);
  return found.sort();
}

/** Checks the folder structure and builds the dataset index (reads the demographics file, not the images). */
export function openMedicalFolder(root: string, options: MedicalFolderOptions = {}): MedicalFolderDataset {
  if (!fs.existsSync(root)) throw new DataReadError(root, 'medical folder root not found');
  if (!fs.statSync(root).isDirectory()) throw new DataReadError(root, 'medical folder root is not a folder');
  const subjectFolders = subdirectories(root);
  if (subjectFolders.length === 0) throw new DataReadError(root, 'medical folder root should contain subject folders');
  const modalitySet = new Set<string>();
  for (const s of subjectFolders) {
    for (const m of subdirectories(path.join(root, s))) if (!m.startsWith('_')) modalitySet.add(m);
  }
  const modalities = [...modalitySet].sort();
  if (modalities.length === 0) {
    throw new DataReadError(root, 'subject folders should contain modality folders (root/<subject>/<modality>)');
  }

  let demographics: CsvTable | undefined;
  if (options.tabularFile !== undefined) {
    if (!/\.(csv|tsv)$/i.test(options.tabularFile)) {
      throw new DataReadError(options.tabularFile, 'demographics should be a CSV or TSV file');
    }
    if (options.indexCol === undefined) throw new DataReadError(options.tabularFile, 'index column is not provided');
    demographics = dedupeIndex(readCsv(options.tabularFile, { indexColumn: options.indexCol }));
  }

  const issues: DataIssue[] = [];
  const subjects: string[] = [];
  for (const s of subjectFolders) {
    const dir = path.join(root, s);
    const missing = modalities.filter((m) => !fs.existsSync(path.join(dir, m)) || imageFiles(path.join(dir, m)).length === 0);
    if (missing.length > 0) {
      issues.push({ path: dir, message: `${dir}: no image for modality ${missing.join(', ')}; subject skipped` });
    } else if (demographics && rowOf(demographics, s) < 0) {
      issues.push({ path: dir, message: `${dir}: subject has no row in ${demographics.path}; subject skipped` });
    } else {
      subjects.push(s);
    }
  }

  const imageFile = (subject: string, modality: string): string => {
    const dir = path.join(root, subject, modality);
    const files = fs.existsSync(dir) ? imageFiles(dir) : [];
    if (files.length === 0) throw new DataReadError(dir, `no .nii/.nii.gz image for modality ${modality}`);
    return files[0];
  };

  return {
    root,
    modalities,
    subjects,
    demographics,
    issues,
    imageFile,
    loadSubject(subject, wanted = modalities) {
      const images = loadImages(subject, wanted, imageFile, options.volumes ?? {});
      const row = demographics ? rowOf(demographics, subject) : -1;
      return { subject, images, demographics: demographics && row >= 0 ? rowRecord(demographics, row) : {} };
    },
    scan(policy = 'skip') {
      const found: DataIssue[] = [];
      const unusable = new Set<string>();
      for (const subject of subjects) {
        for (const m of modalities) {
          const file = imageFile(subject, m);
          try {
            checkNiftiFile(file);
          } catch (error) {
            found.push(issueFrom(file, error));
            unusable.add(subject);
          }
        }
      }
      if (found.length > 0 && policy === 'fail') {
        throw new DataReadError(root, `${found.length} unreadable image(s): ${found.map((i) => i.message).join('; ')}`);
      }
      for (const issue of found) issues.push({ path: issue.path, message: `${issue.message}; subject skipped` });
      const kept = subjects.filter((s) => !unusable.has(s));
      subjects.splice(0, subjects.length, ...kept);
      return found;
    },
    shape() {
      if (subjects.length === 0) throw new DataReadError(root, 'dataset is empty: no subject has every modality');
      const first = subjects[0];
      const shape: MedicalFolderShape = {};
      for (const m of modalities) {
        const h = readNiftiHeader(imageFile(first, m));
        shape[m] = [h.dim[1], h.dim[0] >= 2 ? h.dim[2] : 1, h.dim[0] >= 3 ? h.dim[3] : 1];
      }
      shape.demographics = demographics ? [...demographics.shape] : null;
      shape.num_modalities = modalities.length;
      return shape;
    },
  };
}

/**
 * The subject's images for the wanted modalities: a modality folder's 3-D image, the chosen volume of a 4-D one,
 * or, for `<modality>_<t>` names of a modality read as channels, volume t (each 4-D file is read once).
 */
function loadImages(
  subject: string, wanted: readonly string[], imageFile: (subject: string, modality: string) => string,
  volumes: Record<string, FourDimensionalChoice>,
): Record<string, Volume> {
  const images: Record<string, Volume> = {};
  const stacks = new Map<string, { file: string; volumes: Volume[] }>();
  for (const m of wanted) {
    const channel = /^(.+)_(\d+)$/.exec(m);
    if (channel && volumes[channel[1]] === 'channels') {
      const folder = channel[1];
      let stack = stacks.get(folder);
      if (!stack) {
        const file = imageFile(subject, folder);
        stack = { file, volumes: readNiftiVolumes(file).volumes };
        stacks.set(folder, stack);
      }
      const t = Number(channel[2]);
      if (t >= stack.volumes.length) throw new DataReadError(stack.file, `volume ${t} requested (${m}), the image has ${stack.volumes.length}`);
      images[m] = stack.volumes[t];
      continue;
    }
    const choice = volumes[m];
    if (choice === 'channels') {
      throw new DataReadError(imageFile(subject, m), `modality ${m} is read as channels: the plan must name its volumes ${m}_0, ${m}_1, …`);
    }
    const file = imageFile(subject, m);
    if (choice === undefined) {
      const count = volumeCount(readNiftiHeader(file));
      if (count > 1) {
        throw new DataReadError(file, `4-D image with ${count} volumes: the dataset parameter volumes must choose one for `
          + `modality ${m} ({"${m}": <index>}) or read them as channels ({"${m}": "channels"})`);
      }
    }
    images[m] = readNifti(file, choice === undefined ? {} : { volume: choice }).volume;
  }
  return images;
}

/** pandas' demographics.loc[~index.duplicated(keep="first")]. */
function dedupeIndex(table: CsvTable): CsvTable {
  const index = table.index ?? [];
  const seen = new Set<string>();
  const keep = index.map((id) => (seen.has(id) ? false : (seen.add(id), true)));
  const rows = table.rows.filter((_, i) => keep[i]);
  return { ...table, rows, index: index.filter((_, i) => keep[i]), shape: [rows.length, table.header.length] };
}
