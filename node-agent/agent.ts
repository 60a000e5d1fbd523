/**
 * The node agent: connects to the broker and the file repository, answers researcher requests, queues `train`
 * requests (one at a time, persisted), forwards its log to researchers and announces its shutdown (FB312) as a
 * Python v4.5 node does. Nothing it receives can stop it: bad messages are answered with FB301 or dropped.
 */
import type { TrainRequest, ErrorMessage } from '../src/protocol/messages';
import type { ResearcherToNodeMessage } from '../src/protocol';
import { errnumString } from '../src/protocol/error-numbers';
import type { InvalidMessage } from '../src/transport/mqtt';
import type { Logger } from '../src/transport/logger';
import { checkBackendSetting } from '../src/engine/backend';
import { openNodeStores, NodeStores } from './stores';
import { NodeLog } from './node-log';
import { TaskQueue } from './task-queue';
import { answerRequest } from './requests';
import { TrainingStopped, TrainingWorker } from './training-worker';
import { executeTrainRequest, failedTrainReply, type RoundChannel } from './round';
import type { NodeContext } from './node-context';
import type { QueuedTask } from './task-queue';
import { acquireNodeLock, type NodeLock } from './lock';
import { StatusRecorder } from './status';
import { MqttNodeTransport, type NodeTransport, type ReplyRoute } from './transport';
import { V6NodeTransport } from './transport-v6';
import type { V6NodeClientOptions } from '../src/transport/v6/node-client';

/** A queued train request with where its reply goes (v6: the request id), kept in the persisted queue. */
type QueuedTrain = TrainRequest & { reply_route?: ReplyRoute };

/** How long a re-established broker connection must have been up before a round's reply is sent. */
const RECONNECT_GRACE_MS = 2000;
/** On stop: how long the FB312 announcement, the running round and the disconnection may each take. */
const STOP_STEP_MS = 2000;

/** Resolves when `work` settles or after `ms`, whichever comes first; never rejects. */
function settleWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work.then(() => undefined, () => undefined),
    new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); }),
  ]).finally(() => clearTimeout(timer));
}

export interface NodeAgentOptions {
  dir: string;
  env?: NodeJS.ProcessEnv;
  /** Where local log lines go (default stderr). */
  localLog?: (line: string) => void;
  /** Repository client settings (tests shorten retries). */
  repository?: { retries?: number; downloadTimeoutMs?: number; uploadTimeoutMs?: number; downloadFrom?: 'uploads' | 'any' };
  /** MQTT publish deadline (tests shorten it). */
  publishTimeoutMs?: number;
  /** v6 networks: sees the traffic (recording test vectors). */
  v6Tap?: V6NodeClientOptions['tap'];
}

/** The CRITICAL log line a Python v4.5 node sends on SIGTERM/SIGINT (fedbiomed/node/cli.py, word for word). */
export const SIGNAL_STOP_LOG = 'Node stopped in signal_handler, probably by user decision (Ctrl C)';

export class NodeAgent {
  /** Where rounds compute, off the event loop; it keeps the last dataset read between rounds (dataset-cache.ts). */
  private readonly trainer: TrainingWorker;
  readonly log: NodeLog;
  /** The node as every request and round sees it (node-context.ts): made once, here. */
  private readonly context: NodeContext;
  private transport: NodeTransport | undefined;
  private queue: TaskQueue<QueuedTrain> | undefined;
  private stopRequested = false;
  /** When the broker connection last came up; undefined while it is down. */
  private connectedSince: number | undefined;
  private connectionWaiters: (() => void)[] = [];
  private readonly transportLog: Logger;
  /** One running agent per node folder (see lock.ts); what it does, for `node status` (see status.ts). */
  private lock: NodeLock | undefined;
  private status: StatusRecorder | undefined;
  /** The training engine's line as last logged: logged once, and again only if a new worker's engine differs. */
  private engineLogged: string | undefined;

