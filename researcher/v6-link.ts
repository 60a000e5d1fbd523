/**
 * The researcher's side of a Fed-BioMed v6 network (gRPC, protocol "7") behind the same seam as v4.5
 * (researcher/transport.ts): `Researcher`, `Experiment`, the rounds, aggregators and monitoring speak the v4.5
 * message shapes and a file repository; this module translates, as node-agent/transport-v6.ts does for nodes.
 *
 *  - Requests go to each node's queue on the gRPC server (a broadcast to every connected node), with a fresh
 *    `request_id`; what v4.5 correlates by `sequence` (ping, approval) or carries by URL (the plan of a status
 *    request) is kept per request id and put back into the reply.
 *  - v6 carries files inline: what the experiment "uploads" (plan source, global weights) is kept in memory under
 *    an inline URL (`InlineFiles`) and put inline into the requests that name it; a TrainReply's parameters are
 *    stored the same way and named by the reply's `params_url`, so the round folds them into FedAvg unchanged.
 *  - Feedback (logs, training scalars) becomes `log` / `add_scalar` messages.
 *
 * What v4.5 nodes do and v6 nodes do differently is mapped to the v4.5 behaviour the round logic expects: an empty
 * SearchReply (a v6 node without a matching dataset) is not delivered (a v4.5 node stays silent); an encrypted
 * TrainReply (secure aggregation, which we do not run) becomes a failed reply, never averaged.
 */
import { FedbiomedTsError } from '../src/errors';
import { randomUUID } from 'crypto';
import type { WireMessage } from '../src/transport/wire';
import { describeError, silentLogger, type Logger } from '../src/transport/logger';
import type { FeedbackMessageProto } from '../src/transport/v6/grpc';
import { makeV6Message, type V6Message } from '../src/transport/v6/messages';
import { V6ResearcherServer } from '../src/transport/v6/researcher-server';
import { decodeParams, encodeParamsChunks } from '../src/serialize';
import { modelWeightsOf } from '../src/serialize/params-file';
import type { FileRepository, V6NetworkOptions } from './network';
import type { ResearcherBus, ResearcherLink } from './transport';

/** Inline files are named by URLs of this (never fetched) origin. */
export const INLINE_URL = 'http://fedbiomed-ts-v6-inline.invalid/';
export const DEFAULT_RESEARCHER_DIR = './fbm-researcher-ts';
/** A v6 researcher waits up to 20 s for the first node. */
export const DEFAULT_NODE_WAIT_MS = 20_000;
/** Correlation data of a request no node answered is forgotten after this long. */
const CONTEXT_TTL_MS = 3600_000;

export class V6LinkError extends FedbiomedTsError {}

interface InlineFile {
  data: Buffer;
  /** Weight uploads seen when it was stored: node results older than the previous global weights are dropped. */
  generation: number;
  kind: 'plan' | 'weights' | 'result';
}

/**
 * The files of a v6 experiment, in memory: plan sources, the current global weights and the nodes' results of
 * the current and previous rounds. Older global weights and results go as new global weights arrive.
 */
export class InlineFiles implements FileRepository {
  private readonly files = new Map<string, InlineFile>();
  private generation = 0;
  private decoded: { url: string; weights: Record<string, unknown> } | undefined;

  async upload(data: Uint8Array | readonly Uint8Array[], fileName: string): Promise<string> {
    const buffer = Array.isArray(data) ? Buffer.concat(data as Uint8Array[]) : Buffer.from(data as Uint8Array);
    const kind = /\.py$/.test(fileName) ? 'plan' : 'weights';
    if (kind === 'weights') this.newGeneration();
    return this.put(buffer, fileName, kind);
  }

  private newGeneration(): void {
    this.generation += 1;
    for (const [url, f] of this.files) {
      if ((f.kind === 'weights' && f.generation < this.generation) || (f.kind === 'result' && f.generation < this.generation - 1)) {
        this.files.delete(url);
      }
    }
  }

  private put(data: Buffer, fileName: string, kind: InlineFile['kind']): string {
    const url = `${INLINE_URL}${randomUUID()}/${encodeURIComponent(fileName)}`;
    this.files.set(url, { data, generation: this.generation, kind });
    return url;
  }

  /** Keeps a node's parameters (from a TrainReply) as a results file; returns its URL. */
  putResult(weights: unknown, optimAuxVar: unknown): string {
    const file: Record<string, unknown> = { model_weights: weights };
    if (optimAuxVar && typeof optimAuxVar === 'object' && Object.keys(optimAuxVar).length > 0) file['optim_aux_var'] = optimAuxVar;
    return this.put(Buffer.concat(encodeParamsChunks(file)), 'node_params.mpk', 'result');
  }

  async download(url: string): Promise<Buffer> {
    return this.get(url).data;
  }

