/**
 * `Researcher`: one connection to a Fed-BioMed network (MQTT + file repository) and the requests a researcher
 * makes — ping, list, search, approval, training-plan status, and the raw send/collect used by training rounds.
 * Every request completes when all expected nodes have answered or its deadline passes (requests/collector.ts).
 *
 * Correlation (reference 11.1, tightened): replies must carry our researcher_id; pong and approval must also carry
 * the sequence we sent; plan status must carry our job_id. Python accepts search/list/pong from anyone.
 */
import { EventEmitter } from 'events';
import { randomUUID } from 'crypto';
import { Messaging } from '../../src/transport/mqtt';
import type { WireMessage } from '../../src/transport/wire';
import type {
  AddScalarReply,
  ApprovalReply,
  DatasetEntry,
  ErrorMessage,
  ListReply,
  LogMessage,
  NodeToResearcherCommand,
  NodeToResearcherMessage,
  SearchReply,
} from '../../src/protocol/messages';
import { silentLogger, type Logger } from '../../src/transport/logger';
import { RepositoryClient } from '../../src/transport/repository';
import {
  Collection, CollectionResult, CollectionSpec, InboundMessage, NodeOutcome, RequestRouter,
} from './collector';
import {
  DEFAULT_DISCOVERY_TIMEOUT_MS, PLAN_REQUEST_TIMEOUT_MS, FileRepository, NetworkOptions, originCheckedRepository,
} from '../network';
import type { ResearcherBus, ResearcherProtocol } from '../transport';

/** researcher_id values nodes use when they do not know the requester (reference 3.8). */
export const UNKNOWN_RESEARCHER_IDS: readonly string[] = ['<unknown>', 'NOT_SET', 'unknown_researcher_id'];

export interface DiscoveryOptions {
  /** Ask only these nodes (and finish as soon as they all answered). */
  nodes?: readonly string[];
  /** Deadline in ms. Default 1500 ms. Without `nodes` the request always lasts this long. */
  timeoutMs?: number;
}

export interface PingResult {
  /** node id → round-trip time in ms, in arrival order. */
  nodes: Map<string, number>;
  missing: string[];
}

export interface ApprovalResult {
  planUrl: string;
  sequence: number;
  replies: Map<string, ApprovalReply>;
  missing: string[];
}

export interface PlanStatusResult {
  nodeId: string;
  success: boolean;
  approvalObligation: boolean;
  status: string;
  message: string;
  /** True when the node will run this plan: approved, or approval not required. */
  canTrain: boolean;
}

/** The node → researcher message of a command. */
export type ReplyOf<C extends NodeToResearcherCommand> = Extract<NodeToResearcherMessage, { command: C }>;

/** Which nodes a collection waits for, until when, and who hears of each outcome (see CollectionSpec). */
export interface ReplyCollectionOptions<T> {
  /** Used in messages; default: the command. */
  what?: string;
  expected?: readonly string[];
  deadlineMs: number | ReadonlyMap<string, number>;
  onOutcome?: (outcome: NodeOutcome<T>) => void;
}

export interface ResearcherEvents {
  scalar: [AddScalarReply];
  log: [LogMessage];
  /** An `error` message no outstanding request claimed. */
  'node-error': [ErrorMessage];
  /** Any valid message no request claimed (late, stale, foreign). */
  unclaimed: [WireMessage];
}

/**
 * A researcher's connection to the network, for requests outside an experiment: ping, list, search, plan approval
 * and status.
 *
 * @example
 * ```ts
 * import { Researcher } from 'fedbiomed-ts';
 * const researcher = await Researcher.connect({ brokerUrl: 'mqtt://127.0.0.1:1883', uploadsUrl: 'http://127.0.0.1:8844/upload/' });
 * console.log(await researcher.ping());
 * await researcher.close();
 * ```
 */
export class Researcher extends EventEmitter<ResearcherEvents> {
  private readonly router = new RequestRouter();
  private sequence = 0;
  private readonly logger: Logger;
  private readonly busy = new Map<string, Promise<unknown>>();
  private closed = false;
  private losses = 0;

  private constructor(
    readonly id: string,
    private readonly messaging: ResearcherBus,
    readonly repository: FileRepository,
    logger: Logger,
    /** The network's protocol: Fed-BioMed v4.5 (MQTT + file repository) or v6 (gRPC, researcher/v6-link.ts). */
    readonly protocol: ResearcherProtocol = 'v4.5',
  ) {
    super();
    this.logger = logger;
    messaging.onMessage((msg) => this.receive(msg));
    messaging.on?.('offline', () => void (this.losses += 1));
  }

  /** How many times the broker connection was lost so far: what was published meanwhile (QoS 0) may be lost. */
  get connectionLosses(): number {
    return this.losses;
  }

