/**
 * A fedbiomed-ts node on a Fed-BioMed v6 network when things go wrong, over a real gRPC/TLS server (a scripted
 * stand-in for the Python researcher): a researcher restart, a certificate that is not the pinned one, a malformed
 * chunk sequence, a 100 MB message in chunks, messages that do not validate, and requests the node cannot honour
 * (secure aggregation, differential privacy, analytics, preprocessing, overlay): each gets a clear outcome.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodeAgent } from './agent';
import { defaultConfig, writeConfig } from './config';
import { PIN_FILE } from './transport-v6';
import { v6Harness } from './testing/v6-harness';
import { ScriptedResearcher } from '../src/transport/v6/testing/scripted-researcher';
import { encodeV6Message, makeV6Message, V6_MESSAGE_MODULE } from '../src/transport/v6/messages';
import { encodeV6Payload } from '../src/transport/v6/payload';
import { V6_CHUNK_BYTES } from '../src/transport/v6/grpc';
import { identityOf } from '../src/transport/v6/node-client';

const VECTORS = path.join(__dirname, '..', 'src', 'transport', 'v6', 'testing');
const CERT = fs.readFileSync(path.join(VECTORS, 'vectors', 'server_certificate.pem'), 'utf8');
const KEY = fs.readFileSync(path.join(VECTORS, 'vectors', 'server_certificate.key'), 'utf8');
const OTHER_CERT = fs.readFileSync(path.join(VECTORS, 'other-researcher.pem'), 'utf8');
/** The researcher id in the recorded certificate's O=. */
const RID = identityOf(CERT).researcherId;
const NODE = 'NODE_faults';

const h = v6Harness('v6-faults');
let logLines: string[];

beforeEach(() => {
  logLines = [];
});

async function startNode(port: number, pinned?: string): Promise<NodeAgent> {
  const nodeDir = path.join(h.dir, 'node');
  writeConfig(nodeDir, defaultConfig({ nodeId: NODE, approval: true, protocol: 'v6', researcher: `localhost:${port}` }));
  if (pinned) fs.writeFileSync(path.join(nodeDir, PIN_FILE), pinned);
  h.agent = await NodeAgent.start({ dir: nodeDir, localLog: (line) => void logLines.push(line) });
  return h.agent;
}

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ping = (requestId: string) => encodeV6Message(makeV6Message('PingRequest', { request_id: requestId, researcher_id: RID }));

test('the researcher id comes from the certificate', () => {
  expect(RID).toMatch(/^RESEARCHER_[0-9a-f-]{36}$/);
});

test('a researcher restart: the node reconnects by itself and answers again', async () => {
  h.researcher = await ScriptedResearcher.start(CERT, KEY);
  const port = h.researcher.port;
  await startNode(port);
  h.researcher.send(NODE, ping('before'));
  expect((await h.researcher.nextReply(NODE)).fields['request_id']).toBe('before');
  await h.researcher.kill();
  h.researcher = await ScriptedResearcher.start(CERT, KEY, port);
  h.researcher.send(NODE, ping('after'));
  const reply = await h.researcher.nextReply(NODE, 15_000);
  expect([reply.className, reply.fields['request_id']]).toEqual(['PingReply', 'after']);
}, 30_000);

test('a certificate other than the pinned one is refused: no poll, an error naming both fingerprints', async () => {
  h.researcher = await ScriptedResearcher.start(CERT, KEY);
  await startNode(h.researcher.port, OTHER_CERT);
  await new Promise((r) => setTimeout(r, 2500));
  expect(h.researcher.polls).toEqual([]);
  // Once, not at every retry: it needs an operator, not a flood.
  expect(logLines.filter((l) => /ERROR .*not the pinned .*RESEARCHER_other-test-researcher.*refusing to connect/.test(l)))
    .toHaveLength(1);
}, 20_000);

test('a malformed chunk sequence is dropped with an error; the next task is answered', async () => {
  h.researcher = await ScriptedResearcher.start(CERT, KEY);
  await startNode(h.researcher.port);
  await h.researcher.waitForPoll(NODE);
  const bytes = Buffer.from(ping('lost'));
  h.researcher.sendChunks(NODE, [
    { size: 3, iteration: 1, bytes_: bytes.subarray(0, 10) },
    { size: 3, iteration: 3, bytes_: bytes.subarray(10) },
  ]);
  h.researcher.send(NODE, ping('next'));
  const reply = await h.researcher.nextReply(NODE, 15_000);
  expect(reply.fields['request_id']).toBe('next');
}, 30_000);

