/**
 * `Experiment({ network: { protocol: 'v6' } })`: the same Experiment (rounds, aggregators, strategies, events,
 * breakpoints) over Fed-BioMed v6's gRPC transport, with fedbiomed-ts nodes speaking v6, all real (TLS, gRPC,
 * training). Against a real Python v6.3.3 node: tools/interop-v6 run.sh ts-researcher, which CI cannot run.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NodeAgent } from '../node-agent/agent';
import { defaultConfig, writeConfig } from '../node-agent/config';
import { openNodeStores } from '../node-agent/stores';
import { V6ResearcherServer, researcherIdentity } from '../src/transport/v6/researcher-server';
import { makeV6Message, type V6Message } from '../src/transport/v6/messages';
import { Experiment } from './experiment';
import { Researcher } from './requests/researcher';
import { decodeNodeParams } from './weights-file';
import type { ExperimentEvent } from './events';
// The plan of the v6 interop run (tools/interop-v6/run.sh).
import spec from '../tools/interop-v6/lin-plan';

const VECTORS = path.join(__dirname, '..', 'src', 'transport', 'v6', 'testing', 'vectors');

let dir: string;
let server: V6ResearcherServer | undefined;
const agents: NodeAgent[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-v6-experiment-'));
});

afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  await server?.close();
  server = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

async function startNetwork(nodes: Array<[string, string]>, disconnectionTimeoutMs?: number): Promise<V6ResearcherServer> {
  server = await V6ResearcherServer.start({ dir: path.join(dir, 'researcher'), port: 0, disconnectionTimeoutMs });
  for (const [id, csv] of nodes) {
    const nodeDir = path.join(dir, id);
    writeConfig(nodeDir, defaultConfig({ nodeId: id, approval: false, protocol: 'v6', researcher: `localhost:${server.port}` }));
    const data = path.join(dir, `${id}.csv`);
    fs.copyFileSync(path.join(VECTORS, csv), data);
    await openNodeStores(nodeDir).datasets.add({ dataType: 'csv', path: data, tags: ['#ts'], name: id });
    agents.push(await NodeAgent.start({ dir: nodeDir, localLog: () => undefined }));
  }
  return server;
}

const trainingArgs = { loader_args: { batch_size: 20 }, optimizer_args: { lr: 0.05 }, epochs: 1, test_ratio: 0.25,
  test_on_global_updates: true, random_seed: 1234 };
const values = (t: { data: unknown }): number[] => Array.from(t.data as ArrayLike<number>);

test('FedAvg rounds, validation, scalars and approval through the one Experiment API on two v6 nodes', async () => {
  const srv = await startNetwork([['NODE_a', 'a.csv'], ['NODE_b', 'b.csv']]);
  const exp = new Experiment({ tags: ['#ts'], plan: spec, trainingArgs, roundLimit: 2, seed: 3,
    network: { protocol: 'v6', server: srv, minNodes: 2 } });
  const events: ExperimentEvent[] = [];
  exp.on('event', (e) => events.push(e));
  try {
    await exp.setup();
    expect(exp.researcherId).toBe(srv.researcherId);
    expect(exp.nodes).toEqual(['NODE_a', 'NODE_b']);
    const approval = await exp.requestApproval({ description: 'v6 test' });
    expect([...approval.replies.values()].map((r) => r.success)).toEqual([true, true]);
    const status = await exp.planStatus();
    expect([...status.statuses.values()].map((s) => [s.status, s.canTrain])).toEqual([['Pending', true], ['Pending', true]]);

    const result = await exp.run();
    expect(result.roundsCompleted).toBe(2);
    expect(result.summaries.map((s) => [s.training, s.nodes.map((n) => [n.status, n.sampleSize])])).toEqual([
      [true, [['ok', 60], ['ok', 45]]], [true, [['ok', 60], ['ok', 45]]], [false, [['ok', null], ['ok', null]]]]); // a validation-only reply has no sample size
    // The last round's aggregate is the sample-weighted mean of what the nodes sent (an independent recomputation).
    const replies = exp.replies.get(1) as Map<string, { params_url: string }>;
    const researcher = (exp as unknown as { researcher: Researcher }).researcher;
    const sent = await Promise.all(['NODE_a', 'NODE_b'].map(async (n) =>
      decodeNodeParams(await researcher.repository.download(replies.get(n)?.params_url as string), n)));
    for (const [name, agg] of result.weights) {
      const [a, b] = sent.map((w) => values(w.get(name) as never));
      values(agg).forEach((v, i) => expect(Math.abs(v - (60 * a[i] + 45 * b[i]) / 105)).toBeLessThan(1e-6));
    }
    const phases = new Set(events.flatMap((e) => (e.type === 'scalar' ? [`${e.nodeId}:${e.phase}`] : [])));
    expect(phases).toEqual(new Set(['NODE_a:training', 'NODE_b:training', 'NODE_a:validation-global', 'NODE_b:validation-global']));
    expect(events.filter((e) => e.type === 'round-end')).toHaveLength(3);
  } finally {
    await exp.close();
  }
}, 90_000);

test('FedAdam, a strategy, a breakpoint and a resume over v6 (the experiment owns no server it was given)', async () => {
  const srv = await startNetwork([['NODE_a', 'a.csv'], ['NODE_b', 'b.csv']]);
  const breakpoints = path.join(dir, 'bp');
  const options = { tags: ['#ts'], plan: spec, trainingArgs: { ...trainingArgs, test_on_global_updates: false },
    aggregator: { name: 'fedadam' as const, lr: 0.1 }, strategy: { name: 'at-least' as const, k: 2 }, seed: 5 };
  const first = new Experiment({ ...options, roundLimit: 1, breakpointDir: breakpoints,
    network: { protocol: 'v6', server: srv, minNodes: 2 } });
  const r1 = await first.run();
  expect(r1.roundsCompleted).toBe(1);
  expect(srv.activeNodes().sort()).toEqual(['NODE_a', 'NODE_b']); // still serving: the experiment did not own it

  const resumed = await Experiment.load(breakpoints, { roundLimit: 2, network: { protocol: 'v6', server: srv } });
  expect(resumed.currentRoundIndex).toBe(1);
  const r2 = await resumed.run();
  expect(r2.roundsCompleted).toBe(2);
  expect(resumed.aggregator.config).toMatchObject({ name: 'fedadam' });
  expect(r2.summaries.map((s) => s.round)).toEqual([0, 1]);
  const bias = (w: typeof r1.weights) => values(w.get('tabular.0.bias') as never);
  expect(bias(r2.weights)).not.toEqual(bias(r1.weights));
}, 90_000);

test('the v6 PyTorch plan is what nodes receive; a node without the dataset is not a search result', async () => {
  const srv = await startNetwork([['NODE_a', 'a.csv']]);
  const researcher = await Researcher.connect({ protocol: 'v6', server: srv });
  try {
    expect(researcher.protocol).toBe('v6');
    expect((await researcher.search(['#nothing'], { timeoutMs: 500 })).size).toBe(0);
    expect([...(await researcher.ping({ nodes: ['NODE_a'] })).nodes.keys()]).toEqual(['NODE_a']);
    const exp = new Experiment({ tags: ['#ts'], plan: spec, trainingArgs, roundLimit: 0, network: researcher });
    await exp.setup();
    const source = await researcher.repository.download(exp.trainingPlanUrl);
    expect(source.toString()).toContain('from fedbiomed.common.datamanager import DataManager');
    await exp.close();
  } finally {
    await researcher.close();
  }
  expect(srv.activeNodes()).toEqual(['NODE_a']);
}, 60_000);

test('the researcher keeps its id and certificate across restarts; another host name is refused', async () => {
  const rdir = path.join(dir, 'researcher');
  const first = await researcherIdentity(rdir, 'localhost');
  const again = await researcherIdentity(rdir, 'localhost');
  expect(again).toEqual(first);
  expect(new (require('crypto').X509Certificate)(first.certPem).subject).toContain(`O=${first.researcherId}`);
  await expect(researcherIdentity(rdir, 'example.org')).rejects.toThrow(/for "localhost", not "example.org"/);
});

test('a node that stops polling is DISCONNECTED and a request to it ends without it', async () => {
  const srv = await startNetwork([['NODE_a', 'a.csv'], ['NODE_b', 'b.csv']], 300);
  const researcher = await Researcher.connect({ protocol: 'v6', server: srv, minNodes: 2 });
  try {
    const a = agents.shift() as NodeAgent;
    await a.stop();
    const started = Date.now();
    const replies = await srv.request(['NODE_a', 'NODE_b'], () => makeV6Message('PingRequest', { researcher_id: srv.researcherId }));
    expect([...replies.keys()]).toEqual(['NODE_b']);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(srv.nodes().find((n) => n.nodeId === 'NODE_a')?.status).toBe('DISCONNECTED');
    // Through the Researcher: the ping names who answered.
    expect([...(await researcher.ping({ nodes: ['NODE_a', 'NODE_b'], timeoutMs: 1_000 })).nodes.keys()]).toEqual(['NODE_b']);
  } finally {
    await researcher.close();
  }
}, 30_000);

test('a node stopped mid-round: the round fails clearly, the request is kept and answered after its restart', async () => {
  const srv = await startNetwork([['NODE_a', 'a.csv']]);
  const late: V6Message[] = [];
  srv.on('unmatched', (m) => m.className === 'TrainReply' && late.push(m));
  let training = false;
  srv.on('feedback', (f) => {
    if (f.scalar?.train) training = true;
  });
  // Long enough to be stopped in the middle (batch size 1, many epochs).
  const exp = new Experiment({ tags: ['#ts'], plan: spec, roundLimit: 1, network: { protocol: 'v6', server: srv },
    trainingArgs: { loader_args: { batch_size: 1 }, optimizer_args: { lr: 0.001 }, epochs: 80, random_seed: 1, log_interval: 50 } });
  const run = exp.run().then(() => 'finished', (err: Error) => err.message);
  while (!training) await new Promise((r) => setTimeout(r, 10));
  const node = agents.shift() as NodeAgent;
  await node.stop();
  expect(await run).toMatch(/FB407.*NODE_a \(failed: Training was stopped: the node is shutting down/);
  const nodeDir = path.join(dir, 'NODE_a');
  expect(JSON.parse(fs.readFileSync(path.join(nodeDir, 'queue.json'), 'utf8'))).toHaveLength(1);
  expect(fs.readdirSync(path.join(nodeDir, 'v6-inline')).sort()).toEqual([expect.stringMatching(/-params\.mpk$/),
    expect.stringMatching(/-plan\.py$/)]);

  // Restarted, the node runs the request again and answers it (a late reply for this researcher).
  const lateCount = late.length;
  agents.push(await NodeAgent.start({ dir: nodeDir, localLog: () => undefined }));
  const deadline = Date.now() + 60_000;
  while (late.length === lateCount && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(late.slice(lateCount).map((m) => [m.fields['success'], m.fields['sample_size']])).toEqual([[true, 80]]);
  await new Promise((r) => setTimeout(r, 1_300)); // the inbox is collected once the queue let the request go
  expect(fs.readdirSync(path.join(nodeDir, 'v6-inline'))).toEqual([]);
}, 120_000);
