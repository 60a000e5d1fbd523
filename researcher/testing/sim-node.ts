/**
 * A simulated node for researcher tests: speaks the real protocol over MQTT and HTTP (search, ping, train with a
 * results file uploaded to the repository, add_scalar), but "trains" with a deterministic function of the received
 * weights so tests can compute the expected averages independently. It can be told to reply late or to die.
 */
import { randomUUID } from 'crypto';
import { serializeMessage } from '../../src/protocol';
import type { TrainReply, AddScalarReply, SearchReply, PongReply } from '../../src/protocol/messages';
import { encodeParams, nodeParamsFile } from '../../src/serialize';
import { ScriptedPeer } from './scripted-peer';
import { RepositoryClient } from '../../src/transport/repository';
import { WeightMap } from '../aggregators/tensors';
import { decodeNodeParams, toModelWeights } from '../weights-file';

export interface SimNodeOptions {
  nodeId: string;
  tags?: string[];
  sampleSize: number;
  /** New weights from the received ones (must not mutate them). */
  train(weights: WeightMap, round: number): WeightMap;
  /** Delay before the train reply of a round (ms). */
  replyDelayMs?(round: number): number;
  /** Disconnect, without replying, when this round's request arrives. */
  dieOnRound?: number;
  /** Answer this round with success:false. */
  failOnRound?: number;
  /** Announce a shutdown on this round's request, as a Python node does on SIGTERM (FB312), then go silent. */
  shutdownOnRound?: number;
  /** On this round, publish the previous round's reply again (a replay) before the real one. */
  replayPreviousOnRound?: number;
  /** Publish every successful train reply twice (a duplicated message). */
  duplicateReplies?: boolean;
  /** On this round, upload weights whose first value is NaN. */
  nanOnRound?: number;
  /** On this round, answer with this params_url instead of the uploaded file's. */
  paramsUrlOnRound?: { round: number; url: string };
  /**
   * The first time this round is asked, run `meanwhile` (a test restarts the broker there) and lose the reply, as a
   * QoS-0 message published while the researcher is away is lost. A second request of the round is answered.
   */
  loseReplyOnRound?: { round: number; meanwhile: () => Promise<void> };
  /** Reconnect this long after losing the broker (never by default). */
  reconnectMs?: number;
  /** Hands the round's real results file to the test, which may serve it elsewhere: the URL returned is announced. */
  paramsServedElsewhere?: (round: number, file: Uint8Array) => string | undefined;
}

