/**
 * `fedbiomed-ts researcher run EXPERIMENT --protocol v6` (or `network.protocol: v6` in the file): the one `run`
 * command on a Fed-BioMed v6 network, this process being the gRPC server a real fedbiomed-ts node dials.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { ownCommand } from '../src/package-root';
import { NodeAgent } from '../node-agent/agent';
import { defaultConfig, writeConfig } from '../node-agent/config';
import { openNodeStores } from '../node-agent/stores';
import { decodeNodeParams } from './weights-file';
import { loadExperimentFile } from './config';

const PLAN = path.join(__dirname, '..', 'tools', 'interop-v6', 'lin-plan.ts');
const VECTORS = path.join(__dirname, '..', 'src', 'transport', 'v6', 'testing', 'vectors');
let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-v6-cli-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function experimentFile(lines: string[]): string {
  const file = path.join(dir, 'exp.yaml');
  fs.writeFileSync(file, [`plan: ${PLAN}`, 'tags: ["#ts"]', 'trainingArgs: { loader_args: { batch_size: 20 }, epochs: 1 }',
    ...lines].join('\n'));
  return file;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

test('v4.5 options with v6 (and v6 options with v4.5) are usage errors, before anything listens', () => {
  const file = experimentFile(['roundLimit: 1']);
  const cli = (args: string[]) => spawnSync(process.execPath, [ownCommand(), 'researcher', 'run', file, ...args],
    { encoding: 'utf8', timeout: 60_000 });
  const v6 = cli(['--protocol', 'v6', '--broker', 'mqtt://localhost:1883', '--researcher-dir', path.join(dir, 'r')]);
  expect(v6.status).toBe(2);
  expect(v6.stderr).toMatch(/--broker: not used on a v6 network/);
  expect(fs.existsSync(path.join(dir, 'r'))).toBe(false);
  const file6 = experimentFile(['roundLimit: 1', 'network: { protocol: v6, broker: "mqtt://x:1" }']);
  expect(() => loadExperimentFile(file6)).toThrow(/network.broker do\(es\) not apply to a v6 network/);
  const file45 = experimentFile(['roundLimit: 1', 'network: { port: 50051 }']);
  expect(() => loadExperimentFile(file45)).toThrow(/network.port only apply to protocol v6/);
}, 60_000);

test('an experiment file with network.protocol v6 runs FedProx rounds with a TS node and writes the weights', async () => {
  const port = await freePort();
  const weights = path.join(dir, 'final.mpk');
  const file = experimentFile(['roundLimit: 2', 'aggregator: { name: fedprox, mu: 0.01 }',
    `network: { protocol: v6, port: ${port}, dir: researcher, minNodes: 1 }`, `output: { weights: ${weights} }`]);
  const child = spawn(process.execPath, [ownCommand(), 'researcher', 'run', file, '--no-progress', '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  // The node dials the researcher once its certificate exists (the server is up by then or soon after: it retries).
  const cert = path.join(dir, 'researcher', 'certs', 'server_certificate.pem');
  const until = Date.now() + 30_000;
  while (!fs.existsSync(cert) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  const nodeDir = path.join(dir, 'node');
  writeConfig(nodeDir, defaultConfig({ nodeId: 'NODE_a', approval: false, protocol: 'v6', researcher: `localhost:${port}` }));
  fs.copyFileSync(path.join(VECTORS, 'a.csv'), path.join(dir, 'a.csv'));
  await openNodeStores(nodeDir).datasets.add({ dataType: 'csv', path: path.join(dir, 'a.csv'), tags: ['#ts'], name: 'a' });
  const agent = await NodeAgent.start({ dir: nodeDir, localLog: () => undefined });
  try {
    expect(await exited).toBe(0);
  } finally {
    await agent.stop();
  }
  const summary = JSON.parse(stdout) as { roundsCompleted: number; summaries: Array<{ nodes: Array<{ status: string }> }> };
  expect(summary.roundsCompleted).toBe(2);
  expect(summary.summaries.flatMap((s) => s.nodes.map((n) => n.status))).toEqual(['ok', 'ok']);
  expect([...decodeNodeParams(fs.readFileSync(weights), weights).keys()].sort()).toEqual(['tabular.0.bias', 'tabular.0.weight']);
  expect(stderr).not.toMatch(/error/i);
}, 90_000);
