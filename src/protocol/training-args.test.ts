import { PyFloat } from './pyfloat';
import { batchSizeOf, parseTrainingArgs, TRAINING_ARGS_KEYS, TrainingArgsError } from './training-args';

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
