/**
 * One MQTT connection configured the way Fed-BioMed v4.5 peers connect (MQTT 3.1.1, clean session, keepalive 60,
 * QoS 0, no retain, broker-assigned client id), plus what the Python client lacks: TLS and credentials as options,
 * and automatic reconnection with exponential backoff that restores the subscriptions every time.
 * It moves raw payloads; validation lives one level up (mqtt.ts).
 */
import { EventEmitter } from 'events';
import * as fs from 'fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
import { describeError, silentLogger, type Logger } from './logger';

export interface ConnectionOptions {
  /** `mqtt://host[:port]` or `mqtts://host[:port]` (credentials may also be given as `mqtt://user:pass@host`). */
  brokerUrl: string;
  username?: string;
  password?: string;
  /** PEM file of the certificate authority that signed the broker's certificate (mqtts). */
  caFile?: string;
  /** The same, as PEM text or bytes. */
  ca?: string | Buffer;
  /** PEM client certificate and its key, for brokers that require one (mqtts). */
  certFile?: string;
  keyFile?: string;
  /** Set false only to accept a self-signed broker certificate without a CA (tests, never production). */
  rejectUnauthorized?: boolean;
  /** Topics (re)subscribed at every connection, QoS 0. */
  subscriptions: string[];
  /** How long `open()` keeps trying before it gives up (ms). Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * How long a publish may wait to be handed to the broker (ms), offline time included. Default 30 s. Without it,
   * a publish caught by a broker restart while the socket was congested never settles (mqtt.js waits for a
   * 'drain' that a dead socket never emits) and whatever awaits it hangs for ever.
   */
  publishTimeoutMs?: number;
  reconnectBackoff?: BackoffOptions;
  logger?: Logger;
}

export interface ConnectionEvents {
  /** First connection established and subscribed. */
  connect: [];
  /** Connection re-established after a loss, subscriptions restored. */
  reconnect: [];
  /** Connection lost; reconnection attempts follow. */
  offline: [];
  /** A reconnection attempt is scheduled. */
  reconnecting: [{ attempt: number; delayMs: number }];
  /** A publish received on one of the subscriptions. */
  message: [topic: string, payload: Buffer];
}

const KEEPALIVE_SECONDS = 60;
const DEFAULT_PUBLISH_TIMEOUT_MS = 30_000;
const MQTT_3_1_1 = 4;

/** Parses and checks a broker URL, with an error that says what is accepted. */
export function parseBrokerUrl(brokerUrl: string): URL {
  let url: URL;
  try {
    url = new URL(brokerUrl);
  } catch {
    throw new Error(`invalid broker URL ${JSON.stringify(brokerUrl)}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]`);
  }
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') {
    throw new Error(`unsupported broker URL scheme ${JSON.stringify(url.protocol)} in ${brokerUrl}: use mqtt:// or mqtts://`);
  }
  if (!url.hostname) throw new Error(`broker URL ${brokerUrl} has no host`);
  return url;
}

/** Broker URL without credentials, safe to print in logs. */
export function redactBrokerUrl(brokerUrl: string): string {
  try {
    const url = new URL(brokerUrl);
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return brokerUrl;
  }
}

export class MqttConnection extends EventEmitter<ConnectionEvents> {
  private client: MqttClient | undefined;
  private everConnected = false;
  private closing = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly logger: Logger;
  private readonly backoff: BackoffOptions;
  private readonly label: string;

  private constructor(private readonly options: ConnectionOptions) {
    super();
    this.logger = options.logger ?? silentLogger;
    this.backoff = options.reconnectBackoff ?? DEFAULT_BACKOFF;
    this.label = redactBrokerUrl(options.brokerUrl);
  }

