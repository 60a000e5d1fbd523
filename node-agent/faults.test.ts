/**
 * A TS node under faults, on real parts: a node restarted with a train request still queued, the broker restarted
 * while the node trains, and the repository down when the node uploads its results.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as net from 'net';
import { startEmbeddedNetwork, EmbeddedNetwork } from '../src/transport/embedded';
import { startBroker } from '../src/transport/broker';
import { Messaging } from '../src/transport/mqtt';
import { RepositoryClient } from '../src/transport/repository';
import type { NodeToResearcherMessage, TrainRequest, TrainReply } from '../src/protocol/messages';
import { encodeParams, aggregatedParamsFile } from '../src/serialize';
import { generateTorchPlan } from '../src/plan/pytorch';
import { initialWeights } from '../src/plan/init';
import { mlpPlan } from '../src/plan/testing/plans';
import { defaultConfig, writeConfig, nodePaths } from './config';
import { openNodeStores } from './stores';
import { NodeAgent } from './agent';

jest.setTimeout(90_000);

const RESEARCHER_ID = 'researcher_faults';

function writeCsv(file: string, rows: number): void {
  const lines = ['f0,f1,f2,f3,label'];
  for (let i = 0; i < rows; i++) lines.push(`${i % 7},${(i * 3) % 5},${i % 2},${(i % 11) / 10},${i % 2}`);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Bench {
  dir: string;
  nodeDir: string;
  network: EmbeddedNetwork;
  repo: RepositoryClient;
  datasetId: string;
  request(overrides?: Partial<TrainRequest>): Promise<TrainRequest>;
}

async function bench(nodeId: string, options: { uploadsUrl?: (network: EmbeddedNetwork) => string } = {}): Promise<Bench> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-faults-'));
  const network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(dir, 'repo') });
  const nodeDir = path.join(dir, 'node');
  writeConfig(nodeDir, defaultConfig({ nodeId, broker: network.mqttUrl,
    uploadsUrl: options.uploadsUrl?.(network) ?? network.uploadsUrl, approval: false }));
  const csv = path.join(dir, 'data.csv');
  writeCsv(csv, 40);
  const datasetId = (await openNodeStores(nodeDir, {}).datasets.add({ name: 'd', dataType: 'csv', tags: ['csv'], path: csv }))
    .dataset_id;
  const repo = new RepositoryClient({ uploadsUrl: network.uploadsUrl, retries: 0 });
  const planUrl = await repo.upload(Buffer.from(generateTorchPlan(mlpPlan())), 'my_model_faults.py');
  const paramsUrl = await repo.upload(Buffer.from(encodeParams(aggregatedParamsFile(RESEARCHER_ID,
    initialWeights(mlpPlan(), 1)))), 'aggregated_params_faults.mpk');
  return {
    dir, nodeDir, network, repo, datasetId,
    request: async (overrides = {}) => ({
      researcher_id: RESEARCHER_ID, job_id: 'job_faults', state_id: null, params_url: paramsUrl,
      training_args: {
        optimizer_args: { lr: 0.01 }, loader_args: { batch_size: 4 }, epochs: null, num_updates: 4, dry_run: false,
        batch_maxnum: null, test_ratio: 0.25, test_on_local_updates: false, test_on_global_updates: false,
        test_metric: null, test_metric_args: {}, log_interval: 10, fedprox_mu: null, use_gpu: false, dp_args: null,
        share_persistent_buffers: true, random_seed: 7,
      },
      dataset_id: datasetId, training: true, model_args: {}, training_plan_url: planUrl, training_plan_class: 'TinyMlp',
      command: 'train', secagg_servkey_id: null, secagg_biprime_id: null, secagg_random: null,
      secagg_clipping_range: null, round: 0, aggregator_args: {}, aux_var_urls: null, ...overrides,
    }),
  };
}

async function researcherOn(url: string, reconnectMs = 50): Promise<{ messaging: Messaging; replies: NodeToResearcherMessage[] }> {
  const messaging = await Messaging.connect({ role: 'researcher', brokerUrl: url, reconnectBackoff:
    { initialDelayMs: reconnectMs, maxDelayMs: reconnectMs, factor: 1 } });
  const replies: NodeToResearcherMessage[] = [];
  messaging.onMessage((m) => void replies.push(m as NodeToResearcherMessage));
  return { messaging, replies };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 40_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const trainReply = (replies: NodeToResearcherMessage[], job = 'job_faults') =>
  replies.find((m): m is TrainReply => m.command === 'train' && m.job_id === job);

describe('node faults', () => {
  it('executes a train request left in its queue when it restarts', async () => {
    const b = await bench('node_restart');
    const { messaging, replies } = await researcherOn(b.network.mqttUrl);
    try {
      // The state a node leaves when it is stopped with a request received but not yet answered.
      fs.writeFileSync(nodePaths(b.nodeDir).queue, JSON.stringify([
        { id: 1, receivedAt: new Date().toISOString(), task: await b.request({ job_id: 'job_left_over' }) },
      ]));
      const agent = await NodeAgent.start({ dir: b.nodeDir, env: {}, localLog: () => undefined });
      try {
        const reply = await until('the left-over train reply', () => trainReply(replies, 'job_left_over'));
        expect(reply).toMatchObject({ success: true, sample_size: 30, node_id: 'node_restart' });
        expect(agent.pendingTasks).toBe(0);
        expect(JSON.parse(fs.readFileSync(nodePaths(b.nodeDir).queue, 'utf8'))).toEqual([]);
      } finally {
        await agent.stop();
      }
    } finally {
      await messaging.close();
      await b.network.close();
    }
  });

  it('answers a round after the broker was restarted while it was training', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-faults-'));
    const port = await freePort();
    let broker = await startBroker({ host: '127.0.0.1', port });
    const mqttUrl = `mqtt://127.0.0.1:${port}`;
    const b = await bench('node_broker');
    // The node and the researcher use the restartable broker; the repository stays on the bench network.
    const config = path.join(b.nodeDir, 'config.yaml');
    fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace(b.network.mqttUrl, mqttUrl));
    const agent = await NodeAgent.start({ dir: b.nodeDir, env: {}, localLog: () => undefined });
    const { messaging, replies } = await researcherOn(mqttUrl);
    try {
      let sawLoss = false;
      messaging.onMessage((m) => {
        if (m.command === 'add_scalar') sawLoss = true;
      });
      // Long enough to restart the broker in the middle of training. (This checks recovery; the node's reconnect
      // grace period, which protects against a researcher that re-subscribes after the node's reply, is not timed
      // here: timing assertions would be flaky.)
      await messaging.send(await b.request({ training_args: { ...(await b.request()).training_args, num_updates: 400,
        log_interval: 100 } }), 'node_broker');
      await until('training to start', () => (sawLoss ? true : undefined));
      await broker.close();
      await new Promise((r) => setTimeout(r, 300));
      broker = await startBroker({ host: '127.0.0.1', port });
      const reply = await until('the train reply after the broker restart', () => trainReply(replies));
      expect(reply).toMatchObject({ success: true, sample_size: 30 });
      expect(agent.pendingTasks).toBe(0);
    } finally {
      await messaging.close();
      await agent.stop();
      await broker.close();
      await b.network.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('retries an upload to a repository that is down, then answers success:false with the reason', async () => {
    const deadPort = await freePort();
    const b = await bench('node_norepo', { uploadsUrl: () => `http://127.0.0.1:${deadPort}/upload/` });
    const lines: string[] = [];
    // Uploads go to a dead port while the plan and weights come from the bench's repository: a node restricted to
    // its own repository would refuse them, so this test lifts the restriction.
    const agent = await NodeAgent.start({ dir: b.nodeDir, env: {}, localLog: (l) => lines.push(l),
      repository: { retries: 2, downloadFrom: 'any' } });
    const { messaging, replies } = await researcherOn(b.network.mqttUrl);
    try {
      await messaging.send(await b.request(), 'node_norepo');
      const reply = await until('the train reply', () => trainReply(replies));
      expect(reply).toMatchObject({ success: false, params_url: '', sample_size: null });
      expect(reply.state_id).toMatch(/^node_state_/); // as a Python node: the round's state id, even on failure
      expect(reply.msg).toMatch(/^Cannot upload results: /);
      expect(reply.msg).toContain(`127.0.0.1:${deadPort}`);
      // Still serving afterwards.
      await messaging.send({ researcher_id: RESEARCHER_ID, sequence: 3, command: 'ping' });
      await until('a pong', () => replies.find((m) => m.command === 'pong'));
    } finally {
      await messaging.close();
      await agent.stop();
      await b.network.close();
    }
  });
});
