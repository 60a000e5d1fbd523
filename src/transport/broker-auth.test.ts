/**
 * The embedded broker with an auth file: real MQTT clients (our Messaging for well-behaved peers, raw mqtt.js for
 * an impostor) connect with their credentials; a publish under someone else's id never reaches anyone.
 */
import mqtt from 'mqtt';
import { startBroker, type EmbeddedBroker } from './broker';
import { hashPassword, parseBrokerAuth, verifyPassword, BrokerAuthError } from './broker-auth';
import { Messaging } from './mqtt';
import { waitFor } from './testing/waits';
import type { WireMessage } from './wire';

jest.setTimeout(30_000);

const PASSWORDS = { hospital_a: 'pw-a', hospital_b: 'pw-b', alice: 'pw-alice', ops: 'pw-ops' };

describe('broker identities (network start --auth)', () => {
  let broker: EmbeddedBroker;
  const refused: string[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    const auth = parseBrokerAuth({ clients: [
      { username: 'hospital_a', password: hashPassword(PASSWORDS.hospital_a), role: 'node', id: 'node_a' },
      { username: 'hospital_b', password: hashPassword(PASSWORDS.hospital_b), role: 'node', id: 'node_b' },
      { username: 'alice', password: hashPassword(PASSWORDS.alice), role: 'researcher', id: 'researcher_alice' },
      { username: 'ops', password: hashPassword(PASSWORDS.ops), role: 'observer' },
    ] });
    broker = await startBroker({ port: 0, auth, onRefused: (m) => void refused.push(m) });
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await broker.close();
  });

  const connect = async (username: keyof typeof PASSWORDS, role: 'node' | 'researcher', nodeId = '') => {
    const m = await Messaging.connect({ ...(role === 'node' ? { role, nodeId } : { role }), brokerUrl: broker.url,
      username, password: PASSWORDS[username], connectTimeoutMs: 3000 });
    closers.push(() => m.close());
    const got: WireMessage[] = [];
    m.onMessage((msg) => void got.push(msg));
    return { m, got };
  };

  it('delivers what each client sends under its own id, refuses the rest, and tells the operator', async () => {
    const alice = await connect('alice', 'researcher');
    const nodeA = await connect('hospital_a', 'node', 'node_a');
    const nodeB = await connect('hospital_b', 'node', 'node_b');

    await alice.m.send({ researcher_id: 'researcher_alice', sequence: 1, command: 'ping' });
    await waitFor(() => nodeA.got.length === 1 && nodeB.got.length === 1, 'the ping at both nodes');
    await nodeA.m.send({ researcher_id: 'researcher_alice', node_id: 'node_a', success: true, sequence: 1, command: 'pong' });
    await waitFor(() => alice.got.length === 1, 'node_a pong');

    // node_b's credentials, node_a's id: an impostor. Raw client, as an attacker would use.
    const impostor = await mqtt.connectAsync(broker.url, { username: 'hospital_b', password: PASSWORDS.hospital_b,
      protocolVersion: 4, reconnectPeriod: 0 });
    closers.push(() => impostor.endAsync(true));
    const forged = '{"researcher_id": "researcher_alice", "job_id": "j", "state_id": "s", "success": true, ' +
      '"node_id": "node_a", "dataset_id": "d", "params_url": "http://127.0.0.1:1/x", "timing": {}, ' +
      '"sample_size": 1, "msg": "", "command": "train", "protocol_version": "1"}';
    await impostor.publishAsync('general/researcher', forged).catch(() => undefined);
    // A node posing as a researcher, on the researcher's topic.
    const poser = await mqtt.connectAsync(broker.url, { username: 'hospital_a', password: PASSWORDS.hospital_a,
      protocolVersion: 4, reconnectPeriod: 0 });
    closers.push(() => poser.endAsync(true));
    await poser.publishAsync('general/node_b', '{"researcher_id": "researcher_alice", "sequence": 9, "command": "ping", ' +
      '"protocol_version": "1"}').catch(() => undefined);
    await waitFor(() => refused.filter((r) => r.startsWith('publish refused')).length === 2, 'two refusals');
    expect(refused).toEqual(expect.arrayContaining([
      'publish refused from hospital_b on general/researcher: node_id is not node_b',
      'publish refused from hospital_a on general/node_b: a node publishes only on general/researcher, general/monitoring, general/logger',
    ]));
    await new Promise((r) => setTimeout(r, 200));
    expect(alice.got).toHaveLength(1);
    expect(nodeB.got).toHaveLength(1);
  });

  it('refuses unknown users, wrong passwords and subscriptions outside the role', async () => {
    await expect(mqtt.connectAsync(broker.url, { username: 'alice', password: 'wrong', protocolVersion: 4,
      reconnectPeriod: 0 })).rejects.toThrow(/Bad username or password/i);
    await expect(mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 }))
      .rejects.toThrow(/Bad username or password/i);
    const nosy = await mqtt.connectAsync(broker.url, { username: 'hospital_a', password: PASSWORDS.hospital_a,
      protocolVersion: 4, reconnectPeriod: 0 });
    closers.push(() => nosy.endAsync(true));
    // A refused subscription is granted QoS 128 ("failure"), which mqtt.js reports as an error.
    await expect(nosy.subscribeAsync('general/researcher', { qos: 0 })).rejects.toThrow(/Subscribe error/);
    await expect(nosy.subscribeAsync('general/node_b', { qos: 0 })).rejects.toThrow(/Subscribe error/);
    expect((await nosy.subscribeAsync('general/node_a', { qos: 0 }))[0].qos).toBe(0);
    expect(refused).toEqual(expect.arrayContaining(['subscription refused for hospital_a: general/researcher',
      'subscription refused for hospital_a: general/node_b']));
    const ops = await mqtt.connectAsync(broker.url, { username: 'ops', password: PASSWORDS.ops, protocolVersion: 4, reconnectPeriod: 0 });
    closers.push(() => ops.endAsync(true));
    expect((await ops.subscribeAsync('general/#', { qos: 0 }))[0].qos).toBe(0);
  });

  it('keeps passwords as scrypt hashes only', () => {
    const hash = hashPassword('s3cret');
    expect(hash).toMatch(/^scrypt:/);
    expect(hash).not.toContain('s3cret');
    expect(verifyPassword('s3cret', hash)).toBe(true);
    expect(verifyPassword('s3cre', hash)).toBe(false);
    expect(() => parseBrokerAuth({ clients: [{ username: 'a', password: 'plain', role: 'node', id: 'n' }] }))
      .toThrow(BrokerAuthError);
    expect(() => parseBrokerAuth({ clients: [{ username: 'a', password: hash, role: 'node' }] })).toThrow(/needs its "id"/);
  });
});
