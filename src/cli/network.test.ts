/**
 * `fedbiomed-ts network start` and `network spy`, run as real processes through the package's bin: the embedded
 * network serves uploads and MQTT, the spy reports valid and invalid traffic, and both stop cleanly on signals.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'child_process';
import * as fs from 'fs';
import mqtt from 'mqtt';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { RepositoryClient } from '../transport/repository';
import { register } from './network';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'fedbiomed-ts.js');
// Starting the CLI through ts-node takes seconds on a loaded 2-core machine.
const STARTUP_MS = 50_000;

interface Running {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function run(args: string[]): Running {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, MQTT_BROKER: '', MQTT_BROKER_PORT: '' } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitForText(read: () => string, pattern: RegExp, what: string, timeoutMs = STARTUP_MS): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = read().match(pattern);
    if (match) return match;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output so far:\n${read()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const children: Running[] = [];
afterAll(() => {
  for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
});

test('network start serves MQTT and uploads; network spy reports traffic; both stop cleanly on signals', async () => {
  const network = run(['network', 'start', '--mqtt-port', '0', '--http-port', '0']);
  children.push(network);
  await waitForText(network.stdout, /running; stop with Ctrl\+C/, 'network start to be ready');
  const mqttUrl = network.stdout().match(/MQTT broker\s+(mqtt:\/\/127\.0\.0\.1:\d+)/)?.[1];
  const uploadsUrl = network.stdout().match(/upload URL\s+(http:\/\/127\.0\.0\.1:\d+\/upload\/)/)?.[1];
  const dataDir = network.stdout().match(/files stored in\s+(\S+)/)?.[1];
  expect(mqttUrl).toBeDefined();
  expect(uploadsUrl).toBeDefined();
  expect(network.stdout()).toContain(`MQTT_BROKER=127.0.0.1 MQTT_BROKER_PORT=${new URL(mqttUrl!).port} UPLOADS_URL=${uploadsUrl}`);

  const repository = new RepositoryClient({ uploadsUrl: uploadsUrl! });
  const fileUrl = await repository.upload(Buffer.from('weights'), 'aggregated_params_1.mpk');
  expect((await repository.download(fileUrl)).toString()).toBe('weights');

  const spy = run(['network', 'spy', '--broker', mqttUrl!]);
  children.push(spy);
  await waitForText(spy.stderr, /\[spy\] listening on general\/# at mqtt:\/\/127\.0\.0\.1/, 'the spy to subscribe');

  const publisher = await mqtt.connectAsync(mqttUrl!, { protocolVersion: 4 });
  await publisher.publishAsync('general/nodes', '{"protocol_version": "1", "researcher_id": "r1", "sequence": 0, "command": "ping"}');
  await publisher.publishAsync('general/researcher', 'garbage, not JSON');
  await publisher.publishAsync('general/monitoring', '{"protocol_version": "1", "command": "add_scalar"}');
  await publisher.endAsync();

  await waitForText(spy.stdout, /(.*\n){3}/, 'three spy lines', 15_000);
  const lines = spy.stdout().trim().split('\n');
  expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z\s+general\/nodes\s+ping\s+valid$/);
  expect(lines[1]).toMatch(/^\S+\s+general\/researcher\s+\?\s+INVALID: .+/);
  expect(lines[2]).toMatch(/^\S+\s+general\/monitoring\s+add_scalar\s+INVALID: .+/);

  spy.child.kill('SIGINT');
  expect(await spy.exited).toBe(0);

  network.child.kill('SIGTERM');
  expect(await network.exited).toBe(0);
  expect(network.stdout()).toContain('stopped (SIGTERM)');
  expect(fs.existsSync(dataDir!)).toBe(false);
});

test('bad option values are refused with a clear message', async () => {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  register(program);
  await expect(program.parseAsync(['node', 'fedbiomed-ts', 'network', 'start', '--mqtt-port', 'abc'])).rejects.toThrow(
    /"abc" is not a TCP port/,
  );
  await expect(program.parseAsync(['node', 'fedbiomed-ts', 'network', 'start', '--http-port', '70000'])).rejects.toThrow(
    /"70000" is not a TCP port/,
  );
  await expect(program.parseAsync(['node', 'fedbiomed-ts', 'network', 'start', '--max-upload-mb', '-1'])).rejects.toThrow(
    /not a positive number/,
  );
});

test('network hash-password and network start --auth, as real processes: credentials checked, forged ids refused', async () => {
  const hashing = run(['network', 'hash-password']);
  children.push(hashing);
  hashing.child.stdin.end('S3cret-pw\n');
  expect(await hashing.exited).toBe(0);
  const hash = hashing.stdout().trim();
  expect(hash).toMatch(/^scrypt:/);
  expect(hash).not.toContain('S3cret-pw');
  const empty = run(['network', 'hash-password']);
  children.push(empty);
  empty.child.stdin.end('');
  expect(await empty.exited).not.toBe(0);
  expect(empty.stderr()).toContain('no password on stdin');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-auth-cli-'));
  const authFile = path.join(dir, 'auth.yaml');
  fs.writeFileSync(authFile, [
    'clients:',
    `  - { username: hospital_a, password: "${hash}", role: node, id: node_a }`,
    `  - { username: alice, password: "${hash}", role: researcher, id: researcher_alice }`,
  ].join('\n') + '\n');
  const network = run(['network', 'start', '--mqtt-port', '0', '--http-port', '0', '--auth', authFile]);
  children.push(network);
  try {
    await waitForText(network.stdout, /running; stop with Ctrl\+C/, 'network start --auth to be ready');
    expect(network.stdout()).toContain(`broker identities from ${authFile}: 2 client(s); anonymous clients refused`);
    const mqttUrl = network.stdout().match(/MQTT broker\s+(mqtt:\/\/127\.0\.0\.1:\d+)/)?.[1] as string;
    const connect = (username?: string, password?: string) =>
      mqtt.connectAsync(mqttUrl, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, username, password });
    await expect(connect()).rejects.toThrow(/Not authorized|Bad username or password/i);
    await expect(connect('hospital_a', 'wrong')).rejects.toThrow(/Not authorized|Bad username or password/i);

    const researcher = await connect('alice', 'S3cret-pw');
    const received: string[] = [];
    researcher.on('message', (_topic, payload) => void received.push(JSON.parse(payload.toString()).node_id as string));
    await researcher.subscribeAsync('general/researcher');
    const pong = (nodeId: string) => JSON.stringify({ protocol_version: '1', researcher_id: 'researcher_alice',
      node_id: nodeId, success: true, sequence: 1, command: 'pong' });
    // hospital_a speaking as node_b: refused by the broker, never delivered.
    const forger = await connect('hospital_a', 'S3cret-pw');
    await forger.publishAsync('general/researcher', pong('node_b')).catch(() => undefined);
    const honest = await connect('hospital_a', 'S3cret-pw');
    await honest.publishAsync('general/researcher', pong('node_a'));
    await waitForText(() => received.join(','), /node_a/, 'the honest pong', 10_000);
    expect(received).toEqual(['node_a']);
    await Promise.all([forger.endAsync(true), honest.endAsync(), researcher.endAsync()]);
    // The operator sees each refusal, with the reason.
    await waitForText(network.stderr, /node_id is not node_a/, 'the refusal in the network log', 10_000);

    network.child.kill('SIGTERM');
    expect(await network.exited).toBe(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
