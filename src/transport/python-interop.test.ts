/**
 * Interop with Python: a peer using the libraries and settings of a Fed-BioMed v4.5 node (paho-mqtt 1.6.1,
 * requests, validators 0.20) works against our embedded broker and repository, and with our Messaging and
 * RepositoryClient. Needs a Python with paho-mqtt, requests and validators (Debian's /usr/bin/python3 has them);
 * the test says clearly when none is found.
 */
import { execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as path from 'path';
import { startEmbeddedNetwork } from './embedded';
import { Messaging } from './mqtt';
import { RepositoryClient } from './repository';
import { waitFor } from './testing/waits';
import type { WireMessage } from './wire';

const SCRIPT = path.join(__dirname, 'testing', 'python_peer.py');

function pythonWithPeerLibraries(): string | undefined {
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(python, ['-c', 'import paho.mqtt.client, requests, validators'], { stdio: 'ignore' });
      return python;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

test('a Python peer (paho + requests + validators, as in Fed-BioMed v4.5) works with our network and clients', async () => {
  const python = pythonWithPeerLibraries();
  if (!python) {
    console.warn('no Python interpreter with paho-mqtt, requests and validators (tried python3, /usr/bin/python3): Python interop NOT checked');
    return;
  }
  const network = await startEmbeddedNetwork();
  const researcher = await Messaging.connect({ role: 'researcher', brokerUrl: network.mqttUrl });
  const repository = new RepositoryClient({ uploadsUrl: network.uploadsUrl });
  try {
    const ours = crypto.randomBytes(4096);
    const oursUrl = await repository.upload(ours, 'aggregated_params_ts.mpk');
    const atResearcher: WireMessage[] = [];
    researcher.onMessage((m) => void atResearcher.push(m));

    const peer = spawn(python, [SCRIPT, '127.0.0.1', String(network.mqttPort), network.uploadsUrl, oursUrl, 'node_py']);
    const events: Array<Record<string, unknown>> = [];
    let stderr = '';
    let buffered = '';
    peer.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as Record<string, unknown>);
    });
    peer.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => peer.once('exit', resolve));

    await waitFor(() => events.some((e) => e.event === 'ready') || peer.exitCode !== null, 'the Python peer to subscribe', 30_000);
    expect(stderr).toBe('');
    await researcher.send({ protocol_version: '1', researcher_id: 'researcher_ts', sequence: 7, command: 'ping' });
    await waitFor(() => atResearcher.length === 1, 'the pong of the Python peer', 15_000);
    expect(await exited).toBe(0);

    const downloaded = events.find((e) => e.event === 'downloaded');
    expect(downloaded).toEqual({
      event: 'downloaded',
      status: 200,
      sha256: crypto.createHash('sha256').update(ours).digest('hex'),
      url_valid: true,
    });
    const uploaded = events.find((e) => e.event === 'uploaded') as { status: number; file: string; keys: string[]; url_valid: boolean };
    expect(uploaded.status).toBe(201);
    expect(uploaded.keys).toEqual(['url', 'file', 'created_at']);
    expect(uploaded.url_valid).toBe(true);
    expect(uploaded.file).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${network.httpPort}/media/uploads/\\d{4}/\\d\\d/\\d\\d/node_params_[0-9a-f-]{36}\\.mpk$`));
    expect((await repository.download(uploaded.file)).toString('latin1')).toBe('\x82\xa4from\xa6python');

    expect(events.find((e) => e.event === 'received')).toEqual({ event: 'received', topic: 'general/nodes', command: 'ping' });
    expect(atResearcher[0]).toEqual({
      protocol_version: '1',
      researcher_id: 'researcher_ts',
      node_id: 'node_py',
      success: true,
      sequence: 7,
      command: 'pong',
    });
  } finally {
    await researcher.close();
    await network.close();
  }
});
