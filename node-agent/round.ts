/**
 * One `train` request, executed as a Python v4.5 node executes a round (fedbiomed/node/round.py), on a
 * declarative plan: check the plan and its approval, load the global weights, split the dataset with
 * `test_ratio`, validate on global updates, train with the engine, validate on local updates, upload
 * `node_params_<uuid>.mpk` (the 8 keys of a Python node) and reply. Every failure becomes a `train` reply with
 * `success: false` and a message that says why (a Python researcher waits forever for a silent node).
 */
import { randomUUID } from 'crypto';
import type { AddScalarReply, ErrorMessage, TrainReply, TrainRequest } from '../src/protocol/messages';
import { errnumString } from '../src/protocol/error-numbers';
import { parseTrainingArgs, batchSizeOf, TrainingArgs } from '../src/protocol/training-args';
import { numberOf, PyFloat } from '../src/protocol/pyfloat';
import { isValidRepositoryUrl, urlForMessage } from '../src/transport/url';
import { decodeParams, encodeParams, modelWeightsOf, nodeParamsFile, DenseArray } from '../src/serialize';
import type { PlanSpec } from '../src/plan/spec';
import { validatePlan } from '../src/plan/validate';
import { decideDp, DpPlan } from '../src/engine/dp/policy';
import { addCentralNoise } from '../src/engine/dp/central';
import { withGroupNormForDp } from '../src/plan/dp-fix';
import { epsilonFor, MechanismRun } from '../src/engine/dp/rdp';
import type { DpRoundFacts } from '../src/engine/train';
import { localParameterNamesOf } from '../src/plan/fedbn';
import { planHash } from '../src/plan/canonical';
import { freshSeed } from '../src/engine/prng';
import { keepLocalParameters, restoreLocalParameters } from './fedbn-store';
import type { PlanDatasetCache } from './dataset-cache';
import type { DatasetEntry } from './datasets';
import { readPlanSource } from './plan-source';
import type { NodeContext } from './node-context';
import { estimatePlanResources, resourceProblem } from './plan-resources';
import { withoutDatasetPaths } from './privacy';
import { TrainingStopped } from './training-worker';
import {
  computeRound, describe, EVAL_CHUNK, RoundFailure, tensorsOf, type RoundEvent, type RoundJob, type RoundOutcome,
  type ScalarFields,
} from './round-compute';

const NODE_STATES_TABLE = 'Node_states';

/** What belongs to one round, beside the node's {@link NodeContext}: its deadline and where its messages go. */
export interface RoundChannel {
  /** When the round must be over (ms since the epoch): its downloads get no longer than what is left. */
  deadline: number;
  upload(data: Uint8Array, fileName: string): Promise<string>;
  sendReply(reply: TrainReply): Promise<void>;
  sendError(error: ErrorMessage): Promise<void>;
  sendScalar(scalar: AddScalarReply): Promise<void>;
  /** True once the node is stopping: training stops at the next batch. */
  stopping: () => boolean;
  /** Reuses the last round's dataset while its files are unchanged; without it every round reads the files. */
  dataCache?: PlanDatasetCache;
  /**
   * Runs the round's computation: the node's training worker (training-worker.ts), so that the node keeps
   * answering while it trains; in-thread {@link computeRound} when absent.
   */
  compute?: (job: RoundJob, emit: (event: RoundEvent) => void) => Promise<RoundOutcome>;
}

/** The node and the round together, as the steps of a round use them. */
type RoundContext = NodeContext & RoundChannel;

/** A `train` reply `success: false`, as a Python node sends it when a round fails. */
export function failedTrainReply(req: TrainRequest, nodeId: string, msg: string, stateId: string | null): TrainReply {
  return {
    researcher_id: req.researcher_id, job_id: req.job_id, state_id: req.training ? stateId : null, success: false,
    node_id: nodeId, dataset_id: '', params_url: '', timing: {}, sample_size: null, msg, command: 'train',
  };
}

const SECAGG_FIELDS = ['secagg_servkey_id', 'secagg_biprime_id', 'secagg_random', 'secagg_clipping_range'] as const;

/** A request asking for secure aggregation: this node cannot honour it, so it must refuse rather than send plain weights. */
function secaggRequested(req: TrainRequest): boolean {
  return SECAGG_FIELDS.some((f) => req[f] !== null && req[f] !== undefined);
}

