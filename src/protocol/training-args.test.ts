import { PyFloat } from './pyfloat';
import {
  batchSizeOf, defaultTrainingArgs, parseTrainingArgs, TEST_METRICS, TRAINING_ARGS_KEYS, TRAINING_ARGS_TABLE,
  TrainingArgsError, type TrainingArgKind, type TrainingArgs,
} from './training-args';
import { MESSAGE_SCHEMAS, type MessageSchema } from './schema-registry';
import { validateMessage } from './message-validator';
import type { WireTrainingArgs } from './messages';

// The training_args of the recorded train request (vectors, line 27), as our JSON reader returns them.
const recorded = {
  optimizer_args: { lr: 0.01 }, loader_args: { batch_size: 8 }, epochs: null, dry_run: false, batch_maxnum: null,
  test_ratio: 0.25, test_on_global_updates: true, test_metric: 'ACCURACY', num_updates: 3,
  test_on_local_updates: true, test_metric_args: {}, log_interval: 1, fedprox_mu: null, use_gpu: false,
  dp_args: null, share_persistent_buffers: true, random_seed: null,
};

describe('training_args', () => {
  it('accepts the recorded Python researcher arguments and keeps the key order', () => {
    const args = parseTrainingArgs(recorded);
    expect(Object.keys(args)).toEqual([...TRAINING_ARGS_KEYS]);
    expect(args.num_updates).toBe(3);
    expect(batchSizeOf(args)).toBe(8);
  });

  it('fills defaults for missing keys like a v4.5 node', () => {
    const args = parseTrainingArgs({ loader_args: { batch_size: 4 }, epochs: 1 });
    expect(args.test_ratio).toBeInstanceOf(PyFloat);
    expect(args.log_interval).toBe(10);
    expect(args.share_persistent_buffers).toBe(true);
  });

  it('rejects what a Python node rejects, naming the key', () => {
    expect(() => parseTrainingArgs({ ...recorded, test_ratio: 0 })).toThrow(/test_ratio: must be a float \(got integer 0\)/);
    expect(() => parseTrainingArgs({ ...recorded, test_ratio: new PyFloat(0) })).not.toThrow();
    expect(() => parseTrainingArgs({ ...recorded, test_ratio: 1.5 })).toThrow(/test_ratio/);
    expect(() => parseTrainingArgs({ ...recorded, batch_size: 8 })).toThrow(/undefined key \(batch_size\)/);
    expect(() => parseTrainingArgs({ ...recorded, epochs: -1 })).toThrow(/epochs/);
    expect(() => parseTrainingArgs({ ...recorded, epochs: 1.5 })).toThrow(/epochs/);
    expect(() => parseTrainingArgs({ ...recorded, fedprox_mu: 1 })).toThrow(/fedprox_mu/);
    expect(() => parseTrainingArgs({ ...recorded, test_metric: 'AUC' })).toThrow(/not a supported Metric/);
    expect(() => parseTrainingArgs({ ...recorded, dp_args: { sigma: 1 } })).toThrow(/dp_args.sigma/);
    expect(() => parseTrainingArgs([])).toThrow(TrainingArgsError);
    expect(() => batchSizeOf(parseTrainingArgs({}))).toThrow(/loader_args.batch_size/);
  });
});

describe('training_args from a parsed message', () => {
  it('trusts the schema for float-ness (0.0 arrives as 0) but still checks ranges', () => {
    expect(parseTrainingArgs({ ...recorded, test_ratio: 0 }, { schemaTyped: true }).test_ratio).toBe(0);
    expect(() => parseTrainingArgs({ ...recorded, test_ratio: 2 }, { schemaTyped: true })).toThrow(/test_ratio/);
  });
});

describe('the training-arguments table (one definition: the schema and both sides are checked against it)', () => {
  const schema = MESSAGE_SCHEMAS['researcher-to-node'].train.properties?.training_args as MessageSchema;
  /** What the TrainRequest schema must say for each kind of the table. */
  const KIND_SCHEMA: Record<TrainingArgKind, Record<string, unknown>> = {
    dict: { type: 'object' },
    bool: { type: 'boolean' },
    count: { 'x-python-type': ['int', 'float', 'null'], minimum: 0, multipleOf: 1 },
    ratio: { 'x-python-type': 'float', minimum: 0, maximum: 1 },
    metric: { enum: [null, ...TEST_METRICS] },
    int: { 'x-python-type': 'int' },
    'float-or-null': { 'x-python-type': ['float', 'null'] },
    'int-or-null': { 'x-python-type': ['int', 'null'] },
    dp: { type: ['object', 'null'], required: ['sigma', 'clip'] },
  };

  it('names the schema keys in the schema order, every one required, no other allowed', () => {
    expect(Object.keys(schema.properties ?? {})).toEqual([...TRAINING_ARGS_KEYS]);
    expect(schema.required).toEqual([...TRAINING_ARGS_KEYS]);
    expect(schema.additionalProperties).toBe(false);
    expect(TRAINING_ARGS_TABLE.map((s) => s.key)).toEqual([...TRAINING_ARGS_KEYS]);
  });

  it('gives each key the kind its schema describes', () => {
    for (const spec of TRAINING_ARGS_TABLE) {
      expect({ key: spec.key, schema: schema.properties?.[spec.key] }).toMatchObject({ key: spec.key, schema: KIND_SCHEMA[spec.kind] });
    }
  });

  it('has defaults the schema accepts', () => {
    const request = {
      researcher_id: 'r', job_id: 'j', state_id: null, params_url: 'u', training_args: defaultTrainingArgs(),
      dataset_id: 'd', training: true, model_args: {}, training_plan_url: 'p', training_plan_class: 'C',
      command: 'train', secagg_servkey_id: null, secagg_biprime_id: null, secagg_random: null,
      secagg_clipping_range: null, round: 0, aggregator_args: {}, aux_var_urls: null, protocol_version: '1',
    };
    expect(validateMessage('researcher-to-node', 'train', request)).toBeUndefined();
    expect(validateMessage('researcher-to-node', 'train', { ...request, training_args: { ...defaultTrainingArgs(), log_interval: 1.5 } }))
      .toMatchObject({ field: 'training_args.log_interval' });
  });

  it('the node type and the wire type generated from the schema name the same keys (checked by tsc)', () => {
    type SameKeys<A, B> = [Exclude<keyof A, keyof B> | Exclude<keyof B, keyof A>] extends [never] ? true : false;
    const same: SameKeys<TrainingArgs, WireTrainingArgs> = true;
    expect(same).toBe(true);
  });
});
