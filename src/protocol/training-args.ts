/**
 * Fed-BioMed v4.5 `training_args`: the 17 keys, their Python type rules and defaults (TrainingArgs.default_scheme).
 * The node fills defaults for missing keys and rejects unknown ones; the researcher always sends all 17.
 *
 * Values come from the Python-compatible JSON reader, where a float that had no fraction (`0.0`) arrives as a
 * PyFloat and any other number with a fraction is a plain JS number: that is how int and float stay apart.
 */
import { PyFloat, numberOf } from './pyfloat';
import { shortDigits } from './python-json-value';

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

/** The 17 keys in the declaration order of Fed-BioMed's `TrainingArgs.default_scheme()`. */
export const TRAINING_ARGS_KEYS: readonly (keyof TrainingArgs)[] = [
  'optimizer_args', 'loader_args', 'epochs', 'num_updates', 'dry_run', 'batch_maxnum', 'test_ratio',
  'test_on_local_updates', 'test_on_global_updates', 'test_metric', 'test_metric_args', 'log_interval', 'fedprox_mu',
  'use_gpu', 'dp_args', 'share_persistent_buffers', 'random_seed',
];

export function defaultTrainingArgs(): TrainingArgs {
  return {
    optimizer_args: {},
    loader_args: {},
    epochs: null,
    dry_run: false,
    batch_maxnum: null,
    test_ratio: new PyFloat(0),
    test_on_global_updates: false,
    test_metric: null,
    num_updates: null,
    test_on_local_updates: false,
    test_metric_args: {},
    log_interval: 10,
    fedprox_mu: null,
    use_gpu: false,
    dp_args: null,
    share_persistent_buffers: true,
    random_seed: null,
  };
}

export class TrainingArgsError extends Error {
  constructor(readonly key: string, message: string) {
    // FB414 is Fed-BioMed's "bad type or value for training arguments".
    super(`FB414: bad type or value for training arguments: ${key}: ${message}`);
  }
}

/** Python's isinstance(v, float) for a value read by our JSON reader. */
export function isPythonFloat(v: unknown): boolean {
  return v instanceof PyFloat || (typeof v === 'number' && !Number.isInteger(v));
}

/** Python's isinstance(v, int) (bool excluded here; Fed-BioMed's rules never rely on bool-as-int). */
export function isPythonInt(v: unknown): v is number {
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
  for (const key of ['optimizer_args', 'loader_args', 'test_metric_args'] as const) {
    if (!isObject(args[key])) fail(key, 'must be an object');
  }
  for (const key of ['dry_run', 'test_on_global_updates', 'test_on_local_updates', 'use_gpu',
    'share_persistent_buffers'] as const) {
    if (typeof args[key] !== 'boolean') fail(key, 'must be true or false');
  }
  for (const key of ['epochs', 'num_updates', 'batch_maxnum'] as const) {
    const v = args[key];
    if (v === null) continue;
    const n = typeof v === 'number' || v instanceof PyFloat ? numberOf(v as number | PyFloat) : NaN;
    if (!Number.isInteger(n) || n < 0) fail(key, `should be a non-negative integer or None, but got ${shortDigits(String(v))}`);
    args[key] = n;
  }
  const ratio = args['test_ratio'];
  if (!isFloat(ratio)) fail('test_ratio', `must be a float (got ${describe(ratio)}); write 0.0, not 0`);
  const r = numberOf(ratio as number | PyFloat);
  if (!(r >= 0 && r <= 1)) fail('test_ratio', `must be in [0.0, 1.0], got ${r}`);
  const metric = args['test_metric'];
  if (metric !== null) {
    if (typeof metric !== 'string' || !(TEST_METRICS as readonly string[]).includes(metric.toUpperCase())) {
      fail('test_metric', `Metric ${String(metric).length > 60 ? `${String(metric).slice(0, 60)}…` : String(metric)} is not a supported Metric`);
    }
    args['test_metric'] = (metric as string).toUpperCase();
  }
  if (!isPythonInt(args['log_interval'])) fail('log_interval', 'must be an integer');
  const mu = args['fedprox_mu'];
  if (mu !== null && !isFloat(mu)) fail('fedprox_mu', `must be a float or null (got ${describe(mu)})`);
  const seed = args['random_seed'];
  if (seed !== null && !isPythonInt(seed)) fail('random_seed', 'must be an integer or null');
  const dp = args['dp_args'];
  if (dp !== null) {
    if (!isObject(dp)) fail('dp_args', 'should be None or an object');
    const d: Record<string, unknown> = { type: 'central', ...(dp as Record<string, unknown>) };
    if (d['type'] !== 'central' && d['type'] !== 'local') fail('dp_args.type', 'should be "central" or "local"');
    if (!isFloat(d['sigma'])) fail('dp_args.sigma', 'must be a float');
    if (!isFloat(d['clip'])) fail('dp_args.clip', 'must be a float');
    args['dp_args'] = d;
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
