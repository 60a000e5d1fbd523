/**
 * The Python researcher's recorded requests (../shared/fedbiomed-v4.5-vectors) replayed to a TS node, each reply
 * compared with the recorded Python node's reply: same topic, same keys in the same order, same JSON types (int vs
 * float too), same semantics (success flags, silence, messages).
 *
 * Two substitutions, said here because they are the only ones: URLs point at copies served by the test's own
 * repository, and the recorded Python plan (`PeerCsvMLP`, which a TS node will not execute) is replaced by the
 * fedbiomed-ts plan of the same network (4 → 8 → 2 MLP, Adam), generated as a TorchTrainingPlan.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startEmbeddedNetwork, EmbeddedNetwork } from '../src/transport/embedded';
import { RepositoryClient } from '../src/transport/repository';
import { parsePythonJson } from '../src/protocol/python-json-reader';
import { PyFloat } from '../src/protocol/pyfloat';
import { decodeParams, encodeParams, aggregatedParamsFile, TorchTensor } from '../src/serialize';
import interopCsvMlp from '../tools/interop-v45/plan';
import { definePlan } from '../src/plan/define';
import { generateTorchPlan } from '../src/plan/pytorch';
import { initialWeights } from '../src/plan/init';
import { defaultConfig, writeConfig } from './config';
import { openNodeStores } from './stores';
import { NodeAgent } from './agent';
import { VECTORS_DIR } from '../src/testing/vectors-dir';

jest.setTimeout(60_000);

const VECTORS = VECTORS_DIR;
type Json = Record<string, unknown>;
interface TraceLine { topic: string; payload: string }

const trace: TraceLine[] = fs.readFileSync(path.join(VECTORS, 'mqtt-trace.jsonl'), 'utf8').trim().split('\n')
  .map((l) => JSON.parse(l) as TraceLine);
/** Line N of the trace (1-based, as in sequence.txt), parsed the Python way. */
const recorded = (line: number): Json => parsePythonJson(trace[line - 1].payload) as Json;

/** JSON type of a value as Python sees it. */
function pyType(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof PyFloat) return 'float';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'object' ? 'dict' : typeof v;
}

/** Keys in order with their types, one level deep (and the keys of nested dicts). */
function signature(m: Json): string[] {
  return Object.entries(m).map(([k, v]) => {
    const nested = pyType(v) === 'dict' ? `{${Object.keys(v as Json).join(',')}}` : '';
    return `${k}:${pyType(v)}${nested}`;
  });
}

/** The recorded network's MLP (tools/interop-v45/plan.ts), under the class name the recorded requests ask for. */
const PLAN = definePlan({ ...interopCsvMlp, name: 'PeerCsvMLP' });

