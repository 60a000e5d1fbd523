import mqtt, { type MqttClient } from 'mqtt';
import { memoryLogger, type MemoryLogger } from './logger';
import { Messaging, type MessageContext } from './mqtt';
import { freePort, startAedes, startMosquitto, type TestBroker } from './testing/brokers';
import { tracedMessage, tracedMessageMatching } from './testing/vectors';
import { once, waitFor } from './testing/waits';
import { protocolCodec, type WireMessage } from './wire';

const FAST_BACKOFF = { initialDelayMs: 50, maxDelayMs: 400, factor: 2 };

/** A recorded message, parsed by the real codec (so sending it must reproduce the recorded bytes). */
function recorded(command: string, topic: string | RegExp): { message: WireMessage; payload: string } {
  const traced = typeof topic === 'string' ? tracedMessage(command, topic) : tracedMessageMatching(command, topic);
  const direction = /^general\/(researcher|monitoring|logger)$/.test(traced.topic) ? 'node-to-researcher' : 'researcher-to-node';
  const parsed = protocolCodec.parse(traced.payload, direction);
  if (!parsed.ok) throw new Error(`recorded ${command} does not parse: ${parsed.error}`);
  return { message: parsed.message, payload: traced.payload };
}

interface Received {
  message: WireMessage;
  topic: string;
}

function inbox(messaging: Messaging): Received[] {
  const received: Received[] = [];
  messaging.onMessage((message, context: MessageContext) => void received.push({ message, topic: context.topic }));
  return received;
}

/** A raw mqtt.js client subscribed to every Fed-BioMed topic, to see the exact bytes on the wire. */
async function rawSpy(url: string): Promise<{ client: MqttClient; seen: Array<{ topic: string; payload: string }> }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
  const seen: Array<{ topic: string; payload: string }> = [];
  client.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString('utf8') }));
  await client.subscribeAsync('general/#', { qos: 0 });
  return { client, seen };
}

