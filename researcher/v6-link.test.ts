/**
 * researcher/v6-link.ts with a scripted v6 node (our real V6NodeClient over real gRPC/TLS, answering what the test
 * says): what our researcher puts in v6 requests, and how v6 replies that a fedbiomed-ts node never sends are
 * mapped for the shared round logic (empty search replies, encrypted parameters, errors).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { V6ResearcherServer } from '../src/transport/v6/researcher-server';
import { V6NodeClient } from '../src/transport/v6/node-client';
import { makeV6Message, type V6Message } from '../src/transport/v6/messages';
import { FedbiomedTsError } from '../src/errors';
import { TorchTensor } from '../src/serialize';
import { Experiment } from './experiment';
import { Researcher } from './requests/researcher';
import { InlineFiles, V6LinkError } from './v6-link';
import { decodeNodeParams, encodeAggregatedParams } from './weights-file';
import spec from '../tools/interop-v6/lin-plan';

let dir: string;
let server: V6ResearcherServer | undefined;
let node: V6NodeClient | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-v6-link-'));
});

afterEach(async () => {
  await node?.close();
  await server?.close();
  node = undefined;
  server = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

type Answer = (request: V6Message, reply: (className: Parameters<typeof makeV6Message>[0], fields: Record<string, unknown>) => void) => void;

/** A node that answers each request as `answer` says (and records the requests). */
async function scriptedNode(answer: Answer): Promise<{ requests: V6Message[]; researcher: Researcher }> {
  server = await V6ResearcherServer.start({ dir: path.join(dir, 'researcher'), port: 0 });
  const requests: V6Message[] = [];
  const client = new V6NodeClient({ host: 'localhost', port: server.port, nodeId: 'NODE_py', pinFile: path.join(dir, 'pin.pem') });
  node = client;
  client.start((request) => {
    requests.push(request);
    answer(request, (className, fields) => void client.send(makeV6Message(className, { request_id: request.fields['request_id'],
      researcher_id: request.fields['researcher_id'], node_id: 'NODE_py', node_name: 'py', ...fields })));
  });
  return { requests, researcher: await Researcher.connect({ protocol: 'v6', server }) };
}

const DATASET = { dataset_id: 'dataset_1', name: 'd', tags: ['#t'], data_type: 'csv', shape: [10, 5] };
const searchAnswer: Answer = (request, reply) => {
  if (request.className === 'SearchRequest') {
    const hit = (request.fields['tags'] as string[]).includes('#t');
    reply('SearchReply', { databases: hit ? [DATASET] : [], count: hit ? 1 : 0 });
  }
  if (request.className === 'PingRequest') reply('PingReply', {});
};

test('search and ping: an empty SearchReply is no result (a v4.5 node stays silent); replies find their request', async () => {
  const { researcher } = await scriptedNode(searchAnswer);
  try {
    expect([...(await researcher.search(['#t'], { nodes: ['NODE_py'] })).entries()]).toEqual([['NODE_py', [DATASET]]]);
    expect((await researcher.search(['#other'], { timeoutMs: 300 })).size).toBe(0);
    expect([...(await researcher.ping({ nodes: ['NODE_py'] })).nodes.keys()]).toEqual(['NODE_py']);
    // A request v6 has no form for here is refused, not dropped.
    await expect(researcher.send({ researcher_id: researcher.id, secagg_id: 's', element: 0, job_id: 'j', parties: [],
      sequence: 1, command: 'secagg' } as never, 'NODE_py')).rejects.toThrow(V6LinkError);
    await expect(researcher.send({ researcher_id: researcher.id, secagg_id: 's', element: 0, job_id: 'j', parties: [],
      sequence: 1, command: 'secagg' } as never, 'NODE_py')).rejects.toThrow(FedbiomedTsError);
  } finally {
    await researcher.close();
  }
}, 30_000);

