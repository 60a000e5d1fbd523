/**
 * The cohort's splits seen through the plan: each site's DICOM folder (what its node registers), the held-out set,
 * and pooled data for centralised training. Samples come from `openPlanDataset`, i.e. exactly what the nodes and
 * the generated PyTorch plan feed the network.
 */
import * as path from 'path';
import { openPlanDataset, PlanDataset } from '../../src/data/plan-dataset';
import * as tf from '@tensorflow/tfjs-core';
import type { Batch, BatchSource } from '../../src/engine/train';
import type { PlanSpec } from '../../src/plan/spec';
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

/** Every sample of every dataset, in order, as one BatchSource (centralised training on pooled data). */
export function pooledSource(datasets: PlanDataset[]): BatchSource {
  const owners: { data: PlanDataset; index: number }[] = [];
  for (const data of datasets) for (let i = 0; i < data.size; i++) owners.push({ data, index: i });
  return {
    size: owners.length,
    batch: (positions: number[]): Batch => {
      // Runs of consecutive samples from one dataset become one batch each, then the runs are concatenated.
      const runs: { data: PlanDataset; indices: number[] }[] = [];
      for (const p of positions) {
        const owner = owners[p];
        const last = runs[runs.length - 1];
        if (last && last.data === owner.data) last.indices.push(owner.index);
        else runs.push({ data: owner.data, indices: [owner.index] });
      }
      if (runs.length === 1) return runs[0].data.batchSync(runs[0].indices);
      const parts = runs.map((r) => r.data.batchSync(r.indices));
      try {
        const inputs = Object.fromEntries(Object.keys(parts[0].inputs).map((k) => [k, tf.concat(parts.map((b) => b.inputs[k]), 0)]));
        return { inputs, target: tf.concat(parts.map((b) => b.target), 0) };
      } finally {
        for (const b of parts) {
          Object.values(b.inputs).forEach((t) => t.dispose());
          b.target.dispose();
        }
      }
    },
  };
}