export interface SimNode {
  peer: ScriptedPeer;
  datasetId: string;
  /** Rounds whose train request reached this node. */
  rounds: number[];
  /** state_id received with each round's request. */
  stateIdsReceived: Array<string | null>;
  /** training_args received with each round's request. */
  trainingArgsReceived: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startSimNode(brokerUrl: string, uploadsUrl: string, o: SimNodeOptions): Promise<SimNode> {
  const datasetId = `dataset_${o.nodeId}`;
  const repo = new RepositoryClient({ uploadsUrl: uploadsUrl });
  const tags = o.tags ?? ['sim'];
  const rounds: number[] = [];
  const stateIdsReceived: Array<string | null> = [];
  const trainingArgsReceived: Array<Record<string, unknown>> = [];
  let dead = false;
  let previousReply: string | undefined;
  const lostRounds = new Set<number>();
  const reply = (m: object) => serializeMessage(m as never, 'node-to-researcher');
  const peer = await ScriptedPeer.start(brokerUrl, o.nodeId, async (r, p) => {
    if (dead) return;
    const m = r.message;
    const rid = String(m.researcher_id);
    if (m.command === 'ping') {
      const pong: PongReply = { researcher_id: rid, node_id: o.nodeId, success: true, sequence: Number(m.sequence), command: 'pong' };
      await p.publish('general/researcher', reply(pong));
    } else if (m.command === 'search') {
      if (!(m.tags as string[]).every((t) => tags.includes(t))) return;
      const databases = [{ name: `data-${o.nodeId}`, data_type: 'csv', tags, description: '', shape: [o.sampleSize, 5], dataset_id: datasetId, dtypes: [], dataset_parameters: null }];
      const s: SearchReply = { researcher_id: rid, success: true, databases, node_id: o.nodeId, count: 1, command: 'search' };
      await p.publish('general/researcher', reply(s));
    } else if (m.command === 'train') {
      const round = Number(m.round);
      rounds.push(round);
      stateIdsReceived.push((m.state_id as string | null) ?? null);
      trainingArgsReceived.push(m.training_args as Record<string, unknown>);
      if (o.dieOnRound === round) {
        dead = true;
        await p.close();
        return;
      }
      if (o.shutdownOnRound === round) {
        // The exact text and key order of the recorded FB312 message (researcher_id "<unknown>").
        await p.publish(
          'general/researcher',
          `{"command": "error", "errnum": "FB312: Node stopped in SIGTERM signal handler", "node_id": "${o.nodeId}", "extra_msg": "", "researcher_id": "<unknown>", "protocol_version": "1"}`,
        );
        dead = true;
        await p.close(true);
        return;
      }
      const jobId = String(m.job_id);
      const base = { researcher_id: rid, job_id: jobId, node_id: o.nodeId, command: 'train' as const };
      if (o.failOnRound === round) {
        const failed: TrainReply = { ...base, state_id: null, success: false, dataset_id: '', params_url: '', timing: {}, sample_size: null, msg: 'Cannot train model in round: simulated failure' };
        await p.publish('general/researcher', reply(failed));
        return;
      }
      const res = await fetch(String(m.params_url));
      const received = decodeNodeParams(Buffer.from(await res.arrayBuffer()), String(m.params_url));
      if (m.training !== true) {
        const validation: TrainReply = { ...base, state_id: null, success: true, dataset_id: datasetId, params_url: '', timing: {}, sample_size: null, msg: '' };
        await p.publish('general/researcher', reply(validation));
        return;
      }
      const stateId = `node_state_${randomUUID()}`;
      const updated = o.train(received, round);
      if (o.nanOnRound === round) (updated.values().next().value?.data as Float32Array)[0] = NaN;
      const file = encodeParams(
        nodeParamsFile({ optim_aux_var: {}, encrypted: false, researcher_id: rid, job_id: jobId, state_id: stateId, model_weights: toModelWeights(updated), node_id: o.nodeId, optimizer_args: {} }),
      );
      const url = await repo.upload(file, `node_params_${randomUUID()}.mpk`);
      const scalar: AddScalarReply = {
        researcher_id: rid, node_id: o.nodeId, job_id: jobId, train: true, test: false, test_on_local_updates: false,
        test_on_global_updates: false, metric: { Loss: 1 / (round + 1) }, epoch: 1, total_samples: o.sampleSize,
        batch_samples: o.sampleSize, num_batches: 1, num_samples_trained: o.sampleSize, iteration: 1, command: 'add_scalar',
      };
      await p.publish('general/monitoring', reply(scalar));
      const delay = o.replyDelayMs?.(round) ?? 0;
      if (delay > 0) await sleep(delay);
      const paramsUrl = (o.paramsUrlOnRound?.round === round ? o.paramsUrlOnRound.url : undefined) ??
        o.paramsServedElsewhere?.(round, file) ?? url;
      const ok: TrainReply = { ...base, state_id: stateId, success: true, dataset_id: datasetId, params_url: paramsUrl, timing: { rtime_training: 0.5, ptime_training: 0.25 }, sample_size: o.sampleSize, msg: '' };
      if (o.loseReplyOnRound?.round === round && !lostRounds.has(round)) {
        lostRounds.add(round);
        await o.loseReplyOnRound.meanwhile();
        return;
      }
      if (o.replayPreviousOnRound === round && previousReply) await p.publish('general/researcher', previousReply);
      previousReply = reply(ok);
      await p.publish('general/researcher', previousReply);
      if (o.duplicateReplies) await p.publish('general/researcher', previousReply);
    }
  }, o.reconnectMs);
  return {
    peer,
    datasetId,
    rounds,
    stateIdsReceived,
    trainingArgsReceived,
    close: async () => {
      if (!dead) await peer.close();
      dead = true;
    },
  };
}

/** A deterministic "training" step: w' = w·0.9 + offset (float32). */
export function affineTrain(offset: number): (w: WeightMap, round: number) => WeightMap {
  return (weights, round) => {
    const out: WeightMap = new Map();
    for (const [name, t] of weights) {
      const src = t.data as Float32Array;
      const data = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) data[i] = src[i] * 0.9 + offset + round * 0.001 + i * 1e-4;
      out.set(name, { dtype: 'float32', shape: [...t.shape], data });
    }
    return out;
  };
}