  private constructor(readonly stores: NodeStores, private readonly options: NodeAgentOptions) {
    this.log = new NodeLog(stores.config.nodeId, options.localLog);
    this.trainer = new TrainingWorker({ maxRoundMemoryMb: stores.config.limits.maxRoundMemoryMb });
    // Transport notices go to the node's log, one level down: they are about the plumbing, not the work.
    this.transportLog = {
      debug: () => undefined,
      info: (m) => this.log.debug(m),
      warn: (m) => this.log.warning(m),
      error: (m) => this.log.error(m),
    };
    const { config, datasets, plans, db } = stores;
    const { limits } = config;
    this.context = {
      nodeId: config.nodeId, approval: config.approval, datasets, plans, db, log: this.log, limits,
      download: (url, what, deadlineMs = Infinity) => {
        if (!this.transport) return Promise.reject(new Error('the node is stopped: nothing is downloaded'));
        return this.transport.download(url, {
          deadlineMs: Math.max(1, Math.min(limits.downloadTimeoutS * 1000, deadlineMs)),
          ...(what === 'plan' ? { maxBytes: limits.maxPlanBytes } : {}),
        });
      },
    };
  }

  /**
   * Starts the node of folder `options.dir` (made by `fedbiomed-ts node init` or `writeConfig`): takes the folder's
   * lock, connects to its broker and answers researchers until {@link NodeAgent.stop}.
   *
   * @example
   * ```ts
   * import { NodeAgent } from 'fedbiomed-ts';
   * const agent = await NodeAgent.start({ dir: 'node_a' });
   * process.once('SIGTERM', () => void agent.stop('signal'));
   * ```
   */
  static async start(options: NodeAgentOptions): Promise<NodeAgent> {
    const stores = openNodeStores(options.dir, options.env ?? process.env);
    const agent = new NodeAgent(stores, options);
    agent.lock = acquireNodeLock(stores.paths.dir);
    if (agent.lock.replaced) agent.log.warning(`stale lock of pid ${agent.lock.replaced.pid} (no longer running) taken over`);
    agent.status = new StatusRecorder(stores.paths.dir, stores.config.nodeId, stores.config.broker);
    try {
      await agent.connect();
    } catch (err) {
      agent.status.stopped();
      agent.lock.release();
      throw err;
    }
    return agent;
  }

  get nodeId(): string {
    return this.stores.config.nodeId;
  }

  /** Train requests waiting or running. */
  get pendingTasks(): number {
    return this.queue?.pending ?? 0;
  }

  private async connect(): Promise<void> {
    const { config } = this.stores;
    // The engine lives in the training worker only (prepareTraining logs its line); a setting that names no
    // backend is still refused here, at start.
    checkBackendSetting(this.options.env ?? process.env);
    const transport: NodeTransport = config.protocol === 'v6'
      ? new V6NodeTransport({ config, stores: this.stores, log: this.log, logger: this.transportLog,
        tap: this.options.v6Tap })
      : new MqttNodeTransport(config, this.transportLog, {
        repository: this.options.repository, publishTimeoutMs: this.options.publishTimeoutMs,
        onInvalid: (invalid) => void this.answerInvalid(invalid),
      });
    this.transport = transport;
    this.connectedSince = 0; // the first connection needs no grace: nobody missed anything yet
    await transport.start({
      request: (message, route) => void this.dispatch(message, route)
        .catch((err) => this.log.error(`cannot answer a ${message.command} request: ${(err as Error).message}`)),
      offline: () => {
        this.connectedSince = undefined;
        this.status?.brokerConnected(false);
        this.log.debug('connection lost; reconnecting');
      },
      reconnect: () => {
        this.connectedSince = Date.now();
        this.status?.brokerConnected(true);
        this.connectionWaiters.splice(0).forEach((wake) => wake());
        this.log.debug('reconnected');
      },
    });
    this.status?.brokerConnected(true);
    // Log records and monitoring scalars are news: while the link is down they are dropped, not piled up.
    this.log.forwardTo((m) => {
      if (transport.connected) void transport.send(m).catch(() => undefined);
    });
    this.queue = new TaskQueue<QueuedTrain>(this.stores.paths.queue, {
      execute: (req) => this.train(req),
      onError: (err) => this.log.error(`train task failed: ${(err as Error).message}`),
      onInterrupted: (task) => this.answerInterrupted(task),
    });
    // The training engine starts now, in its worker, rather than at the first round (it takes seconds).
    this.prepareTraining();
    this.log.info('Starting task manager');
    if (this.queue.pending > 0) this.log.info(`${this.queue.pending} train request(s) left from the previous run`);
    this.queue.start();
    this.log.info(`Node ${config.nodeId} ready: ${transport.description}, approval ${config.approval ? 'on' : 'off'}, ` +
      `${this.stores.datasets.list().length} dataset(s)`);
  }

