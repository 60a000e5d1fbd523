/**
 * `fedbiomed-ts network start` and `network spy`, run as real processes through the package's bin: the embedded
 * network serves uploads and MQTT, the spy reports valid and invalid traffic, and both stop cleanly on signals.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'child_process';
import * as fs from 'fs';
import mqtt from 'mqtt';
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