  private get(url: string): InlineFile {
    const file = this.files.get(url);
    if (!file) throw new V6LinkError(`${url} is not a file of this v6 experiment (or no longer kept)`);
    return file;
  }

  text(url: string): string {
    return this.get(url).data.toString('utf8');
  }

  /** model_weights of a global weights file, decoded once for all the nodes of a round. */
  weights(url: string): Record<string, unknown> {
    if (this.decoded?.url !== url) this.decoded = { url, weights: modelWeightsOf(decodeParams(this.get(url).data)) };
    return this.decoded.weights;
  }

  get size(): number {
    return this.files.size;
  }
}

/** What a reply needs from its request (v4.5 fields v6 does not echo). */
interface RequestContext {
  sequence?: number;
  planUrl?: string;
  at: number;
}

type Fields = Record<string, unknown>;

/** v6 training_args: the shared ones plus v6's test_batch_size / shuffle_testing_dataset, test_metric tagged. */
export function v6TrainingArgsOf(args: Fields): Fields {
  const out: Fields = { ...args, test_batch_size: args['test_batch_size'] ?? 0,
    shuffle_testing_dataset: args['shuffle_testing_dataset'] ?? false };
  if (typeof out['test_metric'] === 'string') out['test_metric'] = { __type__: 'MetricTypes', value: out['test_metric'] };
  return out;
}

export class V6ResearcherBus implements ResearcherBus {
  private readonly handlers = new Set<(message: WireMessage) => void>();
  private readonly contexts = new Map<string, RequestContext>();
  private readonly detach: Array<() => void> = [];

  constructor(readonly server: V6ResearcherServer, readonly files: InlineFiles, private readonly ownsServer: boolean,
    private readonly logger: Logger = silentLogger) {
    const onReply = (m: V6Message) => this.deliver(this.fromV6(m));
    const onFeedback = (f: FeedbackMessageProto) => this.deliver(this.fromFeedback(f));
    server.on('unmatched', onReply);
    server.on('feedback', onFeedback);
    this.detach.push(() => server.off('unmatched', onReply), () => server.off('feedback', onFeedback));
  }

