/**
 * One round: a TrainRequest per selected node, replies collected as they come, and — for training rounds —
 * each successful node's weights downloaded, decoded and folded into the streaming FedAvg the moment its reply
 * lands, streamed from the HTTP response (big tensors chunk by chunk). Downloads run one at a time: besides the
 * accumulator, only a few small tensors and socket chunks of one node are in memory.
 */
import type { TrainReply, TrainRequest, WireTrainingArgs } from '../src/protocol/messages';
import type { StreamingFedAvg } from './aggregators/fedavg';
import type { ExperimentEvent, NodeRoundSummary } from './events';
import type { Json } from './training-args';
import type { Researcher } from './requests/researcher';
import type { NodeOutcome } from './requests/collector';
import { foldReply } from './fold-reply';

/** Replies a node still owes us from requests we gave up on (its queue answers them, in order, later). */
export class StaleReplies {
  private readonly owed = new Map<string, number>();

  abandon(nodeId: string): void {
    this.owed.set(nodeId, (this.owed.get(nodeId) ?? 0) + 1);
  }

  /** True (and one fewer owed) when this train reply answers an abandoned request. */
  consume(nodeId: string): boolean {
    const n = this.owed.get(nodeId) ?? 0;
    if (n === 0) return false;
    if (n === 1) this.owed.delete(nodeId);
    else this.owed.set(nodeId, n - 1);
    return true;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.owed);
  }

  static from(value: Record<string, number> | undefined): StaleReplies {
    const s = new StaleReplies();
    for (const [k, v] of Object.entries(value ?? {})) if (Number.isInteger(v) && v > 0) s.owed.set(k, v);
    return s;
  }
}

/**
 * The train replies already taken, by their node-made identifiers: a node names a fresh `state_id` and uploads a
 * fresh params file every round, so a reply carrying one already seen is a duplicate or a replay (a network
 * duplicate, or someone on the broker sending an old reply again), never a new result.
 */
export class SeenReplies {
  private readonly ids = new Set<string>();
  private readonly dropped = new WeakSet<object>();

  /** Marks a message as dropped (and reported) by a round, so that nothing reports it a second time. */
  judged(message: object): void {
    this.dropped.add(message);
  }

  wasJudged(message: object): boolean {
    return this.dropped.has(message);
  }

  /** Records the reply's identifiers; false when one of them was seen before. */
  firstTime(nodeId: string, reply: { readonly command: string; readonly state_id?: unknown; readonly params_url?: unknown }): boolean {
    const keys = [reply.state_id, reply.params_url]
      .filter((v): v is string => typeof v === 'string' && v !== '')
      .map((v) => `${nodeId}\u0000${v}`);
    if (keys.some((k) => this.ids.has(k))) return false;
    keys.forEach((k) => this.ids.add(k));
    return true;
  }

  /** The identifiers seen, for a breakpoint: a reply replayed after a resume is still recognised. */
  toJSON(): string[] {
    return [...this.ids];
  }

  /** Adds identifiers saved by {@link SeenReplies.toJSON}. */
  load(ids: readonly string[]): void {
    for (const id of ids) if (typeof id === 'string') this.ids.add(id);
  }
}

export interface RoundSpec {
  researcher: Researcher;
  jobId: string;
  round: number;
  training: boolean;
  nodes: readonly string[];
  datasetIds: ReadonlyMap<string, string>;
  stateIds: Map<string, string | null>;
  paramsUrl: string;
  planUrl: string;
  planClass: string;
  modelArgs: Record<string, Json>;
  trainingArgs: Record<string, Json>;
  /** Deadline per node, ms after the requests are sent. */
  deadlineMs: number | ReadonlyMap<string, number>;
  stale: StaleReplies;
  /** Replies already taken in this experiment (duplicates and replays are dropped). */
  seen: SeenReplies;
  /** Present for training rounds. */
  fedavg?: StreamingFedAvg;
  emit(event: ExperimentEvent): void;
}

export interface RoundResult {
  replies: Map<string, TrainReply>;
  nodes: Map<string, NodeRoundSummary>;
  /** Nodes whose weights are in the average. */
  aggregatedNodes: string[];
  startedAt: number;
  /** When the last contribution was folded in (ms after start). */
  collectedMs: number;
}

function buildTrainRequest(spec: RoundSpec, nodeId: string): TrainRequest {
  // Key order of the object is irrelevant: serializeMessage writes the schema's (Python's) order.
  return {
    researcher_id: spec.researcher.id,
    job_id: spec.jobId,
    state_id: spec.stateIds.get(nodeId) ?? null,
    params_url: spec.paramsUrl,
    training_args: spec.trainingArgs as unknown as WireTrainingArgs,
    dataset_id: spec.datasetIds.get(nodeId) as string,
    training: spec.training,
    model_args: spec.modelArgs,
    training_plan_url: spec.planUrl,
    training_plan_class: spec.planClass,
    command: 'train',
    secagg_servkey_id: null,
    secagg_biprime_id: null,
    secagg_random: null,
    secagg_clipping_range: null,
    round: spec.round,
    aggregator_args: {},
    aux_var_urls: null,
  };
}

