/**
 * `fedbiomed-ts node start` as a real process: SIGTERM ends it within seconds even while its broker is down
 * (it used to ignore SIGTERM for minutes: its FB312 announcement waited for a broker that was not there).
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startBroker } from '../src/transport/broker';
import { freePort } from '../src/transport/testing/brokers';
import { defaultConfig, writeConfig } from './config';

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
