/**
 * CSV reader for tabular datasets and clinical / demographics files.
 *
 * It reproduces what a Fed-BioMed v4.5 node records for a `csv` dataset: the delimiter is sniffed from the first
 * line and the header detected the way Python's `csv.Sniffer` does (then `pandas.read_csv`), `shape` is
 * [rows, columns] and `dtypes` are pandas dtype names (`int64`, `float64`, `bool`, `object`).
 */
import * as fs from 'fs';
import { DataReadError } from './errors';

export type PandasDtype = 'int64' | 'float64' | 'bool' | 'object';

export interface CsvOptions {
  /** Column holding the row ids (name, or 0-based position), removed from `header`/`rows` like pandas' index_col. */
  indexColumn?: string | number;
  /** Force the delimiter instead of sniffing it from the first line. */
  delimiter?: string;
  /** Force header detection on or off instead of sniffing it. */
  header?: boolean;
}

export interface CsvTable {
  path: string;
  delimiter: string;
  hasHeader: boolean;
  /** Column names (pandas numbers them "0", "1", … when the file has no header); the index column excluded. */
  header: string[];
  /** Raw cell text, one array per data row, aligned with `header`. */
  rows: string[][];
  /** Values of the index column, one per row, when `indexColumn` was given. */
  index?: string[];
  indexName?: string;
  /** pandas dtype of each column of `header`. */
  dtypes: PandasDtype[];
  /** Columns whose dtype is int64, float64 or bool. */
  numericColumns: string[];
  /** [rows, columns], the index column excluded, as pandas' DataFrame.shape. */
  shape: [number, number];
}

/** pandas' default strings read as missing (NaN). */
const MISSING = new Set([
  '', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan', '1.#IND', '1.#QNAN', '<NA>', 'N/A', 'NA',
  'NULL', 'NaN', 'None', 'n/a', 'nan', 'null',
]);
const INTEGER = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$/i;
const TRUE_WORDS = new Set(['True', 'TRUE', 'true']);
const FALSE_WORDS = new Set(['False', 'FALSE', 'false']);
const DELIMITER_CANDIDATES = [',', '\t', ';', '|'];

export function isMissing(cell: string): boolean {
  return MISSING.has(cell.trim());
}

/** Reads and parses a CSV file. Throws DataReadError naming the file on unreadable or malformed input. */
export function readCsv(path: string, options: CsvOptions = {}): CsvTable {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw new DataReadError(path, `cannot read CSV file (${(error as Error).message})`);
  }
  return parseCsv(text, path, options);
}

/** Parses CSV text; `path` is only used in error messages and kept in the result. */
export function parseCsv(text: string, path: string, options: CsvOptions = {}): CsvTable {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.includes('\u0000')) throw new DataReadError(path, 'not a text CSV file (contains NUL bytes)');
  const delimiter = options.delimiter ?? sniffDelimiter(firstLine(text));
  const records = splitRecords(text, delimiter, path);
  if (records.length === 0) throw new DataReadError(path, 'CSV file is empty');
  const hasHeader = options.header ?? sniffHeader(records);
  const width = records[0].length;
  records.forEach((record, i) => {
    // pandas refuses a row with too many fields and fills a short one with missing values.
    if (record.length > width) {
      throw new DataReadError(path, `record ${i + 1} has ${record.length} fields, expected ${width}`);
    }
    while (record.length < width) record.push('');
  });
  let header = hasHeader ? records[0] : records[0].map((_, i) => String(i));
  let rows = hasHeader ? records.slice(1) : records;

  let index: string[] | undefined;
  let indexName: string | undefined;
  if (options.indexColumn !== undefined) {
    const at = resolveColumn(header, options.indexColumn, path);
    indexName = header[at];
    index = rows.map((row) => row[at]);
    header = header.filter((_, i) => i !== at);
    rows = rows.map((row) => row.filter((_, i) => i !== at));
  }
  const dtypes = header.map((_, c) => inferDtype(rows.map((row) => row[c])));
  return {
    path,
    delimiter,
    hasHeader,
    header,
    rows,
    index,
    indexName,
    dtypes,
    numericColumns: header.filter((_, c) => dtypes[c] !== 'object'),
    shape: [rows.length, header.length],
  };
}

/** Values of a numeric column as float64 (NaN where missing, 1/0 for booleans). */
export function numericColumn(table: CsvTable, column: string): Float64Array {
  const c = table.header.indexOf(column);
  if (c < 0) throw new DataReadError(table.path, `no column "${column}" (columns: ${table.header.join(', ')})`);
  if (table.dtypes[c] === 'object') {
    throw new DataReadError(table.path, `column "${column}" is not numeric (dtype object)`);
  }
  return Float64Array.from(table.rows, (row) => cellToNumber(row[c]));
}

