/**
 * Conformance against the recorded Fed-BioMed v4.5.0 run: scripted peers answer with the RECORDED Python node
 * messages and files (URLs and job id rewritten to this test's), over a real broker and a real HTTP repository.
 * Every request our researcher publishes must be byte-identical to what the Python researcher published (same
 * key order, same JSON number types), modulo the ids and URLs that are necessarily fresh.
 */
import * as fs from 'fs';
import { EmbeddedNetwork, startEmbeddedNetwork } from '../src/transport/embedded';
import { parseMessage } from '../src/protocol';
import { Researcher } from './requests/researcher';
import { RepositoryClient } from '../src/transport/repository';
import { Experiment, ExperimentError } from './experiment';
import { ScriptedPeer, Received } from './testing/scripted-peer';
import { RECORDED_USER_TRAINING_ARGS, traceLines, vectorPath, recordedHex, weightsHex } from './testing/vectors';
import { decodeNodeParams } from './weights-file';
import type { ExperimentEvent } from './events';

const RECORDED_JOB = 'job_e8b7a867-0b88-49be-81e7-256d8734eff6';
const RECORDED_MEDIA = 'http://127.0.0.1:8844/media/uploads/2026/11/22/';
const trace = traceLines();
const line = (n: number) => trace[n - 1];

let network: EmbeddedNetwork;
let peers: ScriptedPeer[] = [];

beforeAll(async () => {
  network = await startEmbeddedNetwork();
});
afterAll(() => network.close());
afterEach(async () => {
  for (const p of peers) await p.close();
  peers = [];
});

function expectSameRequest(received: Received, recordedLine: number, substitutions: Array<[string, string]> = []): void {
  let expected = line(recordedLine).payload;
  for (const [from, to] of substitutions) expected = expected.split(from).join(to);
  expect(received.topic).toBe(line(recordedLine).topic);
  expect(received.text).toBe(expected);
  expect(parseMessage(received.text, 'researcher-to-node').ok).toBe(true);
}

