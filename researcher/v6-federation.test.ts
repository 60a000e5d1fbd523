/**
 * Our Fed-BioMed v6 researcher (gRPC server) with fedbiomed-ts nodes speaking v6, all real (TLS, gRPC, training):
 * discovery, approval, FedAvg rounds checked against an independent weighted mean, the node registry, a kept
 * certificate, and a node that disappears mid-request. (Against a real Python v6.3.3 node: tools/interop-v6
 * run.sh ts-researcher, which CI cannot run.)
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { NodeAgent } from '../node-agent/agent';
import { defaultConfig, writeConfig } from '../node-agent/config';
import { openNodeStores } from '../node-agent/stores';
import { V6Federation, v6TrainingArgs } from './v6-federation';
import { researcherIdentity } from '../src/transport/v6/researcher-server';
import { makeV6Message, type V6Message } from '../src/transport/v6/messages';
// The plan of the v6 interop run (tools/interop-v6/run.sh), as v6-cli.test.ts uses it.
import spec from '../tools/interop-v6/lin-plan';
import type { TorchTensor } from '../src/serialize';

const VECTORS = path.join(__dirname, '..', 'src', 'transport', 'v6', 'testing', 'vectors');

let dir: string;
let fed: V6Federation | undefined;
const agents: NodeAgent[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-v6-researcher-'));
});

afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
  await fed?.close();
  fed = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

async function tsNode(id: string, csv: string, port: number): Promise<NodeAgent> {
  const nodeDir = path.join(dir, id);
  writeConfig(nodeDir, defaultConfig({ nodeId: id, approval: false, protocol: 'v6', researcher: `localhost:${port}` }));
  const data = path.join(dir, `${id}.csv`);
  fs.copyFileSync(path.join(VECTORS, csv), data);
  await openNodeStores(nodeDir).datasets.add({ dataType: 'csv', path: data, tags: ['#ts'], name: id });
  const agent = await NodeAgent.start({ dir: nodeDir, localLog: (l) => process.env.DEBUG_V6 && process.stderr.write(l + '\n') });
  agents.push(agent);
  return agent;
}

const values = (t: { data: unknown }): number[] => Array.from(t.data as ArrayLike<number>);
const paramValues = (reply: V6Message | undefined, name: string): number[] =>
  values((reply?.fields['params'] as Record<string, TorchTensor>)[name]);

test('discovery, approval and 2 FedAvg rounds on two fedbiomed-ts nodes', async () => {
  fed = await V6Federation.start({ dir: path.join(dir, 'researcher'), port: 0 });
  const port = fed.server.port;
  await tsNode('NODE_a', 'a.csv', port);
  await tsNode('NODE_b', 'b.csv', port);
  expect((await fed.waitForNodes(2)).sort()).toEqual(['NODE_a', 'NODE_b']);

  expect([...(await fed.ping()).values()].map((r) => r.className)).toEqual(['PingReply', 'PingReply']);
  expect([...(await fed.list()).values()].map((r) => r.fields['count'])).toEqual([1, 1]);
  const datasets = await fed.search(['#ts']);
  expect([...datasets.keys()].sort()).toEqual(['NODE_a', 'NODE_b']);
  expect((await fed.search(['#nothing'])).size).toBe(0); // v6 nodes answer with an empty list, at once
  const approvals = await fed.approve([...datasets.keys()], spec, 'test');
  expect([...approvals.values()].every((r) => r.className === 'ApprovalReply' && r.fields['success'] === true)).toBe(true);
  const status = await fed.status([...datasets.keys()], spec, 'exp');
  expect([...status.values()].map((r) => [r.fields['status'], r.fields['approval_obligation']]))
    .toEqual([['Pending', false], ['Pending', false]]);

  const scalars: string[] = [];
  fed.server.on('feedback', (f) => f.scalar && scalars.push(`${f.scalar.node_id}:${f.scalar.train ? 'train' : 'test'}`));
  const results = await fed.runFedAvg({ spec, datasets, rounds: 2, experimentId: 'exp', seed: 3, validate: true,
    trainingArgs: v6TrainingArgs({ loader_args: { batch_size: 20 }, optimizer_args: { lr: 0.05 }, epochs: 1,
      test_ratio: 0.25, test_on_global_updates: true, random_seed: 1234 }) });
  expect(results).toHaveLength(2);
  for (const { replies, weights } of results) {
    const sizes = Object.fromEntries([...replies].map(([n, r]) => [n, r.fields['sample_size']]));
    expect(sizes).toEqual({ NODE_a: 60, NODE_b: 45 }); // 80 and 60 rows, test_ratio 0.25
    for (const [name, agg] of weights) {
      const a = paramValues(replies.get('NODE_a'), name);
      const b = paramValues(replies.get('NODE_b'), name);
      expect(a).toHaveLength(agg.data.length);
      values(agg).forEach((v, i) => expect(Math.abs(v - (60 * a[i] + 45 * b[i]) / 105)).toBeLessThan(1e-6));
    }
  }
  // The second round went on from the first round's aggregate.
  const bias = (i: number) => values(results[i].weights.get('tabular.0.bias') as never);
  expect(bias(1)).not.toEqual(bias(0));
  expect(scalars.some((s) => s.endsWith(':train'))).toBe(true);
  expect(scalars.some((s) => s.endsWith(':test'))).toBe(true);
  expect(fed.server.nodes().map((n) => n.status).every((s) => s !== 'DISCONNECTED')).toBe(true);
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
  fed = await V6Federation.start({ dir: path.join(dir, 'researcher'), port: 0, disconnectionTimeoutMs: 300 });
  const port = fed.server.port;
  const a = await tsNode('NODE_a', 'a.csv', port);
  await tsNode('NODE_b', 'b.csv', port);
  await fed.waitForNodes(2);
  await a.stop();
  agents.splice(agents.indexOf(a), 1);
  const started = Date.now();
  const replies = await fed.server.request(['NODE_a', 'NODE_b'],
    () => makeV6Message('PingRequest', { researcher_id: fed?.researcherId }));
  expect([...replies.keys()]).toEqual(['NODE_b']);
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(fed.server.nodes().find((n) => n.nodeId === 'NODE_a')?.status).toBe('DISCONNECTED');
}, 30_000);

test('a node stopped mid-round: a clear failure now, the request kept and answered after its restart', async () => {
  fed = await V6Federation.start({ dir: path.join(dir, 'researcher'), port: 0 });
  const port = fed.server.port;
  const node = await tsNode('NODE_a', 'a.csv', port);
  await fed.waitForNodes(1);
  const datasets = await fed.search(['#ts']);
  const late: V6Message[] = [];
  fed.server.on('unmatched', (m) => late.push(m));
  let training = false;
  fed.server.on('feedback', (f) => {
    if (f.scalar?.train) training = true;
  });
  // Long enough to be stopped in the middle (batch size 1, many epochs).
  const run = fed.runFedAvg({ spec, datasets, rounds: 1, experimentId: 'exp', trainingArgs: v6TrainingArgs({
    loader_args: { batch_size: 1 }, optimizer_args: { lr: 0.001 }, epochs: 80, random_seed: 1, log_interval: 50 }) })
    .then(() => 'finished', (err: Error) => err.message);
  while (!training) await new Promise((r) => setTimeout(r, 10));
  await node.stop();
  agents.splice(agents.indexOf(node), 1);
  expect(await run).toMatch(/round 0: node NODE_a failed: Training was stopped: the node is shutting down/);
  const nodeDir = path.join(dir, 'NODE_a');
  expect(JSON.parse(fs.readFileSync(path.join(nodeDir, 'queue.json'), 'utf8'))).toHaveLength(1);
  expect(fs.readdirSync(path.join(nodeDir, 'v6-inline')).sort()).toEqual([expect.stringMatching(/-params\.mpk$/),
    expect.stringMatching(/-plan\.py$/)]);

  // Restarted, the node runs the request again and answers it (a late reply for this researcher).
  agents.push(await NodeAgent.start({ dir: nodeDir, localLog: () => undefined }));
  const deadline = Date.now() + 60_000;
  while (late.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(late.map((m) => [m.className, m.fields['success'], m.fields['sample_size']])).toEqual([['TrainReply', true, 80]]);
  await new Promise((r) => setTimeout(r, 1_300)); // the inbox is collected once the queue let the request go
  expect(fs.readdirSync(path.join(nodeDir, 'v6-inline'))).toEqual([]);
}, 120_000);