/** One row as a record of typed values (numbers for numeric columns, strings otherwise, null when missing). */
export function rowRecord(table: CsvTable, rowIndex: number): Record<string, number | string | boolean | null> {
  const record: Record<string, number | string | boolean | null> = {};
  const row = table.rows[rowIndex];
  table.header.forEach((name, c) => {
    const cell = row[c];
    if (isMissing(cell)) record[name] = null;
    else if (table.dtypes[c] === 'bool') record[name] = TRUE_WORDS.has(cell.trim());
    else if (table.dtypes[c] === 'object') record[name] = cell;
    else record[name] = cellToNumber(cell);
  });
  return record;
}

/** Position of the row whose index value is `id` (first occurrence, as pandas keeps with duplicated(keep=first)). */
export function rowOf(table: CsvTable, id: string): number {
  if (!table.index) throw new DataReadError(table.path, 'table was read without an index column');
  return table.index.indexOf(id);
}

function cellToNumber(cell: string): number {
  const t = cell.trim();
  if (MISSING.has(t)) return NaN;
  if (TRUE_WORDS.has(t)) return 1;
  if (FALSE_WORDS.has(t)) return 0;
  if (/^[+-]?inf(inity)?$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  return Number(t);
}

function resolveColumn(header: string[], column: string | number, path: string): number {
  if (typeof column === 'number') {
    if (!Number.isInteger(column) || column < 0 || column >= header.length) {
      throw new DataReadError(path, `index column ${column} out of range (0..${header.length - 1})`);
    }
    return column;
  }
  const at = header.indexOf(column);
  if (at < 0) throw new DataReadError(path, `no column "${column}" (columns: ${header.join(', ')})`);
  return at;
}

/** pandas' dtype for a column of raw cells. */
export function inferDtype(cells: string[]): PandasDtype {
  const present = cells.map((c) => c.trim()).filter((c) => !MISSING.has(c));
  const anyMissing = present.length < cells.length;
  if (present.length === 0) return 'float64';
  if (present.every((c) => INTEGER.test(c))) return anyMissing ? 'float64' : 'int64';
  if (present.every((c) => FLOAT.test(c))) return 'float64';
  if (present.every((c) => TRUE_WORDS.has(c) || FALSE_WORDS.has(c))) return anyMissing ? 'object' : 'bool';
  return 'object';
}

function firstLine(text: string): string {
  const end = text.search(/\r?\n/);
  return end < 0 ? text : text.slice(0, end);
}

/** The candidate delimiter that occurs most often (outside quotes) in the first line; ',' when none does. */
export function sniffDelimiter(line: string): string {
  const counts = new Map<string, number>(DELIMITER_CANDIDATES.map((d) => [d, 0]));
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && counts.has(ch)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  let best = ',';
  let bestCount = 0;
  for (const d of DELIMITER_CANDIDATES) {
    const n = counts.get(d) ?? 0;
    if (n > bestCount) {
      best = d;
      bestCount = n;
    }
  }
  return best;
}

/**
 * Python's csv.Sniffer.has_header: for up to 21 rows after the first, each column gets a type (numeric, or the
 * length of its text) and is dropped if that type varies; then each remaining column votes "header" when the first
 * row's cell does not fit the type. More header votes than not means a header.
 */
export function sniffHeader(records: string[][]): boolean {
  const first = records[0];
  const columnTypes = new Map<number, 'number' | number | null>(first.map((_, i) => [i, null]));
  let checked = 0;
  for (const row of records.slice(1)) {
    if (checked > 20) break;
    checked++;
    if (row.length !== first.length) continue;
    for (const col of [...columnTypes.keys()]) {
      const type: 'number' | number = pythonComplexParses(row[col]) ? 'number' : row[col].length;
      const known = columnTypes.get(col);
      if (known === null) columnTypes.set(col, type);
      else if (known !== type) columnTypes.delete(col);
    }
  }
  let votes = 0;
  for (const [col, type] of columnTypes) {
    if (type === null) continue;
    if (type === 'number') votes += pythonComplexParses(first[col]) ? -1 : 1;
    else votes += first[col].length !== type ? 1 : -1;
  }
  return votes > 0;
}

function pythonComplexParses(cell: string): boolean {
  const t = cell.trim();
  return t.length > 0 && (FLOAT.test(t) || /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?j$/.test(t));
}

/** RFC 4180 records: quoted fields may hold delimiters, doubled quotes and newlines; blank lines are skipped. */
export function splitRecords(text: string, delimiter: string, path: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let fieldWasQuoted = false;
  let line = 1;
  let quoteStartLine = 0;
  const endRecord = (): void => {
    record.push(field);
    const blank = record.length === 1 && record[0] === '' && !fieldWasQuoted;
    if (!blank) records.push(record);
    record = [];
    field = '';
    fieldWasQuoted = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field.trim() === '') {
      quoted = true;
      fieldWasQuoted = true;
      quoteStartLine = line;
      field = '';
    } else if (ch === delimiter) {
      record.push(field);
      field = '';
      fieldWasQuoted = false;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      line++;
      endRecord();
    } else {
      field += ch;
    }
  }
  if (quoted) throw new DataReadError(path, `unterminated quoted field starting on line ${quoteStartLine}`);
  if (field !== '' || record.length > 0 || fieldWasQuoted) endRecord();
  return records;
}
