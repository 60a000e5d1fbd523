/**
 * `fedbiomed-ts network …`: the network both sides of an experiment meet on.
 *   network start [--host H] [--mqtt-port P] [--http-port P] [--data DIR]
 *       runs the embedded MQTT broker and file repository, prints their URLs, stops on Ctrl+C / SIGTERM.
 *   network spy [--broker URL]
 *       prints every message on the Fed-BioMed topics: time, topic, command, valid or invalid (+ why). It only
 *       listens, so it cannot disturb Python peers.
 * The transport modules are loaded when a command runs, so registering these commands costs nothing to others.
 */
import { Command, InvalidArgumentError } from 'commander';
import type { EmbeddedNetwork } from '../transport/embedded';

/** Fed-BioMed's defaults: MQTT_BROKER_PORT 1883, UPLOADS_URL http://localhost:8844/upload/. */
const DEFAULT_MQTT_PORT = 1883;
const DEFAULT_HTTP_PORT = 8844;

interface StartOptions {
  host: string;
  mqttPort: number;
  httpPort: number;
  data?: string;
  advertise?: string;
  maxUploadMb?: number;
  auth?: string;
}

interface SpyCommandOptions {
  broker?: string;
  topic: string;
  json?: boolean;
  payload?: boolean;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a TCP port (0-65535; 0 picks a free one)`);
  }
  return port;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a positive number`);
  return n;
}

/** Resolves on the first SIGINT or SIGTERM, removing its listeners afterwards. */
function untilStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** What `network start` prints: the URLs, and the same as Fed-BioMed environment variables for Python peers. */
export function describeNetwork(network: EmbeddedNetwork): string {
  const mqtt = new URL(network.mqttUrl);
  return [
    `MQTT broker      ${network.mqttUrl}`,
    `upload URL       ${network.uploadsUrl}`,
    `files stored in  ${network.dataDir}`,
    `Python Fed-BioMed peers: MQTT_BROKER=${mqtt.hostname.replace(/^\[|\]$/g, '')} MQTT_BROKER_PORT=${mqtt.port} ` +
      `UPLOADS_URL=${network.uploadsUrl}`,
  ].join('\n');
}

async function start(options: StartOptions): Promise<void> {
  const { startEmbeddedNetwork } = await import('../transport/embedded');
  const { consoleLogger } = await import('../transport/logger');
  const { loadBrokerAuth } = await import('../transport/broker-auth');
  const auth = options.auth ? loadBrokerAuth(options.auth) : undefined;
  const network = await startEmbeddedNetwork({
    auth,
    host: options.host,
    mqttPort: options.mqttPort,
    httpPort: options.httpPort,
    dataDir: options.data,
    advertisedHost: options.advertise,
    maxUploadBytes: options.maxUploadMb === undefined ? undefined : Math.floor(options.maxUploadMb * 1024 * 1024),
    logger: consoleLogger('network', 'warn'),
  });
  const stopped = untilStopSignal();
  process.stdout.write(`${describeNetwork(network)}\n`);
  if (auth) process.stdout.write(`broker identities from ${options.auth}: ${auth.clients.length} client(s); anonymous clients refused\n`);
  process.stdout.write('running; stop with Ctrl+C\n');
  const signal = await stopped;
  await network.close();
  process.stdout.write(`stopped (${signal})\n`);
}

/** Fed-BioMed's MQTT_BROKER / MQTT_BROKER_PORT when set, otherwise this machine's port 1883. */
function defaultBrokerUrl(): string {
  const host = process.env.MQTT_BROKER || '127.0.0.1';
  const port = process.env.MQTT_BROKER_PORT || String(DEFAULT_MQTT_PORT);
  return `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

async function spy(options: SpyCommandOptions): Promise<void> {
  const { startSpy, formatSpyLine } = await import('../transport/spy');
  const { redactBrokerUrl } = await import('../transport/connection');
  const { consoleLogger } = await import('../transport/logger');
  const { payloadExcerpt } = await import('../transport/mqtt');
  const brokerUrl = options.broker ?? defaultBrokerUrl();
  const connection = await startSpy({
    brokerUrl,
    topic: options.topic,
    logger: consoleLogger('spy', 'warn'),
    onRecord(record, payload) {
      if (options.payload) record.payload = payloadExcerpt(payload);
      process.stdout.write((options.json ? JSON.stringify(record) : formatSpyLine(record)) + '\n');
    },
  });
  const stopped = untilStopSignal();
  connection.on('offline', () => process.stderr.write(`[spy] connection to ${connection.brokerLabel} lost, reconnecting\n`));
  connection.on('reconnect', () => process.stderr.write(`[spy] reconnected to ${connection.brokerLabel}\n`));
  process.stderr.write(`[spy] listening on ${options.topic} at ${redactBrokerUrl(brokerUrl)}; stop with Ctrl+C\n`);
  await stopped;
  await connection.close();
}

export function register(program: Command): void {
  const network = program.command('network').description('the MQTT broker and file repository of a Fed-BioMed network');

  network
    .command('start')
    .description('run an embedded MQTT broker and file repository (Fed-BioMed v4.5 compatible) until stopped')
    .option('--host <host>', 'interface to bind; 0.0.0.0 to serve other machines', '127.0.0.1')
    .option('--mqtt-port <port>', 'MQTT port (0 picks a free one)', parsePort, DEFAULT_MQTT_PORT)
    .option('--http-port <port>', 'repository HTTP port (0 picks a free one)', parsePort, DEFAULT_HTTP_PORT)
    .option('--data <dir>', 'directory for uploaded files (default: a temporary one, removed on stop)')
    .option('--advertise <host>', 'host name or address to put in URLs (default: the bound address)')
    .option('--max-upload-mb <mb>', 'largest upload accepted, in MiB (default 2048)', parsePositive)
    .option('--auth <file>', 'per-client credentials and ids (YAML); each client may only speak under its own id')
    .action((options: StartOptions) => start(options));

  network
    .command('hash-password')
    .description('read a password on stdin, print its hash for a --auth file (the password is never stored)')
    .action(async () => {
      const { hashPassword } = await import('../transport/broker-auth');
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
      // A plain Error, not commander's InvalidArgumentError: thrown from an action, commander would not print it
      // and main() stays silent for commander's own errors (the user saw nothing but exit code 1).
      if (password === '') throw new Error('no password on stdin (pipe it in: printf %s "$PASSWORD" | fedbiomed-ts network hash-password)');
      process.stdout.write(`${hashPassword(password)}\n`);
    });

  network
    .command('spy')
    .description('print every message on the network: time, topic, command, valid or invalid (and why)')
    .option('--broker <url>', 'broker URL, mqtt:// or mqtts:// (default: MQTT_BROKER/MQTT_BROKER_PORT, else mqtt://127.0.0.1:1883)')
    .option('--topic <filter>', 'MQTT topic filter to listen to', 'general/#')
    .option('--json', 'one JSON object per message')
    .option('--payload', 'also print the start of each payload')
    .action((options: SpyCommandOptions) => spy(options));
}
