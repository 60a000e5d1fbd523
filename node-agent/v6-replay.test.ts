/**
 * Replays what the real Fed-BioMed v6.3.3 researcher sent to our node `NODE_fbts_a` (recorded by
 * tools/interop-v6/run.sh ts-nodes --record: search, ping, list, approval, training-plan status, 2 FedAvg rounds,
 * final validation) against a fresh node, over a real gRPC/TLS server (a scripted stand-in for the Python
 * researcher, which CI cannot run) presenting the recorded researcher certificate, and compares every reply with
 * the one our node sent the real researcher. Training is seeded (random_seed 1234), so the weights must come out
 * the same. Also checks the recorded FedAvg of the real researcher against an independent recomputation.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodeAgent } from './agent';
import { defaultConfig, writeConfig } from './config';
import { openNodeStores } from './stores';
import { DATASETS_TABLE } from './datasets';
import { v6Harness } from './testing/v6-harness';
import { ScriptedResearcher } from '../src/transport/v6/testing/scripted-researcher';
import { decodeV6Message, encodeV6Message, makeV6Message, type V6Message } from '../src/transport/v6/messages';
import { TorchTensor } from '../src/serialize';
import { PIN_FILE } from './transport-v6';

const VECTORS = path.join(__dirname, '..', 'src', 'transport', 'v6', 'testing', 'vectors');
const NODE = 'NODE_fbts_a';
const read = (name: string) => fs.readFileSync(path.join(VECTORS, name));

interface Exchange {
  task: V6Message;
  taskBytes: Buffer;
  reply: V6Message;
  file: string;
}

/** The recorded tasks of node_a, each with the reply our node sent to the real researcher. */
function recordedExchanges(): Exchange[] {
  const files = fs.readdirSync(path.join(VECTORS, 'node_a')).filter((f) => f.endsWith('.mpk')).sort();
  const out: Exchange[] = [];
  for (let i = 0; i < files.length; i += 2) {
    expect(files[i]).toMatch(/-task-/);
    expect(files[i + 1]).toMatch(/-reply-/);
    const taskBytes = read(path.join('node_a', files[i]));
    out.push({ task: decodeV6Message(taskBytes), taskBytes, reply: decodeV6Message(read(path.join('node_a', files[i + 1]))),
      file: files[i] });
  }
  return out;
}

function tensorValues(t: unknown): number[] {
  expect(t).toBeInstanceOf(TorchTensor);
  return Array.from((t as TorchTensor).data as Float32Array);
}

/** Our reply equals the recorded one, except values that are random by design (ids, timings). */
function expectSameReply(ours: V6Message, recorded: V6Message, where: string): void {
  expect({ where, cls: ours.className }).toEqual({ where, cls: recorded.className });
  expect(Object.keys(ours.fields)).toEqual(Object.keys(recorded.fields));
  for (const [key, want] of Object.entries(recorded.fields)) {
    const got = ours.fields[key];
    if (key === 'training_plan_id' || key === 'state_id') {
      expect(typeof got).toBe(typeof want);
      if (typeof want === 'string') expect(got).toMatch(/^(training_plan|node_state)_[0-9a-f-]{36}$/);
    } else if (key === 'timing') {
      expect(Object.keys(got as object).sort()).toEqual(Object.keys(want as object).sort());
    } else if (key === 'params' && want !== null) {
      const g = got as Record<string, unknown>;
      const w = want as Record<string, TorchTensor>;
      expect(Object.keys(g)).toEqual(Object.keys(w));
      for (const name of Object.keys(w)) {
        expect((g[name] as TorchTensor).shape).toEqual(w[name].shape);
        const gv = tensorValues(g[name]);
        tensorValues(w[name]).forEach((v, i) => expect(Math.abs(gv[i] - v)).toBeLessThan(1e-6));
      }
    } else if (key === 'databases') {
      // The dataset entry as the real researcher saw it, dtypes and shape read from the same CSV.
      expect(got).toEqual(want);
    } else {
      expect({ where, key, value: got }).toEqual({ where, key, value: want });
    }
  }
}

const h = v6Harness('v6-replay');

/** A node like the recorded one: same id, name, approval on, the recorded dataset (same id) registered. */
async function recordedNode(port: number, datasetId: string): Promise<string> {
  const nodeDir = path.join(h.dir, 'node');
  writeConfig(nodeDir, defaultConfig({ nodeId: NODE, approval: true, protocol: 'v6', researcher: `localhost:${port}`,
    nodeName: 'fbts-a' }));
  const csv = path.join(h.dir, 'a.csv');
  fs.copyFileSync(path.join(VECTORS, 'a.csv'), csv);
  const stores = openNodeStores(nodeDir);
  const entry = await stores.datasets.add({ dataType: 'csv', path: csv, tags: ['#ts'], name: 'lin-a' });
  stores.db.update((tables) => {
    for (const row of Object.values(tables[DATASETS_TABLE] ?? {})) {
      if (row['dataset_id'] === entry.dataset_id) row['dataset_id'] = datasetId;
    }
  });
  return nodeDir;
}