  /** Connects to the broker (subscribing general/researcher, general/monitoring, general/logger). */
  static async connect(options: NetworkOptions): Promise<Researcher> {
    const logger = options.logger ?? silentLogger;
    if (options.protocol === 'v6') {
      // Loaded on use: gRPC is not needed on v4.5 networks.
      const link = await (await import('../v6-link')).openV6Link(options);
      return new Researcher(link.researcherId as string, link.bus, link.repository, logger, link.protocol);
    }
    // Downloads only from the configured repository's origin, no redirect followed: a node's reply cannot make the
    // researcher fetch another host or port (issue 11); a custom repository is held to the same origin rule.
    const repository = options.repository ? originCheckedRepository(options.repository, options.uploadsUrl) : new RepositoryClient({ uploadsUrl: options.uploadsUrl, downloadFrom: 'uploads',
      tls: { caFile: options.caFile, certFile: options.certFile, keyFile: options.keyFile }, logger });
    const messaging = await Messaging.connect({
      role: 'researcher',
      brokerUrl: options.brokerUrl,
      username: options.username,
      password: options.password,
      caFile: options.caFile,
      certFile: options.certFile,
      keyFile: options.keyFile,
      connectTimeoutMs: options.connectTimeoutMs,
      logger,
    });
    return new Researcher(options.researcherId ?? `researcher_${randomUUID()}`, messaging, repository, logger);
  }

  /** Next value of the per-process counter used by ping and approval (reference 10). */
  nextSequence(): number {
    return this.sequence++;
  }

  private receive(msg: WireMessage): void {
    const inbound = msg as unknown as InboundMessage;
    if (msg.command === 'add_scalar') {
      this.emit('scalar', msg);
      return;
    }
    if (msg.command === 'log') {
      this.emit('log', msg);
      return;
    }
    if (this.router.dispatch(inbound)) return;
    if (msg.command === 'error') this.emit('node-error', msg);
    this.logger.debug(`unclaimed ${msg.command} from ${String(inbound.node_id)}`);
    this.emit('unclaimed', msg);
  }

  /** Publishes a researcher → node message: broadcast, or to one node's topic. */
  async send(message: WireMessage, nodeId?: string): Promise<void> {
    if (this.closed) throw new Error('researcher connection is closed');
    await this.messaging.send(message, nodeId);
  }

  /** Starts collecting replies. Start it BEFORE sending the request so a fast reply is never missed. */
  collect<T>(spec: CollectionSpec<T>): Collection<T> {
    return this.router.start(spec);
  }

  /**
   * Starts collecting the `command` replies addressed to this researcher that `match` accepts (an `error` from a
   * node ends the request for that node, see errorFor). Start it BEFORE sending the request.
   */
  collectReplies<C extends NodeToResearcherCommand>(
    command: C,
    match: (reply: ReplyOf<C>) => boolean,
    options: ReplyCollectionOptions<ReplyOf<C>>,
  ): Collection<ReplyOf<C>> {
    return this.collect<ReplyOf<C>>({
      what: options.what ?? command,
      expected: options.expected,
      deadlineMs: options.deadlineMs,
      onOutcome: options.onOutcome,
      accept: (m) => {
        if (m.command !== command || m.researcher_id !== this.id) return undefined;
        // Every inbound message was validated against its schema (src/protocol) before it got here, so a message
        // with this command has this command's type.
        const reply = m as unknown as ReplyOf<C>;
        return match(reply) ? { nodeId: reply.node_id, reply } : undefined;
      },
      acceptError: (m) => this.errorFor(m),
    });
  }

  /** An `error` ends a request for its node when it is ours or anonymous ("<unknown>", a node shutting down). */
  errorFor(msg: InboundMessage): string | undefined {
    const rid = String(msg.researcher_id ?? '');
    return rid === this.id || UNKNOWN_RESEARCHER_IDS.includes(rid) ? String(msg.node_id) : undefined;
  }

  /** Requests of one kind run one at a time: list and search replies carry no id to tell two requests apart. */
  private exclusive<T>(kind: string, run: () => Promise<T>): Promise<T> {
    const previous = this.busy.get(kind) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(run);
    this.busy.set(kind, next);
    return next;
  }

  private async broadcastOrEach(message: WireMessage, nodes: readonly string[] | undefined): Promise<void> {
    if (!nodes) await this.send(message);
    else for (const n of nodes) await this.send(message, n);
  }

