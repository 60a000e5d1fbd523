/**
 * The node transport for Fed-BioMed v6 networks (gRPC, protocol "7"): v6 requests are translated into the
 * agent's request shapes and its replies back into v6 messages, so ping, search, list, approval, training-plan
 * status and train are handled by the same code as on v4.5 networks.
 *
 * v6 carries plan sources and weights inline where v4.5 carried URLs. The translation keeps them in an inbox in
 * the node directory (`v6-inline/`, so a queued train request survives a restart) and names them by an inbox URL
 * that this transport's `download` serves; the round's result file is "uploaded" into the same inbox and put
 * inline into the TrainReply. Inbox files of approval / status requests are removed once answered; those of train
 * requests once the node's task queue no longer holds the request (a request interrupted by a node stop stays
 * queued, and its plan and weights with it, until it has run after the restart).
 *
 * Refused with a reply, never ignored: secure aggregation (SecaggRequest, AdditiveSSSetupRequest, a TrainRequest
 * with secagg_arguments, SecaggDeleteRequest), differential privacy (dp_args), declearn optimizer auxiliary
 * variables, federated analytics (FARequest), preprocessing (PreprocRequest), node-to-node overlay messages and
 * messages that do not validate (ErrorMessage FB301, as a v6 node).
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomUUID } from 'crypto';
import type { NodeToResearcherMessage, ResearcherToNodeMessage } from '../src/protocol';
import type { ErrorMessage, TrainRequest, WireTrainingArgs } from '../src/protocol/messages';
import { PyFloat } from '../src/protocol/pyfloat';
import type { PyJsonObject } from '../src/protocol/python-json-value';
import { decodeParams, encodeParams } from '../src/serialize';
import { describeError, type Logger } from '../src/transport/logger';
import { V6NodeClient, type V6NodeClientOptions } from '../src/transport/v6/node-client';
import { makeV6Message, type V6ClassName, type V6Message } from '../src/transport/v6/messages';
import type { FeedbackScalarProto } from '../src/transport/v6/grpc';
import { parseResearcherAddress, type NodeConfig } from './config';
import type { NodeStores } from './stores';
import type { NodeLog } from './node-log';
import { readPlanSource } from './plan-source';
import type { NodeTransport, NodeTransportHandlers, ReplyRoute } from './transport';

/** The inbox URL prefix: a valid v4.5 repository URL shape, served only by this transport, never fetched. */
const INBOX_URL = 'http://localhost/fedbiomed-ts-v6-inbox/';
const TRAIN_INBOX_PREFIX = 'train-';
export const PIN_FILE = 'v6-researcher-certificate.pem';

/** v6 training_args keys the node takes no action on, dropped before the shared validation. */
const V6_ONLY_TRAINING_ARGS = ['test_batch_size', 'shuffle_testing_dataset'];

/** What the reply to a request needs (stored with a queued train request: plain JSON). */
interface V6Route {
  reply: V6ClassName;
  request_id: string | null;
  researcher_id: string;
  experiment_id?: string;
  /** Inbox files of the request, removed after the reply. */
  inbox: string[];
}

export interface V6NodeTransportOptions {
  config: NodeConfig;
  stores: NodeStores;
  log: NodeLog;
  logger: Logger;
  /** Sees the traffic (tools/interop-v6 records test vectors with it). */
  tap?: V6NodeClientOptions['tap'];
}

export class V6NodeTransport implements NodeTransport {
  private readonly client: V6NodeClient;
  private readonly inboxDir: string;
  private readonly nodeName: string;
  private handlers: NodeTransportHandlers | undefined;

  constructor(private readonly options: V6NodeTransportOptions) {
    const { config, stores } = options;
    const { host, port } = parseResearcherAddress(config.researcher ?? '');
    this.inboxDir = path.join(stores.paths.dir, 'v6-inline');
    this.nodeName = config.nodeName ?? config.nodeId;
    this.client = new V6NodeClient({ host, port, nodeId: config.nodeId,
      pinFile: path.join(stores.paths.dir, PIN_FILE), logger: options.logger, tap: options.tap }, {
      connected: (identity) => {
        options.log.info(`connected to researcher ${identity.researcherId} at ${host}:${port} (certificate ` +
          `${identity.fingerprint.slice(0, 23)}…)`);
        this.handlers?.reconnect();
      },
      disconnected: (reason) => {
        options.log.warning(`researcher ${host}:${port} unreachable (${reason}); reconnecting`);
        this.handlers?.offline();
      },
      invalid: (error) => void this.refuseInvalid(error),
    });
  }

