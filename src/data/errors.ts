/**
 * Errors raised by the dataset readers. Every one names the file or folder it is about, so a node operator can
 * find the broken file; callers that scan many files (a site folder, a medical folder) turn them into
 * `DataIssue`s and skip the subject instead of stopping.
 */
import { FedbiomedTsError } from '../errors';

/** A file or folder that cannot be read as the expected format. `path` is the offending file or folder. */
export class DataReadError extends FedbiomedTsError {
  readonly path: string;

  constructor(path: string, what: string) {
    super(`${path}: ${what}`);
    this.path = path;
  }
}

/** A problem found while scanning a dataset, reported instead of thrown so the rest of the dataset stays usable. */
export interface DataIssue {
  path: string;
  message: string;
}

/** Converts anything thrown while reading `path` into a DataIssue (keeping a DataReadError's own path). */
export function issueFrom(path: string, error: unknown): DataIssue {
  if (error instanceof DataReadError) return { path: error.path, message: error.message };
  const text = error instanceof Error ? error.message : String(error);
  return { path, message: `${path}: ${text}` };
}
