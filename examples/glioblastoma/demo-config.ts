/**
 * The two demo sizes. Default: the generator's default cohort (Caen 50, Rouen 40, Nice 60 patients, 50 held-out,
 * 48 x 48 x 24 voxels), under 10 minutes on 2 cores. Quick (`--quick`, used by the test): the same patients at a
 * quarter of the in-plane resolution and half the slices, DICOM only, fewer rounds: under 2 minutes.
 */
import type { Vec3 } from 'fedbiomed-ts';
import { DEFAULT_HELD_OUT, DEFAULT_SEED, DEFAULT_VOLUME_SIZE } from './cohort';
import { DEFAULT_SITES } from './sites';

export interface DemoConfig {
  name: 'default' | 'quick';
  seed: number;
  sites: { name: string; patients: number }[];
  heldOut: number;
  volumeSize: Vec3;
  /** Also write the NIfTI medical-folder copy of the cohort (the nodes use the DICOM copy). */
  writeNifti: boolean;
  rounds: number;
  /** Local epochs per round on each node; baselines train rounds × epochsPerRound epochs (same budget). */
  epochsPerRound: number;
  batchSize: number;
}

export const DEFAULT_DEMO: DemoConfig = {
  name: 'default',
  seed: DEFAULT_SEED,
  sites: DEFAULT_SITES.map((s) => ({ ...s })),
  heldOut: DEFAULT_HELD_OUT,
  volumeSize: [...DEFAULT_VOLUME_SIZE],
  writeNifti: true,
  rounds: 12,
  epochsPerRound: 10,
  batchSize: 8,
};

export const QUICK_DEMO: DemoConfig = {
  ...DEFAULT_DEMO,
  name: 'quick',
  sites: DEFAULT_SITES.map((s) => ({ ...s })),
  volumeSize: [24, 24, 12],
  writeNifti: false,
};

export function demoConfig(options: { quick?: boolean; seed?: number; rounds?: number }): DemoConfig {
  const base = options.quick ? QUICK_DEMO : DEFAULT_DEMO;
  const config: DemoConfig = { ...base, sites: base.sites.map((s) => ({ ...s })), volumeSize: [...base.volumeSize] };
  if (options.seed !== undefined) {
    if (!Number.isInteger(options.seed) || options.seed < 0) throw new Error(`--seed must be a non-negative integer, got ${options.seed}`);
    config.seed = options.seed;
  }
  if (options.rounds !== undefined) {
    if (!Number.isInteger(options.rounds) || options.rounds < 1 || options.rounds > 200) {
      throw new Error(`--rounds must be an integer in 1..200, got ${options.rounds}`);
    }
    config.rounds = options.rounds;
  }
  return config;
}
