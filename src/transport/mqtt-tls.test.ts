/**
 * mqtts:// with a CA file, username and password, against a real Mosquitto with a TLS listener and a password
 * file (certificates made with openssl for the test).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Messaging } from './mqtt';
import { startMosquitto, type TestBroker } from './testing/brokers';
import { tracedMessage } from './testing/vectors';
import { waitFor } from './testing/waits';
import { protocolCodec, type WireMessage } from './wire';

function tool(name: string): string {
  const found = [`/usr/bin/${name}`, `/usr/sbin/${name}`, `/usr/local/bin/${name}`].find((p) => fs.existsSync(p));
  if (!found) throw new Error(`${name} is required by this test and was not found: install it (apt-get install -y ${name === 'openssl' ? 'openssl' : 'mosquitto'})`);
  return found;
}

/** A CA, a server certificate for localhost/127.0.0.1 signed by it, and a mosquitto password file. */
function makeCredentials(dir: string): { ca: string; cert: string; key: string; passwords: string; otherCa: string } {
  const openssl = tool('openssl');
  const run = (args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=fedbiomed-ts test CA']);
  run(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  fs.writeFileSync(path.join(dir, 'san.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.cnf']);
  run(['req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.crt', '-days', '1', '-subj', '/CN=some other CA']);
  execFileSync(tool('mosquitto_passwd'), ['-b', '-c', 'passwords', 'hospital', 's3cret'], { cwd: dir, stdio: 'pipe' });
  // Mosquitto started as root drops to its own user: let it read these files.
  fs.chmodSync(dir, 0o755);
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  const p = (f: string) => path.join(dir, f);
  return { ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key'), passwords: p('passwords'), otherCa: p('other.crt') };
}

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
});
