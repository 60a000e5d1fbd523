/** Reads a dataset being registered (shape and dtypes, Fed-BioMed's way) through the src/data readers. */
import { describeDataset } from '../src/data/registry-info';
import type { DatasetInspector } from './datasets';

export const inspectDataset: DatasetInspector = async (dataType, datasetPath, parameters) => {
  const info = describeDataset(dataType, datasetPath, parameters);
  return {
    shape: info.shape as number[] | Record<string, unknown>,
    dtypes: info.dtypes,
    issues: (info.issues ?? []).map((i) => i.message),
  };
};
