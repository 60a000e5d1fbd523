/**
 * The demo under differential privacy (`--dp local|central --sigma S --clip C [--dp-sweep S1,S2]`): the nodes train
 * with Fed-BioMed's dp_args, the report gives the ε each hospital spends (the researcher's RDP estimate, which is
 * what each node logs) beside the held-out metrics, and an ε-vs-AUC table when a sweep of noise levels is asked.
 */
import type { BinaryEvaluation, NodePrivacyEstimate } from 'fedbiomed-ts';

export interface DemoDp {
  type: 'local' | 'central';
  sigma: number;
  clip: number;
  /** Extra noise multipliers, each a full federated run, for the ε-vs-AUC table. */
  sweep: number[];
}

export interface DpRunResult {
  sigma: number;
  privacy: NodePrivacyEstimate[];
  evaluation: BinaryEvaluation;
}

/** From the command-line flags; all or none of --dp, --sigma, --clip. */
export function demoDp(flags: { dp?: string; sigma?: string; clip?: string; dpSweep?: string }): DemoDp | undefined {
  if (flags.dp === undefined) {
    if (flags.sigma !== undefined || flags.clip !== undefined || flags.dpSweep !== undefined) {
      throw new Error('--sigma, --clip and --dp-sweep need --dp local|central');
    }
    return undefined;
  }
  if (flags.dp !== 'local' && flags.dp !== 'central') throw new Error(`--dp must be local or central, got "${flags.dp}"`);
  const positive = (name: string, v: string | undefined, allowZero: boolean): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
      throw new Error(`${name} must be a number ${allowZero ? '>= 0' : '> 0'} with --dp, got ${v === undefined ? 'nothing' : `"${v}"`}`);
    }
    return n;
  };
  return {
    type: flags.dp,
    sigma: positive('--sigma', flags.sigma, true),
    clip: positive('--clip', flags.clip, false),
    sweep: flags.dpSweep ? flags.dpSweep.split(',').map((s) => positive('--dp-sweep', s.trim(), true)) : [],
  };
}

const epsilonText = (p: NodePrivacyEstimate[]): string => {
  const values = p.map((e) => e.budget?.epsilon).filter((e): e is number => e !== undefined);
  return values.length === p.length && values.length > 0 ? Math.max(...values).toFixed(2) : '-';
};

/** The report's privacy section. */
export function privacyMarkdown(dp: DemoDp, runs: DpRunResult[]): string[] {
  const main = runs[0];
  const lines = [
    '## Differential privacy',
    '',
    dp.type === 'local'
      ? `Local DP on every node (DP-SGD with Opacus's semantics: Poisson batches, per-sample clipping to ${dp.clip}, ` +
        `Gaussian noise of multiplier sigma ${dp.sigma}). The single-site and centralised baselines are trained without DP.`
      : `Central DP (Fed-BioMed's "central" type): clipped training (norm ${dp.clip}), then Gaussian noise of std ` +
        `${dp.sigma * dp.clip} added once to every parameter on each node before upload. No local epsilon is claimed.`,
    '',
    '| node | dp | sigma | clip | training samples | sample rate | steps | delta | epsilon |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...main.privacy.map((e) => `| ${e.nodeId} | ${e.type} | ${e.sigma} | ${e.clip} | ${e.budget?.trainingSamples ?? '-'} | ` +
      `${e.budget ? e.budget.sampleRate.toFixed(4) : '-'} | ${e.budget ? e.budget.stepsPerRound * e.budget.rounds : '-'} | ` +
      `${e.budget ? e.budget.delta.toExponential(2) : '-'} | ${e.budget ? e.budget.epsilon.toFixed(2) : e.note} |`),
    '',
    'Epsilon: RDP accountant of the sampled Gaussian mechanism (Opacus\'s default analysis), over all rounds, at ' +
      'delta = 1/N per node; each node logs the same value after every round (`nodes/*/` logs).',
    '',
  ];
  if (runs.length > 1) {
    lines.push('### Privacy vs utility (same data, same seed, one full federated run per noise level)', '',
      '| sigma | max epsilon over nodes | held-out AUC | sensitivity | specificity |', '|---:|---:|---:|---:|---:|',
      ...[...runs].sort((a, b) => a.sigma - b.sigma).map((r) => `| ${r.sigma} | ${epsilonText(r.privacy)} | ` +
        `${r.evaluation.auc.toFixed(3)} | ${r.evaluation.sensitivity.toFixed(3)} | ${r.evaluation.specificity.toFixed(3)} |`), '');
  }
  return lines;
}
