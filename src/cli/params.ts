/**
 * `fedbiomed-ts params inspect FILE.mpk… [--json]`: what is inside a Fed-BioMed weight file, for people
 * debugging a network. Prints the top-level keys, every tensor's name, dtype and shape, and the other top-level
 * values. Several files may be given: they are reported in order (with --json, one JSON line each).
 *
 * JSON form (one line per file):
 *   {"keys": [top-level keys in file order],
 *    "tensors": {"name": {"dtype": "float32", "shape": [8, 4]}, …},
 *    "values": {"key": value, …}}
 * - `tensors` lists the entries of `model_weights`. A file without a `model_weights` map (e.g. a Scaffold
 *   `aggregator_correction` file, `{name: tensor}`) lists its top-level tensors instead.
 * - `values` holds every other top-level entry, as JSON: strings, booleans and null as they are; numbers as
 *   numbers (NaN/±Infinity as the strings "NaN", "Infinity", "-Infinity"); integers beyond 2^53 as decimal
 *   strings; maps as objects (non-string keys stringified); lists and tuples as arrays; tensors, numpy scalars and
 *   bytes as summaries `{"__type__": "torch.Tensor", "dtype", "shape"}`, `{"__type__": "np.generic", "dtype",
 *   "value"}`, `{"__type__": "bytes", "length"}` (tensor data is never printed).
 * A file that cannot be read or decoded prints one line on stderr; the exit code is then 1.
 */
import * as fs from 'fs';
import { Command } from 'commander';
import { DenseArray, NpGeneric, PyFloat, PyTuple, TorchTensor, decodeParams } from '../serialize';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface TensorSummary {
  dtype: string;
  shape: number[];
}

export interface ParamsSummary {
  keys: string[];
  tensors: Record<string, TensorSummary>;
  values: Record<string, JsonValue>;
}

/** Entries of a decoded map, whether it came back as a plain object or (non-string keys) as a Map. */
function entriesOf(value: unknown): [string, unknown][] | undefined {
  if (value instanceof Map) return [...value.entries()].map(([k, v]) => [String(k), v]);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.entries(value);
  }
  return undefined;
}

function tensorSummary(tensor: DenseArray): TensorSummary {
  return { dtype: tensor.dtype, shape: [...tensor.shape] };
}

/** A JSON rendering of a decoded value with tensor data left out (see the file comment). */
export function toJsonSummary(value: unknown): JsonValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number' || value instanceof PyFloat) {
    const n = Number(value);
    return Number.isFinite(n) ? n : String(n);
  }
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof DenseArray) {
    return { __type__: value instanceof TorchTensor ? TorchTensor.TAG : 'np.ndarray', ...tensorSummary(value) };
  }
  if (value instanceof NpGeneric) return { __type__: NpGeneric.TAG, dtype: value.dtype, value: toJsonSummary(value.value) };
  if (value instanceof Uint8Array) return { __type__: 'bytes', length: value.byteLength };
  if (value instanceof PyTuple) return value.items.map(toJsonSummary);
  if (Array.isArray(value)) return value.map(toJsonSummary);
  const entries = entriesOf(value);
  if (entries) return Object.fromEntries(entries.map(([k, v]) => [k, toJsonSummary(v)]));
  return String(value);
}

/** Summary of a decoded weight file. Throws when the top level is not a map (no weight file looks like that). */
export function summarizeParams(decoded: unknown): ParamsSummary {
  const entries = entriesOf(decoded);
  if (!entries) {
    const kind = Array.isArray(decoded) ? 'a list' : decoded === null ? 'None' : `a ${typeof decoded}`;
    throw new Error(`the file holds ${kind}, not a map of named values: not a Fed-BioMed weight file`);
  }
  const weights = entriesOf(entries.find(([key]) => key === 'model_weights')?.[1]);
  const summary: ParamsSummary = { keys: entries.map(([key]) => key), tensors: {}, values: {} };
  for (const [name, tensor] of weights ?? entries) {
    if (tensor instanceof DenseArray) summary.tensors[name] = tensorSummary(tensor);
  }
  for (const [key, value] of entries) {
    const listedAsTensors = weights ? key === 'model_weights' : value instanceof DenseArray;
    if (!listedAsTensors) summary.values[key] = toJsonSummary(value);
  }
  return summary;
}

/** The human-readable report. */
export function formatSummary(file: string, byteLength: number, summary: ParamsSummary): string {
  const lines = [`${file} (${byteLength} bytes)`, `keys: ${summary.keys.join(', ')}`];
  for (const [key, value] of Object.entries(summary.values)) lines.push(`  ${key} = ${JSON.stringify(value)}`);
  const tensors = Object.entries(summary.tensors);
  const elements = tensors.reduce((sum, [, t]) => sum + t.shape.reduce((p, n) => p * n, 1), 0);
  lines.push(`tensors: ${tensors.length} (${elements} values)`);
  const nameWidth = Math.max(4, ...tensors.map(([name]) => name.length));
  const dtypeWidth = Math.max(5, ...tensors.map(([, t]) => t.dtype.length));
  if (tensors.length > 0) lines.push(`  ${'name'.padEnd(nameWidth)}  ${'dtype'.padEnd(dtypeWidth)}  shape`);
  for (const [name, t] of tensors) {
    lines.push(`  ${name.padEnd(nameWidth)}  ${t.dtype.padEnd(dtypeWidth)}  [${t.shape.join(', ')}]`);
  }
  return lines.join('\n') + '\n';
}

/** Inspects each file in turn; a bad one is reported and the others still are (exit code 1 at the end). */
function inspect(files: string[], options: { json?: boolean }): void {
  for (const file of files) {
    let bytes: Buffer;
    let summary: ParamsSummary;
    try {
      bytes = fs.readFileSync(file);
      summary = summarizeParams(decodeParams(bytes));
    } catch (err: unknown) {
      const e = err as NodeJS.ErrnoException;
      const reason = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.message;
      process.stderr.write(`fedbiomed-ts params inspect: ${file}: ${reason}\n`);
      process.exitCode = 1;
      continue;
    }
    process.stdout.write(options.json ? JSON.stringify(summary) + '\n' : formatSummary(file, bytes.byteLength, summary));
  }
}

export function register(program: Command): void {
  const params = program.command('params').description('Fed-BioMed weight files (.mpk)');
  params
    .command('inspect')
    .description('print top-level keys, and name, dtype and shape of every tensor of a weight file')
    .argument('<files...>', 'Fed-BioMed msgpack weight files (.mpk)')
    .option('--json', 'print {"keys", "tensors", "values"} as one JSON line per file')
    .action((files: string[], options: { json?: boolean }) => inspect(files, options));
}
