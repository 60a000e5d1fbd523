/**
 * mqtts:// with a CA file, username and password, against a real Mosquitto with a TLS listener and a password
 * file (certificates made with openssl for the test).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Messaging } from './mqtt';
import { startAedes, startMosquitto, type TestBroker } from './testing/brokers';
import { tracedMessage } from './testing/vectors';
import { waitFor } from './testing/waits';
import { makeCredentials } from './testing/tls';
import { protocolCodec, type WireMessage } from './wire';

describe('MQTT over TLS with credentials (Mosquitto)', () => {
  let dir: string;
  let credentials: ReturnType<typeof makeCredentials>;
  let broker: TestBroker;
  const opened: Messaging[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-tls-'));
    credentials = makeCredentials(dir);
    broker = await startMosquitto({
      scheme: 'mqtts',
      urlHost: 'localhost',
      allowAnonymous: false,
      listenerConfig: [
        `cafile ${credentials.ca}`,
        `certfile ${credentials.cert}`,
        `keyfile ${credentials.key}`,
        `password_file ${credentials.passwords}`,
      ],
    });
  });
  afterAll(async () => {
    await Promise.all(opened.map((m) => m.close()));
    await broker?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('mqtts:// with CA file, username and password: messages flow', async () => {
    const common = { brokerUrl: broker.url, caFile: credentials.ca, username: 'hospital', password: 's3cret' };
    const researcher = await Messaging.connect({ role: 'researcher', ...common });
    const node = await Messaging.connect({ role: 'node', nodeId: 'node_tls', ...common });
    opened.push(researcher, node);
    const atNode: WireMessage[] = [];
    node.onMessage((m) => void atNode.push(m));
    const ping = protocolCodec.parse(tracedMessage('ping', 'general/nodes').payload, 'researcher-to-node');
    if (!ping.ok) throw new Error(ping.error);
    await researcher.send(ping.message);
    await waitFor(() => atNode.length === 1, 'the ping over TLS');
    expect(atNode[0]).toEqual(ping.message);
  });

  test('credentials in the URL work too', async () => {
    const url = new URL(broker.url);
    url.username = 'hospital';
    url.password = 's3cret';
    const m = await Messaging.connect({ role: 'researcher', brokerUrl: url.toString(), caFile: credentials.ca });
    opened.push(m);
    expect(m.connected).toBe(true);
  });

  test('a wrong password is refused at once, without retrying', async () => {
    const started = Date.now();
    await expect(
      Messaging.connect({ role: 'researcher', brokerUrl: broker.url, caFile: credentials.ca, username: 'hospital', password: 'wrong', connectTimeoutMs: 8000 }),
    ).rejects.toThrow(/cannot connect to MQTT broker mqtts:\/\/localhost:\d+: .*(Not authorized|Bad username or password)/i);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  test('a broker certificate not signed by the given CA is refused', async () => {
    await expect(
      Messaging.connect({ role: 'researcher', brokerUrl: broker.url, caFile: credentials.otherCa, username: 'hospital', password: 's3cret', connectTimeoutMs: 800 }),
    ).rejects.toThrow(/cannot connect to MQTT broker .*(certificate|self.signed)/i);
  });

  test('TLS mismatches are explained in plain words', async () => {
    const plain = await startAedes();
    try {
      await expect(Messaging.connect({ role: 'researcher', brokerUrl: plain.url.replace('mqtt:', 'mqtts:'),
        caFile: credentials.ca, connectTimeoutMs: 1500 })).rejects.toThrow(/does not speak TLS on this port: use mqtt:\/\//);
    } finally {
      await plain.stop();
    }
    await expect(Messaging.connect({ role: 'researcher', brokerUrl: broker.url.replace('mqtts:', 'mqtt:'),
      username: 'hospital', password: 's3cret', connectTimeoutMs: 1500 })).rejects.toThrow(/if this is a TLS port, use mqtts:\/\//);
    await expect(Messaging.connect({ role: 'researcher', brokerUrl: broker.url, caFile: credentials.otherCa,
      username: 'hospital', password: 's3cret', connectTimeoutMs: 800 })).rejects.toThrow(/give the network's CA/);
  });
});