test('a TrainRequest carries the plan and weights inline with v6 training_args; encrypted parameters are refused', async () => {
  const { requests, researcher } = await scriptedNode((request, reply) => {
    searchAnswer(request, reply);
    if (request.className === 'TrainRequest') {
      reply('TrainReply', { experiment_id: request.fields['experiment_id'], success: true, dataset_id: 'dataset_1', timing: {},
        msg: '', state_id: 'state_1', sample_size: 10, encrypted: true, params: [1, 2, 3] });
    }
  });
  const exp = new Experiment({ tags: ['#t'], plan: spec, roundLimit: 1, network: researcher, seed: 2,
    trainingArgs: { loader_args: { batch_size: 5 }, epochs: 1, test_metric: 'ACCURACY' } });
  try {
    await expect(exp.run()).rejects.toThrow(/FB407.*NODE_py \(failed: the node sent encrypted parameters \(secure aggregation\)/);
    const train = requests.find((r) => r.className === 'TrainRequest') as V6Message;
    const f = train.fields;
    expect(f['training_plan']).toContain('from fedbiomed.common.datamanager import DataManager');
    expect(f['training_plan_class']).toBe('LinPlan');
    expect(f['secagg_arguments']).toEqual({});
    expect(f['optim_aux_var']).toBeNull();
    const params = f['params'] as Record<string, TorchTensor>;
    expect(Object.keys(params).sort()).toEqual(['tabular.0.bias', 'tabular.0.weight']);
    const initial = exp.weights?.get('tabular.0.weight');
    expect(Array.from(params['tabular.0.weight'].data as Float32Array)).toEqual(Array.from(initial?.data as Float32Array));
    const args = f['training_args'] as Record<string, unknown>;
    expect(args['test_batch_size']).toBe(0);
    expect(args['shuffle_testing_dataset']).toBe(false);
    expect(args['test_metric']).toEqual({ __type__: 'MetricTypes', value: 'ACCURACY' });
  } finally {
    await exp.close();
    await researcher.close();
  }
}, 30_000);

test("a node's ErrorMessage ends its part of the round with the error number", async () => {
  const { researcher } = await scriptedNode((request, reply) => {
    searchAnswer(request, reply);
    if (request.className === 'TrainRequest') reply('ErrorMessage', { extra_msg: 'dataset gone', errnum: 'FB313' });
  });
  const exp = new Experiment({ tags: ['#t'], plan: spec, roundLimit: 1, network: researcher,
    trainingArgs: { loader_args: { batch_size: 5 }, epochs: 1 } });
  const failed: string[] = [];
  exp.on('node-failed', (e) => failed.push(`${e.nodeId} ${e.reason} ${e.message}`));
  try {
    await expect(exp.run()).rejects.toThrow(/FB407/);
    expect(failed).toEqual(['NODE_py error FB313: dataset gone']);
  } finally {
    await exp.close();
    await researcher.close();
  }
}, 30_000);

test('an Experiment naming its nodes waits for those to dial in, and says which never came', async () => {
  const { researcher } = await scriptedNode(searchAnswer);
  await researcher.close();
  const exp = new Experiment({ tags: ['#t'], nodes: ['NODE_py', 'NODE_late'], plan: spec, roundLimit: 1,
    network: { protocol: 'v6', server: server as V6ResearcherServer, nodeWaitMs: 700 },
    trainingArgs: { loader_args: { batch_size: 5 }, epochs: 1 } });
  try {
    await expect(exp.run()).rejects.toThrow(/within 700 ms, 1 expected; not connected: NODE_late$/);
  } finally {
    await exp.close();
  }
}, 30_000);

test('inline files: plans stay; global weights and node results go two generations later (memory stays bounded)', async () => {
  const files = new InlineFiles();
  const weights = (v: number) => encodeAggregatedParams('r', new Map([['w', new TorchTensor('float32', [2], new Float32Array([v, v]))]]));
  const plan = await files.upload(Buffer.from('class P: pass\n'), 'my_model_1.py');
  const w0 = await files.upload(weights(0), 'aggregated_params_0.mpk');
  expect(Array.from((files.weights(w0)['w'] as TorchTensor).data as Float32Array)).toEqual([0, 0]);
  const r0 = files.putResult({ w: new TorchTensor('float32', [2], new Float32Array([1, 2])) }, {});
  const w1 = await files.upload(weights(1), 'aggregated_params_1.mpk');
  await expect(files.download(w0)).rejects.toThrow(/no longer kept/);
  expect((await files.download(r0)).length).toBeGreaterThan(0); // still there: the round that just ended
  await files.upload(weights(2), 'aggregated_params_2.mpk');
  await expect(files.download(r0)).rejects.toThrow(/no longer kept/);
  await expect(files.download(w1)).rejects.toThrow(/no longer kept/);
  expect(files.text(plan)).toBe('class P: pass\n');
  expect(files.size).toBe(2);
  // A result with auxiliary variables keeps them, so the fold refuses it as it does on v4.5.
  const aux = files.putResult({ w: new TorchTensor('float32', [1], new Float32Array([1])) }, { scaffold: { c: 1 } });
  const auxFile = await files.download(aux);
  expect(() => decodeNodeParams(auxFile, 'x')).toThrow(/optim_aux_var is not empty/);
});
