/**
 * The embedded MQTT broker: aedes, listening on a TCP port, run in a worker thread.
 * Why a worker: aedes 1.x is an ES module that a CommonJS program can only load natively (jest's module loader
 * cannot), and a broker on its own thread keeps serving pings and messages while the main thread is busy
 * training a model synchronously.
 */
import { Worker } from 'worker_threads';
import { describeError } from './logger';
import type { BrokerAuth } from './broker-auth';

export interface EmbeddedBrokerOptions {
  /** Interface to bind. Default 127.0.0.1 (this machine only). */
  host?: string;
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number;
  /** Per-client credentials and identities (broker-auth.ts); without it the broker is open, as Fed-BioMed's. */
  auth?: BrokerAuth;
  /** Told of every refused connection, publish and subscription (with auth). */
  onRefused?: (message: string) => void;
}

export interface EmbeddedBroker {
  /** `mqtt://HOST:PORT` for clients on this machine (or on the network when bound to a public interface). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Disconnects every client and stops listening. Idempotent. */
  close(): Promise<void>;
}

type WorkerReply = { type: 'listening'; port: number } | { type: 'error'; message: string } | { type: 'closed' }
  | { type: 'refused'; message: string };

// Plain CommonJS run by the worker: create the broker, listen, report the port, close on request.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('worker_threads');
const net = require('net');
const { Aedes } = require(workerData.aedesPath);
const crypto = require('crypto');
const NODE_TOPICS = ['general/researcher', 'general/monitoring', 'general/logger'];
const auth = workerData.auth;
const users = auth ? new Map(auth.clients.map((c) => [c.username, c])) : undefined;
function passwordOk(password, hash) {
  const [, salt, key] = hash.split(':');
  const expected = Buffer.from(key, 'base64');
  const got = crypto.scryptSync(password, Buffer.from(salt, 'base64'), expected.length);
  return got.length === expected.length && crypto.timingSafeEqual(got, expected);
}
// The sender's id as every peer will read it: JSON's last duplicate key wins, as in Python and in our parser;
// NaN / Infinity (Python's JSON) are made parseable first (inside strings the swap is harmless here).
function senderId(payload, key) {
  try {
    const value = JSON.parse(payload.toString('utf8').replace(/-?Infinity|NaN/g, 'null'));
    return value && typeof value === 'object' && !Array.isArray(value) ? value[key] : undefined;
  } catch (err) {
    return undefined;
  }
}
function publishProblem(who, packet) {
  if (packet.topic.startsWith('$SYS/')) return 'reserved topic';
  if (who.role === 'node') {
    if (!NODE_TOPICS.includes(packet.topic)) return 'a node publishes only on ' + NODE_TOPICS.join(', ');
    if (senderId(packet.payload, 'node_id') !== who.id) return 'node_id is not ' + who.id;
    return undefined;
  }
  if (who.role === 'researcher') {
    if (!/^general\\/[^/]+$/.test(packet.topic) || NODE_TOPICS.includes(packet.topic)) return 'a researcher publishes only on general/nodes and general/<node id>';
    if (senderId(packet.payload, 'researcher_id') !== who.id) return 'researcher_id is not ' + who.id;
    return undefined;
  }
  return 'an observer publishes nothing';
}
function subscriptionAllowed(who, topic) {
  if (who.role === 'observer') return topic === 'general/#' || /^general\\/[^/#+]+$/.test(topic);
  if (who.role === 'node') return topic === 'general/nodes' || topic === 'general/' + who.id;
  return NODE_TOPICS.includes(topic);
}
function report(text) {
  parentPort.postMessage({ type: 'refused', message: text });
}
(async () => {
  const broker = await Aedes.createBroker({ heartbeatInterval: 3600000 });
  if (users) {
    broker.authenticate = (client, username, password, done) => {
      const entry = users.get(username);
      if (!entry || !password || !passwordOk(password.toString('utf8'), entry.password)) {
        report('connection refused: bad user name or password (' + JSON.stringify(String(username).slice(0, 64)) + ')');
        const error = new Error('bad user name or password');
        error.returnCode = 4;
        return done(error, false);
      }
      client.fbts = entry;
      done(null, true);
    };
    broker.authorizePublish = (client, packet, done) => {
      const who = client && client.fbts;
      const problem = who ? publishProblem(who, packet) : 'not authenticated';
      if (problem) {
        report('publish refused from ' + (who ? who.username : '?') + ' on ' + packet.topic + ': ' + problem);
        return done(new Error(problem));
      }
      done(null);
    };
    broker.authorizeSubscribe = (client, sub, done) => {
      const who = client && client.fbts;
      if (!who || !subscriptionAllowed(who, sub.topic)) {
        report('subscription refused for ' + (who ? who.username : '?') + ': ' + sub.topic);
        return done(null, null);
      }
      done(null, sub);
    };
  }
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
    workerData: { aedesPath: require.resolve('aedes'), host, port: requestedPort, auth: options.auth },
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

  worker.on('message', (reply: WorkerReply) => {
    if (reply.type === 'refused') options.onRefused?.(reply.message);
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