  /** Starts the training worker if there is none (at start, and after a round that ended it), in the background. */
  private prepareTraining(): void {
    if (this.stopRequested) return;
    this.trainer.ready().then(() => {
      // At info level: which engine trains here (and why) is what an operator checks first about speed. Local only,
      // as before: the engine was logged before the link to researchers came up, so it never reached them.
      const line = this.trainer.engineDescription;
      if (line !== undefined && line !== this.engineLogged) this.log.localOnly('INFO', line);
      this.engineLogged = line;
    }, (err: unknown) => {
      if (!(err instanceof TrainingStopped)) this.log.warning(`${(err as Error).message}; tried again at the next round`);
    });
  }

  /** Resolves once the training engine is ready (a node starts it when it starts, and again after a round ended it). */
  async trainingEngineReady(): Promise<void> {
    await this.trainer.ready();
  }

  private async dispatch(message: ResearcherToNodeMessage, route: ReplyRoute): Promise<void> {
    this.status?.messageSeen(message.command, message.researcher_id);
    const transport = this.transport as NodeTransport;
    const send = (reply: Parameters<NodeTransport['send']>[0] | undefined) =>
      reply ? transport.send(reply, route) : transport.noReply(route);
    if (message.command === 'train') {
      this.log.debug(`train request queued: job ${message.job_id} round ${message.round}`);
      (this.queue as TaskQueue<QueuedTrain>).push(route ? { ...message, reply_route: route } : message);
      return;
    }
    return send(await answerRequest(message, this.context));
  }

  private async train(queued: QueuedTrain): Promise<void> {
    const transport = this.transport as NodeTransport;
    const { reply_route: route, ...req } = queued;
    const { limits } = this.stores.config;
    const roundEnd = Date.now() + limits.roundTimeoutS * 1000;
    // Set when the round overran its deadline: whatever it still does, it sends nothing more.
    let abandoned = false;
    const round: RoundChannel = {
      deadline: roundEnd,
      upload: (data, name) => transport.upload(data, name),
      sendReply: async (reply) => {
        if (abandoned) return;
        await this.settledConnection();
        await transport.send(reply, route);
      },
      sendError: (error) => (abandoned ? Promise.resolve() : transport.send(error, route)),
      sendScalar: (scalar) => (abandoned || !transport.connected ? Promise.resolve() : transport.send(scalar, route)),
      stopping: () => this.stopRequested || abandoned,
      compute: (job, emit) => this.trainer.run(job, emit),
    };
    let timer: NodeJS.Timeout | undefined;
    const overran = new Promise<true>((resolve) => { timer = setTimeout(() => resolve(true), limits.roundTimeoutS * 1000); });
    this.status?.roundStarted(req.job_id, req.round ?? null, req.researcher_id);
    try {
      const outcome = await Promise.race([executeTrainRequest(req, this.context, round).then(() => false as const), overran])
        .finally(() => clearTimeout(timer));
      if (outcome === true) {
        abandoned = true;
        this.trainer.stop('the round overran its deadline');
        await this.sendFailure(queued, `Round stopped: not finished within this node's limit of ${limits.roundTimeoutS} s`);
      }
    } finally {
      this.status?.roundEnded();
      // A round that overran, crashed or outgrew its memory ended its worker: the next one starts now, not when
      // the next request comes.
      this.prepareTraining();
    }
  }

  /** A train request that was running when the node died: answered, not run again (it may be what killed it). */
  private async answerInterrupted(task: QueuedTask<QueuedTrain>): Promise<void> {
    await this.sendFailure(task.task, 'Round abandoned: this node stopped unexpectedly while running it (started ' +
      `${task.startedAt}); it is not run again`);
  }