describe('recorded Python researcher requests replayed to a TS node', () => {
  let network: EmbeddedNetwork;
  let agent: NodeAgent;
  let repo: RepositoryClient;
  let spy: import('mqtt').MqttClient;
  const heard: { topic: string; message: Json }[] = [];
  const NODE = 'node_peer2'; // approval on, as the recorded node_peer2

  /** Publishes recorded line `line` (after `edit`) as the Python researcher did, returns what the node answered. */
  async function replay(line: number, edit: (m: Json) => Json = (m) => m, expectReply = true,
    command?: string): Promise<{ topic: string; message: Json } | undefined> {
    const request = edit(recorded(line));
    const before = heard.length;
    const { pythonJsonDumps } = await import('../src/protocol/python-json-writer');
    await spy.publishAsync(trace[line - 1].topic, pythonJsonDumps(request));
    const wanted = command ?? (request['command'] === 'ping' ? 'pong' : request['command']);
    const deadline = Date.now() + (expectReply ? 20_000 : 600);
    while (Date.now() < deadline) {
      const hit = heard.slice(before).find((h) => h.message['command'] === wanted && h.topic === 'general/researcher');
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 20));
    }
    if (expectReply) throw new Error(`no ${wanted} reply to recorded line ${line}`);
    return undefined;
  }

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-replay-'));
    network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(dir, 'repo') });
    const nodeDir = path.join(dir, NODE);
    writeConfig(nodeDir, defaultConfig({ nodeId: NODE, broker: network.mqttUrl, uploadsUrl: network.uploadsUrl }));
    const stores = openNodeStores(nodeDir, {});
    await stores.datasets.add({ name: 'tabular-peer2', dataType: 'csv', tags: ['csv', 'peer-demo'],
      description: 'synthetic 4-feature binary tabular data (peer2)',
      path: path.join(VECTORS, 'examples', 'dataset-peer1-tabular.csv') });
    agent = await NodeAgent.start({ dir: nodeDir, env: {}, localLog: () => undefined });
    repo = new RepositoryClient({ uploadsUrl: network.uploadsUrl, retries: 0 });
    const mqtt = await import('mqtt');
    spy = await mqtt.connectAsync(network.mqttUrl);
    spy.on('message', (topic, payload) => {
      try {
        heard.push({ topic, message: parsePythonJson(payload.toString('utf8')) as Json });
      } catch {
        // not ours to judge here
      }
    });
    await spy.subscribeAsync('general/researcher');
    await spy.subscribeAsync('general/monitoring');
  });

  afterAll(async () => {
    await spy?.endAsync();
    await agent?.stop();
    await network?.close();
  });

  const datasetId = () => agent.stores.datasets.list()[0].dataset_id;

  it('ping, list and search replies have the recorded topic, keys and types; a search with no match is silent', async () => {
    const pong = await replay(3);
    expect(signature(pong!.message)).toEqual(signature(recorded(5)));
    expect(pong!.message).toMatchObject({ success: true, sequence: 0, researcher_id: 'researcher_peer' });

    const list = await replay(6);
    const rec = recorded(8);
    expect(signature(list!.message)).toEqual(signature(rec));
    const ours = (list!.message['databases'] as Json[])[0];
    const theirs = (rec['databases'] as Json[]).find((d) => d['data_type'] === 'csv') as Json;
    expect(signature(ours)).toEqual(signature(theirs));
    expect(ours['shape']).toEqual([48, 5]);

    const search = await replay(11);
    const recSearch = recorded(12);
    expect(signature(search!.message)).toEqual(signature(recSearch));
    expect(signature((search!.message['databases'] as Json[])[0])).toEqual(signature((recSearch['databases'] as Json[])[0]));
    expect((search!.message['databases'] as Json[])[0]['dtypes']).toEqual((recSearch['databases'] as Json[])[0]['dtypes']);
    expect(await replay(14, (m) => m, false)).toBeUndefined();
  });

  let planUrl: string;

  it('approval and training-plan-status replies match the recorded approval-on node', async () => {
    planUrl = await repo.upload(Buffer.from(generateTorchPlan(PLAN)), 'training_plan_replay.py');
    const approval = await replay(20, (m) => ({ ...m, training_plan_url: planUrl }));
    expect(signature(approval!.message)).toEqual(signature(recorded(21)));
    expect(approval!.message).toMatchObject({ status: 200, success: true, sequence: 1 });

    const pending = await replay(24, (m) => ({ ...m, training_plan_url: planUrl }));
    expect(signature(pending!.message)).toEqual(signature(recorded(26)));
    expect(pending!.message).toMatchObject({ approval_obligation: true, status: 'Pending' });
    agent.stores.plans.setStatus(agent.stores.plans.list()[0].training_plan_id, 'Approved');
    const approved = await replay(24, (m) => ({ ...m, training_plan_url: planUrl }));
    expect(approved!.message).toMatchObject({ status: 'Approved', msg: recorded(26)['msg'] });
  });

  it('a training round and the validation-only round answer like the recorded node', async () => {
    const weightsUrl = await repo.upload(Buffer.from(encodeParams(aggregatedParamsFile('researcher_peer',
      initialWeights(PLAN, 5)))), 'aggregated_params_replay.mpk');
    const trainEdit = (m: Json): Json => ({ ...m, params_url: weightsUrl, training_plan_url: planUrl, dataset_id: datasetId() });
    const scalarsBefore = heard.length;
    const reply = await replay(28, trainEdit);
    expect(signature(reply!.message)).toEqual(signature(recorded(47)));
    expect(reply!.message).toMatchObject({ success: true, sample_size: 36, msg: '' });

    const scalars = heard.slice(scalarsBefore).filter((h) => h.topic === 'general/monitoring').map((h) => h.message);
    const recordedScalars = [39, 40, 41, 42, 43].map(recorded);
    expect(scalars.map(signature)).toEqual(recordedScalars.map(signature));
    expect(scalars.map((s) => [s['train'], s['test_on_global_updates'], s['test_on_local_updates'], s['iteration'],
      s['total_samples'], s['num_batches']])).toEqual(recordedScalars.map((s) => [s['train'], s['test_on_global_updates'],
      s['test_on_local_updates'], s['iteration'], s['total_samples'], s['num_batches']]));

    // The results file: the recorded node's 8 keys in its order, torch.Tensor float32 weights in PyTorch layout.
    const ours = decodeParams(await repo.download(reply!.message['params_url'] as string)) as Json;
    const theirs = decodeParams(fs.readFileSync(path.join(VECTORS, 'files',
      'node_params_62aefac0-4368-40a5-b3ab-d3819e34f9b3.mpk'))) as Json;
    expect(Object.keys(ours)).toEqual(Object.keys(theirs));
    const shapes = (w: Json) => Object.values(w).map((t) => [(t as TorchTensor).dtype, (t as TorchTensor).shape]);
    expect(shapes(ours['model_weights'] as Json)).toEqual(shapes(theirs['model_weights'] as Json));
    expect(Object.values(ours['model_weights'] as Json).every((t) => t instanceof TorchTensor)).toBe(true);

    const validation = await replay(70, (m) => ({ ...trainEdit(m), state_id: null }));
    expect(signature(validation!.message)).toEqual(signature(recorded(75)));
    expect(validation!.message).toMatchObject({ success: true, params_url: '', sample_size: null, timing: {} });
  });

  it('refuses an unapproved plan with the recorded message', async () => {
    const other = definePlan({ ...PLAN, name: 'NotApprovedPlan' });
    const url = await repo.upload(Buffer.from(generateTorchPlan(other)), 'my_model_other.py');
    const reply = await replay(107, (m) => ({ ...m, training_plan_url: url, dataset_id: datasetId(),
      params_url: planUrl }));
    expect(signature(reply!.message)).toEqual(signature(recorded(111)));
    expect(reply!.message['msg']).toBe(recorded(111)['msg']);
  });
});
