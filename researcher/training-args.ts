/**
 * `training_args` exactly as a Python v4.5.0 researcher sends them (protocol reference 6.4).
 *
 * Python's `TrainingArgs(ta, only_required=False)` deep-copies the user's dict (keeping the user's key order) and
 * then walks its scheme in declaration order adding every missing key with its default. Nodes validate the result
 * with `isinstance`, so float-typed values must travel as floats (`0.0`, not `0`): those are wrapped in `PyFloat`
 * here and written with a decimal point by the Python-compatible JSON writer.
 */
import { PyFloat, numberOf } from '../src/protocol/pyfloat';

export type Json = null | boolean | number | string | PyFloat | Json[] | { [key: string]: Json };

import { TEST_METRICS, TRAINING_ARGS_TABLE, TestMetric, type TrainingArgKind } from '../src/protocol/training-args';
import { FedbiomedTsError } from '../src/errors';

/** What a user may give; every key is optional and snake_case, as in Fed-BioMed. */
export interface TrainingArgsInput {
  optimizer_args?: Record<string, Json>;
  loader_args?: Record<string, Json>;
  epochs?: number | null;
  num_updates?: number | null;
  dry_run?: boolean;
  batch_maxnum?: number | null;
  test_ratio?: number | PyFloat;
  test_on_local_updates?: boolean;
  test_on_global_updates?: boolean;
  test_metric?: TestMetric | null;
  test_metric_args?: Record<string, Json>;
  log_interval?: number;
  fedprox_mu?: number | PyFloat | null;
  use_gpu?: boolean;
  dp_args?: { type?: 'central' | 'local'; sigma: number | PyFloat; clip: number | PyFloat } | null;
  share_persistent_buffers?: boolean;
  random_seed?: number | null;
}

/** The 17 keys, in the declaration order of Python's `TrainingArgs.default_scheme()` (src/protocol's table). */
export const TRAINING_ARGS_KEYS: readonly string[] = TRAINING_ARGS_TABLE.map((spec) => spec.key);

const KIND_OF: ReadonlyMap<string, TrainingArgKind> = new Map(TRAINING_ARGS_TABLE.map((spec) => [spec.key, spec.kind]));

export class TrainingArgsError extends FedbiomedTsError {
  override readonly errnum = 'FB414' as const;
  constructor(message: string) {
    super(`training_args: ${message}`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PyFloat);
}

function isNumberLike(v: unknown): v is number | PyFloat {
  return (typeof v === 'number' && Number.isFinite(v)) || v instanceof PyFloat;
}

function checkNonNegativeIntOrNull(key: string, v: unknown): void {
  if (v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new TrainingArgsError(`${key} must be a non-negative integer or null, got ${JSON.stringify(v)}`);
  }
}

function checkBool(key: string, v: unknown): void {
  if (typeof v !== 'boolean') throw new TrainingArgsError(`${key} must be a boolean, got ${JSON.stringify(v)}`);
}

function checkObject(key: string, v: unknown): void {
  if (!isPlainObject(v)) throw new TrainingArgsError(`${key} must be an object, got ${JSON.stringify(v)}`);
}

/** Validates one key by its kind (src/protocol's table) and returns the value to send (floats wrapped as PyFloat). */
function normaliseValue(key: string, v: unknown): Json {
  const kind = KIND_OF.get(key);
  switch (kind) {
    case 'dict':
      checkObject(key, v);
      return v as Json;
    case 'count':
      checkNonNegativeIntOrNull(key, v);
      return v as Json;
    case 'bool':
      checkBool(key, v);
      return v as boolean;
    case 'ratio': {
      if (!isNumberLike(v)) throw new TrainingArgsError(`${key} must be a number in [0, 1], got ${JSON.stringify(v)}`);
      const x = numberOf(v);
      if (x < 0 || x > 1) throw new TrainingArgsError(`${key} must be in [0, 1], got ${x}`);
      return new PyFloat(x);
    }
    case 'metric':
      if (v === null) return null;
      if (typeof v !== 'string' || !(TEST_METRICS as readonly string[]).includes(v)) {
        throw new TrainingArgsError(`${key} must be null or one of ${TEST_METRICS.join(', ')}, got ${JSON.stringify(v)}`);
      }
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        throw new TrainingArgsError(`${key} must be an integer, got ${JSON.stringify(v)}`);
      }
      return v;
    case 'float-or-null':
      if (v === null) return null;
      if (!isNumberLike(v)) throw new TrainingArgsError(`${key} must be a number or null, got ${JSON.stringify(v)}`);
      return new PyFloat(numberOf(v));
    case 'int-or-null':
      if (v === null) return null;
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        throw new TrainingArgsError(`${key} must be an integer or null, got ${JSON.stringify(v)}`);
      }
      return v;
    case 'dp':
      return normaliseDpArgs(v);
    case undefined:
      throw new TrainingArgsError(`unknown key "${key}" (allowed: ${TRAINING_ARGS_KEYS.join(', ')})`);
  }
}

