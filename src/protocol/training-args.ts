/**
 * Fed-BioMed v4.5 `training_args`: the 17 keys, their Python type rules and defaults (TrainingArgs.default_scheme).
 * The node fills defaults for missing keys and rejects unknown ones; the researcher always sends all 17.
 *
 * Values come from the Python-compatible JSON reader, where a float that had no fraction (`0.0`) arrives as a
 * PyFloat and any other number with a fraction is a plain JS number: that is how int and float stay apart.
 */
import { PyFloat, numberOf } from './pyfloat';
import { shortDigits } from './python-json-value';
import { FedbiomedTsError } from '../errors';

export const TEST_METRICS = [
  'ACCURACY', 'F1_SCORE', 'PRECISION', 'RECALL', 'MEAN_SQUARE_ERROR', 'MEAN_ABSOLUTE_ERROR', 'EXPLAINED_VARIANCE',
] as const;
export type TestMetric = (typeof TEST_METRICS)[number];

export interface DpArgs {
  type: 'central' | 'local';
  sigma: number | PyFloat;
  clip: number | PyFloat;
}

/** training_args with every key present. */
export interface TrainingArgs {
  optimizer_args: Record<string, unknown>;
  loader_args: Record<string, unknown>;
  epochs: number | null;
  dry_run: boolean;
  batch_maxnum: number | null;
  test_ratio: number | PyFloat;
  test_on_global_updates: boolean;
  test_metric: TestMetric | null;
  num_updates: number | null;
  test_on_local_updates: boolean;
  test_metric_args: Record<string, unknown>;
  log_interval: number;
  fedprox_mu: number | PyFloat | null;
  use_gpu: boolean;
  dp_args: DpArgs | null;
  share_persistent_buffers: boolean;
  random_seed: number | null;
}

/**
 * How a key's value is checked. The node (parseTrainingArgs below) and the researcher (researcher/training-args.ts)
 * each word their errors their own way (the node as a Python node, FB414), but both check by this kind, and
 * training-args-table.test.ts checks every kind against the TrainRequest schema's `training_args`.
 */
export type TrainingArgKind =
  | 'dict' // a JSON object
  | 'bool'
  | 'count' // a non-negative whole number, or null
  | 'ratio' // a Python float in [0, 1]
  | 'metric' // a MetricTypes member name, or null
  | 'int' // a Python int
  | 'float-or-null' // a Python float, or null
  | 'int-or-null' // a Python int, or null
  | 'dp'; // {type?, sigma, clip}, or null

/** A default value: fresh at every call (dicts are mutable). */
type TrainingArgDefault = null | boolean | number | PyFloat | Record<string, never>;

export interface TrainingArgSpec {
  key: keyof TrainingArgs;
  /** The type in Fed-BioMed's `TrainingArgs.default_scheme()` (documentation, shown in errors). */
  pythonType: string;
  kind: TrainingArgKind;
  default(): TrainingArgDefault;
}

/**
 * The one table of Fed-BioMed v4.5's 17 training arguments, in the declaration order of
 * `TrainingArgs.default_scheme()` (the order nodes write them back and researchers fill missing ones).
 */
export const TRAINING_ARGS_TABLE: readonly TrainingArgSpec[] = [
  { key: 'optimizer_args', pythonType: 'dict', kind: 'dict', default: () => ({}) },
  { key: 'loader_args', pythonType: 'dict', kind: 'dict', default: () => ({}) },
  { key: 'epochs', pythonType: 'int | None', kind: 'count', default: () => null },
  { key: 'num_updates', pythonType: 'int | None', kind: 'count', default: () => null },
  { key: 'dry_run', pythonType: 'bool', kind: 'bool', default: () => false },
  { key: 'batch_maxnum', pythonType: 'int | None', kind: 'count', default: () => null },
  { key: 'test_ratio', pythonType: 'float', kind: 'ratio', default: () => new PyFloat(0) },
  { key: 'test_on_local_updates', pythonType: 'bool', kind: 'bool', default: () => false },
  { key: 'test_on_global_updates', pythonType: 'bool', kind: 'bool', default: () => false },
  { key: 'test_metric', pythonType: 'str | None', kind: 'metric', default: () => null },
  { key: 'test_metric_args', pythonType: 'dict', kind: 'dict', default: () => ({}) },
  { key: 'log_interval', pythonType: 'int', kind: 'int', default: () => 10 },
  { key: 'fedprox_mu', pythonType: 'float | None', kind: 'float-or-null', default: () => null },
  { key: 'use_gpu', pythonType: 'bool', kind: 'bool', default: () => false },
  { key: 'dp_args', pythonType: 'dict | None', kind: 'dp', default: () => null },
  { key: 'share_persistent_buffers', pythonType: 'bool', kind: 'bool', default: () => true },
  { key: 'random_seed', pythonType: 'int | None', kind: 'int-or-null', default: () => null },
];

/** The 17 keys in the declaration order of Fed-BioMed's `TrainingArgs.default_scheme()`. */
export const TRAINING_ARGS_KEYS: readonly (keyof TrainingArgs)[] = TRAINING_ARGS_TABLE.map((spec) => spec.key);

/** The keys of one kind, in table order. */
function trainingArgKeysOf(kind: TrainingArgKind): (keyof TrainingArgs)[] {
  return TRAINING_ARGS_TABLE.filter((spec) => spec.kind === kind).map((spec) => spec.key);
}

