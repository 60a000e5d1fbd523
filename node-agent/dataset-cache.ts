/**
 * Keeps the last dataset a node read for a plan, so that round after round the node does not parse the same DICOM
 * series again (in the glioblastoma demo, re-reading DICOM was most of a round's time). A cached dataset is used
 * only while its files are unchanged: every round compares a fingerprint of the dataset's files (relative paths,
 * sizes, modification times) with the one taken when it was read, and reads again on any difference -- so a
 * hospital that adds, removes or replaces files is seen at the next round, as with a node that always re-reads.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { openPlanDataset, PlanDataset } from '../src/data/plan-dataset';
import { planHash } from '../src/plan/canonical';
import type { PlanSpec } from '../src/plan/spec';
import type { DatasetEntry } from './datasets';

/** Files, sizes and modification times below `root` (or of the file itself): cheap next to parsing them. */
export function sourceFingerprint(root: string): string {
  const hash = createHash('sha256');
  const visit = (file: string, relative: string): void => {
    const stat = fs.statSync(file);
    if (stat.isDirectory()) {
      hash.update(`d ${relative}\n`);
      for (const name of fs.readdirSync(file).sort()) visit(path.join(file, name), path.join(relative, name));
    } else {
      hash.update(`f ${relative} ${stat.size} ${stat.mtimeMs}\n`);
    }
  };
  visit(root, '.');
  return hash.digest('hex');
}

export class PlanDatasetCache {
  private last: { key: string; fingerprint: string; data: PlanDataset } | undefined;

  /** The dataset as `spec` reads it: the cached one when the same dataset and plan meet unchanged files. */
  open(spec: PlanSpec, dataset: DatasetEntry): PlanDataset {
    const key = `${dataset.dataset_id}\n${dataset.path}\n${JSON.stringify(dataset.dataset_parameters)}\n${planHash(spec)}`;
    let fingerprint: string | undefined;
    try {
      fingerprint = sourceFingerprint(dataset.path);
    } catch {
      // Unreadable or missing: let openPlanDataset say what is wrong, and cache nothing.
      this.last = undefined;
    }
    if (fingerprint && this.last && this.last.key === key && this.last.fingerprint === fingerprint) {
      return this.last.data;
    }
    this.last = undefined; // never keep two datasets in memory
    const data = openPlanDataset(spec, { dataType: dataset.data_type, path: dataset.path, parameters: dataset.dataset_parameters });
    if (fingerprint) this.last = { key, fingerprint, data };
    return data;
  }
}