  get description(): string {
    return `researcher ${this.client.address} (Fed-BioMed v6 gRPC)`;
  }

  async start(handlers: NodeTransportHandlers): Promise<void> {
    this.handlers = handlers;
    fs.mkdirSync(this.inboxDir, { recursive: true });
    this.collectTrainInbox(); // left by a crash

    this.client.start((message) => void this.receive(message).catch((err) =>
      this.options.log.error(`v6 ${message.className} not handled: ${describeError(err)}`)));
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  // ---- inbox -------------------------------------------------------------------------------------------------

  private putInbox(name: string, data: Uint8Array | string): string {
    fs.writeFileSync(path.join(this.inboxDir, name), data);
    return INBOX_URL + name;
  }

  private inboxName(url: string): string {
    if (!url.startsWith(INBOX_URL)) throw new Error(`${url} is not in this node's v6 inbox`);
    const name = url.slice(INBOX_URL.length);
    if (!/^[\w.-]+$/.test(name)) throw new Error(`bad v6 inbox name ${JSON.stringify(name)}`);
    return name;
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Files arrived inside the request (v6 has no repository): already received within the message size caps. */
  async download(url: string): Promise<Buffer> {
    return fs.readFileSync(path.join(this.inboxDir, this.inboxName(url)));
  }

  async upload(data: Uint8Array, fileName: string): Promise<string> {
    return this.putInbox(`result-${randomUUID()}-${path.basename(fileName)}`, data);
  }

  private clearInbox(names: string[]): void {
    for (const name of names) fs.rmSync(path.join(this.inboxDir, name), { force: true });
  }

  /** Removes the train inbox files no queued request refers to any more (the queue file is the truth). */
  private collectTrainInbox(): void {
    let queued: { task?: { training_plan_url?: string; params_url?: string } }[] = [];
    try {
      queued = JSON.parse(fs.readFileSync(this.options.stores.paths.queue, 'utf8')) as typeof queued;
    } catch {
      queued = []; // no queue file: nothing queued
    }
    const kept = new Set(queued.flatMap((q) => [q.task?.training_plan_url, q.task?.params_url])
      .filter((u): u is string => typeof u === 'string' && u.startsWith(INBOX_URL)).map((u) => u.slice(INBOX_URL.length)));
    for (const name of fs.readdirSync(this.inboxDir)) {
      if (name.startsWith(TRAIN_INBOX_PREFIX) && !kept.has(name)) fs.rmSync(path.join(this.inboxDir, name), { force: true });
    }
  }

  /** Shortly after a train reply: by then the queue has dropped the request it answered (or kept it, if stopped). */
  private scheduleInboxCollection(): void {
    setTimeout(() => {
      try {
        this.collectTrainInbox();
      } catch (err) {
        this.options.log.warning(`v6 inbox clean-up failed: ${describeError(err)}`);
      }
    }, 1_000).unref();
  }

  // ---- researcher → node -------------------------------------------------------------------------------------

  private async receive(message: V6Message): Promise<void> {
    const f = message.fields;
    const researcherId = f['researcher_id'] as string;
    const route = (reply: V6ClassName, extra: Partial<V6Route> = {}): ReplyRoute =>
      ({ reply, request_id: f['request_id'] ?? null, researcher_id: researcherId, inbox: [],
        ...extra });
    const deliver = (request: ResearcherToNodeMessage, r: ReplyRoute) => this.handlers?.request(request, r);
    const id = randomUUID();
    switch (message.className) {
      case 'PingRequest':
        return deliver({ researcher_id: researcherId, sequence: 0, command: 'ping' }, route('PingReply'));
      case 'SearchRequest':
        return deliver({ researcher_id: researcherId, tags: f['tags'] as string[], command: 'search' },
          route('SearchReply'));
      case 'ListRequest':
        return deliver({ researcher_id: researcherId, command: 'list' }, route('ListReply'));
      case 'ApprovalRequest': {
        const name = `plan-${id}.py`;
        const url = this.putInbox(name, f['training_plan'] as string);
        return deliver({ researcher_id: researcherId, description: f['description'] as string, sequence: 0,
          training_plan_url: url, command: 'approval' }, route('ApprovalReply', { inbox: [name] }));
      }
      case 'TrainingPlanStatusRequest': {
        const name = `plan-${id}.py`;
        const url = this.putInbox(name, f['training_plan'] as string);
        return deliver({ researcher_id: researcherId, job_id: f['experiment_id'] as string, training_plan_url: url,
          command: 'training-plan-status' }, route('TrainingPlanStatusReply', { inbox: [name] }));
      }
      case 'TrainRequest':
        return this.receiveTrain(message, route('TrainReply', { experiment_id: f['experiment_id'] as string }), id);
      case 'SecaggRequest':
        return this.refuse(message, 'SecaggReply', 'FB318', 'secure aggregation is not supported by this fedbiomed-ts node');
      case 'SecaggDeleteRequest':
        return this.refuse(message, 'SecaggDeleteReply', 'FB321', 'secure aggregation is not supported by this node');
      case 'AdditiveSSSetupRequest':
        return this.refuse(message, 'ErrorMessage', 'FB318', 'secure aggregation is not supported by this fedbiomed-ts node');
      case 'FARequest':
        return this.refuse(message, 'ErrorMessage', 'FB325', 'federated analytics is not supported by this fedbiomed-ts node');
      case 'PreprocRequest':
        return this.refuse(message, 'ErrorMessage', 'FB326', 'preprocessing requests are not supported by this fedbiomed-ts node');
      default:
        return this.refuse(message, 'ErrorMessage', 'FB324',
          `${message.className} is not handled: this node takes part in no node-to-node exchange`);
    }
  }

  private async receiveTrain(message: V6Message, route: ReplyRoute, id: string): Promise<void> {
    const f = message.fields;
    const refusal = trainRefusal(f);
    if (refusal) {
      this.options.log.warning(`train request refused: ${refusal}`);
      await this.sendV6(makeV6Message('TrainReply', { request_id: f['request_id'], researcher_id: f['researcher_id'],
        experiment_id: f['experiment_id'], success: false, node_id: this.options.config.nodeId,
        node_name: this.nodeName, dataset_id: '', timing: {}, msg: refusal, state_id: f['state_id'] }));
      return;
    }
    const planName = `${TRAIN_INBOX_PREFIX}${id}-plan.py`;
    const paramsName = `${TRAIN_INBOX_PREFIX}${id}-params.mpk`;
    const planUrl = this.putInbox(planName, f['training_plan'] as string);
    const paramsUrl = this.putInbox(paramsName, encodeParams({ model_weights: f['params'] }));
    // Not in the route's inbox list: the queue decides when they can go (collectTrainInbox).
    const request: TrainRequest = {
      researcher_id: f['researcher_id'] as string,
      job_id: f['experiment_id'] as string,
      state_id: f['state_id'] as string | null,
      params_url: paramsUrl,
      training_args: sharedTrainingArgs(f['training_args'] as Record<string, unknown>),
      dataset_id: f['dataset_id'] as string,
      training: f['training'] as boolean,
      model_args: f['model_args'] as PyJsonObject,
      training_plan_url: planUrl,
      training_plan_class: f['training_plan_class'] as string,
      command: 'train',
      secagg_servkey_id: null, secagg_biprime_id: null, secagg_random: null, secagg_clipping_range: null,
      round: Number(f['round']),
      aggregator_args: f['aggregator_args'] as PyJsonObject,
      aux_var_urls: null,
    };
    this.handlers?.request(request, route);
  }

  private async refuse(message: V6Message, reply: V6ClassName, code: string, why: string): Promise<void> {
    const f = message.fields;
    this.options.log.warning(`${message.className} from ${String(f['researcher_id'])} refused: ${why}`);
    const base = { request_id: f['request_id'] ?? null, researcher_id: f['researcher_id'],
      node_id: this.options.config.nodeId, node_name: this.nodeName };
    const msg = `${code}: ${why}`;
    if (reply === 'ErrorMessage') {
      await this.sendV6(makeV6Message('ErrorMessage', { ...base, extra_msg: msg, errnum: code }));
    } else {
      await this.sendV6(makeV6Message(reply, { ...base, secagg_id: f['secagg_id'], success: false, msg }));
    }
  }

  /** A v6 node answers a message it cannot rebuild with ErrorMessage FB301 "Message was not properly formatted". */
  private async refuseInvalid(error: Error): Promise<void> {
    this.options.log.error(`invalid message from the researcher: ${error.message}`);
    const researcherId = this.client.researcherId ?? 'unknown_researcher_id';
    await this.sendV6(makeV6Message('ErrorMessage', { researcher_id: researcherId,
      node_id: this.options.config.nodeId, node_name: this.nodeName, errnum: 'FB301',
      extra_msg: 'Message was not properly formatted' })).catch(() => undefined);
  }

  // ---- node → researcher -------------------------------------------------------------------------------------

  private sendV6(message: V6Message): Promise<void> {
    return this.client.send(message);
  }

  async noReply(route: ReplyRoute): Promise<void> {
    const r = route as unknown as V6Route | undefined;
    // v6 nodes answer a search without match with an empty SearchReply (the researcher waits 5 s otherwise).
    if (r?.reply === 'SearchReply') {
      await this.sendV6(makeV6Message('SearchReply', { request_id: r.request_id, researcher_id: r.researcher_id,
        databases: [], node_id: this.options.config.nodeId, node_name: this.nodeName, count: 0 }));
    }
  }

  async send(message: NodeToResearcherMessage | ErrorMessage, route?: ReplyRoute): Promise<void> {
    const r = route as unknown as V6Route | undefined;
    const node = { node_id: this.options.config.nodeId, node_name: this.nodeName };
    const researcherId = r?.researcher_id ?? this.client.researcherId ?? 'unknown_researcher_id';
    const head = { request_id: r?.request_id ?? null, researcher_id: researcherId };
    try {
      switch (message.command) {
        case 'log':
          if (!this.client.connected) return; // v6 drops log lines while no researcher is reachable
          return await this.client.feedback({ researcher_id: researcherId,
            log: { node_id: message.node_id, level: message.level, msg: message.msg } });
        case 'add_scalar':
          if (!this.client.connected) return; // as log lines: monitoring is not worth a reconnection attempt
          return await this.client.feedback({ researcher_id: researcherId, scalar: scalarOf(message, this.nodeName) });
        case 'pong':
          return await this.sendV6(makeV6Message('PingReply', { ...head, ...node }));
        case 'search':
        case 'list':
          return await this.sendV6(makeV6Message(message.command === 'search' ? 'SearchReply' : 'ListReply', {
            ...head, ...node, databases: message.databases, count: message.count,
            ...(message.command === 'list' ? { success: message.success } : {}) }));
        case 'approval': {
          const source = r ? this.readInboxText(r.inbox[0]) : '';
          return await this.sendV6(makeV6Message('ApprovalReply', { ...head, ...node, status: 0,
            success: message.success, training_plan_id: this.planIdOf(source),
            message: message.success ? 'Training plan stored: waiting for the node operator\'s review'
              : 'Training plan could not be stored for approval (see the node log)' }));
        }
        case 'training-plan-status': {
          const source = r ? this.readInboxText(r.inbox[0]) : '';
          return await this.sendV6(makeV6Message('TrainingPlanStatusReply', { ...head, ...node,
            experiment_id: message.job_id, success: message.success, approval_obligation: message.approval_obligation,
            status: message.status, msg: message.msg, training_plan: source, training_plan_id: this.planIdOf(source) }));
        }
        case 'train':
          this.scheduleInboxCollection();
          return await this.sendTrainReply(message, head, node);
        case 'error':
          if (r?.reply === 'TrainReply') this.scheduleInboxCollection();
          return await this.sendV6(makeV6Message('ErrorMessage', { ...head, ...node, extra_msg: message.extra_msg,
            errnum: /^FB\d{3}/.exec(message.errnum)?.[0] ?? null }));
        default:
          throw new Error(`no v6 form for a "${message.command}" message`);
      }
    } finally {
      if (r && message.command !== 'add_scalar' && message.command !== 'log') this.clearInbox(r.inbox);
    }
  }

  private async sendTrainReply(message: Extract<NodeToResearcherMessage, { command: 'train' }>,
    head: Record<string, unknown>, node: Record<string, unknown>): Promise<void> {
    let params: unknown = null;
    let optimizerArgs: unknown = null;
    if (message.params_url) {
      const name = this.inboxName(message.params_url);
      try {
        const file = decodeParams(fs.readFileSync(path.join(this.inboxDir, name))) as Record<string, unknown>;
        params = file['model_weights'];
        optimizerArgs = file['optimizer_args'] ?? null;
      } finally {
        this.clearInbox([name]);
      }
    }
    await this.sendV6(makeV6Message('TrainReply', { ...head, ...node, experiment_id: message.job_id,
      success: message.success, dataset_id: message.dataset_id, timing: message.timing, msg: message.msg,
      state_id: message.state_id, sample_size: message.sample_size, encrypted: false, params,
      optimizer_args: optimizerArgs, optim_aux_var: message.success && params !== null ? {} : null }));
  }

  private readInboxText(name: string | undefined): string {
    if (!name) return '';
    try {
      return fs.readFileSync(path.join(this.inboxDir, name), 'utf8');
    } catch {
      return '';
    }
  }

  /** The id under which the node's plan store knows this source, if it does. */
  private planIdOf(source: string): string | null {
    const reading = readPlanSource(source);
    return reading.ok ? this.options.stores.plans.byHash(reading.hash)?.training_plan_id ?? null : null;
  }
}

/** Why a v6 TrainRequest cannot be honoured by this node, or undefined. */
function trainRefusal(fields: Record<string, unknown>): string | undefined {
  // The v6 researcher sends {} when secure aggregation is off.
  const secagg = fields['secagg_arguments'];
  if (secagg !== null && secagg !== undefined && Object.keys(secagg).length > 0) {
    return 'FB318: Secure aggregation setup error: secure aggregation is not supported by this fedbiomed-ts node';
  }
  const aux = fields['optim_aux_var'];
  if (aux !== null && aux !== undefined && Object.keys(aux).length > 0) {
    return 'FB621: declearn optimizer auxiliary variables (e.g. Scaffold) are not supported by this fedbiomed-ts node';
  }
  const args = fields['training_args'] as Record<string, unknown>;
  if (args && args['dp_args'] !== null && args['dp_args'] !== undefined) {
    return 'FB616: differential privacy (dp_args) is not supported by this fedbiomed-ts node';
  }
  return undefined;
}

/**
 * v6 training_args in the shared (v4.5) form: `test_metric` travels as a tagged MetricTypes map in v6 and as its
 * name in v4.5; `test_batch_size` (we validate in one pass) and `shuffle_testing_dataset` (the metric does not
 * depend on the order) need no action here.
 */
function sharedTrainingArgs(args: Record<string, unknown>): WireTrainingArgs {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args)) {
    if (V6_ONLY_TRAINING_ARGS.includes(key)) continue;
    if (key === 'test_metric' && value !== null && typeof value === 'object' &&
      (value as Record<string, unknown>)['__type__'] === 'MetricTypes') {
      out[key] = (value as Record<string, unknown>)['value'];
      continue;
    }
    out[key] = value;
  }
  return out as unknown as WireTrainingArgs;
}

function plainNumber(v: unknown): number {
  return v instanceof PyFloat ? v.value : Number(v);
}

function scalarOf(m: Extract<NodeToResearcherMessage, { command: 'add_scalar' }>, nodeName: string): FeedbackScalarProto {
  return {
    node_id: m.node_id, node_name: nodeName, experiment_id: m.job_id, train: m.train, test: m.test,
    test_on_local_updates: m.test_on_local_updates, test_on_global_updates: m.test_on_global_updates,
    metric: Object.fromEntries(Object.entries(m.metric).map(([k, v]) => [k, plainNumber(v)])),
    ...(m.epoch !== null ? { epoch: m.epoch } : {}),
    total_samples: m.total_samples, batch_samples: m.batch_samples, num_batches: m.num_batches,
    ...(m.num_samples_trained !== null ? { num_samples_trained: m.num_samples_trained } : {}),
    iteration: m.iteration,
  };
}
