/**
 * The experiment file has one definition of each part: its TypeScript type takes its fields from ExperimentOptions,
 * its training arguments are src/protocol's table; schemas/experiment.schema.json is checked against both here.
 */
import experimentSchema from '../schemas/experiment.schema.json';
import { TEST_METRICS, TRAINING_ARGS_KEYS } from '../src/protocol/training-args';
import type { WireTrainingArgs } from '../src/protocol/messages';
import { EXPERIMENT_FILE_KEYS, type ExperimentFile } from './config';
import type { TrainingArgsInput } from './training-args';

type SameKeys<A, B> = [Exclude<keyof A, keyof B> | Exclude<keyof B, keyof A>] extends [never] ? true : false;
type RequiredKeys<T> = { [K in keyof T]-?: Record<string, never> extends Pick<T, K> ? never : K }[keyof T];

describe('experiment file definition', () => {
  it('the schema has the keys of ExperimentFile, and requires the ones the type requires', () => {
    expect(Object.keys(experimentSchema.properties).sort()).toEqual(Object.keys(EXPERIMENT_FILE_KEYS).sort());
    const required = ['tags', 'plan', 'trainingArgs', 'roundLimit'] as const;
    // tsc fails here when the type's required keys change without this list.
    const complete: [Exclude<RequiredKeys<ExperimentFile>, (typeof required)[number]>] extends [never] ? true : false = true;
    expect(complete).toBe(true);
    expect([...experimentSchema.required].sort()).toEqual([...required].sort());
  });

  it('the schema\'s trainingArgs are the training-arguments table (keys in order, metric names)', () => {
    const trainingArgs = experimentSchema.properties.trainingArgs;
    expect(Object.keys(trainingArgs.properties)).toEqual([...TRAINING_ARGS_KEYS]);
    expect(trainingArgs.additionalProperties).toBe(false);
    expect(trainingArgs.properties.test_metric.enum).toEqual([null, ...TEST_METRICS]);
  });

  it('what a user may give names the wire keys (checked by tsc)', () => {
    const same: SameKeys<Required<TrainingArgsInput>, WireTrainingArgs> = true;
    expect(same).toBe(true);
  });
});