const certificate = () => ({ cert: read('server_certificate.pem').toString(), key: read('server_certificate.key').toString() });

test('the recorded v6.3.3 session replays on a fresh node with the same replies', async () => {
  const exchanges = recordedExchanges();
  expect(exchanges.map((e) => e.task.className)).toEqual(['SearchRequest', 'PingRequest', 'ListRequest',
    'ApprovalRequest', 'TrainingPlanStatusRequest', 'TrainRequest', 'TrainRequest', 'TrainRequest']);
  const train = exchanges.find((e) => e.task.className === 'TrainRequest') as Exchange;
  const { cert, key } = certificate();
  h.researcher = await ScriptedResearcher.start(cert, key);
  const nodeDir = await recordedNode(h.researcher.port, train.task.fields['dataset_id'] as string);
  h.agent = await NodeAgent.start({ dir: nodeDir, localLog: () => undefined });
  await h.researcher.waitForPoll(NODE);

  let stateId: unknown = null;
  let planId: string | undefined;
  for (const { task, taskBytes, reply, file } of exchanges) {
    let bytes: Uint8Array = taskBytes;
    if (task.className === 'TrainRequest' && task.fields['state_id'] !== null) {
      // The researcher echoes the node's state id of the previous round: ours, not the recorded node's.
      bytes = encodeV6Message(makeV6Message('TrainRequest', { ...task.fields, state_id: stateId }));
    }
    if (task.className === 'TrainingPlanStatusRequest') {
      // The operator approved the plan between the two requests (run.sh did it with `node plan approve`).
      openNodeStores(nodeDir).plans.setStatus(planId as string, 'Approved');
    }
    h.researcher.send(NODE, bytes);
    const ours = await h.researcher.nextReply(NODE);
    expectSameReply(ours, reply, file);
    if (ours.className === 'ApprovalReply') planId = ours.fields['training_plan_id'] as string;
    if (ours.className === 'TrainReply' && ours.fields['state_id'] !== null) stateId = ours.fields['state_id'];
  }

  // Training scalars and logs went through Feedback as for the real researcher.
  const recorded = read(path.join('node_a', 'feedback.jsonl')).toString().trim().split('\n')
    .map((l) => JSON.parse(l) as { scalar?: { train: boolean; metric: Record<string, number> } });
  const scalars = (list: { scalar?: { train: boolean; metric: Record<string, number> } | null }[]) =>
    list.filter((f) => f.scalar).map((f) => `${f.scalar?.train ? 'train' : 'test'}:${Object.keys(f.scalar?.metric ?? {})}`);
  await new Promise((r) => setTimeout(r, 200)); // the last scalars are sent without waiting for an answer
  expect(scalars(h.researcher.feedback)).toEqual(scalars(recorded));
  expect(h.researcher.feedback.every((f) => f.researcher_id === train.task.fields['researcher_id'])).toBe(true);
  // The certificate was pinned on first use.
  expect(fs.readFileSync(path.join(nodeDir, PIN_FILE), 'utf8')).toBe(cert);
}, 60_000);

test('the real researcher\'s FedAvg equals an independent recomputation, and round 2 starts from it', () => {
  const dump = JSON.parse(read('replies.json').toString()) as {
    rounds: Record<string, { replies: Record<string, { sample_size: number; params: Record<string, number[][] | number[]> }>;
      aggregated: Record<string, number[][] | number[]> }>;
  };
  const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);
  for (const round of Object.values(dump.rounds)) {
    const replies = Object.values(round.replies);
    expect(replies.length).toBe(3); // 2 fedbiomed-ts nodes + 1 real v6 node
    const total = replies.reduce((n, r) => n + r.sample_size, 0);
    for (const [name, agg] of Object.entries(round.aggregated)) {
      const mine = flat(agg).map((_, i) => replies.reduce((s, r) => s + flat(r.params[name])[i] * r.sample_size / total, 0));
      flat(agg).forEach((v, i) => expect(Math.abs(v - mine[i])).toBeLessThan(1e-6));
    }
  }
  // The second TrainRequest carries the first round's aggregate, as the researcher computed it.
  const trains = recordedExchanges().filter((e) => e.task.className === 'TrainRequest');
  const sent = trains[1].task.fields['params'] as Record<string, TorchTensor>;
  for (const [name, agg] of Object.entries(dump.rounds['0'].aggregated)) {
    flat(agg).forEach((v, i) => expect(Math.abs(tensorValues(sent[name])[i] - v)).toBeLessThan(1e-7));
  }
});
