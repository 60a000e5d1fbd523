/**
 * `shape` and `dtypes` of a dataset as a Fed-BioMed v4.5 node stores them in its registry
 * (fedbiomed/node/dataset_manager.py `add_database`):
 * - csv: the pandas DataFrame's shape [rows, columns] and its dtypes (`int64`, `float64`, `bool`, `object`);
 * - medical-folder: MedicalFolderDataset.shape() ({<modality>: dims, demographics: [rows, cols], num_modalities}),
 *   dtypes [];
 * - images, mednist: torchvision ImageFolder's [images, 3, H, W] (mednist reads `<path>/MedNIST` when it exists;
 *   a TS node never downloads it), dtypes [];
 * - dicom (ours; Fed-BioMed has no DICOM type): the same form as medical-folder, from the site folder, dtypes [].
 */
import * as fs from 'fs';
import * as nodePath from 'path';
import { readCsv } from './csv';
import { DataIssue, DataReadError } from './errors';
import { dicomSiteRuleOptions, dicomSiteShape, openDicomSite } from './dicom-site';
import type { SeriesRule } from './dicom-patient';
import { openImageFolder } from './image-folder';
import { openMedicalFolder, volumesParameter } from './medical-folder';


export interface DatasetRegistryInfo {
  shape: number[] | Record<string, number[] | number | null>;
  dtypes: string[];
  /** Files that cannot be read, each with the reason (the dataset is registered without them). */
  issues?: DataIssue[];
}

/** Fed-BioMed's dataset_parameters for a medical-folder (and our dicom) dataset. */
export interface DatasetParameters {
  tabular_file?: string;
  index_col?: number | string;
  /** dicom, medical-folder, images: a round skips patients (pictures) with unreadable files ('skip', default) or fails ('fail'). */
  unreadable?: 'skip' | 'fail';
  /** dicom: the operator's series -> role rules (default: the four MRI names and RTDOSE). */
  series_rules?: SeriesRule[];
  /** dicom: PET values as SUV body weight (default) or activity concentration. */
  pet?: 'suv' | 'activity';
  /** medical-folder: 4-D images, a volume index or 'channels' by modality folder (medical-folder.ts). */
  volumes?: Record<string, number | 'channels'>;
  /** medical-folder, dicom: the modality whose voxel grid the others are resampled onto in rounds (e.g. 'CT'). */
  resample_to?: string;
}

export function describeDataset(
  dataType: string, path: string, parameters: DatasetParameters | null = null,
): DatasetRegistryInfo {
  switch (dataType) {
    case 'csv': {
      const table = readCsv(path);
      return { shape: [...table.shape], dtypes: [...table.dtypes] };
    }
    case 'medical-folder': {
      const dataset = openMedicalFolder(path, {
        tabularFile: parameters?.tabular_file,
        indexCol: parameters?.index_col,
        volumes: volumesParameter(parameters?.volumes),
      });
      const issues = dataset.scan();
      const shape = dataset.shape();
      // Like Fed-BioMed, refuse a dataset whose first sample cannot be read (shape only read headers).
      dataset.loadSubject(dataset.subjects[0]);
      return { shape, dtypes: [], issues };
    }
    case 'images': {
      const folder = openImageFolder(path);
      const issues = folder.scan();
      return { shape: folder.shape(), dtypes: [], ...(issues.length > 0 ? { issues } : {}) };
    }
    case 'mednist': {
      const inner = nodePath.join(path, 'MedNIST');
      return { shape: openImageFolder(fs.existsSync(inner) ? inner : path).shape(), dtypes: [] };
    }
    case 'dicom': {
      const rules = dicomSiteRuleOptions(parameters as Record<string, unknown> | null);
      // With operator rules, the roles a patient needs are the rules' roles (RTDOSE apart), not the MRI four.
      const modalities = rules.rules ? [...new Set(rules.rules.map((r) => r.role).filter((r) => r !== 'RTDOSE'))] : undefined;
      // Registering lists the unreadable files whatever the policy: `unreadable: 'fail'` applies to rounds (as for
      // medical folders and images), so the operator sees every file to fix instead of a refused registration.
      const site = openDicomSite(path, { clinicalCsv: parameters?.tabular_file, indexColumn: parameters?.index_col, modalities, ...rules, unreadable: 'skip' });
      const issues = site.scan();
      return { shape: dicomSiteShape(site), dtypes: [], issues };
    }
    default:
      throw new DataReadError(path, `data type "${dataType}" has no reader here (known: csv, medical-folder, images, mednist, dicom)`);
  }
}