export async function executeTrainRequest(req: TrainRequest, node: NodeContext, round: RoundChannel): Promise<void> {
  const ctx: RoundContext = { ...node, ...round };
  // A Python node names the round's state before it starts, so its failure replies carry that id too.
  const stateId = `node_state_${randomUUID()}`;
  const fail = (msg: string): TrainReply => failedTrainReply(req, ctx.nodeId, msg, stateId);

  const dataset = ctx.datasets.get(req.dataset_id);
  if (!dataset) {
    // As a Python node: an `error` FB313, no train reply (the researcher drops the node on this error).
    await ctx.sendError({ researcher_id: req.researcher_id, node_id: ctx.nodeId,
      errnum: errnumString('FB313'), extra_msg: 'Did not found proper data in local datasets', command: 'error' });
    ctx.log.error(`train request for unknown dataset ${req.dataset_id}`);
    return;
  }
  if (!isValidRepositoryUrl(req.training_plan_url)) {
    await ctx.sendError({ researcher_id: 'NOT_SET', node_id: ctx.nodeId, errnum: errnumString('FB300'),
      extra_msg: 'URL for training plan on repository is not valid.', command: 'error' });
    return;
  }

  if (secaggRequested(req)) {
    const msg = 'FB318: Secure aggregation setup error: this request asks for secure aggregation ' +
      `(${SECAGG_FIELDS.filter((f) => req[f] !== null && req[f] !== undefined).join(', ')}), which this ` +
      'fedbiomed-ts node does not support: it refuses rather than send unprotected weights';
    ctx.log.error(msg);
    await ctx.sendReply(fail(msg));
    return;
  }

  let reply: TrainReply;
  try {
    reply = await runRound(req, dataset, ctx, stateId);
  } catch (err) {
    const msg = withoutDatasetPaths(err instanceof RoundFailure ? err.message : `Cannot train model in round: ${describe(err)}`,
      dataset);
    ctx.log.error(msg);
    reply = fail(msg);
  }
  await ctx.sendReply(reply);
}

