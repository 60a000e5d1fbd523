/**
 * The researcher's side of the demo: an Experiment over the hospitals' datasets (found by tags), the approval
 * handshake (request → operators approve on their nodes → status check), then N FedAvg rounds with live progress.
 * After every round the new global model is scored on the held-out patients for the progress table.
 */
import { Experiment, planHash, stateDictFromWeightMap, formatPrivacyEstimates } from 'fedbiomed-ts';
import type { ExperimentEvent, WeightMap, PlanSpec, TorchTensor, NodePrivacyEstimate } from 'fedbiomed-ts';
import { DATASET_TAGS, DemoNetwork, Hospital, approvePlan } from './hospitals';
import { FederatedProgress, RoundRow } from './progress';

export interface FederatedOptions {
  spec: PlanSpec;
  network: DemoNetwork;
  hospitals: Hospital[];
  rounds: number;
  epochsPerRound: number;
  batchSize: number;
  /** Seed of the round-0 weights (the baselines start from the same ones) and of the nodes' shuffling. */
  seed: number;
  out: NodeJS.WritableStream & { isTTY?: boolean };
  /** Scores a global model on the held-out set (AUC for the responder task, Dice for the evolution task). */
  heldOutScore: (weights: Record<string, TorchTensor>) => number;
  /** The score's name in the progress table (default 'AUC'). */
  scoreName?: string;
  /** Tags of the hospitals' datasets (default the responder task's). */
  tags?: string[];
  /** Every experiment event (e.g. to a history file). */
  onEvent?: (ev: ExperimentEvent) => void;
  /** Fed-BioMed dp_args for every node. */
  dp?: { type: 'local' | 'central'; sigma: number; clip: number };
  /** False when the plan is already approved on every node (later runs of a DP sweep). Default true. */
  requestApproval?: boolean;
}

export interface FederatedResult {
  weights: Record<string, TorchTensor>;
  rounds: RoundRow[];
  researcherId: string;
  jobId: string;
  seconds: number;
  /** Expected differential privacy per node (null without DP). */
  privacy: NodePrivacyEstimate[] | null;
}

export async function runFederated(o: FederatedOptions): Promise<FederatedResult> {
  const started = Date.now();
  const print = (line: string): void => void o.out.write(`${line}\n`);
  const experiment = new Experiment({
    tags: o.tags ?? DATASET_TAGS,
    nodes: o.hospitals.map((h) => h.nodeId),
    plan: o.spec,
    trainingArgs: {
      loader_args: { batch_size: o.batchSize, shuffle: true },
      epochs: o.epochsPerRound,
      // Every patient trains: the held-out set, not a per-node split, judges the model.
      test_ratio: 0,
      log_interval: 1,
      random_seed: o.seed,
      ...(o.dp ? { dp_args: { type: o.dp.type, sigma: o.dp.sigma, clip: o.dp.clip } } : {}),
    },
    aggregator: 'fedavg',
    roundLimit: o.rounds,
    network: 'server' in o.network
      ? { protocol: 'v6', server: o.network.server, minNodes: o.hospitals.length }
      : { brokerUrl: o.network.mqttUrl, uploadsUrl: o.network.uploadsUrl },
    seed: o.seed,
    discoveryTimeoutMs: 5000,
    keepRoundWeights: false,
  });
  try {
    await experiment.setup();
    print(`  researcher ${experiment.researcherId} found one dataset on each of ${experiment.nodes.join(', ')}`);

    if (o.requestApproval !== false) await approveEverywhere(experiment, o, print);
    if (experiment.privacy) print(formatPrivacyEstimates(experiment.privacy).split('\n').map((l) => `  ${l}`).join('\n'));
    print('');

    const progress = new FederatedProgress({
      out: o.out, rounds: o.rounds, sites: o.hospitals.map((h) => ({ nodeId: h.nodeId, site: h.site })), scoreName: o.scoreName,
    });
    const rows: RoundRow[] = [];
    let roundError: unknown;
    experiment.on('event', (ev) => {
      o.onEvent?.(ev);
      progress.handle(ev);
      if (ev.type !== 'round-end' || !ev.summary.training || !ev.summary.aggregated) return;
      try {
        const weights = stateDictFromWeightMap(o.spec, experiment.weights as WeightMap, o.seed);
        const row: RoundRow = {
          round: ev.summary.round + 1, lossBySite: progress.roundLosses(), heldOutScore: o.heldOutScore(weights),
          seconds: progress.roundSeconds(),
        };
        rows.push(row);
        progress.row(row);
      } catch (err) {
        roundError = err;
      }
    });
    progress.header();
    const result = await experiment.run();
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what the round's callback caught
    if (roundError) throw roundError;
    return {
      weights: stateDictFromWeightMap(o.spec, result.weights, o.seed),
      rounds: rows,
      researcherId: String(experiment.researcherId ?? ''),
      jobId: experiment.jobId,
      seconds: (Date.now() - started) / 1000,
      privacy: experiment.privacy,
    };
  } finally {
    await experiment.close();
  }
}

/** The approval handshake: request, each hospital operator approves on its node, status check. */
async function approveEverywhere(experiment: Experiment, o: FederatedOptions, print: (line: string) => void): Promise<void> {
  const hash = planHash(o.spec);
  const approval = await experiment.requestApproval({ description: `${o.spec.name}: ${o.spec.description ?? ''}`.slice(0, 200) });
  if (approval.missing.length > 0) throw new Error(`no answer to the approval request from ${approval.missing.join(', ')}`);
  print(`  approval requested for plan ${o.spec.name} (sha256 ${hash.slice(0, 16)}…): Pending on ${approval.replies.size} nodes`);
  for (const h of o.hospitals) {
    const entry = approvePlan(h, hash, 'reviewed by the demo operator: declarative plan, no code');
    print(`  [${h.site}] hospital operator reviews the plan and approves it (${entry.training_plan_id})`);
  }
  const status = await experiment.planStatus();
  const refused = [...status.statuses.values()].filter((s) => !s.canTrain);
  if (status.missing.length > 0 || refused.length > 0) {
    throw new Error(`plan not approved everywhere: ${[...status.missing, ...refused.map((s) => `${s.nodeId} (${s.status})`)].join(', ')}`);
  }
  print(`  plan status: ${[...status.statuses.values()].map((s) => `${s.nodeId} ${s.status}`).join(', ')}`);
}