describe.each([
  ['aedes (embedded)', startAedes],
  ['Mosquitto', startMosquitto],
])('messaging through %s', (_name, startBrokerUnderTest) => {
  let broker: TestBroker;
  const opened: Array<{ close(): Promise<void> }> = [];
  const rawClients: MqttClient[] = [];

  const connectNode = async (nodeId: string, logger?: MemoryLogger) => {
    const m = await Messaging.connect({ role: 'node', nodeId, brokerUrl: broker.url, logger, reconnectBackoff: FAST_BACKOFF });
    opened.push(m);
    return m;
  };
  const connectResearcher = async (logger?: MemoryLogger) => {
    const m = await Messaging.connect({ role: 'researcher', brokerUrl: broker.url, logger, reconnectBackoff: FAST_BACKOFF });
    opened.push(m);
    return m;
  };

  beforeAll(async () => {
    broker = await startBrokerUnderTest();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((m) => m.close()));
    await Promise.all(rawClients.splice(0).map((c) => c.endAsync()));
  });
  afterAll(async () => {
    await broker?.stop();
  });

  test('researcher and nodes exchange recorded v4.5 messages on the v4.5 topics, byte for byte', async () => {
    const researcher = await connectResearcher();
    const node1 = await connectNode('node_peer1');
    const node2 = await connectNode('node_peer2');
    const spy = await rawSpy(broker.url);
    rawClients.push(spy.client);
    const [atResearcher, atNode1, atNode2] = [inbox(researcher), inbox(node1), inbox(node2)];

    // Broadcast request: both nodes, on general/nodes, exact recorded bytes on the wire.
    const ping = recorded('ping', 'general/nodes');
    await researcher.send(ping.message);
    await waitFor(() => atNode1.length === 1 && atNode2.length === 1, 'ping at both nodes');
    expect(atNode1[0]).toEqual({ message: ping.message, topic: 'general/nodes' });
    expect(atNode2[0].topic).toBe('general/nodes');
    await waitFor(() => spy.seen.length === 1, 'ping on the wire');
    expect(spy.seen[0]).toEqual({ topic: 'general/nodes', payload: ping.payload });

    // Reply: to general/researcher; nodes never see each other's traffic.
    const pong = recorded('pong', 'general/researcher');
    await node1.send(pong.message);
    await waitFor(() => atResearcher.length === 1, 'pong at the researcher');
    expect(atResearcher[0]).toEqual({ message: pong.message, topic: 'general/researcher' });

    // Targeted request: only the named node. A broadcast sent after it is a barrier: once node2 has it,
    // anything meant for node2 before it would have arrived too.
    const train = recorded('train', /^general\/node_peer1$/);
    await researcher.send(train.message, 'node_peer1');
    await researcher.send(ping.message);
    await waitFor(() => atNode1.length === 3 && atNode2.length === 2, 'train at node1 and the barrier at node2');
    expect(atNode1[1]).toEqual({ message: train.message, topic: 'general/node_peer1' });
    expect(atNode2.map((r) => r.message.command)).toEqual(['ping', 'ping']);

    // A node's monitoring scalars and log records go to their own topics without naming a target.
    const scalar = recorded('add_scalar', 'general/monitoring');
    const log = recorded('log', 'general/logger');
    await node1.send(scalar.message);
    await node1.send(log.message);
    await waitFor(() => atResearcher.length === 3, 'add_scalar and log at the researcher');
    expect(atResearcher.slice(1).map((r) => [r.message.command, r.topic])).toEqual([
      ['add_scalar', 'general/monitoring'],
      ['log', 'general/logger'],
    ]);
    await waitFor(() => spy.seen.length === 6, 'six messages on the wire');
    expect(spy.seen.map((s) => s.topic)).toEqual([
      'general/nodes',
      'general/researcher',
      'general/node_peer1',
      'general/nodes',
      'general/monitoring',
      'general/logger',
    ]);
    expect(spy.seen[2].payload).toBe(train.payload);
    expect(spy.seen[4].payload).toBe(scalar.payload);
    expect(atNode2).toHaveLength(2);
  });

  test('a log record already serialised in Python key order goes out unchanged with publishRaw', async () => {
    const researcher = await connectResearcher();
    const node = await connectNode('node_peer1');
    const atResearcher = inbox(researcher);
    const log = recorded('log', 'general/logger');
    await node.publishRaw('general/logger', log.payload);
    await waitFor(() => atResearcher.length === 1, 'log at the researcher');
    expect(atResearcher[0].message).toEqual(log.message);
    await expect(node.publishRaw('general/logger', '{"command": "log"}')).rejects.toThrow(/refusing to publish an invalid message/);
    await expect(node.publishRaw('general/#', log.payload)).rejects.toThrow(/wildcard/);
  });

  test('bad sends are refused before anything reaches the wire', async () => {
    const researcher = await connectResearcher();
    const node = await connectNode('node_peer1');
    const spy = await rawSpy(broker.url);
    rawClients.push(spy.client);
    const ping = recorded('ping', 'general/nodes');
    const pong = recorded('pong', 'general/researcher');

    await expect(researcher.send(ping.message, 'a/b')).rejects.toThrow(/single MQTT topic level/);
    await expect(researcher.send(ping.message, 'researcher')).rejects.toThrow(/reserved/);
    await expect(node.send(pong.message, 'nodes')).rejects.toThrow(/'researcher', 'monitoring' or 'logger'/);
    const missingField = { ...ping.message } as Record<string, unknown>;
    delete missingField.sequence;
    await expect(researcher.send(missingField as unknown as WireMessage)).rejects.toThrow(/sequence/);
    // A reply is not a request: wrong direction for a researcher.
    await expect(researcher.send(pong.message)).rejects.toThrow();

    await researcher.send(ping.message); // barrier
    await waitFor(() => spy.seen.length >= 1, 'the barrier on the wire');
    expect(spy.seen).toEqual([{ topic: 'general/nodes', payload: ping.payload }]);
  });

  test('malformed payloads are logged and dropped; the component keeps receiving', async () => {
    const nodeLog = memoryLogger();
    const researcherLog = memoryLogger();
    const node = await connectNode('node_peer1', nodeLog);
    const researcher = await connectResearcher(researcherLog);
    const atNode = inbox(node);
    const atResearcher = inbox(researcher);
    const invalidAtNode: string[] = [];
    node.on('invalid', (invalid) => invalidAtNode.push(`${invalid.topic}: ${invalid.error}`));

    const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0 });
    rawClients.push(raw);
    const ping = recorded('ping', 'general/nodes');
    const garbage: Array<[string, string | Buffer]> = [
      ['general/nodes', 'this is not JSON {'],
      ['general/nodes', ''],
      ['general/node_peer1', '[1, 2, 3]'],
      ['general/node_peer1', Buffer.from([0xff, 0xfe, 0x00, 0x80])],
      ['general/nodes', ping.payload.replace('"protocol_version": "1"', '"protocol_version": "2"')],
      ['general/nodes', ping.payload.replace('"ping"', '"format-disk"')],
      ['general/researcher', 'NaN'],
      ['general/monitoring', '{"command": "add_scalar"}'],
    ];
    for (const [topic, payload] of garbage) await raw.publishAsync(topic, payload, { qos: 0 });
    await raw.publishAsync('general/nodes', ping.payload, { qos: 0 });
    await raw.publishAsync('general/researcher', recorded('pong', 'general/researcher').payload, { qos: 0 });

    await waitFor(() => atNode.length === 1 && atResearcher.length === 1, 'the valid messages after the garbage');
    expect(atNode[0].message).toEqual(ping.message);
    expect(invalidAtNode).toHaveLength(6);
    expect(invalidAtNode[0]).toMatch(/^general\/nodes: /);
    const nodeWarnings = nodeLog.lines.filter((l) => l.level === 'warn').map((l) => l.message);
    expect(nodeWarnings).toHaveLength(6);
    expect(nodeWarnings[0]).toContain('this is not JSON {');
    expect(nodeWarnings.every((w) => w.startsWith('dropped invalid message on general/'))).toBe(true);
    expect(researcherLog.lines.filter((l) => l.level === 'warn')).toHaveLength(2);
  });

  test('a handler that throws is logged and the other handlers and later messages are unaffected', async () => {
    const nodeLog = memoryLogger();
    const node = await connectNode('node_peer1', nodeLog);
    const researcher = await connectResearcher();
    let calls = 0;
    node.onMessage(() => {
      calls += 1;
      if (calls === 1) throw new Error('boom in a sync handler');
    });
    node.onMessage(async () => {
      if (calls === 1) throw new Error('boom in an async handler');
    });
    const atNode = inbox(node);
    const ping = recorded('ping', 'general/nodes');
    await researcher.send(ping.message);
    await researcher.send(ping.message);
    await waitFor(() => atNode.length === 2, 'both pings at the node');
    await waitFor(() => nodeLog.lines.filter((l) => l.level === 'error').length === 2, 'two handler errors logged');
    const errors = nodeLog.lines.filter((l) => l.level === 'error').map((l) => l.message);
    expect(errors.some((e) => e.includes('boom in a sync handler') && e.includes('ping'))).toBe(true);
    expect(errors.some((e) => e.includes('boom in an async handler'))).toBe(true);
    expect(calls).toBe(2);
  });

  test('after a broker restart both sides reconnect, resubscribe, and messages flow again', async () => {
    const node = await connectNode('node_peer1');
    const researcher = await connectResearcher();
    const atNode = inbox(node);
    const atResearcher = inbox(researcher);
    const ping = recorded('ping', 'general/nodes');
    const train = recorded('train', /^general\/node_peer1$/);
    const pong = recorded('pong', 'general/researcher');

    const offline = Promise.all([once(node, 'offline'), once(researcher, 'offline')]);
    await broker.stop();
    await offline;
    expect(node.connected).toBe(false);

    const back = Promise.all([once(node, 'reconnect', 10_000), once(researcher, 'reconnect', 10_000)]);
    await broker.restart();
    await back;
    expect(node.connected).toBe(true);

    // The restarted broker knows nothing of the old subscriptions: these arrive only if they were restored.
    await researcher.send(ping.message);
    await researcher.send(train.message, 'node_peer1');
    await node.send(pong.message);
    await waitFor(() => atNode.length === 2 && atResearcher.length === 1, 'messages after the restart');
    expect(atNode.map((r) => r.topic)).toEqual(['general/nodes', 'general/node_peer1']);
    expect(atResearcher[0].message).toEqual(pong.message);
  });
});

