/**
 * docs/deployment-mosquitto.md, run as written: its `mosquitto.conf` and `acl` blocks are read from the guide, the
 * paths and port filled in, and a real Mosquitto started with them. Checks what the guide promises: TLS with the
 * network's CA, no anonymous client, and the ACL's separation of roles (measured by what is delivered).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';
import mqtt, { type MqttClient } from 'mqtt';
import { findMosquitto, freePort, waitForPort } from './testing/brokers';
import { makeCredentials } from './testing/tls';
import { waitFor } from './testing/waits';

jest.setTimeout(30_000);

const GUIDE = path.join(__dirname, '..', '..', 'docs', 'deployment-mosquitto.md');

function block(name: string): string {
  const match = new RegExp('```conf ' + name + '\\n([\\s\\S]*?)```').exec(fs.readFileSync(GUIDE, 'utf8'));
  if (!match) throw new Error(`the guide has no \`\`\`conf ${name} block`);
  return match[1];
}

describe('the Mosquitto deployment guide', () => {
  let dir: string;
  let port: number;
  let broker: ChildProcess;
  const clients: MqttClient[] = [];
  const passwords = { node_a: 'pw-a', node_b: 'pw-b', researcher_alice: 'pw-r' };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-guide-'));
    const credentials = makeCredentials(dir, passwords);
    port = await freePort();
    const fill = (text: string) => text.replace(/\{\{dir\}\}/g, dir).replace(/\{\{port\}\}/g, String(port));
    fs.writeFileSync(path.join(dir, 'acl'), fill(block('acl')));
    fs.writeFileSync(path.join(dir, 'mosquitto.conf'), fill(block('mosquitto.conf')));
    for (const f of ['acl', 'mosquitto.conf']) fs.chmodSync(path.join(dir, f), 0o644);
    expect(credentials.ca).toBe(path.join(dir, 'ca.crt'));
    broker = spawn(findMosquitto(), ['-c', path.join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
    await waitForPort(port);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    broker?.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const login = async (username: keyof typeof passwords) => {
    const client = await mqtt.connectAsync(`mqtts://localhost:${port}`, { username, password: passwords[username],
      ca: fs.readFileSync(path.join(dir, 'ca.crt')), protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(client);
    const got: string[] = [];
    client.on('message', (topic, payload) => void got.push(`${topic} ${payload.toString()}`));
    return { client, got };
  };

  it('keeps each role to its topics', async () => {
    const alice = await login('researcher_alice');
    const a = await login('node_a');
    const b = await login('node_b');
    await alice.client.subscribeAsync(['general/researcher', 'general/monitoring', 'general/logger', 'general/node_a']);
    await a.client.subscribeAsync(['general/nodes', 'general/node_a', 'general/node_b', 'general/researcher']);
    await b.client.subscribeAsync(['general/nodes', 'general/node_b']);

    await alice.client.publishAsync('general/nodes', 'ping');
    await alice.client.publishAsync('general/node_b', 'train b');
    await alice.client.publishAsync('general/researcher', 'forged by researcher');
    await b.client.publishAsync('general/researcher', 'reply b');
    await b.client.publishAsync('general/node_a', 'forged by b');
    await waitFor(() => alice.got.length >= 1 && b.got.length >= 2 && a.got.length >= 1, 'deliveries');
    await new Promise((r) => setTimeout(r, 300));
    expect(alice.got).toEqual(['general/researcher reply b']);
    expect(b.got.sort()).toEqual(['general/node_b train b', 'general/nodes ping']);
    // node_a saw the broadcast only: not node_b's request, not node_b's reply, not forgeries.
    expect(a.got).toEqual(['general/nodes ping']);
  });

  it('refuses anonymous clients, wrong passwords and clients without the CA', async () => {
    const url = `mqtts://localhost:${port}`;
    const ca = fs.readFileSync(path.join(dir, 'ca.crt'));
    await expect(mqtt.connectAsync(url, { ca, protocolVersion: 4, reconnectPeriod: 0 })).rejects.toThrow(/Not authorized|Bad username/i);
    await expect(mqtt.connectAsync(url, { ca, username: 'node_a', password: 'wrong', protocolVersion: 4, reconnectPeriod: 0 }))
      .rejects.toThrow(/Not authorized|Bad username/i);
    await expect(mqtt.connectAsync(url, { username: 'node_a', password: passwords.node_a, protocolVersion: 4,
      reconnectPeriod: 0, connectTimeout: 3000 })).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });
});
