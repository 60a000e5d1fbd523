/**
 * The ε a node's local DP will spend, computed before the run from what the researcher knows: the node's dataset
 * size (search reply), the training arguments and the number of rounds. The node does the same accounting on what
 * it actually ran (node-agent/round.ts), so the two agree when every round trains.
 */
import { IterationArgs, loaderLength, planIterations } from '../iterations';
import { epsilonFor } from './rdp';

export interface PrivacyBudgetInput extends IterationArgs {
  /** Samples in the node's dataset, before the validation split. */
  samples: number;
  testRatio: number;
  batchSize: number;
  dropLast?: boolean;
  /** Fed-BioMed's dp_args.sigma (local DP). */
  sigma: number;
  rounds: number;
  /** Default 1 / (training samples). */
  delta?: number;
}

export interface PrivacyBudget {
  trainingSamples: number;
  sampleRate: number;
  stepsPerRound: number;
  rounds: number;
  delta: number;
  epsilon: number;
}

export function expectedPrivacy(input: PrivacyBudgetInput): PrivacyBudget {
  // Fed-BioMed's split keeps floor(N · test_ratio) samples for validation.
  const trainingSamples = input.samples - Math.floor(input.samples * input.testRatio);
  const batches = loaderLength(trainingSamples, input.batchSize, input.dropLast ?? false);
  if (batches === 0) throw new Error(`no training batch: ${trainingSamples} training samples, batch size ${input.batchSize}`);
  const sampleRate = 1 / batches;
  const plan = planIterations(input, Math.trunc(1 / sampleRate));
  const stepsPerRound = input.dryRun ? Math.min(1, plan.totalBatches) : plan.totalBatches;
  const delta = input.delta ?? 1 / trainingSamples;
  const { epsilon } = epsilonFor([{ sampleRate, noiseMultiplier: input.sigma, steps: stepsPerRound * input.rounds }], delta);
  return { trainingSamples, sampleRate, stepsPerRound, rounds: input.rounds, delta, epsilon };
}
