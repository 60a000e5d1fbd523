/**
 * `Experiment`: a federated training run in Fed-BioMed's vocabulary.
 *
 *   const exp = new Experiment({ tags: ['csv'], plan, trainingArgs: {...}, roundLimit: 2, network });
 *   for await (const ev of exp.events()) …          // or exp.on('round-end', …)
 *   const result = await exp.run();
 *
 * Setup (first run): discover datasets with `search(tags)`, upload the plan source (`my_model_<uuid>.py`) and the
 * round-0 weights (`aggregated_params_<uuid>.mpk`). Each round: select nodes (strategy), send a TrainRequest to
 * each, stream replies into FedAvg, apply the server optimizer, upload the new weights. After the last round, a
 * validation-only request when `test_on_global_updates` is on (as Python does). `breakpoint()` / `Experiment.load()`
 * save and resume.
 */
import { EventEmitter } from 'events';
import { randomUUID } from 'crypto';
import type { DatasetEntry, TrainReply } from '../src/protocol/messages';
import { NodePrivacyEstimate, privacyEstimates } from './privacy';
import type { AddScalarReply, LogMessage } from '../src/protocol/messages';
import { Aggregator, AggregatorInput, WeightMap, compactWeights } from './aggregators';
import { Strategy, StrategyInput, createStrategy } from './strategies';
import { Json, TrainingArgsInput, buildTrainingArgs, trainingArgsFromJson, trainingArgsToJson } from './training-args';
import { NetworkOptions } from './network';
import { Researcher } from './requests/researcher';
import { PlanInput, ShippedPlan, shippedPlan } from './plan-source';
import { encodeAggregatedParams } from './weights-file';
import { RoundSpec, SeenReplies, StaleReplies, runRound } from './round';
import { ExperimentEvent, NodeRoundSummary, RoundSummary, ScalarRecord } from './events';
import { ScalarTracker, logRecord, PHASE_TAGS } from './monitoring/scalars';
import { JsonLinesHistory } from './monitoring/history';
import { TensorBoardWriter } from './monitoring/tensorboard';
import { ConsoleMonitor, ConsoleMonitorOptions } from './monitoring/console';
import { Breakpoint, BREAKPOINT_VERSION, BreakpointState, loadBreakpoint, saveBreakpoint } from './breakpoint';
import { PyFloat } from '../src/protocol/pyfloat';
import { checkLrSchedule, LrSchedule, scheduledLr } from './lr-schedule';
import { RepositoryError } from '../src/transport/repository';
import { FedbiomedTsError } from '../src/errors';

export const DEFAULT_ROUND_TIMEOUT_MS = 10 * 60 * 1000;

export interface ExperimentOptions {
  /** Dataset tags searched on the nodes (every tag must match). */
  tags: string[];
  /** Restrict the experiment to these nodes. */
  nodes?: string[];
  plan: PlanInput;
  /** Generated class name for spec plans (default: the plan's name). */
  planClassName?: string;
  /** `model_args` sent to nodes; default: the spec's modelArgs, or {}. */
  modelArgs?: Record<string, Json>;
  trainingArgs: TrainingArgsInput;
  aggregator?: AggregatorInput;
  strategy?: StrategyInput;
  roundLimit: number;
  /** Where to connect, or an already connected Researcher (then it is not closed by the experiment). */
  network: NetworkOptions | Researcher;
  /** Per-node deadline for a round's reply. Default 10 min. */
  roundTimeoutMs?: number;
  /** Deadlines for particular nodes (slow hospitals). */
  nodeTimeoutsMs?: Record<string, number>;
  /** Deadline of the dataset search. Default 1.5 s, or as soon as all `nodes` answered. */
  discoveryTimeoutMs?: number;
  /** Validation-only request after the last round; default: training_args.test_on_global_updates. */
  finalValidation?: boolean;
  /** Seed of the round-0 weights of spec plans. Default 0. */
  seed?: number;
  /** δ of the expected ε shown before a local-DP run. Default 1 / (a node's training samples). */
  dpDelta?: number;
  jobId?: string;
  /** Save a breakpoint in this directory after every round. */
  breakpointDir?: string;
  /** Keep every round's aggregated weights in memory (`roundWeights`). Default true; turn off for big models. */
  keepRoundWeights?: boolean;
  /** Append every event to this JSON-lines file. */
  history?: string;
  /** Write TensorBoard scalars under this directory (one run per node). */
  tensorboard?: string;
  /** Console progress bar, logs and summary tables. */
  console?: boolean | ConsoleMonitorOptions;
  /** Learning rate per round (step, cosine, plateau), sent as optimizer_args.lr: see lr-schedule.ts. */
  lrSchedule?: LrSchedule;
}