export function defaultTrainingArgs(): TrainingArgs {
  return Object.fromEntries(TRAINING_ARGS_TABLE.map((spec) => [spec.key, spec.default()])) as unknown as TrainingArgs;
}

export class TrainingArgsError extends FedbiomedTsError {
  override readonly errnum = 'FB414' as const;
  constructor(readonly key: string, message: string) {
    // FB414 is Fed-BioMed's "bad type or value for training arguments".
    super(`FB414: bad type or value for training arguments: ${key}: ${message}`);
  }
}

/** Python's isinstance(v, float) for a value read by our JSON reader. */
function isPythonFloat(v: unknown): boolean {
  return v instanceof PyFloat || (typeof v === 'number' && !Number.isInteger(v));
}

/** Python's isinstance(v, int) (bool excluded here; Fed-BioMed's rules never rely on bool-as-int). */
function isPythonInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof PyFloat);

export interface ParseTrainingArgsOptions {
  /**
   * The arguments come from parseMessage, which already enforced int/float typing with the message schema and
   * returns float fields as plain numbers (a wire `0.0` arrives as 0): do not re-check float-ness.
   */
  schemaTyped?: boolean;
}

/**
 * Validates training_args as a v4.5 node does, filling defaults for absent keys.
 * Throws TrainingArgsError naming the key.
 */
export function parseTrainingArgs(input: unknown, options: ParseTrainingArgsOptions = {}): TrainingArgs {
  const isFloat = options.schemaTyped ? (v: unknown) => typeof v === 'number' || v instanceof PyFloat : isPythonFloat;
  if (!isObject(input)) throw new TrainingArgsError('training_args', 'must be an object');
  for (const key of Object.keys(input)) {
    if (!(TRAINING_ARGS_KEYS as readonly string[]).includes(key)) {
      throw new TrainingArgsError(key, `undefined key (${key}) in scheme`);
    }
  }
  const args = { ...defaultTrainingArgs(), ...input } as Record<string, unknown>;
  const fail = (key: string, msg: string): never => {
    throw new TrainingArgsError(key, msg);
  };
  for (const key of trainingArgKeysOf('dict')) {
    if (!isObject(args[key])) fail(key, 'must be an object');
  }
  for (const key of trainingArgKeysOf('bool')) {
    if (typeof args[key] !== 'boolean') fail(key, 'must be true or false');
  }
  for (const key of trainingArgKeysOf('count')) {
    const v = args[key];
    if (v === null) continue;
    const n = typeof v === 'number' || v instanceof PyFloat ? numberOf(v) : NaN;
    if (!Number.isInteger(n) || n < 0) fail(key, `should be a non-negative integer or None, but got ${shortDigits(String(v))}`);
    args[key] = n;
  }
  for (const key of trainingArgKeysOf('ratio')) {
    const ratio = args[key];
    if (!isFloat(ratio)) fail(key, `must be a float (got ${describe(ratio)}); write 0.0, not 0`);
    const r = numberOf(ratio as number | PyFloat);
    if (!(r >= 0 && r <= 1)) fail(key, `must be in [0.0, 1.0], got ${r}`);
  }
  for (const key of trainingArgKeysOf('metric')) {
    const metric = args[key];
    if (metric === null) continue;
    if (typeof metric !== 'string' || !(TEST_METRICS as readonly string[]).includes(metric.toUpperCase())) {
      fail(key, `Metric ${String(metric).length > 60 ? `${String(metric).slice(0, 60)}…` : String(metric)} is not a supported Metric`);
    }
    args[key] = (metric as string).toUpperCase();
  }
  for (const key of trainingArgKeysOf('int')) {
    if (!isPythonInt(args[key])) fail(key, 'must be an integer');
  }
  for (const key of trainingArgKeysOf('float-or-null')) {
    const v = args[key];
    if (v !== null && !isFloat(v)) fail(key, `must be a float or null (got ${describe(v)})`);
  }
  for (const key of trainingArgKeysOf('int-or-null')) {
    const v = args[key];
    if (v !== null && !isPythonInt(v)) fail(key, 'must be an integer or null');
  }
  for (const key of trainingArgKeysOf('dp')) {
    const dp = args[key];
    if (dp === null) continue;
    if (!isObject(dp)) fail(key, 'should be None or an object');
    const d: Record<string, unknown> = { type: 'central', ...(dp as Record<string, unknown>) };
    if (d['type'] !== 'central' && d['type'] !== 'local') fail(`${key}.type`, 'should be "central" or "local"');
    if (!isFloat(d['sigma'])) fail(`${key}.sigma`, 'must be a float');
    if (!isFloat(d['clip'])) fail(`${key}.clip`, 'must be a float');
    args[key] = d;
  }
  const ordered: Record<string, unknown> = {};
  for (const key of TRAINING_ARGS_KEYS) ordered[key] = args[key];
  return ordered as unknown as TrainingArgs;
}

/** The loader's batch size, which Fed-BioMed requires in `loader_args`. */
export function batchSizeOf(args: TrainingArgs): number {
  const b = args.loader_args['batch_size'];
  if (!isPythonInt(b) || b <= 0) {
    throw new TrainingArgsError('loader_args.batch_size', 'must be a positive integer (Fed-BioMed requires it)');
  }
  return b;
}

function describe(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? `integer ${v}` : `float ${v}`;
  return v === null ? 'null' : typeof v;
}