  async ping(options: DiscoveryOptions = {}): Promise<PingResult> {
    const sequence = this.nextSequence();
    const c = this.collectReplies('pong', (m) => m.sequence === sequence, {
      what: 'ping',
      expected: options.nodes,
      deadlineMs: options.timeoutMs ?? DEFAULT_DISCOVERY_TIMEOUT_MS,
    });
    // Python only broadcasts ping; a node list just says whose pong to wait for.
    await this.send({ researcher_id: this.id, sequence, command: 'ping' });
    const r = await c.result;
    const nodes = new Map<string, number>();
    for (const o of r.outcomes.values()) if (o.status === 'replied') nodes.set(o.nodeId, o.atMs);
    return { nodes, missing: [...r.timedOut, ...r.errored] };
  }

  /** `list`: every dataset of every node (or of `nodes`). */
  listDatasets(options: DiscoveryOptions = {}): Promise<Map<string, DatasetEntry[]>> {
    return this.exclusive('list', async () => {
      const c = this.datasetCollection('list', options);
      await this.broadcastOrEach({ researcher_id: this.id, command: 'list' }, options.nodes);
      return datasetsOf(await c.result);
    });
  }

  /** `search`: datasets carrying every tag. Nodes with no match stay silent (Fed-BioMed behaviour). */
  search(tags: readonly string[], options: DiscoveryOptions = {}): Promise<Map<string, DatasetEntry[]>> {
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) {
      return Promise.reject(new TypeError('search: tags must be an array of strings'));
    }
    return this.exclusive('search', async () => {
      const c = this.datasetCollection('search', options);
      await this.broadcastOrEach({ researcher_id: this.id, tags: [...tags], command: 'search' }, options.nodes);
      return datasetsOf(await c.result);
    });
  }

  private datasetCollection(command: 'list' | 'search', options: DiscoveryOptions): Collection<ListReply | SearchReply> {
    return this.collectReplies(command, (m) => m.success, {
      expected: options.nodes,
      deadlineMs: options.timeoutMs ?? DEFAULT_DISCOVERY_TIMEOUT_MS,
    });
  }

  /**
   * Uploads a training plan and asks nodes to register it for approval (`approval`). A `true` reply means
   * "received for review", not "approved": use planStatus() to see the decision.
   */
  async requestApproval(
    plan: { source: string | Buffer; fileName?: string } | { url: string },
    options: DiscoveryOptions & { description?: string } = {},
  ): Promise<ApprovalResult> {
    const planUrl =
      'url' in plan
        ? plan.url
        : await this.repository.upload(
            typeof plan.source === "string" ? Buffer.from(plan.source, "utf8") : plan.source,
            plan.fileName ?? `training_plan_${randomUUID()}.py`,
          );
    const sequence = this.nextSequence();
    const c = this.collectReplies('approval', (m) => m.sequence === sequence, {
      expected: options.nodes,
      deadlineMs: options.timeoutMs ?? PLAN_REQUEST_TIMEOUT_MS,
    });
    await this.broadcastOrEach(
      {
        researcher_id: this.id,
        description: options.description ?? 'no description provided',
        sequence,
        training_plan_url: planUrl,
        command: 'approval',
      },
      options.nodes,
    );
    const r = await c.result;
    return { planUrl, sequence, replies: r.replies, missing: [...r.timedOut, ...r.errored] };
  }

  /** `training-plan-status` for a plan URL, sent to each node's own topic. */
  async planStatus(
    planUrl: string,
    options: { nodes: readonly string[]; jobId?: string; timeoutMs?: number },
  ): Promise<{ statuses: Map<string, PlanStatusResult>; missing: string[] }> {
    const jobId = options.jobId ?? `job_${randomUUID()}`;
    const c = this.collectReplies('training-plan-status', (m) => m.job_id === jobId, {
      expected: options.nodes,
      deadlineMs: options.timeoutMs ?? PLAN_REQUEST_TIMEOUT_MS,
    });
    for (const node of options.nodes) {
      await this.send({ researcher_id: this.id, job_id: jobId, training_plan_url: planUrl, command: 'training-plan-status' }, node);
    }
    const r = await c.result;
    const statuses = new Map<string, PlanStatusResult>();
    for (const [nodeId, m] of r.replies) {
      statuses.set(nodeId, {
        nodeId,
        success: m.success,
        approvalObligation: m.approval_obligation,
        status: m.status,
        message: m.msg,
        canTrain: m.success && (m.status === 'Approved' || !m.approval_obligation),
      });
    }
    return { statuses, missing: [...r.timedOut, ...r.errored] };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.router.cancelAll();
    await this.messaging.close();
  }
}

function datasetsOf(r: CollectionResult<ListReply | SearchReply>): Map<string, DatasetEntry[]> {
  const out = new Map<string, DatasetEntry[]>();
  for (const [nodeId, reply] of r.replies) out.set(nodeId, reply.databases);
  return out;
}
