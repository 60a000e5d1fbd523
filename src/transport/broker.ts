/**
 * The embedded MQTT broker: aedes, listening on a TCP port, run in a worker thread.
 * Why a worker: aedes 1.x is an ES module that a CommonJS program can only load natively (jest's module loader
 * cannot), and a broker on its own thread keeps serving pings and messages while the main thread is busy
 * training a model synchronously.
 */
import { Worker } from 'worker_threads';
import { describeError } from './logger';

export interface EmbeddedBrokerOptions {
  /** Interface to bind. Default 127.0.0.1 (this machine only). */
  host?: string;
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number;
}

export interface EmbeddedBroker {
  /** `mqtt://HOST:PORT` for clients on this machine (or on the network when bound to a public interface). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Disconnects every client and stops listening. Idempotent. */
  close(): Promise<void>;
}

type WorkerReply = { type: 'listening'; port: number } | { type: 'error'; message: string } | { type: 'closed' };

// Plain CommonJS run by the worker: create the broker, listen, report the port, close on request.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('worker_threads');
const net = require('net');
const { Aedes } = require(workerData.aedesPath);
(async () => {
  const broker = await Aedes.createBroker({ heartbeatInterval: 3600000 });
  const server = net.createServer(broker.handle);
  server.on('error', (err) => parentPort.postMessage({ type: 'error', message: (err.code ? err.code + ': ' : '') + err.message }));
  server.listen(workerData.port, workerData.host, () => {
    parentPort.postMessage({ type: 'listening', port: server.address().port });
  });
  parentPort.on('message', (msg) => {
    if (msg !== 'close') return;
    server.close();
    broker.close(() => parentPort.postMessage({ type: 'closed' }));
  });
})().catch((err) => parentPort.postMessage({ type: 'error', message: String(err && err.message || err) }));
`;

export function formatHostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export async function startBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const requestedPort = options.port ?? 0;
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { aedesPath: require.resolve('aedes'), host, port: requestedPort },
  });

  const port = await new Promise<number>((resolve, reject) => {
    const onMessage = (reply: WorkerReply) => {
      if (reply.type === 'listening') {
        cleanup();
        resolve(reply.port);
      } else if (reply.type === 'error') {
        cleanup();
        void worker.terminate();
        reject(new Error(`cannot start the embedded MQTT broker on ${host}:${requestedPort}: ${reply.message}`));
      }
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new Error(`embedded MQTT broker failed: ${describeError(err)}`));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(guard);
        void worker.terminate().then(() => resolve());
      };
      // aedes closes every client connection first; if that hangs, the worker is stopped anyway.
      const guard = setTimeout(done, 2000);
      worker.on('message', (reply: WorkerReply) => {
        if (reply.type === 'closed') done();
      });
      worker.postMessage('close');
    });
    return closing;
  };

  return { url: `mqtt://${formatHostForUrl(host)}:${port}`, host, port, close };
}