  /** Connects and subscribes; retries with backoff until `connectTimeoutMs`, then rejects with the last error. */
  static open(options: ConnectionOptions): Promise<MqttConnection> {
    const connection = new MqttConnection(options);
    return connection.start().then(() => connection);
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  get brokerLabel(): string {
    return this.label;
  }

  /**
   * Publishes `payload` QoS 0, no retain. While offline the message waits for the next connection, within the
   * publish deadline: past it the promise rejects (the message may still go out later, or never).
   */
  publish(topic: string, payload: string | Buffer): Promise<void> {
    const client = this.client;
    if (!client || this.closing) return Promise.reject(new Error(`MQTT connection to ${this.label} is closed`));
    const timeoutMs = this.options.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cannot publish on ${topic} via ${this.label}: not handed ` +
        `to the broker within ${timeoutMs} ms (${client.connected ? 'connection congested' : 'broker unreachable'})`)),
      timeoutMs);
      client.publish(topic, payload, { qos: 0, retain: false }, (err) => {
        clearTimeout(timer);
        if (err) reject(new Error(`cannot publish on ${topic} via ${this.label}: ${describeError(err)}`));
        else resolve();
      });
    });
  }

  /** Disconnects cleanly (pending QoS 0 messages are flushed first when connected). Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const force = !client.connected;
      const guard = setTimeout(() => client.end(true, {}, () => resolve()), 2000);
      client.end(force, {}, () => {
        clearTimeout(guard);
        resolve();
      });
    });
  }

  private clientOptions(): IClientOptions {
    const url = parseBrokerUrl(this.options.brokerUrl);
    const secure = url.protocol === 'mqtts:';
    const ca = this.options.ca ?? (this.options.caFile ? readCaFile(this.options.caFile) : undefined);
    const options: IClientOptions = {
      protocolVersion: MQTT_3_1_1,
      clean: true,
      keepalive: KEEPALIVE_SECONDS,
      // Like paho in Fed-BioMed: an empty client id, so the broker assigns a unique one and two peers can never
      // kick each other off by sharing an id.
      clientId: '',
      // Reconnection is ours (with backoff); mqtt.js would retry at a fixed period.
      reconnectPeriod: 0,
      // Subscriptions are restored by us after every connect, so that we know when they are in place.
      resubscribe: false,
      connectTimeout: Math.min(this.options.connectTimeoutMs ?? 10_000, 30_000),
      queueQoSZero: true,
    };
    if (this.options.username !== undefined) options.username = this.options.username;
    if (this.options.password !== undefined) options.password = this.options.password;
    if (secure) {
      if (ca !== undefined) options.ca = ca;
      if (this.options.certFile) options.cert = readCaFile(this.options.certFile, 'client certificate');
      if (this.options.keyFile) options.key = readCaFile(this.options.keyFile, 'client key');
      options.rejectUnauthorized = this.options.rejectUnauthorized ?? true;
    }
    return options;
  }

  private start(): Promise<void> {
    const deadline = Date.now() + (this.options.connectTimeoutMs ?? 10_000);
    let options: IClientOptions;
    try {
      options = this.clientOptions();
    } catch (err) {
      return Promise.reject(err);
    }
    const client = mqtt.connect(this.options.brokerUrl, options);
    this.client = client;

    return new Promise<void>((resolve, reject) => {
      let lastError = 'no answer';
      let settled = false;
      const fail = (reason: string) => {
        if (settled) return;
        settled = true;
        this.closing = true;
        if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
        client.end(true);
        reject(new Error(`cannot connect to MQTT broker ${this.label}: ${reason}`));
      };

      client.on('connect', () => {
        this.subscribeAll(client).then(
          () => {
            const first = !this.everConnected;
            this.everConnected = true;
            this.attempt = 0;
            if (first) {
              settled = true;
              this.logger.info(`connected to MQTT broker ${this.label}`);
              resolve();
              this.emit('connect');
            } else {
              this.logger.info(`reconnected to MQTT broker ${this.label}, subscriptions restored`);
              this.emit('reconnect');
            }
          },
          (err: unknown) => {
            const reason = `subscription refused: ${describeError(err)}`;
            if (!this.everConnected) fail(reason);
            else this.logger.error(`MQTT broker ${this.label}: ${reason}`);
          },
        );
      });

      client.on('message', (topic, payload) => this.emit('message', topic, payload));

      client.on('error', (err) => {
        lastError = explainConnectionError(err, this.options.brokerUrl);
        const refusedByBroker = typeof (err as { code?: unknown }).code === 'number';
        if (!this.everConnected && refusedByBroker) {
          // CONNACK refusal (bad credentials, not authorised): retrying cannot help.
          fail(lastError);
          return;
        }
        this.logger.debug(`MQTT ${this.label}: ${lastError}`);
      });

      client.on('close', () => {
        if (this.closing) return;
        if (this.everConnected && this.attempt === 0) {
          this.logger.warn(`lost connection to MQTT broker ${this.label}; reconnecting`);
          this.emit('offline');
        }
        const delayMs = backoffDelay(this.attempt, this.backoff);
        if (!this.everConnected && Date.now() + delayMs > deadline) {
          fail(lastError);
          return;
        }
        this.attempt += 1;
        this.emit('reconnecting', { attempt: this.attempt, delayMs });
        if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
        this.reconnectTimer = setTimeout(() => {
          this.reconnectTimer = undefined;
          if (!this.closing) client.reconnect();
        }, delayMs);
      });
    });
  }

  private async subscribeAll(client: MqttClient): Promise<void> {
    if (this.options.subscriptions.length === 0) return;
    const granted = await client.subscribeAsync(this.options.subscriptions, { qos: 0 });
    const refused = granted.filter((g) => g.qos === 128).map((g) => g.topic);
    if (refused.length > 0) throw new Error(`broker refused ${refused.join(', ')}`);
  }
}

function readCaFile(caFile: string, what = 'CA'): Buffer {
  try {
    return fs.readFileSync(caFile);
  } catch (err) {
    throw new Error(`cannot read ${what} file ${caFile}: ${describeError(err)}`, { cause: err });
  }
}

/**
 * A connection error in plain words when it is a TLS mismatch (the usual first-day problems: the wrong scheme for
 * the port, a CA not given, a certificate for another name); other errors as they are.
 */
function explainConnectionError(err: unknown, brokerUrl: string): string {
  const text = describeError(err);
  const code = String((err as { code?: unknown })?.code ?? '');
  const secure = brokerUrl.startsWith('mqtts:');
  if (secure && /wrong version number|WRONG_VERSION_NUMBER|packet length too long|unknown protocol|disconnected before secure TLS/i.test(text + code)) {
    return `${text} — the broker does not speak TLS on this port: use mqtt:// for a plain port, or the broker's TLS port`;
  }
  if (/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|self[- ]signed|unable to verify/i.test(code + text)) {
    return `${text} — the broker's certificate is not signed by a CA this side trusts: give the network's CA ` +
      '(node: broker_ca in config.yaml; researcher: --ca FILE)';
  }
  if (/ALTNAME|Hostname\/IP does not match/i.test(code + text)) {
    return `${text} — the broker's certificate is for another name: use the host name written in its certificate`;
  }
  if (/CERT_HAS_EXPIRED|certificate has expired/i.test(code + text)) return `${text} — the broker's certificate has expired`;
  if (!secure && /ECONNRESET|socket hang up|closed before/i.test(text + code)) {
    return `${text} — the broker closed the connection at once: if this is a TLS port, use mqtts://`;
  }
  return text;
}