export interface ExperimentResult {
  roundsCompleted: number;
  weights: WeightMap;
  paramsUrl: string;
  summaries: RoundSummary[];
  /** Expected differential privacy per node, when the training arguments ask for DP. */
  privacy: NodePrivacyEstimate[] | null;
}

/** Training rounds a node may let pass in silence before it is left out (until it answers a ping). */
const SILENT_ROUNDS_TO_SKIP = 2;
const SILENT_PING_MS = 1000;

/** How long the upload of new global weights is retried while the repository is unreachable. */
const UPLOAD_RETRY_WINDOW_MS = 30_000;

export class ExperimentError extends FedbiomedTsError {}

type EventMap = { event: [ExperimentEvent] } & { [K in ExperimentEvent['type']]: [Extract<ExperimentEvent, { type: K }>] };

interface RestoredState {
  bp: Breakpoint;
}

/**
 * A federated experiment: discovers the nodes holding datasets with `tags`, ships the plan, runs `roundLimit`
 * rounds of training and aggregation, and emits events as it goes (`round-start`, `node-reply`, `round-end`, …).
 *
 * @example
 * ```ts
 * import { Experiment, definePlan } from 'fedbiomed-ts';
 * const exp = new Experiment({
 *   tags: ['csv', 'tour'], plan: definePlan({ … }), roundLimit: 3,
 *   trainingArgs: { loader_args: { batch_size: 8 }, optimizer_args: { lr: 0.01 }, num_updates: 10 },
 *   network: { brokerUrl: 'mqtt://127.0.0.1:1883', uploadsUrl: 'http://127.0.0.1:8844/upload/' },
 * });
 * exp.on('round-end', (ev) => console.log(ev));
 * const { weights } = await exp.run();
 * ```
 */
export class Experiment extends EventEmitter<EventMap> {
  readonly jobId: string;
  readonly roundLimit: number;
  readonly trainingArgs: Record<string, Json>;
  readonly modelArgs: Record<string, Json>;
  readonly aggregator: Aggregator;
  readonly lrSchedule: LrSchedule | null;
  readonly strategy: Strategy;
  readonly finalValidation: boolean;
  /** Aggregated weights after each round (when keepRoundWeights). */
  readonly roundWeights = new Map<number, WeightMap>();
  /** Train replies per round. */
  readonly replies = new Map<number, Map<string, TrainReply>>();
  /** Every add_scalar of this experiment. */
  readonly metrics: ScalarRecord[] = [];
  readonly summaries: RoundSummary[] = [];
  /** Expected differential privacy per node (computed at set-up from the search replies), null without DP. */
  privacy: NodePrivacyEstimate[] | null = null;

  private researcher: Researcher | undefined;
  private ownsResearcher = false;
  private readonly plan: ShippedPlan;
  private round = 0;
  private finalValidationDone = false;
  private datasets = new Map<string, string>();
  /** Search replies' dataset entries (for the privacy estimate; absent after a breakpoint restore). */
  private readonly datasetEntries = new Map<string, DatasetEntry>();
  private readonly stateIds = new Map<string, string | null>();
  private stale = new StaleReplies();
  private readonly seen = new SeenReplies();
  /** Consecutive training rounds each node let pass without a word (reset when it answers). */
  private readonly silentRounds = new Map<string, number>();
  private planUrl = '';
  private paramsUrl = '';
  private globalWeights: WeightMap | undefined;
  private readonly scalarTracker = new ScalarTracker();
  private currentRound: { round: number; summaries: Map<string, NodeRoundSummary> } | undefined;
  private setupDone: Promise<void> | undefined;
  private running = false;
  private closed = false;
  private readonly detach: Array<() => void> = [];

