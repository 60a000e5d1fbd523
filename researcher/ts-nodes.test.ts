/**
 * The end-to-end check: an experiment over three TS node agents (node-agent/) on the embedded network,
 * two FedAvg rounds with a declarative plan shipped as generated PyTorch source. The reference average is computed
 * here independently: a spy client captures every train reply on the wire, the test downloads each node's results
 * file, decodes it with src/serialize and averages in float64 by sample_size.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import mqtt, { MqttClient } from 'mqtt';
import { startEmbeddedNetwork, EmbeddedNetwork } from '../src/transport/embedded';
import { decodeParams, modelWeightsOf } from '../src/serialize';
import { mlpPlan } from '../src/plan/testing/plans';
import { defaultConfig, writeConfig } from '../node-agent/config';
import { openNodeStores } from '../node-agent/stores';
import { NodeAgent } from '../node-agent/agent';
import { Experiment } from './experiment';

jest.setTimeout(120_000);

const NODE_ROWS: Record<string, number> = { node_ts_a: 40, node_ts_b: 48, node_ts_c: 64 };

function writeCsv(file: string, rows: number, shift: number): void {
  const lines = ['f0,f1,f2,f3,label'];
  for (let i = 0; i < rows; i++) {
    const label = (i + shift) % 2;
    lines.push([i * 0.05 + shift, label + 0.3 * Math.sin(i + shift), 1 - label, ((i + shift) % 7) / 7, label].map(String).join(','));
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

describe('Experiment over three TS node agents', () => {
  let network: EmbeddedNetwork;
  const agents: NodeAgent[] = [];
  let spy: MqttClient;
  const trainReplies: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-3nodes-'));
    network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(dir, 'repo') });
    let shift = 0;
    for (const [nodeId, rows] of Object.entries(NODE_ROWS)) {
      const nodeDir = path.join(dir, nodeId);
      writeConfig(nodeDir, defaultConfig({ nodeId, broker: network.mqttUrl, uploadsUrl: network.uploadsUrl, approval: false }));
      const csv = path.join(dir, `${nodeId}.csv`);
      writeCsv(csv, rows, shift++);
      await openNodeStores(nodeDir, {}).datasets.add({ name: `tab-${nodeId}`, dataType: 'csv', tags: ['csv', 'three'], path: csv });
      agents.push(await NodeAgent.start({ dir: nodeDir, env: {}, localLog: () => undefined }));
    }
    spy = await mqtt.connectAsync(network.mqttUrl);
    spy.on('message', (_t, payload) => {
      const m = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
      if (m.command === 'train') trainReplies.push(m);
    });
    await spy.subscribeAsync('general/researcher');
  });

  afterAll(async () => {
    await spy?.endAsync();
    for (const a of agents) await a.stop();
    await network?.close();
  });

  it('two FedAvg rounds: the aggregated weights equal an independent sample-size-weighted average', async () => {
    const exp = new Experiment({
      tags: ['csv', 'three'],
      plan: mlpPlan(),
      trainingArgs: {
        loader_args: { batch_size: 8 },
        optimizer_args: { lr: 0.05 },
        num_updates: 4,
        test_ratio: 0.25,
        test_on_global_updates: true,
        test_on_local_updates: true,
        test_metric: 'ACCURACY',
        random_seed: 42,
      },
      roundLimit: 2,
      discoveryTimeoutMs: 1500,
      roundTimeoutMs: 60_000,
      network: { brokerUrl: network.mqttUrl, uploadsUrl: network.uploadsUrl },
    });
    const status = await exp.planStatus({ timeoutMs: 10_000 });
    expect([...status.statuses.values()].every((s) => s.canTrain)).toBe(true);
    const result = await exp.run();
    expect(exp.nodes).toEqual(Object.keys(NODE_ROWS));

    for (const round of [0, 1]) {
      const replies = [...exp.replies.get(round)!.values()];
      expect(replies).toHaveLength(3);
      // independent reference: the files the nodes uploaded, decoded whole, averaged in float64
      const fromWire = trainReplies.filter((m) => replies.some((r) => r.params_url === m.params_url));
      expect(fromWire).toHaveLength(3);
      const total = fromWire.reduce((s, m) => s + (m.sample_size as number), 0);
      expect(total).toBe(Object.values(NODE_ROWS).reduce((s, n) => s + n - Math.floor(n * 0.25), 0));
      const reference = new Map<string, number[]>();
      for (const m of fromWire) {
        const res = await fetch(String(m.params_url));
        const weights = modelWeightsOf(decodeParams(new Uint8Array(await res.arrayBuffer())));
        for (const [name, t] of Object.entries(weights)) {
          const acc = reference.get(name) ?? new Array<number>(t.data.length).fill(0);
          for (let i = 0; i < acc.length; i++) acc[i] += ((m.sample_size as number) / total) * Number(t.data[i]);
          reference.set(name, acc);
        }
      }
      const aggregated = exp.roundWeights.get(round)!;
      expect([...aggregated.keys()]).toEqual([...reference.keys()]);
      for (const [name, values] of reference) {
        const got = aggregated.get(name)!.data as Float32Array;
        values.forEach((v, i) => expect(Math.abs(got[i] - v)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(v))));
      }
    }
    // Weights moved, the final validation ran, and metrics came from the nodes.
    expect(result.summaries.map((s) => [s.round, s.training, s.nodes.every((n) => n.status === 'ok')])).toEqual([
      [0, true, true],
      [1, true, true],
      [2, false, true],
    ]);
    expect(result.summaries[1].nodes.every((n) => typeof n.lastLoss === 'number' && n.validationGlobal !== null)).toBe(true);
    expect(exp.metrics.some((m) => m.phase === 'validation-local')).toBe(true);
  });
});