  onMessage(handler: (message: WireMessage) => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  private deliver(message: WireMessage | undefined): void {
    if (!message) return;
    for (const h of this.handlers) {
      try {
        h(message);
      } catch (err) {
        this.logger.error(`a handler of ${message.command} failed: ${describeError(err)}`);
      }
    }
  }

  /** Queues the request for `nodeId`, or for every connected node (a v4.5 broadcast). */
  async send(message: WireMessage, nodeId?: string): Promise<void> {
    const requestId = randomUUID();
    const v6 = this.toV6(message, requestId);
    const now = Date.now();
    for (const [id, c] of this.contexts) if (now - c.at > CONTEXT_TTL_MS) this.contexts.delete(id);
    for (const node of nodeId === undefined ? this.server.activeNodes() : [nodeId]) this.server.send(node, v6);
  }

  private toV6(message: WireMessage, requestId: string): V6Message {
    const m = message as unknown as Fields;
    const head = { request_id: requestId, researcher_id: m['researcher_id'] };
    const remember = (c: Omit<RequestContext, 'at'>) => this.contexts.set(requestId, { ...c, at: Date.now() });
    switch (message.command) {
      case 'ping':
        remember({ sequence: m['sequence'] as number });
        return makeV6Message('PingRequest', head);
      case 'search':
        return makeV6Message('SearchRequest', { ...head, tags: m['tags'] });
      case 'list':
        return makeV6Message('ListRequest', head);
      case 'approval':
        remember({ sequence: m['sequence'] as number });
        return makeV6Message('ApprovalRequest', { ...head, description: m['description'],
          training_plan: this.files.text(m['training_plan_url'] as string) });
      case 'training-plan-status':
        remember({ planUrl: m['training_plan_url'] as string });
        return makeV6Message('TrainingPlanStatusRequest', { ...head, experiment_id: m['job_id'],
          training_plan: this.files.text(m['training_plan_url'] as string) });
      case 'train':
        return makeV6Message('TrainRequest', { ...head, experiment_id: m['job_id'], state_id: m['state_id'],
          training_args: v6TrainingArgsOf(m['training_args'] as Fields), dataset_id: m['dataset_id'],
          training: m['training'], model_args: m['model_args'], params: this.files.weights(m['params_url'] as string),
          training_plan: this.files.text(m['training_plan_url'] as string), training_plan_class: m['training_plan_class'],
          round: m['round'], aggregator_args: m['aggregator_args'] ?? {}, secagg_arguments: {}, optim_aux_var: null });
      default:
        throw new V6LinkError(`"${message.command}" requests are not available on a Fed-BioMed v6 network here`);
    }
  }

  private fromV6(message: V6Message): WireMessage | undefined {
    const f = message.fields;
    const context = this.contexts.get(String(f['request_id']));
    const base = { researcher_id: f['researcher_id'], node_id: f['node_id'] };
    const wire = (m: Fields) => m as unknown as WireMessage;
    switch (message.className) {
      case 'PingReply':
        return wire({ ...base, success: true, sequence: context?.sequence ?? -1, command: 'pong' });
      case 'SearchReply':
        if ((f['databases'] as unknown[]).length === 0) return undefined;
        return wire({ ...base, success: true, databases: f['databases'], count: f['count'], command: 'search' });
      case 'ListReply':
        return wire({ ...base, success: f['success'], databases: f['databases'], count: f['count'], command: 'list' });
      case 'ApprovalReply':
        return wire({ ...base, sequence: context?.sequence ?? -1, status: f['status'], success: f['success'],
          command: 'approval' });
      case 'TrainingPlanStatusReply':
        return wire({ ...base, job_id: f['experiment_id'], success: f['success'],
          approval_obligation: f['approval_obligation'], status: f['status'], msg: f['msg'],
          training_plan_url: context?.planUrl ?? '', command: 'training-plan-status' });
      case 'TrainReply':
        return wire(this.trainReply(f, base));
      case 'ErrorMessage':
        return wire({ ...base, errnum: f['errnum'] ?? 'FB300', extra_msg: f['extra_msg'], command: 'error' });
      default:
        this.logger.warn(`a ${message.className} from ${String(f['node_id'])} was dropped: no request of ours asks for it`);
        return undefined;
    }
  }

  private trainReply(f: Fields, base: Fields): Fields {
    const reply = { ...base, job_id: f['experiment_id'], state_id: f['state_id'] ?? null, success: f['success'],
      dataset_id: f['dataset_id'], params_url: '', timing: f['timing'], sample_size: f['sample_size'] ?? null,
      msg: f['msg'], command: 'train' };
    if (f['success'] !== true || f['params'] === null || f['params'] === undefined) return reply;
    if (f['encrypted'] === true || Array.isArray(f['params'])) {
      return { ...reply, success: false,
        msg: 'the node sent encrypted parameters (secure aggregation), which this researcher does not run: not averaged' };
    }
    return { ...reply, params_url: this.files.putResult(f['params'], f['optim_aux_var']) };
  }

  private fromFeedback(feedback: FeedbackMessageProto): WireMessage | undefined {
    const researcherId = feedback.researcher_id ?? this.server.researcherId;
    if (feedback.log) {
      const { node_id: nodeId, level, msg } = feedback.log;
      return { researcher_id: researcherId, node_id: nodeId, level, msg, command: 'log' } as unknown as WireMessage;
    }
    const s = feedback.scalar;
    if (!s) return undefined;
    return {
      researcher_id: researcherId, node_id: s.node_id, job_id: s.experiment_id, train: s.train, test: s.test,
      test_on_local_updates: s.test_on_local_updates, test_on_global_updates: s.test_on_global_updates,
      metric: s.metric, epoch: s.epoch ?? null, total_samples: s.total_samples, batch_samples: s.batch_samples,
      num_batches: s.num_batches, num_samples_trained: s.num_samples_trained ?? null, iteration: s.iteration,
      command: 'add_scalar',
    } as unknown as WireMessage;
  }

  async close(): Promise<void> {
    for (const d of this.detach.splice(0)) d();
    this.handlers.clear();
    if (this.ownsServer) await this.server.close();
  }
}

/** Waits until `count` nodes, `ids` among them, poll the server, or fails after `timeoutMs` naming who is missing. */
export async function waitForNodes(server: V6ResearcherServer, count: number, timeoutMs: number,
  ids: readonly string[] = []): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  const missing = () => ids.filter((id) => !server.activeNodes().includes(id));
  while (server.activeNodes().length < count || missing().length > 0) {
    if (Date.now() > deadline) {
      const absent = missing();
      throw new V6LinkError(`${server.activeNodes().length} node(s) connected to the v6 researcher on port ` +
        `${server.port} within ${timeoutMs} ms, ${count} expected${absent.length > 0 ? `; not connected: ${absent.join(', ')}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return server.activeNodes();
}

/** Starts (or joins) the gRPC server and waits for the first nodes. */
export async function openV6Link(options: V6NetworkOptions): Promise<ResearcherLink> {
  const logger = options.logger ?? silentLogger;
  const server = options.server ?? await V6ResearcherServer.start({ dir: options.dir ?? DEFAULT_RESEARCHER_DIR,
    host: options.host, port: options.port, logger });
  const bus = new V6ResearcherBus(server, new InlineFiles(), !options.server, logger);
  try {
    await waitForNodes(server, options.minNodes ?? 1, options.nodeWaitMs ?? DEFAULT_NODE_WAIT_MS, options.nodeIds);
  } catch (err) {
    await bus.close();
    throw err;
  }
  return { researcherId: server.researcherId, bus, repository: bus.files, protocol: 'v6' };
}

