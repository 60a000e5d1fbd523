/**
 * A TS node on a real (embedded) broker and file repository, driven by a researcher-side Messaging that sends
 * what a Python v4.5 researcher sends. Checks every request kind, a full training round and what leaves the node.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startEmbeddedNetwork, EmbeddedNetwork } from '../src/transport/embedded';
import { Messaging } from '../src/transport/mqtt';
import { RepositoryClient } from '../src/transport/repository';
import type { NodeToResearcherMessage, TrainRequest, WireTrainingArgs } from '../src/protocol/messages';
import { decodeParams } from '../src/serialize';
import { generateTorchPlan } from '../src/plan/pytorch';
import { mlpPlan } from '../src/plan/testing/plans';
import { defaultConfig, writeConfig } from './config';
import { openNodeStores } from './stores';
import { NodeAgent, SIGNAL_STOP_LOG } from './agent';

jest.setTimeout(60_000);

const NODE_ID = 'node_ts_test';
const RESEARCHER_ID = 'researcher_test';

function writeCsv(file: string, rows: number): void {
  const lines = ['f0,f1,f2,f3,label'];
  for (let i = 0; i < rows; i++) {
    const label = i % 2;
    lines.push([i * 0.1, label + 0.2 * Math.sin(i), 1 - label, (i % 5) / 5, label].map(String).join(','));
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

function trainingArgs(overrides: Partial<WireTrainingArgs> = {}): WireTrainingArgs {
  return {
    optimizer_args: { lr: 0.05 }, loader_args: { batch_size: 8 }, epochs: null, num_updates: 3, dry_run: false,
    batch_maxnum: null, test_ratio: 0.25, test_on_local_updates: true, test_on_global_updates: true,
    test_metric: 'ACCURACY', test_metric_args: {}, log_interval: 1, fedprox_mu: null, use_gpu: false, dp_args: null,
    share_persistent_buffers: true, random_seed: 1234, ...overrides,
  };
}

describe('TS node agent on the embedded network', () => {
  let network: EmbeddedNetwork;
  let researcher: Messaging;
  let repo: RepositoryClient;
  let agent: NodeAgent;
  let dir: string;
  let spy: import('mqtt').MqttClient;
  let csvPath: string;
  let datasetId: string;
  const received: { topic: string; message: NodeToResearcherMessage }[] = [];
  /** Every payload on every topic, and every file the node uploaded, for the privacy check. */
  const wire: string[] = [];
  const localLog: string[] = [];

  const waitFor = async <T extends NodeToResearcherMessage>(pred: (m: NodeToResearcherMessage) => boolean,
    timeoutMs = 20_000): Promise<T> => {
    const start = Date.now();
    for (;;) {
      const hit = received.find((r) => pred(r.message));
      if (hit) return hit.message as T;
      if (Date.now() - start > timeoutMs) throw new Error('timed out waiting for a node message');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-agent-'));
    network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(dir, 'repo') });
    const nodeDir = path.join(dir, 'node');
    writeConfig(nodeDir, defaultConfig({ nodeId: NODE_ID, broker: network.mqttUrl, uploadsUrl: network.uploadsUrl }));
    csvPath = path.join(dir, 'secret-patients-site-a.csv');
    writeCsv(csvPath, 48);
    const stores = openNodeStores(nodeDir, {});
    datasetId = (await stores.datasets.add({ name: 'tabular', dataType: 'csv', tags: ['csv', 'demo'], path: csvPath }))
      .dataset_id;
    agent = await NodeAgent.start({ dir: nodeDir, env: {}, localLog: (l) => localLog.push(l) });
    researcher = await Messaging.connect({ role: 'researcher', brokerUrl: network.mqttUrl });
    researcher.onMessage((message, ctx) => void received.push({ topic: ctx.topic, message: message as NodeToResearcherMessage }));
    repo = new RepositoryClient({ uploadsUrl: network.uploadsUrl, retries: 0 });
    const mqtt = await import('mqtt');
    spy = await mqtt.connectAsync(network.mqttUrl);
    spy.on('message', (_topic, payload) => void wire.push(payload.toString('utf8')));
    await spy.subscribeAsync('#');
  });

  afterAll(async () => {
    await spy?.endAsync();
    await agent?.stop();
    await researcher?.close();
    await network?.close();
  });

  it('answers ping, list and search like a Python node (silent when nothing matches)', async () => {
    await researcher.send({ researcher_id: RESEARCHER_ID, sequence: 7, command: 'ping' });
    const pong = await waitFor((m) => m.command === 'pong');
    expect(pong).toMatchObject({ researcher_id: RESEARCHER_ID, node_id: NODE_ID, success: true, sequence: 7 });

    await researcher.send({ researcher_id: RESEARCHER_ID, command: 'list' });
    const list = await waitFor((m) => m.command === 'list');
    expect(list).toMatchObject({ success: true, count: 1, node_id: NODE_ID });
    const listed = (list as { databases: Record<string, unknown>[] }).databases[0];
    expect(Object.keys(listed)).toEqual(['name', 'data_type', 'tags', 'description', 'shape', 'dataset_id',
      'dataset_parameters']);
    expect(listed['shape']).toEqual([48, 5]);

    await researcher.send({ researcher_id: RESEARCHER_ID, tags: ['nope'], command: 'search' });
    await researcher.send({ researcher_id: RESEARCHER_ID, tags: ['csv'], command: 'search' });
    const search = await waitFor((m) => m.command === 'search');
    expect((search as { databases: Record<string, unknown>[] }).databases[0]['dtypes'])
      .toEqual(['float64', 'float64', 'int64', 'float64', 'int64']);
    expect(received.filter((r) => r.message.command === 'search')).toHaveLength(1);
  });

  let planUrl: string;

  it('stores an approval request as Pending, reports status, and refuses to train before approval', async () => {
    planUrl = await repo.upload(Buffer.from(generateTorchPlan(mlpPlan(), { className: 'TinyMlp' })), 'my_model_a.py');
    await researcher.send({ researcher_id: RESEARCHER_ID, description: 'mlp', sequence: 1, training_plan_url: planUrl,
      command: 'approval' });
    const approval = await waitFor((m) => m.command === 'approval');
    expect(approval).toMatchObject({ status: 200, success: true, sequence: 1, node_id: NODE_ID });
    expect(agent.stores.plans.list()[0].training_plan_status).toBe('Pending');

    await researcher.send({ researcher_id: RESEARCHER_ID, job_id: 'job_1', training_plan_url: planUrl,
      command: 'training-plan-status' }, NODE_ID);
    const status = await waitFor((m) => m.command === 'training-plan-status');
    expect(status).toMatchObject({ success: true, approval_obligation: true, status: 'Pending',
      msg: 'Training plan is pending: waiting for a review' });
  });

  const trainRequest = async (overrides: Partial<TrainRequest>): Promise<TrainRequest> => ({
    researcher_id: RESEARCHER_ID, job_id: 'job_1', state_id: null,
    params_url: await repo.upload(Buffer.from(fs.readFileSync(
      '../shared/fedbiomed-v4.5-vectors/files/aggregated_params_50905dc6-9fb6-4463-8c53-45dd6b7a1c15.mpk')),
    'aggregated_params_x.mpk'),
    training_args: trainingArgs(), dataset_id: datasetId, training: true, model_args: {},
    training_plan_url: planUrl, training_plan_class: 'TinyMlp', command: 'train', secagg_servkey_id: null,
    secagg_biprime_id: null, secagg_random: null, secagg_clipping_range: null, round: 0, aggregator_args: {},
    aux_var_urls: null, ...overrides,
  });

  it('refuses an unapproved plan with the Python node message', async () => {
    received.length = 0;
    await researcher.send(await trainRequest({}), NODE_ID);
    const reply = await waitFor((m) => m.command === 'train');
    expect(reply).toMatchObject({ success: false, params_url: '', sample_size: null, timing: {},
      msg: `Requested training plan is not approved by the node: ${NODE_ID}` });
  });

  it('trains a round once approved: add_scalar reports, node_params file with the 8 keys, a fresh state id', async () => {
    agent.stores.plans.setStatus(agent.stores.plans.list()[0].training_plan_id, 'Approved');
    received.length = 0;
    // Round 0 from a Python researcher of a different model would not fit: use our own round-0 weights.
    const { initialWeights } = await import('../src/plan/init');
    const { encodeParams, aggregatedParamsFile } = await import('../src/serialize');
    const weightsUrl = await repo.upload(Buffer.from(encodeParams(aggregatedParamsFile(RESEARCHER_ID,
      initialWeights(mlpPlan(), 3)))), 'aggregated_params_r0.mpk');
    await researcher.send(await trainRequest({ params_url: weightsUrl }), NODE_ID);
    const reply = await waitFor((m) => m.command === 'train');
    expect(reply).toMatchObject({ success: true, msg: '', dataset_id: datasetId, sample_size: 36 });
    const r = reply as { state_id: string; params_url: string; timing: Record<string, number> };
    expect(r.state_id).toMatch(/^node_state_[0-9a-f-]{36}$/);
    expect(Object.keys(r.timing)).toEqual(['rtime_training', 'ptime_training']);

    const scalars = received.filter((m) => m.message.command === 'add_scalar').map((m) => m.message as unknown as
      Record<string, unknown>);
    expect(scalars.map((s) => [s['train'], s['test_on_global_updates'], s['test_on_local_updates'], s['iteration']]))
      .toEqual([[false, true, false, 1], [true, false, false, 1], [true, false, false, 2], [true, false, false, 3],
        [false, false, true, 1]]);
    expect(scalars[1]).toMatchObject({ epoch: null, total_samples: 24, batch_samples: 8, num_batches: 3,
      num_samples_trained: 8 });
    expect(scalars[0]).toMatchObject({ total_samples: 12, batch_samples: 12, num_batches: 1 });
    // The metrics of the plan's testing_step (mlpPlan lists loss and accuracy), as a Python node running the same
    // generated plan reports them; test_metric is ignored, as Fed-BioMed does when a plan has a testing_step.
    expect(Object.keys(scalars[0]['metric'] as object)).toEqual(['LOSS', 'ACCURACY']);

    const file = decodeParams(await repo.download(r.params_url)) as Record<string, unknown>;
    expect(Object.keys(file)).toEqual(['optim_aux_var', 'encrypted', 'researcher_id', 'job_id', 'state_id',
      'model_weights', 'node_id', 'optimizer_args']);
    expect(file['state_id']).toBe(r.state_id);
    expect(Object.keys(file['model_weights'] as object)).toEqual(Object.keys(initialWeights(mlpPlan(), 3)));

    // Next round with that state id is accepted; an unknown one fails as on a Python node.
    received.length = 0;
    await researcher.send(await trainRequest({ params_url: weightsUrl, state_id: 'node_state_unknown', round: 1 }), NODE_ID);
    const bad = await waitFor((m) => m.command === 'train');
    expect(bad).toMatchObject({ success: false, msg: "Can't read previous node state." });
    // The engine is the training worker's; its line is in the node's log once (the main thread has no engine), for
    // the operator only: it is not forwarded to researchers.
    expect(localLog.filter((l) => l.includes('[engine] tfjs backend: ')).length).toBe(1);
    expect(wire.filter((payload) => payload.includes('[engine]'))).toEqual([]);
  });

  it('answers a Python-source plan with success:false and a reason, and a malformed request with FB301', async () => {
    received.length = 0;
    const pythonPlan = await repo.upload(fs.readFileSync(
      '../shared/fedbiomed-v4.5-vectors/files/my_model_34e89161-6787-473a-97ae-a2978bd594c9.py'), 'my_model_py.py');
    await researcher.send(await trainRequest({ training_plan_url: pythonPlan }), NODE_ID);
    const reply = await waitFor((m) => m.command === 'train');
    expect(reply).toMatchObject({ success: false });
    expect((reply as { msg: string }).msg).toMatch(/never executes Python code/);

    await researcher.publishRaw('general/nodes', '{"protocol_version": "1", "researcher_id": "r_bad", "command": "ping"}')
      .catch(() => undefined);
    // publishRaw refuses invalid messages, so send the malformed one with a plain client.
    const mqtt = await import('mqtt');
    const raw = await mqtt.connectAsync(network.mqttUrl);
    await raw.publishAsync('general/nodes', '{"protocol_version": "1", "researcher_id": "r_bad", "command": "ping"}');
    await raw.publishAsync('general/nodes', 'not json at all');
    await raw.endAsync();
    const error = await waitFor((m) => m.command === 'error');
    expect(error).toMatchObject({ researcher_id: 'r_bad', node_id: NODE_ID, errnum: 'FB301: Protocol error' });
    // Still alive after garbage.
    await researcher.send({ researcher_id: RESEARCHER_ID, sequence: 99, command: 'ping' });
    await waitFor((m) => m.command === 'pong' && (m as { sequence: number }).sequence === 99);
  });

  it('never lets the dataset path, file name or rows leave the node (all MQTT traffic and uploaded files)', async () => {
    const fromNode = wire.filter((p) => p.includes(`"node_id": "${NODE_ID}"`));
    expect(fromNode.length).toBeGreaterThan(10);
    const uploads = fromNode.flatMap((p) => [...p.matchAll(/"params_url": "([^"]+)"/g)].map((m) => m[1])).filter((u) => u);
    expect(uploads.length).toBeGreaterThan(0);
    const files = await Promise.all(uploads.map((u) => repo.download(u)));
    const everything = fromNode.join('\n') + files.map((f) => f.toString('latin1')).join('');
    const rows = fs.readFileSync(csvPath, 'utf8').split('\n').slice(1, 4).filter((r) => r);
    for (const secret of [csvPath, 'secret-patients-site-a', dir, ...rows]) expect(everything).not.toContain(secret);
  });

  it('on a stop signal, sends the FB312 error and the CRITICAL log exactly as the recorded Python node', async () => {
    // The recorded Python node's last two messages (node_peer1 stopped by SIGTERM).
    const recorded = fs.readFileSync('../shared/fedbiomed-v4.5-vectors/mqtt-trace.jsonl', 'utf8').split('\n')
      .filter((l) => l.includes('node_peer1')).map((l) => JSON.parse(l) as { topic: string; payload: string });
    const recordedError = recorded.find((r) => r.payload.includes('FB312'));
    const recordedCritical = recorded.find((r) => r.topic === 'general/logger' && r.payload.includes('CRITICAL'));
    if (!recordedError || !recordedCritical) throw new Error('recorded FB312 error / CRITICAL log not found in the vectors');
    const recordedInner = JSON.parse((JSON.parse(recordedCritical.payload) as { msg: string }).msg) as Record<string, string>;
    expect(SIGNAL_STOP_LOG).toBe(recordedInner['message']);

    const shutdown: { topic: string; payload: string }[] = [];
    spy.on('message', (topic, payload) => void shutdown.push({ topic, payload: payload.toString('utf8') }));
    await agent.stop('signal');
    const start = Date.now();
    while (shutdown.filter((m) => m.payload.includes(NODE_ID)).length < 2 && Date.now() - start < 10_000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const error = shutdown.find((m) => m.payload.includes('"command": "error"'));
    expect(error).toEqual({ topic: recordedError.topic, payload: recordedError.payload.replace('node_peer1', NODE_ID) });
    const critical = shutdown.find((m) => m.topic === 'general/logger' && m.payload.includes('CRITICAL'));
    if (!critical) throw new Error('no CRITICAL log received');
    const inner = JSON.parse((JSON.parse(critical.payload) as { msg: string }).msg) as Record<string, string>;
    expect(Object.keys(inner)).toEqual(Object.keys(recordedInner));
    expect(inner).toMatchObject({ node_id: NODE_ID, level: 'CRITICAL', name: recordedInner['name'],
      message: recordedInner['message'] });
    // Same envelope as the recorded one once the time and node id are the same.
    expect(critical.payload).toBe(recordedCritical.payload.replace(/node_peer1/g, NODE_ID)
      .replace(recordedInner['asctime'], inner['asctime']));
  });
});
