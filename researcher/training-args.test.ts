import { buildTrainingArgs, trainingArgsFromJson, trainingArgsToJson, TRAINING_ARGS_KEYS } from './training-args';
import { pythonJsonDumps } from '../src/protocol/python-json-writer';
import { parseTrainingArgs } from '../src/protocol/training-args';
import { RECORDED_USER_TRAINING_ARGS, traceMessage } from './testing/vectors';

describe('buildTrainingArgs', () => {
  it('writes the recorded Python researcher training_args byte for byte (user keys first, then scheme order)', () => {
    const recorded = traceMessage(27).message.training_args as Record<string, unknown>;
    const built = buildTrainingArgs({ ...RECORDED_USER_TRAINING_ARGS });
    expect(pythonJsonDumps(built)).toBe(pythonJsonDumps(recorded));
    const recordedText = traceMessage(27).payload;
    expect(recordedText).toContain(pythonJsonDumps(built));
  });

  it('always sends all 17 keys and writes float-typed values with a decimal point', () => {
    const built = buildTrainingArgs({ loader_args: { batch_size: 4 }, epochs: 1, test_ratio: 0, fedprox_mu: 1, dp_args: { sigma: 1, clip: 2 } });
    expect(Object.keys(built).sort()).toEqual([...TRAINING_ARGS_KEYS].sort());
    const text = pythonJsonDumps(built);
    expect(text).toContain('"test_ratio": 0.0');
    expect(text).toContain('"fedprox_mu": 1.0');
    expect(text).toContain('"dp_args": {"sigma": 1.0, "clip": 2.0, "type": "central"}');
    // and what a v4.5 node's validation (src/protocol) accepts
    const reparsed = parseTrainingArgs(built);
    expect(reparsed.epochs).toBe(1);
  });

  it('rejects unknown keys, wrong types and missing batch_size / epochs with the key named', () => {
    expect(() => buildTrainingArgs({ loader_args: { batch_size: 1 }, epochs: 1, batch_size: 3 })).toThrow(/unknown key "batch_size"/);
    expect(() => buildTrainingArgs({ loader_args: { batch_size: 1 }, epochs: -1 })).toThrow(/epochs must be a non-negative integer/);
    expect(() => buildTrainingArgs({ loader_args: { batch_size: 1 }, epochs: 1, test_ratio: 2 })).toThrow(/test_ratio must be in \[0, 1\]/);
    expect(() => buildTrainingArgs({ loader_args: { batch_size: 1 }, epochs: 1, test_metric: 'AUC' as never })).toThrow(/test_metric/);
    expect(() => buildTrainingArgs({ epochs: 1 })).toThrow(/loader_args.batch_size is required/);
    expect(() => buildTrainingArgs({ loader_args: { batch_size: 1 } })).toThrow(/set epochs or num_updates/);
    expect(() => buildTrainingArgs({ loader_args: { batch_size: 1 }, epochs: 1, dp_args: { sigma: 'x' } as never })).toThrow(/dp_args.sigma/);
  });

  it('survives a JSON round trip (breakpoints) with float typing intact', () => {
    const built = buildTrainingArgs({ loader_args: { batch_size: 4 }, epochs: 1, test_ratio: 0 });
    const restored = trainingArgsFromJson(JSON.parse(JSON.stringify(trainingArgsToJson(built))));
    expect(pythonJsonDumps(restored)).toBe(pythonJsonDumps(built));
  });
});