  private async sendFailure(queued: QueuedTrain, msg: string): Promise<void> {
    const { reply_route: route, ...req } = queued;
    this.log.error(`${msg} (job ${req.job_id})`);
    await this.settledConnection();
    if (this.stopRequested || !this.transport) return;
    await this.transport.send(failedTrainReply(req, this.nodeId, msg, null), route)
      .catch((err: unknown) => this.log.warning(`could not send the failure reply: ${(err as Error).message}`));
  }

  /**
   * Waits until the broker connection has been up for RECONNECT_GRACE_MS. MQTT at QoS 0 with clean sessions drops
   * what is published while a subscriber is away: after a broker restart, a round's reply sent the moment this node
   * is back would be lost for a researcher that has not re-subscribed yet (the Python researcher then waits forever).
   */
  private async settledConnection(): Promise<void> {
    for (;;) {
      if (this.stopRequested) return;
      if (this.connectedSince === undefined) {
        await new Promise<void>((resolve) => this.connectionWaiters.push(resolve));
        continue;
      }
      const wait = this.connectedSince + RECONNECT_GRACE_MS - Date.now();
      if (wait <= 0) return;
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /**
   * A Python node answers a request it cannot parse with an FB301 error (when the payload was at least JSON
   * with a valid version; anything worse would have killed its MQTT thread). We answer whenever the payload is a
   * JSON object, taking the researcher id from it when there is one.
   */
  private async answerInvalid(invalid: InvalidMessage): Promise<void> {
    this.log.warning(`invalid message on ${invalid.topic}: ${invalid.error}`);
    const researcherId = /"researcher_id"\s*:\s*"([^"\\]{1,200})"/.exec(invalid.excerpt)?.[1] ?? 'unknown_researcher_id';
    if (!invalid.excerpt.trimStart().startsWith('{')) return;
    const error: ErrorMessage = { researcher_id: researcherId, node_id: this.nodeId, errnum: errnumString('FB301'),
      extra_msg: `${errnumString('FB301')}: ${invalid.error}`, command: 'error' };
    await this.transport?.send(error).catch(() => undefined);
  }

  /**
   * Stops as a Python node does on SIGTERM: announce FB312 on general/researcher, then a CRITICAL log; a train
   * request still running stops at its next batch and stays queued, so it runs again after a restart.
   */
  async stop(reason: 'signal' | 'close' = 'close'): Promise<void> {
    this.stopRequested = true;
    this.connectionWaiters.splice(0).forEach((wake) => wake());
    this.queue?.stop();
    // A round in progress ends now (its task stays queued for the next start), whatever the engine is doing.
    this.trainer.stop('the node is shutting down');
    const transport = this.transport;
    // Every step is bounded: a node must stop within seconds whatever the network or the running round do.
    if (transport && reason === 'signal') {
      if (transport.connected) {
        await settleWithin(transport.send({ researcher_id: '<unknown>', node_id: this.nodeId,
          errnum: errnumString('FB312'), extra_msg: '', command: 'error' }), STOP_STEP_MS);
      }
      this.log.critical(SIGNAL_STOP_LOG);
    }
    this.log.forwardTo(undefined);
    if (this.queue) await settleWithin(this.queue.idle(), STOP_STEP_MS);
    if (transport) await settleWithin(transport.close(), STOP_STEP_MS);
    this.transport = undefined;
    this.status?.stopped();
    this.lock?.release();
  }
}

/**
 * `fedbiomed-ts node start`: runs until SIGINT / SIGTERM. The stop is bounded (see `stop`); whatever is still
 * pending after it (a download, a round past its stop point) does not keep the process alive: it exits one second
 * later at most, and at once on a second signal.
 */
export async function runNodeUntilSignal(dir: string, options: Omit<NodeAgentOptions, 'dir'> = {}): Promise<void> {
  const agent = await NodeAgent.start({ ...options, dir });
  await new Promise<void>((resolve) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const again = () => process.exit(130);
      process.once('SIGINT', again);
      process.once('SIGTERM', again);
      void agent.stop('signal').then(resolve, resolve);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
}