/** Python fills dp_args as {type (default "central"), sigma, clip}; sigma and clip are floats. */
function normaliseDpArgs(v: unknown): Json {
  if (v === null) return null;
  if (!isPlainObject(v)) throw new TrainingArgsError(`dp_args must be null or an object, got ${JSON.stringify(v)}`);
  const out: Record<string, Json> = {};
  for (const key of Object.keys(v)) {
    if (!['type', 'sigma', 'clip'].includes(key)) throw new TrainingArgsError(`dp_args: unknown key "${key}"`);
  }
  const type = v.type ?? 'central';
  if (type !== 'central' && type !== 'local') {
    throw new TrainingArgsError(`dp_args.type must be "central" or "local", got ${JSON.stringify(type)}`);
  }
  for (const key of ['sigma', 'clip'] as const) {
    if (!isNumberLike(v[key])) throw new TrainingArgsError(`dp_args.${key} must be a number, got ${JSON.stringify(v[key])}`);
  }
  // Key order: the user's keys first, then the defaults, like Python's populate_with_defaults.
  for (const key of Object.keys(v)) {
    out[key] = key === 'type' ? (v[key] as string) : new PyFloat(numberOf(v[key] as number | PyFloat));
  }
  if (!('type' in out)) out.type = 'central';
  return out;
}

/**
 * Builds the full 17-key `training_args` object: the user's keys first, in the user's order, then every missing key
 * in scheme order. Throws TrainingArgsError naming the offending key.
 */
export function buildTrainingArgs(input: TrainingArgsInput | Record<string, unknown> = {}): Record<string, Json> {
  if (!isPlainObject(input)) throw new TrainingArgsError('must be an object');
  const out: Record<string, Json> = {};
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    out[key] = normaliseValue(key, value);
  }
  for (const spec of TRAINING_ARGS_TABLE) {
    if (!(spec.key in out)) out[spec.key] = spec.default();
  }
  const loader = out.loader_args as Record<string, Json>;
  if (!('batch_size' in loader)) {
    // A node fails at its first training report without it (reference 6.4); fail here, before any request.
    throw new TrainingArgsError('loader_args.batch_size is required');
  }
  if (out.epochs === null && out.num_updates === null) {
    throw new TrainingArgsError('set epochs or num_updates');
  }
  return out;
}

/** A copy safe to store as JSON (breakpoints): PyFloat becomes `{ "$pyfloat": x }`. */
export function trainingArgsToJson(args: Record<string, Json>): unknown {
  return JSON.parse(
    JSON.stringify(args, function (this: Record<string, unknown>, key: string, value: unknown) {
      const raw = this[key];
      return raw instanceof PyFloat ? { $pyfloat: raw.value } : value;
    }),
  );
}

/** Inverse of trainingArgsToJson. */
export function trainingArgsFromJson(value: unknown): Record<string, Json> {
  const revive = (v: unknown): Json => {
    if (Array.isArray(v)) return v.map(revive);
    if (isPlainObject(v)) {
      if (Object.keys(v).length === 1 && typeof v.$pyfloat === 'number') return new PyFloat(v.$pyfloat);
      const o: Record<string, Json> = {};
      for (const [k, x] of Object.entries(v)) o[k] = revive(x);
      return o;
    }
    return v as Json;
  };
  const out = revive(value);
  if (!isPlainObject(out)) throw new TrainingArgsError('stored training_args is not an object');
  return out;
}