function emptySummary(nodeId: string): NodeRoundSummary {
  return {
    nodeId,
    status: 'timeout',
    sampleSize: null,
    lastLoss: null,
    validationGlobal: null,
    validationLocal: null,
    trainingSeconds: null,
    replyMs: null,
    message: '',
  };
}

export async function runRound(spec: RoundSpec, summaries: Map<string, NodeRoundSummary>): Promise<RoundResult> {
  const { researcher, round } = spec;
  const expected = new Set(spec.nodes);
  const total = spec.nodes.length;
  let done = 0;
  const replies = new Map<string, TrainReply>();
  const aggregatedNodes: string[] = [];
  let collectedMs = 0;
  for (const n of spec.nodes) if (!summaries.has(n)) summaries.set(n, emptySummary(n));

  const fail = (nodeId: string, status: NodeRoundSummary['status'], message: string): void => {
    const s = summaries.get(nodeId) as NodeRoundSummary;
    s.status = status;
    s.message = message;
    done += 1;
    spec.emit({ type: 'node-failed', round, nodeId, reason: status, message, done, total });
  };

  // Weight downloads are chained: one node's weights in memory at a time.
  let downloads: Promise<void> = Promise.resolve();
  const startedAt = Date.now();

  const onOutcome = (o: NodeOutcome<TrainReply>): void => {
    const s = summaries.get(o.nodeId) as NodeRoundSummary;
    if (o.status === 'timeout') {
      spec.stale.abandon(o.nodeId);
      fail(o.nodeId, 'timeout', `no reply within ${deadlineOf(spec.deadlineMs, o.nodeId)} ms`);
      return;
    }
    if (o.status === 'error') {
      fail(o.nodeId, 'error', `${o.errnum}${o.message ? `: ${o.message}` : ''}`);
      return;
    }
    const reply = o.reply;
    replies.set(o.nodeId, reply);
    s.replyMs = o.atMs;
    s.sampleSize = reply.sample_size;
    const timing = reply.timing as Record<string, unknown>;
    s.trainingSeconds = typeof timing?.rtime_training === 'number' ? timing.rtime_training : null;
    // The node's state for the next request of this job (reference 8.6); a failed round may not have saved one.
    if (reply.success && spec.training) spec.stateIds.set(o.nodeId, reply.state_id);
    if (!reply.success) {
      fail(o.nodeId, 'failed', reply.msg || 'training failed on the node');
      return;
    }
    if (!spec.training || !spec.fedavg) {
      s.status = 'ok';
      done += 1;
      spec.emit({ type: 'node-reply', round, nodeId: o.nodeId, success: true, sampleSize: reply.sample_size, message: reply.msg, replyMs: o.atMs, done, total });
      return;
    }
    const fedavg = spec.fedavg;
    downloads = downloads.then(async () => {
      try {
        if (reply.sample_size === null) throw new Error('FB402: the reply has no sample_size; cannot weight its parameters');
        if (!reply.params_url) throw new Error('the reply has no params_url');
        await foldReply(fedavg, o.nodeId, reply.params_url, reply.sample_size, researcher.repository, undefined,
          startedAt + deadlineOf(spec.deadlineMs, o.nodeId));
        aggregatedNodes.push(o.nodeId);
        collectedMs = Date.now() - startedAt;
        s.status = 'ok';
        done += 1;
        spec.emit({ type: 'node-reply', round, nodeId: o.nodeId, success: true, sampleSize: reply.sample_size, message: reply.msg, replyMs: o.atMs, done, total });
      } catch (err) {
        fail(o.nodeId, 'rejected', (err as Error).message);
      }
    });
  };

  const collection = researcher.collectReplies('train', (m) => {
    if (m.job_id !== spec.jobId || !expected.has(m.node_id)) return false;
    const drop = (reason: string) => {
      spec.seen.judged(m);
      spec.emit({ type: 'reply-dropped', round, nodeId: m.node_id, reason });
      return false;
    };
    if (!spec.seen.firstTime(m.node_id, m)) return drop('duplicate or replayed reply (state_id / params_url already seen)');
    if (spec.stale.consume(m.node_id)) return drop('late reply to a request of an earlier round');
    return true;
  }, { what: `train round ${round}`, expected: spec.nodes, deadlineMs: spec.deadlineMs, onOutcome });

  spec.emit({ type: 'round-start', round, training: spec.training, nodes: [...spec.nodes] });
  for (const nodeId of spec.nodes) {
    await researcher.send(buildTrainRequest(spec, nodeId), nodeId);
    spec.emit({ type: 'request-sent', round, nodeId });
  }
  await collection.result;
  await downloads;
  return { replies, nodes: summaries, aggregatedNodes, startedAt, collectedMs };
}

function deadlineOf(d: number | ReadonlyMap<string, number>, nodeId: string): number {
  return typeof d === 'number' ? d : d.get(nodeId) ?? 0;
}