  constructor(
    readonly options: ExperimentOptions,
    restored?: RestoredState,
  ) {
    super();
    if (!restored) validateOptions(options);
    const bp = restored?.bp;
    // A spec plan's PyTorch file targets the network's Fed-BioMed (v6 moved some imports).
    const fedbiomed = options.network instanceof Researcher ? options.network.protocol : options.network.protocol ?? 'v4.5';
    this.plan = bp
      ? shippedPlan(
          bp.state.plan.kind === 'spec'
            ? bp.state.plan.spec
            : { python: bp.state.plan.source, className: bp.state.plan.className, initialWeights: bp.weights },
          { className: bp.state.plan.className, fedbiomed },
        )
      : shippedPlan(options.plan, { className: options.planClassName, fedbiomed });
    this.jobId = bp?.state.jobId ?? options.jobId ?? `job_${randomUUID()}`;
    // Experiment.load() passes the stored limit unless the caller overrides it (to extend a finished experiment).
    this.roundLimit = options.roundLimit;
    this.aggregator = new Aggregator(bp?.state.aggregator ?? options.aggregator);
    this.strategy = createStrategy(bp?.state.strategy ?? options.strategy);
    if (bp) {
      this.trainingArgs = trainingArgsFromJson(bp.state.trainingArgs);
      this.modelArgs = bp.state.modelArgs as Record<string, Json>;
    } else {
      const mu = this.aggregator.fedproxMu;
      const input = { ...options.trainingArgs };
      if (mu !== null) {
        if (input.fedprox_mu !== undefined && input.fedprox_mu !== null && Number(input.fedprox_mu) !== mu) {
          throw new ExperimentError(`aggregator mu (${mu}) and training_args.fedprox_mu (${String(input.fedprox_mu)}) disagree`);
        }
        input.fedprox_mu = new PyFloat(mu);
      }
      this.trainingArgs = buildTrainingArgs(input);
      this.modelArgs = options.modelArgs ?? ((this.plan.spec?.modelArgs as Record<string, Json> | undefined) ?? {});
    }
    const schedule = bp ? bp.state.lrSchedule : options.lrSchedule;
    this.lrSchedule = schedule ? checkLrSchedule(schedule) : null;
    if (this.lrSchedule) this.baseLr(); // fails now, not at round 1, when there is no learning rate to schedule
    this.finalValidation =
      bp?.state.finalValidation ?? options.finalValidation ?? this.trainingArgs.test_on_global_updates === true;
    if (options.network instanceof Researcher) this.researcher = options.network;
    this.attachSinks();
  }

  /** Resumes from a breakpoint directory; `overrides.network` says where to connect now. */
  static async load(dir: string, overrides: Partial<ExperimentOptions> & Pick<ExperimentOptions, 'network'>): Promise<Experiment> {
    const bp = loadBreakpoint(dir);
    const s = bp.state;
    const options: ExperimentOptions = {
      tags: s.tags ?? [],
      nodes: s.nodes ?? undefined,
      plan: s.plan.kind === 'spec' ? s.plan.spec : { python: s.plan.source, className: s.plan.className, initialWeights: bp.weights },
      trainingArgs: {},
      roundLimit: s.roundLimit,
      roundTimeoutMs: s.roundTimeoutMs,
      nodeTimeoutsMs: s.nodeTimeoutsMs,
      ...overrides,
    };
    const exp = new Experiment(options, { bp });
    exp.restore(bp);
    return exp;
  }

  private restore(bp: Breakpoint): void {
    const s = bp.state;
    this.round = s.round;
    this.finalValidationDone = s.finalValidationDone;
    this.datasets = new Map(Object.entries(s.datasets));
    for (const [k, v] of Object.entries(s.stateIds)) this.stateIds.set(k, v);
    this.stale = StaleReplies.from(s.staleReplies);
    this.seen.load(Array.isArray(s.seenReplies) ? s.seenReplies : []);
    this.globalWeights = bp.weights;
    this.aggregator.load(bp.serverOptimizer);
    this.summaries.push(...s.summaries);
  }

  get researcherId(): string | undefined {
    return this.researcher?.id;
  }

  /** Next round to run (0-based). */
  get currentRoundIndex(): number {
    return this.round;
  }

  /** Current global weights (round-0 weights before the first round). */
  get weights(): WeightMap | undefined {
    return this.globalWeights;
  }

  /** URL of the current global weights file. */
  get currentParamsUrl(): string {
    return this.paramsUrl;
  }

  get trainingPlanUrl(): string {
    return this.planUrl;
  }