async function runRound(req: TrainRequest, dataset: DatasetEntry, ctx: RoundContext, stateId: string): Promise<TrainReply> {
  let args: TrainingArgs;
  try {
    args = parseTrainingArgs(req.training_args, { schemaTyped: true });
    if (req.training) batchSizeOf(args);
  } catch (err) {
    await ctx.sendError({ researcher_id: req.researcher_id, node_id: ctx.nodeId, errnum: errnumString('FB300'),
      extra_msg: describe(err), command: 'error' });
    throw new RoundFailure(`Can't initialize training plan with the arguments: ${describe(err)}`);
  }

  const approvedSpec = await downloadPlan(req, ctx);
  // Before anything is trained: dp_args this node cannot honour end the round (FB616 is Fed-BioMed's DP error).
  const decision = decideDp(args.dp_args, { fedproxMu: args.fedprox_mu === null ? null : numberOf(args.fedprox_mu) });
  if (!decision.ok && req.training) {
    throw new RoundFailure(`FB616: differential privacy cannot be honoured, refusing to train: ${decision.reason}`);
  }
  const dp = { plan: decision.ok && req.training ? decision.plan : null };
  // Validation rounds under dp_args too: a Python node's plan is fixed whenever dp_args is set, so the model
  // validated is the model trained.
  const spec = args.dp_args ? dpModel(approvedSpec, ctx) : approvedSpec;
  const globalWeights = await downloadWeights(req.params_url, ctx);
  const previousDpRuns = req.state_id !== null ? checkPreviousState(req, ctx) : [];

  const resources = estimatePlanResources(spec);
  // Validation-only rounds run the forward pass in chunks of EVAL_CHUNK samples.
  const problem = resources && resourceProblem(resources, req.training ? batchSizeOf(args) : EVAL_CHUNK, ctx.limits);
  if (problem) throw new RoundFailure(`Training plan refused before allocating anything: ${problem}`);
  const seed = args.random_seed ?? freshSeed();
  const { graph } = validatePlan(spec);
  // FedBN: the plan's local parameters never leave the node and come back from its own copy.
  const localNames = localParameterNamesOf(spec, graph);
  const localKey = `${planHash(spec)}:${req.dataset_id}`;
  const job: RoundJob = {
    spec, seed, dataset, training: req.training, testRatio: numberOf(args.test_ratio),
    weights: restoreLocalParameters(ctx.db, localKey, localNames, globalWeights),
    testOnGlobalUpdates: args.test_on_global_updates, testOnLocalUpdates: args.test_on_local_updates,
    train: {
      batchSize: req.training ? batchSizeOf(args) : EVAL_CHUNK, dropLast: args.loader_args['drop_last'] === true,
      epochs: args.epochs, numUpdates: args.num_updates, batchMaxnum: args.batch_maxnum, dryRun: args.dry_run,
      logInterval: args.log_interval, optimizerArgs: plainOptimizerArgs(args.optimizer_args),
      fedproxMu: args.fedprox_mu === null ? null : numberOf(args.fedprox_mu), dp: dp.plan?.training ?? null,
    },
  };
  const onEvent = (event: RoundEvent) => {
    if (event.type === 'log') {
      const text = withoutDatasetPaths(event.text, dataset);
      if (event.level === 'warning') ctx.log.warning(text);
      else ctx.log.error(text);
      return;
    }
    void ctx.sendScalar(scalar(req, ctx.nodeId, event.fields))
      .catch((err) => ctx.log.warning(`could not send a monitoring scalar: ${describe(err)}`));
  };
  const compute = ctx.compute ?? ((j: RoundJob, emit: (e: RoundEvent) => void) =>
    computeRound(j, { emit, shouldStop: ctx.stopping, dataCache: ctx.dataCache }));
  let outcome: RoundOutcome;
  try {
    outcome = await compute(job, onEvent);
  } catch (err) {
    if (err instanceof TrainingStopped) throw new RoundFailure(`Training was stopped: ${err.message}`);
    throw err;
  }
  if (outcome.peakRoundMemoryMb !== undefined) ctx.log.debug(`the round grew the node by ${outcome.peakRoundMemoryMb} MB`);
  if (!req.training) {
    return { researcher_id: req.researcher_id, job_id: req.job_id, state_id: null, success: true,
      node_id: ctx.nodeId, dataset_id: req.dataset_id, params_url: '', timing: {}, sample_size: null, msg: '',
      command: 'train' };
  }
  if (outcome.stopped) throw new RoundFailure('Training was stopped: the node is shutting down');

  const weights = keepLocalParameters(ctx.db, localKey, localNames, tensorsOf(outcome.weights));
  const trainable = new Set(outcome.trainable);
  const kept = args.share_persistent_buffers
    ? weights
    : Object.fromEntries(Object.entries(weights).filter(([name]) => trainable.has(name)));
  const shared = dp.plan?.type === 'central' ? addCentralNoise(kept, dp.plan.finalNoiseStd) : kept;
  const dpRuns = dp.plan && outcome.dp ? [...previousDpRuns, mechanismRun(outcome.dp)] : previousDpRuns;
  if (dp.plan) logPrivacy(ctx, dp.plan, outcome.dp, dpRuns, outcome.trainSize, Object.keys(shared).length);
  const file = encodeParams(nodeParamsFile({
    optim_aux_var: {}, encrypted: false, researcher_id: req.researcher_id, job_id: req.job_id, state_id: stateId,
    model_weights: shared, node_id: ctx.nodeId, optimizer_args: req.training_args.optimizer_args,
  }));
  let paramsUrl: string;
  try {
    paramsUrl = await ctx.upload(file, `node_params_${randomUUID()}.mpk`);
  } catch (err) {
    throw new RoundFailure(`Cannot upload results: ${describe(err)}`);
  }
  ctx.log.info('results uploaded successfully ');
  saveState(ctx, stateId, req.job_id, dpRuns);
  return {
    researcher_id: req.researcher_id, job_id: req.job_id, state_id: stateId, success: true, node_id: ctx.nodeId,
    dataset_id: req.dataset_id, params_url: paramsUrl,
    timing: { rtime_training: outcome.rtime, ptime_training: outcome.ptime },
    // Fed-BioMed's sample_size is the size of the training subset, not the samples seen.
    sample_size: outcome.trainSize, msg: '', command: 'train',
  };
}

async function downloadPlan(req: TrainRequest, ctx: RoundContext): Promise<PlanSpec> {
  let source: string;
  try {
    source = (await ctx.download(req.training_plan_url, 'plan', ctx.deadline - Date.now())).toString('utf8');
  } catch (err) {
    throw new RoundFailure(`Cannot download training plan file: ${urlForMessage(req.training_plan_url)}: ${describe(err)}`);
  }
  const reading = readPlanSource(source);
  if (!reading.ok) throw new RoundFailure(`Cannot use training plan ${req.training_plan_class}: ${reading.reason}`);
  if (ctx.approval) {
    const entry = ctx.plans.byHash(reading.hash);
    if (!entry || entry.training_plan_status !== 'Approved') {
      throw new RoundFailure(`Requested training plan is not approved by the node: ${ctx.nodeId}`);
    }
    ctx.log.info(`Training plan has been approved by the node ${entry.training_plan_id}`);
  }
  return reading.spec;
}

