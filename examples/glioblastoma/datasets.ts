/**
 * The cohort's splits seen through the plan: each site's DICOM folder (what its node registers) and the held-out
 * set. Samples come from `openPlanDataset`, i.e. exactly what the nodes and the generated PyTorch plan feed the
 * network (the library's `trainPooled` pools the sites for the centralised baseline).
 */
import * as path from 'path';
import { openPlanDataset, PlanDataset } from 'fedbiomed-ts';
import type { PlanSpec } from 'fedbiomed-ts';
import type { CohortSummary, SplitSummary } from './cohort';

/** What a node registers for a split: a DICOM site folder plus its clinical CSV indexed by patient_id. */
export interface SplitDataSource {
  dataType: 'dicom';
  path: string;
  parameters: { tabular_file: string; index_col: number };
}

export function splitDataSource(cohortDir: string, split: SplitSummary): SplitDataSource {
  return {
    dataType: 'dicom',
    path: path.resolve(cohortDir, split.dicomDir),
    // The clinical CSV's first column is patient_id, the patient folder names.
    parameters: { tabular_file: path.resolve(cohortDir, split.clinicalCsv), index_col: 0 },
  };
}

export function openSplit(spec: PlanSpec, cohortDir: string, split: SplitSummary): PlanDataset {
  const dataset = openPlanDataset(spec, splitDataSource(cohortDir, split));
  if (dataset.issues.length > 0) {
    throw new Error(`${split.name}: ${dataset.issues.length} patient(s) unusable: ${dataset.issues.map((i) => i.message).join('; ')}`);
  }
  return dataset;
}

export interface CohortDatasets {
  sites: { name: string; data: PlanDataset }[];
  heldOut: PlanDataset;
}

export function openCohort(spec: PlanSpec, cohortDir: string, cohort: CohortSummary): CohortDatasets {
  return {
    sites: cohort.sites.map((s) => ({ name: s.name, data: openSplit(spec, cohortDir, s) })),
    heldOut: openSplit(spec, cohortDir, cohort.heldOut),
  };
}