  get nodes(): string[] {
    return [...this.datasets.keys()];
  }

  private publish(ev: ExperimentEvent): void {
    (this.emit as (type: string, e: ExperimentEvent) => boolean)('event', ev);
    (this.emit as (type: string, e: ExperimentEvent) => boolean)(ev.type, ev);
  }

  private attachSinks(): void {
    const o = this.options;
    if (o.history) {
      const h = new JsonLinesHistory(o.history);
      this.on('event', (ev) => h.append(ev));
    }
    if (o.tensorboard) {
      const tb = new TensorBoardWriter(o.tensorboard);
      this.on('scalar', (ev) => {
        for (const [name, value] of Object.entries(ev.metric)) tb.addScalar(ev.nodeId, `${PHASE_TAGS[ev.phase]}/${name}`, value, ev.step);
      });
    }
    if (o.console) {
      const monitor = new ConsoleMonitor(o.console === true ? {} : o.console);
      this.on('event', (ev) => monitor.handle(ev));
    }
  }

  /** Async iterator over events from now until the experiment ends (or the loop breaks). */
  events(): AsyncIterableIterator<ExperimentEvent> {
    const queue: ExperimentEvent[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const listener = (ev: ExperimentEvent): void => {
      queue.push(ev);
      if (ev.type === 'experiment-end') ended = true;
      wake?.();
    };
    this.on('event', listener);
    const stop = (): IteratorResult<ExperimentEvent> => {
      this.off('event', listener);
      ended = true;
      return { done: true, value: undefined };
    };
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      next: async () => {
        while (queue.length === 0) {
          if (ended) return stop();
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
        return { done: false, value: queue.shift() as ExperimentEvent };
      },
      return: async () => stop(),
    };
  }

  /** Alias of events(), in the vocabulary. */
  progress(): AsyncIterableIterator<ExperimentEvent> {
    return this.events();
  }

  private async connect(): Promise<Researcher> {
    if (this.closed) throw new ExperimentError('experiment is closed');
    if (!this.researcher) {
      const network = this.options.network as NetworkOptions;
      // On v6 nodes dial in: wait for the experiment's own nodes, when it names them.
      const nodes = this.options.nodes;
      this.researcher = await Researcher.connect(network.protocol === 'v6' && nodes && !network.nodeIds
        ? { ...network, nodeIds: nodes } : network);
      this.ownsResearcher = true;
    }
    return this.researcher;
  }

  private listen(researcher: Researcher): void {
    const onScalar = (m: AddScalarReply): void => {
      if (m.researcher_id !== researcher.id || m.job_id !== this.jobId || !this.datasets.has(m.node_id)) return;
      const round = this.currentRound?.round ?? this.round;
      const record = this.scalarTracker.record(m as never, round);
      this.metrics.push(record);
      const s = this.currentRound?.summaries.get(m.node_id);
      if (s) {
        if (record.phase === 'training' && typeof record.metric.Loss === 'number') s.lastLoss = record.metric.Loss;
        if (record.phase === 'validation-global') s.validationGlobal = { ...record.metric };
        if (record.phase === 'validation-local') s.validationLocal = { ...record.metric };
      }
      this.publish({ type: 'scalar', ...record });
    };
    const onLog = (m: LogMessage): void => {
      if (this.datasets.has(m.node_id)) this.publish(logRecord(m as never));
    };
    const onUnclaimed = (m: { command: string; [k: string]: unknown }): void => {
      // A late answer to a request we gave up on, arriving between rounds.
      if (m.command !== 'train' || m.researcher_id !== researcher.id || m.job_id !== this.jobId) return;
      if (this.seen.wasJudged(m)) return;
      const nodeId = String(m.node_id);
      const round = this.currentRound?.round ?? this.round;
      // A replay is not counted as the late answer a node owes (that would make its next real reply look stale).
      if (!this.seen.firstTime(nodeId, m)) {
        this.publish({ type: 'reply-dropped', round, nodeId, reason: 'duplicate or replayed reply (state_id / params_url already seen)' });
      } else if (this.stale.consume(nodeId)) {
        this.publish({ type: 'reply-dropped', round, nodeId, reason: 'late reply to a request of an earlier round' });
      } else {
        this.publish({ type: 'reply-dropped', round, nodeId, reason: 'reply to no outstanding request' });
      }
    };
    researcher.on('scalar', onScalar);
    researcher.on('log', onLog);
    researcher.on('unclaimed', onUnclaimed as never);
    this.detach.push(() => {
      researcher.off('scalar', onScalar);
      researcher.off('log', onLog);
      researcher.off('unclaimed', onUnclaimed as never);
    });
  }

  /** Connects, finds the datasets and uploads the plan and current weights. Runs once; later calls wait for it. */
  setup(): Promise<void> {
    this.setupDone ??= this.doSetup().catch((err: unknown) => {
      this.setupDone = undefined;
      throw err;
    });
    return this.setupDone;
  }

  private async doSetup(): Promise<void> {
    const researcher = await this.connect();
    this.listen(researcher);
    if (this.datasets.size === 0) await this.discover(researcher);
    this.planUrl = await researcher.repository.upload(Buffer.from(this.plan.source, 'utf8'), `my_model_${randomUUID()}.py`);
    this.globalWeights ??= this.plan.initialWeights(this.options.seed ?? 0);
    this.paramsUrl = await this.uploadWeights(this.globalWeights);
    this.publish({ type: 'experiment-start', researcherId: researcher.id, jobId: this.jobId, roundLimit: this.roundLimit, nodes: this.nodes });
    this.privacy = privacyEstimates(this.trainingArgs, this.datasetEntries, this.roundLimit, this.options.dpDelta);
    if (this.privacy) this.publish({ type: 'privacy-estimate', nodes: this.privacy });
  }

  private async discover(researcher: Researcher): Promise<void> {
    const { tags, nodes, discoveryTimeoutMs } = this.options;
    const found = await researcher.search(tags, { nodes, timeoutMs: discoveryTimeoutMs });
    if (nodes) {
      const missing = nodes.filter((n) => !found.has(n));
      if (missing.length > 0) throw new ExperimentError(`no dataset with tags ${JSON.stringify(tags)} on node(s) ${missing.join(', ')} (no search reply)`);
    }
    if (found.size === 0) throw new ExperimentError(`no node answered a search for tags ${JSON.stringify(tags)}`);
    for (const nodeId of [...found.keys()].sort()) {
      const dbs = found.get(nodeId) ?? [];
      if (dbs.length !== 1) {
        throw new ExperimentError(`FB416: node ${nodeId} has ${dbs.length} datasets matching ${JSON.stringify(tags)}; it must have one unique dataset`);
      }
      this.datasets.set(nodeId, dbs[0].dataset_id);
      this.datasetEntries.set(nodeId, dbs[0]);
    }
  }

  /**
   * Uploads the new global weights. A repository briefly down (restarting, a network blip) must not end an
   * experiment whose round already succeeded: unreachable-repository failures are retried with backoff, for up to
   * UPLOAD_RETRY_WINDOW_MS; an HTTP refusal is not retried.
   */
  private async uploadWeights(weights: WeightMap): Promise<string> {
    const researcher = await this.connect();
    const file = encodeAggregatedParams(researcher.id, weights);
    const name = `aggregated_params_${randomUUID()}.mpk`;
    const giveUpAt = Date.now() + UPLOAD_RETRY_WINDOW_MS;
    for (let delay = 250; ; delay = Math.min(delay * 2, 4000)) {
      try {
        return await researcher.repository.upload(file, name);
      } catch (err) {
        if (!isUnreachable(err) || Date.now() + delay > giveUpAt) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private deadlines(nodes: readonly string[]): number | Map<string, number> {
    const base = this.options.roundTimeoutMs ?? DEFAULT_ROUND_TIMEOUT_MS;
    const per = this.options.nodeTimeoutsMs ?? {};
    if (Object.keys(per).length === 0) return base;
    return new Map(nodes.map((n) => [n, per[n] ?? base]));
  }

  /** True when nothing is left to run. */
  get finished(): boolean {
    return this.round >= this.roundLimit && (!this.finalValidation || this.finalValidationDone);
  }

  /** Runs the next round (or, after the last one, the final validation). */
  async runOnce(): Promise<RoundSummary> {
    if (this.running) throw new ExperimentError('a round is already running');
    if (this.finished) throw new ExperimentError(`round limit reached (${this.roundLimit} rounds)`);
    this.running = true;
    try {
      await this.setup();
      return this.round < this.roundLimit ? await this.trainingRound() : await this.validationRound();
    } finally {
      this.running = false;
    }
  }

  /** Runs every remaining round (then the final validation) and returns the final weights. */
  async run(): Promise<ExperimentResult> {
    try {
      while (!this.finished) {
        await this.runOnce();
      }
      this.publish({ type: 'experiment-end', roundsCompleted: this.round });
      return {
        roundsCompleted: this.round,
        weights: this.globalWeights as WeightMap,
        paramsUrl: this.paramsUrl,
        summaries: [...this.summaries],
        privacy: this.privacy,
      };
    } catch (err) {
      this.publish({ type: 'experiment-end', roundsCompleted: this.round, error: (err as Error).message });
      throw err;
    } finally {
      if (this.ownsResearcher) await this.close();
    }
  }

  private roundSpec(researcher: Researcher, round: number, training: boolean, nodes: string[]): RoundSpec {
    return {
      researcher,
      jobId: this.jobId,
      round,
      training,
      nodes,
      datasetIds: this.datasets,
      stateIds: this.stateIds,
      paramsUrl: this.paramsUrl,
      planUrl: this.planUrl,
      planClass: this.plan.className,
      modelArgs: this.modelArgs,
      trainingArgs: this.roundTrainingArgs(round),
      deadlineMs: this.deadlines(nodes),
      stale: this.stale,
      seen: this.seen,
      emit: (ev) => this.publish(ev),
    };
  }

  /** The learning rate a schedule starts from: optimizer_args.lr, else the spec plan's optimizer lr. */
  private baseLr(): number {
    const args = this.trainingArgs.optimizer_args as Record<string, Json> | undefined;
    const lr = args?.lr;
    if (typeof lr === 'number') return lr;
    if (lr instanceof PyFloat) return lr.value;
    const planLr = this.plan.spec?.optimizer.lr;
    if (typeof planLr === 'number') return planLr;
    throw new ExperimentError('lrSchedule needs a learning rate to start from: set training_args.optimizer_args.lr');
  }

  /** training_args of a round: with a schedule, optimizer_args.lr is that round's rate. */
  private roundTrainingArgs(round: number): Record<string, Json> {
    if (!this.lrSchedule) return this.trainingArgs;
    const lr = scheduledLr(this.lrSchedule, this.baseLr(), round, this.summaries);
    const optimizerArgs = { ...((this.trainingArgs.optimizer_args as Record<string, Json> | undefined) ?? {}), lr: new PyFloat(lr) };
    return { ...this.trainingArgs, optimizer_args: optimizerArgs };
  }

  /**
   * The nodes worth asking this round. A node silent for SILENT_ROUNDS_TO_SKIP rounds in a row is pinged first
   * (a second at most) and left out until it answers, so a dead node stops costing the whole round deadline every
   * round; it is left out only while the strategy can do without it (at-least K keeps K candidates).
   */
  private async candidates(researcher: Researcher, round: number): Promise<string[]> {
    const silent = this.nodes.filter((n) => (this.silentRounds.get(n) ?? 0) >= SILENT_ROUNDS_TO_SKIP);
    if (silent.length === 0) return [...this.nodes];
    const answered = (await researcher.ping({ nodes: silent, timeoutMs: SILENT_PING_MS })).nodes;
    for (const n of answered.keys()) this.silentRounds.set(n, 0);
    const skipped = silent.filter((n) => !answered.has(n));
    const alive = this.nodes.filter((n) => !skipped.includes(n));
    const config = this.strategy.config;
    const needed = config.name === 'at-least' ? config.k : config.name === 'random-fraction' ? 1 : this.nodes.length;
    if (alive.length < needed) return [...this.nodes];
    for (const nodeId of skipped) {
      this.publish({ type: 'node-skipped', round, nodeId,
        reason: `no answer in the last ${this.silentRounds.get(nodeId)} round(s) nor to a ping; asked again once it answers` });
    }
    return alive;
  }

  private async trainingRound(): Promise<RoundSummary> {
    const researcher = await this.connect();
    const round = this.round;
    const nodes = this.strategy.select(await this.candidates(researcher, round), round);
    const required = this.strategy.required(nodes.length);
    for (let attempt = 1; ; attempt++) {
      const lossesBefore = researcher.connectionLosses;
      const owedBefore = this.stale.toJSON();
      const summaries = new Map<string, NodeRoundSummary>();
      this.currentRound = { round, summaries };
      const fedavg = this.aggregator.beginRound();
      const result = await runRound({ ...this.roundSpec(researcher, round, true, nodes), fedavg }, summaries);
      this.replies.set(round, result.replies);
      const succeeded = result.aggregatedNodes.length;
      // A broker restart drops what nodes published while the researcher was away (MQTT QoS 0, clean sessions):
      // a round short of replies for that reason is asked once more rather than ending the experiment.
      if (succeeded < required && attempt === 1 && researcher.connectionLosses > lossesBefore) {
        this.publish({ type: 'round-retried', round, reason: `${succeeded}/${nodes.length} nodes answered, ${required} ` +
          'required, and the connection to the broker was lost during the round: replies published meanwhile may be ' +
          'lost (MQTT QoS 0), so its requests are sent once more' });
        // The replies given up on are taken as lost, not owed: one that was only late answers the same request
        // (same weights, same arguments) and counts for the retry; the retry's own reply is then the extra one.
        this.stale = StaleReplies.from(owedBefore);
        continue;
      }
      for (const n of nodes) {
        const status = summaries.get(n)?.status;
        this.silentRounds.set(n, status === 'timeout' ? (this.silentRounds.get(n) ?? 0) + 1 : 0);
      }
      const summary: RoundSummary = {
        round,
        training: true,
        durationMs: 0,
        aggregationReadyMs: null,
        nodes: nodes.map((n) => summaries.get(n) as NodeRoundSummary),
        aggregated: false,
        paramsUrl: null,
      };
      if (succeeded < required) {
        summary.durationMs = Date.now() - result.startedAt;
        this.finishRound(summary);
        const failed = summary.nodes.filter((n) => n.status !== 'ok').map((n) => `${n.nodeId} (${n.status}: ${n.message})`);
        throw new ExperimentError(
          `${succeeded === 0 ? 'FB407: list of nodes became empty when training' : 'FB408: training failed on node or node did not answer'}` +
            ` in round ${round}: ${succeeded}/${nodes.length} nodes succeeded, ${required} required; failed: ${failed.join(', ')}`,
        );
      }
      return this.completeTrainingRound(round, fedavg, result.startedAt, summary);
    }
  }

  private async completeTrainingRound(round: number, fedavg: ReturnType<Aggregator['beginRound']>, startedAt: number,
    summary: RoundSummary): Promise<RoundSummary> {
    const averaged = fedavg.finalize();
    const newWeights = this.aggregator.completeRound(this.globalWeights as WeightMap, averaged);
    summary.aggregationReadyMs = Date.now() - startedAt;
    this.paramsUrl = await this.uploadWeights(newWeights);
    // The upload read the tensors where FedAvg left them; now give their buffers' spare halves back.
    this.globalWeights = compactWeights(newWeights);
    if (this.options.keepRoundWeights !== false) this.roundWeights.set(round, newWeights);
    summary.aggregated = true;
    summary.paramsUrl = this.paramsUrl;
    summary.durationMs = Date.now() - startedAt;
    this.round += 1;
    this.finishRound(summary);
    if (this.options.breakpointDir) await this.breakpoint(this.options.breakpointDir);
    return summary;
  }

  private async validationRound(): Promise<RoundSummary> {
    const researcher = await this.connect();
    const round = this.round;
    const nodes = this.nodes;
    const summaries = new Map<string, NodeRoundSummary>();
    this.currentRound = { round, summaries };
    const result = await runRound(this.roundSpec(researcher, round, false, nodes), summaries);
    this.replies.set(round, result.replies);
    const summary: RoundSummary = {
      round,
      training: false,
      durationMs: Date.now() - result.startedAt,
      aggregationReadyMs: null,
      nodes: nodes.map((n) => summaries.get(n) as NodeRoundSummary),
      aggregated: false,
      paramsUrl: null,
    };
    this.finalValidationDone = true;
    this.finishRound(summary);
    if (this.options.breakpointDir) await this.breakpoint(this.options.breakpointDir);
    return summary;
  }

  private finishRound(summary: RoundSummary): void {
    this.summaries.push(summary);
    this.currentRound = undefined;
    this.publish({ type: 'round-end', summary });
  }

  /** Saves a breakpoint (default: `options.breakpointDir`) and returns its directory. */
  async breakpoint(dir = this.options.breakpointDir): Promise<string> {
    if (!dir) throw new ExperimentError('breakpoint: no directory given and no breakpointDir option');
    if (!this.globalWeights || !this.researcher) throw new ExperimentError('breakpoint: the experiment has not been set up yet');
    const state: BreakpointState = {
      version: BREAKPOINT_VERSION,
      savedAt: new Date().toISOString(),
      researcherId: this.researcher.id,
      jobId: this.jobId,
      round: this.round,
      roundLimit: this.roundLimit,
      finalValidation: this.finalValidation,
      finalValidationDone: this.finalValidationDone,
      tags: this.options.tags ?? null,
      nodes: this.options.nodes ?? null,
      datasets: Object.fromEntries(this.datasets),
      stateIds: Object.fromEntries(this.stateIds),
      plan:
        this.plan.kind === 'spec'
          ? { kind: 'spec', spec: this.plan.spec as NonNullable<ShippedPlan['spec']>, className: this.plan.className }
          : { kind: 'python', source: this.plan.source, className: this.plan.className },
      modelArgs: this.modelArgs,
      trainingArgs: trainingArgsToJson(this.trainingArgs),
      aggregator: this.aggregator.config,
      strategy: this.strategy.config,
      roundTimeoutMs: this.options.roundTimeoutMs ?? DEFAULT_ROUND_TIMEOUT_MS,
      nodeTimeoutsMs: this.options.nodeTimeoutsMs ?? {},
      staleReplies: this.stale.toJSON(),
      seenReplies: this.seen.toJSON(),
      summaries: this.summaries,
      lrSchedule: this.lrSchedule,
    };
    saveBreakpoint(dir, { state, weights: this.globalWeights, serverOptimizer: this.aggregator.state() });
    this.publish({ type: 'breakpoint', round: this.round, dir });
    return dir;
  }

  /** Asks the nodes to register this experiment's plan for approval. */
  async requestApproval(options: { description?: string; timeoutMs?: number } = {}) {
    const researcher = await this.connect();
    await this.setup();
    return researcher.requestApproval({ url: this.planUrl }, { ...options, nodes: this.nodes });
  }

  /** Approval status of this experiment's plan on each node. */
  async planStatus(options: { timeoutMs?: number } = {}) {
    const researcher = await this.connect();
    await this.setup();
    return researcher.planStatus(this.planUrl, { nodes: this.nodes, jobId: this.jobId, timeoutMs: options.timeoutMs });
  }

  /** Detaches from the network (closing the connection if the experiment opened it). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.detach.splice(0)) d();
    if (this.ownsResearcher && this.researcher) await this.researcher.close();
  }
}

function validateOptions(o: ExperimentOptions): void {
  if (!o || typeof o !== 'object') throw new ExperimentError('Experiment options must be an object');
  if (!Array.isArray(o.tags) || o.tags.some((t) => typeof t !== 'string')) throw new ExperimentError('tags must be an array of strings');
  if (o.nodes !== undefined && (!Array.isArray(o.nodes) || o.nodes.length === 0 || o.nodes.some((n) => typeof n !== 'string'))) {
    throw new ExperimentError('nodes must be a non-empty array of node ids');
  }
  if (!Number.isInteger(o.roundLimit) || o.roundLimit < 0) throw new ExperimentError(`roundLimit must be an integer ≥ 0, got ${JSON.stringify(o.roundLimit)}`);
  if (o.roundTimeoutMs !== undefined && !(o.roundTimeoutMs > 0)) throw new ExperimentError('roundTimeoutMs must be > 0');
  if (!o.network) throw new ExperimentError('network is required (NetworkOptions or a connected Researcher)');
  if (o.modelArgs !== undefined && (typeof o.modelArgs !== 'object' || o.modelArgs === null || Array.isArray(o.modelArgs))) {
    throw new ExperimentError('modelArgs must be an object');
  }
}

/** The repository could not be reached (ours says so by kind; an injected FileRepository by Fed-BioMed's FB201). */
function isUnreachable(err: unknown): boolean {
  return err instanceof RepositoryError ? err.errorCode === 'FB201' : /^FB201/.test((err as Error)?.message ?? '');
}
