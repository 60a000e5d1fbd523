/**
 * What a node says about its data when something goes wrong: the reason, never where the data live. Messages
 * built from reader errors name files (the dataset's path, the demographics CSV, a DICOM file in a patient
 * folder); before they go into a reply or a log line forwarded to researchers, every path of the dataset becomes
 * a placeholder. (Data values never enter these messages: the readers and the pipeline describe a cell by its
 * column and row, not its content.)
 */
import * as path from 'path';
import type { DatasetEntry } from './datasets';

export function withoutDatasetPaths(text: string, dataset: Pick<DatasetEntry, 'path' | 'dataset_parameters'>): string {
  const roots = [dataset.path];
  const tabular = (dataset.dataset_parameters as { tabular_file?: unknown } | null | undefined)?.tabular_file;
  if (typeof tabular === 'string') roots.push(tabular);
  let out = text;
  // Longest first, so a file inside the dataset folder is replaced whole, not only its folder prefix; every root
  // before any parent folder (the demographics CSV's folder is often the dataset itself).
  const ordered = roots.filter((r) => r.length > 1).sort((a, b) => b.length - a.length);
  for (const root of ordered) out = out.split(root).join('<dataset>');
  for (const root of ordered) {
    const parent = path.dirname(root);
    if (parent.length > 1 && parent !== root) out = out.split(parent).join('<dataset folder>');
  }
  return out;
}