describe('connection errors', () => {
  test('a broker that is not there gives a clear error within the connect timeout', async () => {
    const port = await freePort();
    const started = Date.now();
    await expect(
      Messaging.connect({ role: 'researcher', brokerUrl: `mqtt://127.0.0.1:${port}`, connectTimeoutMs: 600, reconnectBackoff: FAST_BACKOFF }),
    ).rejects.toThrow(new RegExp(`cannot connect to MQTT broker mqtt://127.0.0.1:${port}: .*ECONNREFUSED`));
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('bad broker URLs and node ids are refused before connecting', async () => {
    await expect(Messaging.connect({ role: 'researcher', brokerUrl: 'http://127.0.0.1:1883' })).rejects.toThrow(
      /unsupported broker URL scheme "http:".*mqtt:\/\/ or mqtts:\/\//,
    );
    await expect(Messaging.connect({ role: 'researcher', brokerUrl: 'not a url' })).rejects.toThrow(/invalid broker URL/);
    await expect(Messaging.connect({ role: 'node', nodeId: 'node/1', brokerUrl: 'mqtt://127.0.0.1:1' })).rejects.toThrow(
      /single MQTT topic level/,
    );
    await expect(Messaging.connect({ role: 'node', nodeId: 'nodes', brokerUrl: 'mqtt://127.0.0.1:1' })).rejects.toThrow(/reserved/);
    await expect(
      Messaging.connect({ role: 'researcher', brokerUrl: 'mqtts://127.0.0.1:1', caFile: '/nonexistent/ca.pem' }),
    ).rejects.toThrow(/cannot read CA file \/nonexistent\/ca.pem/);
  });
});