test('a 100 MB message arrives in 27 chunks and is answered', async () => {
  h.researcher = await ScriptedResearcher.start(CERT, KEY);
  await startNode(h.researcher.port);
  const big = encodeV6Message(makeV6Message('ApprovalRequest', { request_id: 'big', researcher_id: RID,
    description: 'not a fedbiomed-ts plan', training_plan: '#'.repeat(100 * 1024 * 1024) }));
  expect(Math.ceil(big.byteLength / V6_CHUNK_BYTES)).toBe(27);
  h.researcher.send(NODE, big);
  const reply = await h.researcher.nextReply(NODE, 30_000);
  // Received whole: the node read it and refused it as a plan it cannot run.
  expect([reply.className, reply.fields['request_id'], reply.fields['success']]).toEqual(['ApprovalReply', 'big', false]);
  // ... and kept nothing of it once answered.
  await waitFor(() => fs.readdirSync(path.join(h.dir, 'node', 'v6-inline')).length === 0);
}, 60_000);

test('what the node cannot honour or parse is refused with a reply', async () => {
  h.researcher = await ScriptedResearcher.start(CERT, KEY);
  await startNode(h.researcher.port);
  const base = { researcher_id: RID };
  const ask = async (bytes: Uint8Array) => {
    h.researcher?.send(NODE, bytes);
    return (await (h.researcher as ScriptedResearcher).nextReply(NODE)).fields;
  };
  const train = {
    ...base, experiment_id: 'exp', state_id: null, dataset_id: 'd', training: true, model_args: {}, params: {},
    training_plan: '', training_plan_class: 'P', round: 0, aggregator_args: {},
    training_args: { loader_args: { batch_size: 4 }, dp_args: null },
  };

  expect(await ask(encodeV6Message(makeV6Message('SecaggRequest', { ...base, request_id: 's', secagg_id: 'x',
    element: 1, experiment_id: 'exp', parties: [RID, NODE] })))).toMatchObject({ request_id: 's', success: false,
    msg: expect.stringMatching(/^FB318: secure aggregation is not supported/) });
  expect(await ask(encodeV6Message(makeV6Message('FARequest', { ...base, request_id: 'fa', experiment_id: 'exp',
    dataset_id: 'd', fa_id: 'f' })))).toMatchObject({ request_id: 'fa', errnum: 'FB325' });
  expect(await ask(encodeV6Message(makeV6Message('PreprocRequest', { ...base, request_id: 'pp', experiment_id: 'e',
    dataset_id: 'd', preproc_type: 1, preproc_step: 0, preproc_id: 'p', preproc_args: {} }))))
    .toMatchObject({ request_id: 'pp', errnum: 'FB326' });
  expect(await ask(encodeV6Message(makeV6Message('TrainRequest', { ...train, request_id: 't1',
    secagg_arguments: { secagg_scheme: 2 } })))).toMatchObject({ request_id: 't1', success: false,
    msg: expect.stringMatching(/^FB318/) });
  expect(await ask(encodeV6Message(makeV6Message('TrainRequest', { ...train, request_id: 't2',
    training_args: { loader_args: { batch_size: 4 }, dp_args: { type: 'local', sigma: 1.0, clip: 1.0 } } }))))
    .toMatchObject({ request_id: 't2', success: false, msg: expect.stringMatching(/^FB616: differential privacy/) });
  // Not a valid PingRequest (an extra key): a v6 node answers FB301.
  expect(await ask(encodeV6Payload({ protocol_version: '7', request_id: 'bad', researcher_id: RID, extra: 1,
    __type_message__: { module: V6_MESSAGE_MODULE, class: 'PingRequest' } })))
    .toMatchObject({ errnum: 'FB301', extra_msg: 'Message was not properly formatted' });
  // A message claiming another researcher than the certificate's is refused the same way.
  expect(await ask(encodeV6Message(makeV6Message('PingRequest', { request_id: 'x', researcher_id: 'RESEARCHER_evil' }))))
    .toMatchObject({ errnum: 'FB301' });
  expect(logLines.some((l) => /Suspected malicious researcher activity/.test(l))).toBe(true);
}, 30_000);