async function downloadWeights(url: string, ctx: RoundContext): Promise<Record<string, DenseArray>> {
  let bytes: Buffer;
  try {
    bytes = await ctx.download(url, 'params', ctx.deadline - Date.now());
  } catch (err) {
    throw new RoundFailure(`Cannot download param file: ${urlForMessage(url)}: ${describe(err)}`);
  }
  try {
    return modelWeightsOf(decodeParams(bytes));
  } catch (err) {
    throw new RoundFailure(`Cannot initialize model parameters: ${describe(err)}`);
  }
}

/** Checks the previous round's state exists; returns the local-DP mechanisms this job already ran on this node. */
function checkPreviousState(req: TrainRequest, ctx: RoundContext): MechanismRun[] {
  const known = ctx.db.find(NODE_STATES_TABLE, (s) => s['state_id'] === req.state_id && s['job_id'] === req.job_id);
  if (known.length === 0) throw new RoundFailure("Can't read previous node state.");
  const runs = known[0]['dp_runs'];
  return Array.isArray(runs) ? (runs as MechanismRun[]) : [];
}

function saveState(ctx: RoundContext, stateId: string, jobId: string, dpRuns: MechanismRun[]): void {
  try {
    // Optimizers are re-created every round, as Python nodes do for torch optimizers: no optimizer state to keep.
    // dp_runs: the DP-SGD mechanisms of this job so far, so that the node's epsilon composes over rounds.
    ctx.db.insert(NODE_STATES_TABLE, { optimizer_state: null, version_node_id: '1', state_id: stateId, job_id: jobId,
      ...(dpRuns.length > 0 ? { dp_runs: dpRuns } : {}) });
  } catch (err) {
    throw new RoundFailure(`Can't save new node state. ${describe(err)}`);
  }
}

/** The plan as a Python node's Opacus ModuleValidator.fix leaves it: batch norm replaced by group norm. */
function dpModel(spec: PlanSpec, ctx: RoundContext): PlanSpec {
  const fixed = withGroupNormForDp(spec);
  if (fixed.replaced.length > 0) {
    ctx.log.warning(`DP: batch norm has no per-sample gradients; as Opacus ModuleValidator.fix on a Python node: ` +
      fixed.replaced.join('; '));
  }
  return fixed.spec;
}

function mechanismRun(facts: DpRoundFacts): MechanismRun {
  return { sampleRate: facts.sampleRate, noiseMultiplier: facts.noiseMultiplier, steps: facts.steps };
}

/**
 * What the hospital's privacy officer reads in the node log after a DP round: the mechanism and, for local DP, the
 * RDP epsilon at delta = 1/N of this round and of the job so far (rounds compose).
 */
function logPrivacy(ctx: RoundContext, dp: DpPlan, facts: DpRoundFacts | undefined, runs: MechanismRun[],
  trainingSamples: number, sharedTensors: number): void {
  const delta = 1 / trainingSamples;
  if (dp.type === 'central') {
    ctx.log.info(`DP central: trained with per-sample clipping to ${dp.clip} (no noise during training), then ` +
      `Gaussian noise of std ${dp.finalNoiseStd} (sigma ${dp.sigma} x clip ${dp.clip}) added once to each of the ` +
      `${sharedTensors} shared tensors before upload; no local epsilon is claimed for central DP`);
    return;
  }
  if (!facts) return;
  const round = epsilonFor([mechanismRun(facts)], delta);
  const job = epsilonFor(runs, delta);
  ctx.log.info(`DP local: sigma ${dp.sigma}, clip ${dp.clip}, sample rate ${facts.sampleRate.toFixed(6)}, ` +
    `${facts.steps} noised steps; epsilon ${round.epsilon.toFixed(4)} this round, ${job.epsilon.toFixed(4)} for the ` +
    `job over ${runs.length} round(s), at delta ${delta.toExponential(3)} (RDP accountant, as Opacus)`);
}

/** optimizer_args as plain JS values: whole floats arrive as PyFloat from the wire and the engine wants numbers. */
function plainOptimizerArgs(args: Record<string, unknown>): Record<string, unknown> {
  const plain = (v: unknown): unknown => (v instanceof PyFloat ? v.value : Array.isArray(v) ? v.map(plain) : v);
  return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, plain(v)]));
}

function scalar(req: TrainRequest, nodeId: string, fields: ScalarFields): AddScalarReply {
  return { researcher_id: req.researcher_id, node_id: nodeId, job_id: req.job_id, ...fields, command: 'add_scalar' };
}

