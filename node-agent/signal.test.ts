/**
 * `fedbiomed-ts node start` as a real process: SIGTERM ends it within seconds even while its broker is down
 * (it used to ignore SIGTERM for minutes: its FB312 announcement waited for a broker that was not there), and while
 * it trains (the round's worker thread is terminated).
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startBroker } from '../src/transport/broker';
import { freePort } from '../src/transport/testing/brokers';
import { defaultConfig, nodePaths, writeConfig } from './config';
import { readQueueFile } from './task-queue';
import { researcherOn, startNodeBench, until } from './testing/fault-bench';

jest.setTimeout(90_000);

const BIN = path.join(__dirname, '..', 'bin', 'fedbiomed-ts.js');

it('a node process stops within seconds of SIGTERM while its broker is down', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-sig-'));
  const port = await freePort();
  const broker = await startBroker({ host: '127.0.0.1', port });
  writeConfig(dir, defaultConfig({ nodeId: 'node_sig', broker: `mqtt://127.0.0.1:${port}`, approval: false }));
  const child = spawn(process.execPath, [BIN, 'node', 'start', '--dir', dir], { env: { ...process.env, MQTT_BROKER: '',
    MQTT_BROKER_PORT: '', FEDBIOMED_TS_NATIVE: '0' } });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const readyBy = Date.now() + 60_000;
    while (!/Node node_sig ready/.test(err)) {
      if (Date.now() > readyBy || child.exitCode !== null) throw new Error(`the node did not start:\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await broker.close();
    await new Promise((r) => setTimeout(r, 1000));
    const signalled = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(5000);
    expect(err).toContain('Node stopped in signal_handler');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('a node process stops within seconds of SIGTERM in the middle of a long round, the round kept queued', async () => {
  const b = await startNodeBench('sigtrain', 'node_sigtrain');
  const child = spawn(process.execPath, [BIN, 'node', 'start', '--dir', b.nodeDir], { env: { ...process.env, MQTT_BROKER: '',
    MQTT_BROKER_PORT: '' } });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const { messaging, replies } = await researcherOn(b.network.mqttUrl);
  try {
    const readyBy = Date.now() + 60_000;
    while (!/Node node_sigtrain ready/.test(err)) {
      if (Date.now() > readyBy || child.exitCode !== null) throw new Error(`the node did not start:\n${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await messaging.send(b.request({}, { num_updates: 10_000_000, log_interval: 1000 }), 'node_sigtrain');
    await until('training to start', () => replies.find((m) => m.command === 'add_scalar'), 60_000);
    const signalled = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(5000);
    expect(err).toContain('Node stopped in signal_handler');
    // Stopped cleanly: the request stays queued, to run at the next start.
    const queued = readQueueFile<{ job_id: string }>(nodePaths(b.nodeDir).queue);
    expect(queued.map((t) => [t.task.job_id, t.startedAt])).toEqual([['job_sigtrain', undefined]]);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await messaging.close();
    await b.close();
  }
});
