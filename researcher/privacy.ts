/**
 * What differential privacy a researcher's run will give each node, computed before the run: for local DP, the
 * RDP ε (δ = 1/N unless chosen) from the node's dataset size (search reply), the training arguments and the rounds;
 * for central DP, the noise each node adds to its weights (no local ε: training itself is not noised).
 */
import type { DatasetEntry } from '../src/protocol/messages';
import { PyFloat } from '../src/protocol/pyfloat';
import { expectedPrivacy, PrivacyBudget } from '../src/engine/dp/expected';
import { formatTable } from './monitoring/summary';
import type { Json } from './training-args';

export interface NodePrivacyEstimate {
  nodeId: string;
  type: 'local' | 'central';
  sigma: number;
  clip: number;
  /** Local DP with a known dataset size. */
  budget: PrivacyBudget | null;
  /** Why there is no budget, or what central DP does. */
  note: string;
}

const num = (v: Json | undefined): number | null =>
  v instanceof PyFloat ? v.value : typeof v === 'number' ? v : null;

/** Samples in a search reply's dataset: CSV shape [rows, columns]; medical folder demographics [rows, columns]. */
export function datasetSamples(entry: DatasetEntry): number | null {
  const shape = entry['shape'] as Json;
  if (Array.isArray(shape)) return num(shape[0]);
  if (shape && typeof shape === 'object' && !(shape instanceof PyFloat)) {
    const demographics = (shape as Record<string, Json>)['demographics'];
    if (Array.isArray(demographics)) return num(demographics[0]);
  }
  return null;
}

/** Null when the training arguments ask for no DP. */
export function privacyEstimates(
  trainingArgs: Record<string, Json>,
  datasets: ReadonlyMap<string, DatasetEntry>,
  rounds: number,
  delta?: number,
): NodePrivacyEstimate[] | null {
  const dp = trainingArgs['dp_args'];
  if (dp === null || dp === undefined || typeof dp !== 'object' || Array.isArray(dp) || dp instanceof PyFloat) return null;
  const d = dp as Record<string, Json>;
  const type = d['type'] === 'local' ? 'local' : 'central';
  const sigma = num(d['sigma']) ?? NaN;
  const clip = num(d['clip']) ?? NaN;
  const loader = (trainingArgs['loader_args'] ?? {}) as Record<string, Json>;
  return [...datasets].map(([nodeId, entry]) => {
    const base = { nodeId, type, sigma, clip } as const;
    if (type === 'central') {
      return { ...base, budget: null,
        note: `noise of std ${sigma * clip} added once to every parameter after each round's clipped training` };
    }
    const samples = datasetSamples(entry);
    if (samples === null) return { ...base, budget: null, note: 'dataset size unknown (shape not understood)' };
    try {
      const budget = expectedPrivacy({
        samples, testRatio: num(trainingArgs['test_ratio']) ?? 0, batchSize: num(loader['batch_size']) ?? NaN,
        dropLast: loader['drop_last'] === true, epochs: num(trainingArgs['epochs']),
        numUpdates: num(trainingArgs['num_updates']), batchMaxnum: num(trainingArgs['batch_maxnum']),
        dryRun: trainingArgs['dry_run'] === true, sigma, rounds, ...(delta !== undefined ? { delta } : {}),
      });
      return { ...base, budget, note: '' };
    } catch (err) {
      return { ...base, budget: null, note: (err as Error).message };
    }
  });
}

export function formatPrivacyEstimates(estimates: readonly NodePrivacyEstimate[]): string {
  const rows = estimates.map((e) => [
    e.nodeId, e.type, String(e.sigma), String(e.clip),
    e.budget ? String(e.budget.trainingSamples) : '-',
    e.budget ? e.budget.sampleRate.toFixed(4) : '-',
    e.budget ? String(e.budget.stepsPerRound * e.budget.rounds) : '-',
    e.budget ? e.budget.delta.toExponential(2) : '-',
    e.budget ? e.budget.epsilon.toFixed(3) : '-',
    e.note,
  ]);
  return 'Differential privacy, expected per node for the whole run (RDP accountant, as Opacus):\n' +
    formatTable(['node', 'dp', 'sigma', 'clip', 'train N', 'q', 'steps', 'delta', 'epsilon', 'note'], rows);
}
