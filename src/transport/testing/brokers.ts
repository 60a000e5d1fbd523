/**
 * Test harness: real MQTT brokers that tests can start, stop and restart on the same port.
 * Used by the transport tests and available to node/researcher integration tests.
 */
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { startBroker, type EmbeddedBroker } from '../broker';

export interface TestBroker {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Starts again on the same port (after stop). */
  restart(): Promise<void>;
  /** Mosquitto only: SIGSTOP, a broker that hangs (stops reading its sockets) until stopped. */
  freeze?(): void;
}

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port, or rejects after timeoutMs. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, host);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startAedes(): Promise<TestBroker> {
  let broker: EmbeddedBroker | undefined = await startBroker({ port: 0 });
  const port = broker.port;
  return {
    name: 'aedes',
    url: broker.url,
    port,
    async stop() {
      await broker?.close();
      broker = undefined;
    },
    async restart() {
      broker = await startBroker({ port });
    },
  };
}

const MOSQUITTO_CANDIDATES = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'];

/** Path of the mosquitto binary; throws (never skips) when it is missing, since CI installs it. */
export function findMosquitto(): string {
  const found = MOSQUITTO_CANDIDATES.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(
      `Mosquitto is required by this test and was not found (looked in ${MOSQUITTO_CANDIDATES.join(', ')}). ` +
        'Install it with `apt-get install -y mosquitto` (.ci/run does).',
    );
  }
  return found;
}

export interface MosquittoOptions {
  /** Lines added to the listener's configuration (TLS files, password file…). */
  listenerConfig?: string[];
  /** Default true. */
  allowAnonymous?: boolean;
  /** URL scheme clients use: mqtts when the listener has TLS. Default mqtt. */
  scheme?: 'mqtt' | 'mqtts';
  /** Host name in the URL. Default 127.0.0.1. */
  urlHost?: string;
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<TestBroker> {
  const binary = findMosquitto();
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-mosquitto-'));
    const config = path.join(dir, 'mosquitto.conf');
    const lines = [
      `listener ${port} 127.0.0.1`,
      `allow_anonymous ${options.allowAnonymous ?? true}`,
      'persistence false',
      ...(options.listenerConfig ?? []),
    ];
    fs.writeFileSync(config, lines.join('\n') + '\n');
    const proc = spawn(binary, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code) => reject(new Error(`mosquitto exited with code ${code}: ${output.trim()}`))),
    );
    await Promise.race([waitForPort(port), exited]);
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      // A frozen (SIGSTOPped) broker would hold SIGTERM until continued: end it outright.
      proc.kill(frozen ? 'SIGKILL' : 'SIGTERM');
      frozen = false;
    });
  };
  let frozen = false;

  await launch();
  return {
    name: 'mosquitto',
    url: `${options.scheme ?? 'mqtt'}://${options.urlHost ?? '127.0.0.1'}:${port}`,
    port,
    stop: async () => {
      await stop();
    },
    restart: launch,
    freeze: () => {
      frozen = true;
      child?.kill('SIGSTOP');
    },
  };
}
