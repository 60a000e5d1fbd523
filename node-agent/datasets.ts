/**
 * The node's dataset registry: Fed-BioMed's `Datasets` table entries, the tag-conflict rule and the views that
 * may leave the node (never `path`; never the medical-folder `tabular_file`).
 */
import { randomUUID } from 'crypto';
import { JsonDb, Document, appendDocument } from './json-db';
import { FedbiomedTsError } from '../src/errors';

export const DATASETS_TABLE = 'Datasets';

/** Data types a TS node registers: Fed-BioMed's, plus `dicom` (a folder of DICOM series per patient). */
export const DATA_TYPES = ['csv', 'images', 'medical-folder', 'dicom'] as const;
export type DataType = (typeof DATA_TYPES)[number];

/** A `Datasets` entry, field for field as a Python Fed-BioMed node stores it. */
export interface DatasetEntry {
  name: string;
  data_type: string;
  tags: string[];
  description: string;
  shape: number[] | Record<string, unknown>;
  path: string;
  dataset_id: string;
  dtypes: string[];
  dataset_parameters: Record<string, unknown> | null;
}

/** What reading a dataset on add tells the registry. */
interface DatasetDescription {
  shape: number[] | Record<string, unknown>;
  dtypes: string[];
  /** Files the readers cannot use, each with the reason (shown to the operator; not stored). */
  issues?: string[];
}

export type DatasetInspector = (
  dataType: DataType,
  datasetPath: string,
  parameters: Record<string, unknown> | null,
) => Promise<DatasetDescription>;

export interface NewDataset {
  name: string;
  dataType: string;
  tags: string[];
  description?: string;
  path: string;
  parameters?: Record<string, unknown> | null;
}

export class DatasetError extends FedbiomedTsError {}

/** Fed-BioMed's rule: tags conflict when one tag list contains every tag of the other. */
export function tagsConflict(a: readonly string[], b: readonly string[]): boolean {
  return a.every((t) => b.includes(t)) || b.every((t) => a.includes(t));
}

/** A dataset matches a search when its tags contain every requested tag (`[]` matches all). */
function matchesTags(entry: Pick<DatasetEntry, 'tags'>, requested: readonly string[]): boolean {
  return requested.every((t) => entry.tags.includes(t));
}

/** The entry as sent in a `search` reply: no path, no medical-folder tabular file. */
export function searchView(entry: DatasetEntry): Omit<DatasetEntry, 'path'> {
  const { path: _path, ...rest } = entry;
  void _path;
  return { ...rest, dataset_parameters: withoutTabularFile(entry) };
}

/** The entry as sent in a `list` reply: the search view without `dtypes`. */
export function listView(entry: DatasetEntry): Omit<DatasetEntry, 'path' | 'dtypes'> {
  const { dtypes: _dtypes, ...rest } = searchView(entry);
  void _dtypes;
  return rest;
}

function withoutTabularFile(entry: DatasetEntry): Record<string, unknown> | null {
  if (entry.dataset_parameters === null) return null;
  if (entry.data_type !== 'medical-folder' && entry.data_type !== 'dicom') return { ...entry.dataset_parameters };
  const { tabular_file: _t, ...rest } = entry.dataset_parameters;
  void _t;
  return rest;
}

export class DatasetRegistry {
  constructor(private readonly db: JsonDb, private readonly inspect: DatasetInspector) {}

  list(): DatasetEntry[] {
    return this.db.all(DATASETS_TABLE) as unknown as DatasetEntry[];
  }

  get(datasetId: string): DatasetEntry | undefined {
    return this.list().find((d) => d.dataset_id === datasetId);
  }

  search(tags: readonly string[]): DatasetEntry[] {
    return this.list().filter((d) => matchesTags(d, tags));
  }

  /**
   * Reads the dataset (shape, dtypes), checks tags, then stores the entry. Nothing is stored on any error.
   * `unreadable` receives the files the readers cannot use, each with the reason (the operator is shown them).
   */
  async add(input: NewDataset, unreadable: string[] = []): Promise<DatasetEntry> {
    const dataType = parseDataType(input.dataType);
    const tags = normaliseTags(input.tags);
    if (input.name.trim() === '') throw new DatasetError('dataset name must not be empty');
    this.assertNoTagConflict(tags);
    let description: DatasetDescription;
    try {
      description = await this.inspect(dataType, input.path, input.parameters ?? null);
    } catch (err) {
      throw new DatasetError(`cannot read ${dataType} dataset at ${input.path}: ${(err as Error).message}`);
    }
    const entry: DatasetEntry = {
      name: input.name,
      data_type: dataType,
      tags,
      description: input.description ?? '',
      shape: description.shape,
      path: input.path,
      dataset_id: `dataset_${randomUUID()}`,
      dtypes: description.dtypes,
      dataset_parameters: input.parameters ?? null,
    };
    this.db.update((tables) => {
      // Re-check under the lock: another process may have added a conflicting dataset meanwhile.
      const rows = (tables[DATASETS_TABLE] ??= {});
      const existing = Object.values(rows) as unknown as DatasetEntry[];
      const conflicting = existing.filter((d) => tagsConflict(d.tags, tags));
      if (conflicting.length > 0) throw conflictError(conflicting);
      appendDocument(rows, entry as unknown as Document);
    });
    unreadable.push(...(description.issues ?? []));
    return entry;
  }

  remove(datasetId: string): boolean {
    return this.db.remove(DATASETS_TABLE, (d) => d['dataset_id'] === datasetId) > 0;
  }

  private assertNoTagConflict(tags: string[]): void {
    const conflicting = this.list().filter((d) => tagsConflict(d.tags, tags));
    if (conflicting.length > 0) throw conflictError(conflicting);
  }
}

function conflictError(conflicting: DatasetEntry[]): DatasetError {
  return new DatasetError(
    `FB322: Dataset registration error, one or more registered dataset has conflicting tags: ` +
      conflicting.map((c) => `${c.name} [${c.tags.join(',')}]`).join(' '),
  );
}

export function parseDataType(value: string): DataType {
  if ((DATA_TYPES as readonly string[]).includes(value)) return value as DataType;
  throw new DatasetError(`unknown dataset type "${value}": expected one of ${DATA_TYPES.join(', ')}`);
}

function normaliseTags(tags: string[]): string[] {
  const cleaned = [...new Set(tags.map((t) => t.trim()).filter((t) => t !== ''))];
  if (cleaned.length === 0) throw new DatasetError('a dataset needs at least one tag');
  return cleaned;
}