async function download(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('Researcher requests against recorded Python node replies', () => {
  it('ping, list, search, approval and training-plan-status are byte-identical to the recorded ones', async () => {
    // The scripted nodes answer each recorded request with the recorded replies (lines from sequence.txt).
    const answers: Record<string, Record<string, number[]>> = {
      node_peer1: { ping: [4], list: [7], search_csv: [18], approval: [22], 'training-plan-status': [25] },
      node_peer2: { ping: [5], list: [8], search_csv: [19], approval: [21], 'training-plan-status': [26] },
    };
    const requests: Received[] = [];
    for (const nodeId of ['node_peer1', 'node_peer2']) {
      peers.push(
        await ScriptedPeer.start(network.mqttUrl, nodeId, async (r, peer) => {
          if (nodeId === 'node_peer1') requests.push(r);
          const cmd = String(r.message.command);
          let key = cmd;
          if (cmd === 'search') {
            const tags = r.message.tags as string[];
            if (tags[0] !== 'csv') return; // nodes stay silent when nothing matches
            key = 'search_csv';
          }
          let lines = answers[nodeId][key] ?? [];
          if (cmd === 'list' && r.topic === 'general/node_peer1') lines = [10];
          for (const n of lines) {
            let text = line(n).payload;
            if (cmd === 'training-plan-status') text = text.split(`${RECORDED_MEDIA}my_model_34e89161-6787-473a-97ae-a2978bd594c9.py`).join(String(r.message.training_plan_url));
            await peer.publish(line(n).topic, text);
          }
        }),
      );
    }
    const researcher = await Researcher.connect({ brokerUrl: network.mqttUrl, uploadsUrl: network.uploadsUrl, researcherId: 'researcher_peer' });
    try {
      const ping = await researcher.ping({ nodes: ['node_peer1', 'node_peer2'], timeoutMs: 5000 });
      expect([...ping.nodes.keys()].sort()).toEqual(['node_peer1', 'node_peer2']);
      expectSameRequest(requests[0], 3);

      const all = await researcher.listDatasets({ timeoutMs: 400 });
      expect(all.get('node_peer1')?.map((d) => d.name)).toEqual(['tabular-peer1']);
      expect(all.get('node_peer2')).toHaveLength(2);
      expectSameRequest(requests[1], 6);

      const one = await researcher.listDatasets({ nodes: ['node_peer1'], timeoutMs: 5000 });
      expect([...one.keys()]).toEqual(['node_peer1']);
      expectSameRequest(requests[2], 9);

      const csv = await researcher.search(['csv'], { timeoutMs: 400 });
      expect(csv.get('node_peer1')?.[0].dataset_id).toBe('dataset_1c4061e0-52df-4a2d-ab89-506cb2249bcc');
      expect(csv.get('node_peer2')?.[0].dataset_id).toBe('dataset_8e3d205a-394e-494a-9721-6853dab48d38');
      expectSameRequest(requests[3], 11);

      const nope = await researcher.search(['nope'], { timeoutMs: 200 });
      expect(nope.size).toBe(0);
      expectSameRequest(requests[4], 14);

      const planSource = fs.readFileSync(vectorPath('files', 'training_plan_db2faa48-92e8-41c0-96c6-55dbdfc2646c.py'));
      const approval = await researcher.requestApproval(
        { source: planSource, fileName: 'training_plan_db2faa48-92e8-41c0-96c6-55dbdfc2646c.py' },
        { description: 'peer-demo csv mlp', timeoutMs: 400 },
      );
      expect(approval.sequence).toBe(1);
      expect([...approval.replies.keys()].sort()).toEqual(['node_peer1', 'node_peer2']);
      expect(await download(approval.planUrl)).toEqual(planSource);
      expectSameRequest(requests[5], 20, [[`${RECORDED_MEDIA}training_plan_db2faa48-92e8-41c0-96c6-55dbdfc2646c.py`, approval.planUrl]]);

      const planUrl = `${network.uploadsUrl.replace('/upload/', '/media/')}x/my_model.py`;
      const status = await researcher.planStatus(planUrl, { nodes: ['node_peer1', 'node_peer2'], jobId: RECORDED_JOB, timeoutMs: 5000 });
      expect(status.statuses.get('node_peer1')).toMatchObject({ status: 'Pending', approvalObligation: false, canTrain: true });
      expect(status.statuses.get('node_peer2')).toMatchObject({ status: 'Approved', approvalObligation: true, canTrain: true });
      expectSameRequest(requests[6], 23, [[`${RECORDED_MEDIA}my_model_34e89161-6787-473a-97ae-a2978bd594c9.py`, planUrl]]);
    } finally {
      await researcher.close();
    }
    for (const p of peers) expect(p.failures).toEqual([]);
  });
});

/**
 * Replays the recorded "train-csv" experiment: 2 rounds of FedAvg on 2 nodes plus the final validation request.
 * For round r, the scripted node checks our TrainRequest against the recorded one, checks the weights file we
 * uploaded against the recorded aggregated_params file (byte for byte), then publishes its recorded add_scalar,
 * log and train messages, having uploaded its recorded node_params file.
 */
describe('train-csv experiment replayed against the recorded Python nodes', () => {
  const ROUND_REQUEST_LINES = [
    { node_peer1: 27, node_peer2: 28, weights: 'aggregated_params_50905dc6-9fb6-4463-8c53-45dd6b7a1c15.mpk', next: 48 },
    { node_peer1: 48, node_peer2: 49, weights: 'aggregated_params_c45e660c-97e8-4d8e-82d0-de0a3d1effe8.mpk', next: 69 },
    { node_peer1: 69, node_peer2: 70, weights: 'aggregated_params_8c6d816a-9f70-4655-a40e-b5d6aab007e8.mpk', next: 76 },
  ] as const;

  function recordedNodeOutput(round: number, nodeId: string): number[] {
    const { node_peer1, next } = ROUND_REQUEST_LINES[round];
    const out: number[] = [];
    for (let n = node_peer1; n < next; n++) {
      const t = line(n);
      if (t.topic.startsWith('general/node_')) continue;
      if ((JSON.parse(t.payload) as { node_id?: string }).node_id === nodeId) out.push(n);
    }
    return out;
  }

  it('sends byte-identical requests and weights, and parses the recorded replies into the recorded averages', async () => {
    const checks: string[] = [];
    const uploader = new RepositoryClient({ uploadsUrl: network.uploadsUrl });
    let planUrl = '';
    for (const nodeId of ['node_peer1', 'node_peer2'] as const) {
      peers.push(
        await ScriptedPeer.start(network.mqttUrl, nodeId, async (r, peer) => {
          if (r.message.command === 'search') {
            expectSameRequest(r, 17);
            await peer.publish(line(nodeId === 'node_peer1' ? 18 : 19).topic, line(nodeId === 'node_peer1' ? 18 : 19).payload);
            return;
          }
          if (r.message.command !== 'train') throw new Error(`unexpected ${r.text}`);
          const round = Number(r.message.round);
          const spec = ROUND_REQUEST_LINES[round];
          const jobId = String(r.message.job_id);
          const paramsUrl = String(r.message.params_url);
          planUrl = String(r.message.training_plan_url);
          const recordedReq = JSON.parse(line(spec[nodeId]).payload) as Record<string, string>;
          expectSameRequest(r, spec[nodeId], [
            [RECORDED_JOB, jobId],
            [recordedReq.params_url, paramsUrl],
            [recordedReq.training_plan_url, planUrl],
          ]);
          // The files behind the URLs: the plan source and the weights, byte for byte.
          expect(await download(planUrl)).toEqual(fs.readFileSync(vectorPath('files', 'my_model_34e89161-6787-473a-97ae-a2978bd594c9.py')));
          expect((await download(paramsUrl)).toString('hex')).toBe(fs.readFileSync(vectorPath('files', spec.weights)).toString('hex'));
          checks.push(`${nodeId}:${round}`);
          for (const n of recordedNodeOutput(round, nodeId)) {
            let text = line(n).payload.split(RECORDED_JOB).join(jobId);
            const msg = JSON.parse(text) as { command: string; params_url?: string };
            if (msg.command === 'train' && msg.params_url) {
              const file = msg.params_url.slice(RECORDED_MEDIA.length);
              const url = await uploader.upload(fs.readFileSync(vectorPath('files', file)), file);
              text = text.split(msg.params_url).join(url);
            }
            await peer.publish(line(n).topic, text);
          }
        }),
      );
    }

    const exp = new Experiment({
      tags: ['csv'],
      plan: {
        python: fs.readFileSync(vectorPath('files', 'my_model_34e89161-6787-473a-97ae-a2978bd594c9.py'), 'utf8'),
        className: 'PeerCsvMLP',
        initialWeights: decodeNodeParams(
          fs.readFileSync(vectorPath('files', 'aggregated_params_50905dc6-9fb6-4463-8c53-45dd6b7a1c15.mpk')),
          'round-0 weights',
        ),
      },
      modelArgs: { in_features: 4, hidden: 8 },
      trainingArgs: { ...RECORDED_USER_TRAINING_ARGS },
      aggregator: 'fedavg',
      roundLimit: 2,
      discoveryTimeoutMs: 300,
      roundTimeoutMs: 20_000,
      network: { brokerUrl: network.mqttUrl, uploadsUrl: network.uploadsUrl, researcherId: 'researcher_peer' },
    });
    const events: ExperimentEvent[] = [];
    const iterated = (async () => {
      for await (const ev of exp.events()) events.push(ev);
    })();
    const result = await exp.run();
    await iterated;
    for (const p of peers) {
      await p.idle();
      expect(p.failures).toEqual([]);
    }
    expect(checks.sort()).toEqual(['node_peer1:0', 'node_peer1:1', 'node_peer1:2', 'node_peer2:0', 'node_peer2:1', 'node_peer2:2']);

    // Aggregated weights equal the Python researcher's, bit for bit.
    expect(weightsHex(exp.roundWeights.get(0)!)).toEqual(recordedHex('aggregated_params_c45e660c-97e8-4d8e-82d0-de0a3d1effe8.mpk'));
    expect(weightsHex(result.weights)).toEqual(recordedHex('aggregated_params_8c6d816a-9f70-4655-a40e-b5d6aab007e8.mpk'));
    expect(result.roundsCompleted).toBe(2);

    // Replies, state ids, metrics and logs were parsed from the Python text.
    expect(exp.replies.get(0)!.get('node_peer1')!.sample_size).toBe(36);
    expect(exp.replies.get(2)!.get('node_peer2')!.sample_size).toBeNull();
    const [s0, s1, s2] = result.summaries;
    expect(s0.nodes.map((n) => [n.nodeId, n.status, n.sampleSize])).toEqual([['node_peer1', 'ok', 36], ['node_peer2', 'ok', 36]]);
    expect(s0.nodes[0].lastLoss).toBeCloseTo(0.7975075244903564, 12);
    expect(s0.nodes[0].validationGlobal).toEqual({ ACCURACY: 0.3333333333333333 });
    expect(s1.nodes[1].lastLoss).toBeCloseTo(0.6251621842384338, 12);
    expect(s2.training).toBe(false);
    expect(s2.nodes.every((n) => n.status === 'ok')).toBe(true);
    const scalars = events.filter((e) => e.type === 'scalar');
    expect(scalars).toHaveLength(5 + 5 + 5 + 5 + 1 + 1);
    const logs = events.filter((e) => e.type === 'log');
    expect(logs.some((l) => l.type === 'log' && l.message === 'results uploaded successfully ')).toBe(true);
    expect(events[events.length - 1]).toEqual({ type: 'experiment-end', roundsCompleted: 2 });
  });

  it('a round where every node fails (recorded failure replies) stops with FB407 and the node messages', async () => {
    const FAIL_JOB = 'job_cbcd5a89-92e1-4ab1-8999-3fb87bff69bb';
    for (const [nodeId, replyLine, searchLine] of [['node_peer1', 109, 99], ['node_peer2', 111, 100]] as const) {
      peers.push(
        await ScriptedPeer.start(network.mqttUrl, nodeId, async (r, peer) => {
          if (r.message.command === 'search') return peer.publish(line(searchLine).topic, line(searchLine).payload);
          await peer.publish(line(replyLine).topic, line(replyLine).payload.split(FAIL_JOB).join(String(r.message.job_id)));
        }),
      );
    }
    const exp = new Experiment({
      tags: ['csv'],
      plan: { python: 'class PeerFailingPlan:\n    pass\n', className: 'PeerFailingPlan', initialWeights: { w: { dtype: 'float32', shape: [1], data: new Float32Array([0]) } } },
      trainingArgs: { loader_args: { batch_size: 8 }, epochs: 1 },
      roundLimit: 1,
      discoveryTimeoutMs: 300,
      network: { brokerUrl: network.mqttUrl, uploadsUrl: network.uploadsUrl, researcherId: 'researcher_peer' },
    });
    const error = await exp.run().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ExperimentError);
    expect((error as Error).message).toMatch(/^FB407/);
    expect((error as Error).message).toContain("node_peer1 (failed: Cannot train model in round: ValueError('peer-demo: this training plan fails on purpose'))");
    expect((error as Error).message).toContain('node_peer2 (failed: Requested training plan is not approved by the node: node_peer2)');
    expect(exp.currentRoundIndex).toBe(0);
  });
});
