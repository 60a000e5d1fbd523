/**
 * Running a node for months: one agent per folder (lock), `node status` from another process's point of view, log
 * files capped in size, and the systemd unit (checked by systemd's own `systemd-analyze verify` when present).
 * Agents run on a real embedded broker and repository.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import mqtt from 'mqtt';
import { startEmbeddedNetwork, type EmbeddedNetwork } from '../src/transport/embedded';
import { defaultConfig, writeConfig } from './config';
import { NodeAgent } from './agent';
import { acquireNodeLock, LOCK_FILE, NodeLockedError } from './lock';
import { RotatingLogFile } from './log-file';
import { nodeStatus, formatNodeStatus } from './status';
import { systemdUnit } from './service';
import { openNodeStores } from './stores';

jest.setTimeout(60_000);
const BIN = path.join(__dirname, '..', 'bin', 'fedbiomed-ts.js');

let network: EmbeddedNetwork;
let dir: string;

beforeAll(async () => {
  network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0 });
});
afterAll(async () => {
  await network.close();
});
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-node-ops-'));
  writeConfig(dir, defaultConfig({ nodeId: 'node_ops', broker: network.mqttUrl, uploadsUrl: network.uploadsUrl, approval: true }));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A pid that is certainly not running: a child that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

test('a second agent on the same folder is refused while the first runs; the folder is free once it stops', async () => {
  const logs: string[] = [];
  const first = await NodeAgent.start({ dir, localLog: (l) => logs.push(l) });
  try {
    expect(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    await expect(NodeAgent.start({ dir, localLog: () => undefined })).rejects.toThrow(NodeLockedError);
    await expect(NodeAgent.start({ dir, localLog: () => undefined })).rejects.toThrow(
      new RegExp(`already in use by a running node \\(pid ${process.pid}`));
  } finally {
    await first.stop();
  }
  expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  const again = await NodeAgent.start({ dir, localLog: () => undefined });
  await again.stop();
});

test("a dead process's lock is stale: taken over, and said so", async () => {
  const pid = deadPid();
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
  expect(nodeStatus(dir)).toMatchObject({ running: false, staleLock: { pid } });
  const logs: string[] = [];
  const agent = await NodeAgent.start({ dir, localLog: (l) => logs.push(l) });
  await agent.stop();
  expect(logs.join('\n')).toContain(`stale lock of pid ${pid} (no longer running) taken over`);
  // A lock of a live process on this host is never taken over.
  const held = acquireNodeLock(dir);
  expect(() => acquireNodeLock(dir)).toThrow(NodeLockedError);
  held.release();
});

test('node status reports the running node: broker, last message, datasets and plans with their state', async () => {
  const csv = path.join(dir, 'a.csv');
  fs.writeFileSync(csv, 'x,y\n1,0\n2,1\n');
  const { datasets } = openNodeStores(dir);
  await datasets.add({ name: 'site-a', dataType: 'csv', tags: ['csv'], description: '', path: csv, parameters: null });
  expect(nodeStatus(dir)).toMatchObject({ running: false, nodeId: 'node_ops' });

  const agent = await NodeAgent.start({ dir, localLog: () => undefined });
  try {
    const researcher = await mqtt.connectAsync(network.mqttUrl, { protocolVersion: 4 });
    await researcher.publishAsync('general/nodes', JSON.stringify({ protocol_version: '1', researcher_id: 'r_status', sequence: 1, command: 'ping' }));
    await researcher.endAsync();
    const deadline = Date.now() + 10_000;
    while (nodeStatus(dir).runtime?.lastMessage?.command !== 'ping' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const report = nodeStatus(dir);
    expect(report).toMatchObject({
      running: true, pid: process.pid,
      runtime: { nodeId: 'node_ops', broker: { connected: true }, lastMessage: { command: 'ping', researcherId: 'r_status' } },
      datasets: [{ name: 'site-a', type: 'csv', tags: ['csv'] }],
    });
    expect(report.runtime?.round).toBeUndefined();
    const text = formatNodeStatus(report);
    expect(text).toMatch(/state\s+running \(pid \d+\)/);
    expect(text).toMatch(/broker\s+mqtt:\/\/127\.0\.0\.1:\d+ connected since \d+ s ago/);
    expect(text).toMatch(/last message ping from r_status, \d+ s ago/);
    expect(text).toMatch(/site-a\s+csv\s+\[csv\]/);
  } finally {
    await agent.stop();
  }
  const after = nodeStatus(dir);
  expect(after.running).toBe(false);
  expect(after.runtime?.stoppedAt).toEqual(expect.any(String));
  expect(formatNodeStatus(after)).toMatch(/state\s+not running \(stopped /);
});

test('log files rotate at the size cap and keep only the configured number of files', () => {
  const file = path.join(dir, 'logs', 'node.log');
  const log = new RotatingLogFile(file, { maxBytes: 1000, files: 3 });
  const line = (i: number) => `${String(i).padStart(5, '0')} ${'x'.repeat(93)}`; // 100 bytes with the newline
  for (let i = 0; i < 45; i++) log.write(line(i));
  const files = fs.readdirSync(path.dirname(file)).sort();
  expect(files).toEqual(['node.log', 'node.log.1', 'node.log.2']);
  for (const f of files) expect(fs.statSync(path.join(path.dirname(file), f)).size).toBeLessThanOrEqual(1000);
  // Newest lines in node.log, the ones before in .1 then .2; the oldest were dropped.
  expect(fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => Number(l.slice(0, 5)))).toEqual([40, 41, 42, 43, 44]);
  expect(fs.readFileSync(`${file}.1`, 'utf8').startsWith(line(30))).toBe(true);
  expect(fs.readFileSync(`${file}.2`, 'utf8').startsWith(line(20))).toBe(true);
  // A restarted node appends to the current file and counts its size.
  const reopened = new RotatingLogFile(file, { maxBytes: 1000, files: 3 });
  for (let i = 45; i < 51; i++) reopened.write(line(i));
  expect(fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => Number(l.slice(0, 5)))).toEqual([50]);
  expect(() => new RotatingLogFile(file, { files: 0 })).toThrow(/files kept/);
});

test('the systemd unit runs this node as the given user, restarts on failure and carries its environment', () => {
  const unit = systemdUnit({ dir: '/srv/fedbiomed node', nodeId: 'node_ops', user: 'fedbiomed',
    env: { MQTT_BROKER: 'broker.hospital.local', UPLOADS_URL: 'https://files.hospital.local/upload/', HOME: '/root' },
    nodeBinary: process.execPath, command: BIN });
  expect(unit.fileName).toBe('fedbiomed-ts-node-node_ops.service');
  expect(unit.text).toContain('User=fedbiomed\n');
  expect(unit.text).toContain(`ExecStart=${process.execPath} ${BIN} node start --dir "/srv/fedbiomed node"\n`);
  expect(unit.text).toContain('WorkingDirectory=/srv/fedbiomed node\n');
  expect(unit.text).toContain('Restart=on-failure\n');
  expect(unit.text).toContain('Environment=MQTT_BROKER=broker.hospital.local\n');
  expect(unit.text).toContain('Environment=UPLOADS_URL=https://files.hospital.local/upload/\n');
  expect(unit.text).not.toContain('HOME');
  expect(unit.text).toContain('StandardError=journal\n');
  expect(unit.enableCommands('/x/u.service')).toContain('systemctl enable --now fedbiomed-ts-node-node_ops');

  // systemd's own parser, where it is installed: no unknown keys, no bad quoting.
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (analyze.status !== 0) return; // not installed on this machine (said here, not a silent pass of the checks above)
  const file = path.join(dir, unit.fileName);
  fs.writeFileSync(file, unit.text.replace('User=fedbiomed', 'User=root'));
  const verify = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
  const problems = `${verify.stdout}${verify.stderr}`.split('\n')
    .filter((l) => l.includes(unit.fileName));
  expect(problems).toEqual([]);
});
