/**
 * The node side of Fed-BioMed v6's gRPC transport (fedbiomed/transport/client.py), as a hospital node runs it:
 * the node dials out to the researcher over TLS, long-polls `GetTaskUnary` (one message per call), sends each reply
 * as one `ReplyTask` client stream, and logs / training scalars through `Feedback`.
 *
 * Trust: v6 trusts whatever certificate the researcher presents, at every connection. We trust it on first use
 * and pin it in the node directory: a later connection presenting another certificate is refused with an error
 * naming both fingerprints (delete the pin file to accept a new researcher certificate). The researcher id is the
 * certificate subject's O=; a message carrying another researcher_id is refused, as v6 does.
 */
import { FedbiomedTsError } from '../../errors';
import * as fs from 'fs';
import * as path from 'path';
import * as tls from 'tls';
import { X509Certificate } from 'crypto';
import * as grpc from '@grpc/grpc-js';
import { backoffDelay, sleep, type BackoffOptions } from '../backoff';
import { describeError, silentLogger, type Logger } from '../logger';
import { ChunkAssembler, toChunks } from './chunks';
import { researcherClient, V6_POLL_DEADLINE_MS, type FeedbackMessageProto, type ResearcherServiceClient,
  type TaskChunk } from './grpc';
import { decodeV6Message, encodeV6Message, V6_PROTOCOL_VERSION, type V6Message } from './messages';

/** v6's reconnect rhythm: GRPC_CLIENT_CONN_RETRY_TIMEOUT = 2 s; ours grows from 0.5 s to 2 s. */
const V6_RECONNECT_BACKOFF: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 2_000, factor: 2 };
/** MAX_SEND_RETRIES and the delay between tries. */
const SEND_RETRIES = 5;
const SEND_RETRY_DELAY_MS = 2_000;

class CertificateError extends FedbiomedTsError {}

export interface ResearcherIdentity {
  pem: string;
  /** SHA-256 fingerprint, colon-separated hex. */
  fingerprint: string;
  /** The subject's O= (Fed-BioMed writes the researcher id there). */
  researcherId: string;
  /** Subject CN and subjectAltName, for the hostname check. */
  commonName: string;
  subjectAltName: string | undefined;
}

export function identityOf(pem: string): ResearcherIdentity {
  const cert = new X509Certificate(pem);
  const field = (name: string) => cert.subject.split('\n').find((l) => l.startsWith(`${name}=`))?.slice(name.length + 1);
  const researcherId = field('O');
  if (!researcherId) throw new CertificateError(`the researcher certificate has no O= (researcher id) in "${cert.subject}"`);
  return { pem: cert.toString(), fingerprint: cert.fingerprint256, researcherId, commonName: field('CN') ?? '',
    subjectAltName: cert.subjectAltName };
}

/** The certificate the endpoint presents (v6's `ssl.get_server_certificate`), without trusting it yet. */
function fetchServerCertificate(host: string, port: number, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, servername: isIp(host) ? undefined : host });
    const timer = setTimeout(() => socket.destroy(new Error(`no TLS answer from ${host}:${port} in ${timeoutMs} ms`)),
      timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const raw = socket.getPeerCertificate()?.raw;
      socket.end();
      if (!raw) return reject(new CertificateError(`${host}:${port} presented no certificate`));
      resolve(new X509Certificate(raw).toString());
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function isIp(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}

/**
 * Trust on first use: the first certificate seen is written to `pinFile`; afterwards only that certificate is
 * accepted. Returns the identity to trust, or throws CertificateError for a different certificate.
 */
function pinOrCheck(pem: string, pinFile: string): ResearcherIdentity {
  const seen = identityOf(pem);
  if (!fs.existsSync(pinFile)) {
    fs.mkdirSync(path.dirname(pinFile), { recursive: true });
    fs.writeFileSync(pinFile, seen.pem, { mode: 0o644 });
    return seen;
  }
  const pinned = identityOf(fs.readFileSync(pinFile, 'utf8'));
  if (pinned.fingerprint !== seen.fingerprint) {
    throw new CertificateError(`the researcher presents certificate ${seen.fingerprint} (O=${seen.researcherId}), ` +
      `not the pinned ${pinned.fingerprint} (O=${pinned.researcherId}) from ${pinFile}: refusing to connect. ` +
      'If the researcher really changed its certificate, delete that file to trust the new one.');
  }
  return pinned;
}

/** gRPC's hostname check against the pinned certificate: CN or a DNS / IP subjectAltName must match the host. */
function hostnameCheck(host: string, identity: ResearcherIdentity): Error | undefined {
  const names = (identity.subjectAltName ?? '').split(',').map((s) => s.trim())
    .map((s) => s.replace(/^(DNS|IP Address):/, ''));
  if (identity.commonName === host || names.includes(host)) return undefined;
  return new CertificateError(`the researcher certificate is for "${identity.commonName}"` +
    `${identity.subjectAltName ? ` (${identity.subjectAltName})` : ''}, not "${host}"`);
}

export interface V6NodeClientOptions {
  host: string;
  port: number;
  nodeId: string;
  /** Where the researcher certificate is pinned (trust on first use). */
  pinFile: string;
  logger?: Logger;
  backoff?: BackoffOptions;
  /** Deadline of one long poll (v6: 3600 s). */
  pollDeadlineMs?: number;
  /** Sees every message as it travels (reassembled task bytes in, encoded reply bytes out, feedback): recording. */
  tap?: (event: V6TapEvent) => void;
}

type V6TapEvent =
  | { kind: 'task'; bytes: Uint8Array }
  | { kind: 'reply'; bytes: Uint8Array }
  | { kind: 'feedback'; feedback: FeedbackMessageProto };

export type V6MessageHandler = (message: V6Message) => void;

export interface V6NodeClientEvents {
  /** A poll reached the researcher (first time and after each reconnection). */
  connected?: (identity: ResearcherIdentity) => void;
  /** The researcher is unreachable or refused; polling resumes after a backoff. */
  disconnected?: (reason: string) => void;
  /** A task that could not be decoded or validated; the request id and researcher id when readable. */
  invalid?: (error: Error, raw: Uint8Array) => void;
}

export class V6NodeClient {
  private client: ResearcherServiceClient | undefined;
  /** The connection being set up, shared by the poll loop and senders that need it at the same time. */
  private connecting: Promise<ResearcherServiceClient> | undefined;
  private identity: ResearcherIdentity | undefined;
  private stopped = false;
  private call: grpc.ClientReadableStream<TaskChunk> | undefined;
  private loop: Promise<void> | undefined;
  private online = false;
  private lastCertificateError: string | undefined;
  private readonly logger: Logger;

  constructor(private readonly options: V6NodeClientOptions, private readonly events: V6NodeClientEvents = {}) {
    this.logger = options.logger ?? silentLogger;
  }

  get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }

  /** The researcher id from the pinned certificate, once connected. */
  get researcherId(): string | undefined {
    return this.identity?.researcherId;
  }

  get connected(): boolean {
    return this.online;
  }

  /** Starts the poll loop; resolves at once (connection and reconnection happen in the background). */
  start(onMessage: V6MessageHandler): void {
    if (this.loop) throw new Error('the v6 client is started already');
    this.loop = this.pollForever(onMessage);
  }

  /** Connects (TOFU) if needed; throws CertificateError for a certificate that does not match the pin. */
  private ensureClient(): Promise<ResearcherServiceClient> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<ResearcherServiceClient> {
    const { host, port } = this.options;
    const pem = await fetchServerCertificate(host, port);
    const identity = pinOrCheck(pem, this.options.pinFile);
    const hostProblem = hostnameCheck(host, identity);
    if (hostProblem) throw hostProblem;
    const credentials = grpc.credentials.createSsl(Buffer.from(identity.pem), null, null, {
      // The pin above decided trust; this keeps gRPC's hostname rule with a CN-only certificate (v6 certificates
      // have no subjectAltName unless the CN is an IP address).
      checkServerIdentity: (hostname) => hostnameCheck(hostname, identity),
    });
    this.identity = identity;
    this.client = researcherClient(`${host}:${port}`, credentials);
    return this.client;
  }

  private dropClient(): void {
    this.client?.close();
    this.client = undefined;
  }

  private async pollForever(onMessage: V6MessageHandler): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      try {
        const client = await this.ensureClient();
        const message = await this.pollOnce(client, () => {
          attempt = 0;
          if (!this.online) {
            this.online = true;
            this.events.connected?.(this.identity as ResearcherIdentity);
          }
        });
        if (message) this.deliver(message, onMessage);
      } catch (err) {
        if (this.stopped) break;
        const deadline = (err as grpc.ServiceError).code === grpc.status.DEADLINE_EXCEEDED;
        if (deadline) continue; // an idle long poll: poll again at once, as v6 does
        if (err instanceof CertificateError) attempt = Math.max(attempt, 8); // no point retrying fast
        const reason = describeError(err);
        if (this.online) {
          this.online = false;
          this.events.disconnected?.(reason);
        }
        // A certificate problem is logged once (until it changes), then retried quietly: it needs an operator.
        if (err instanceof CertificateError && reason !== this.lastCertificateError) this.logger.error(reason);
        else this.logger.debug(`researcher ${this.address} unreachable: ${reason}`);
        this.dropClient();
        if (err instanceof CertificateError) this.lastCertificateError = reason;
        await sleep(backoffDelay(attempt++, this.options.backoff ?? V6_RECONNECT_BACKOFF));
      }
    }
  }

  private deliver(raw: Buffer, onMessage: V6MessageHandler): void {
    this.options.tap?.({ kind: 'task', bytes: raw });
    let message: V6Message;
    try {
      message = decodeV6Message(raw);
      const rid = message.fields['researcher_id'];
      if (typeof rid === 'string' && rid !== this.identity?.researcherId) {
        throw new CertificateError(`Suspected malicious researcher activity: a message claims researcher ${rid}, ` +
          `the certificate says ${this.identity?.researcherId}`);
      }
    } catch (err) {
      this.events.invalid?.(err as Error, raw);
      return;
    }
    onMessage(message);
  }

  /** One long poll: resolves with one reassembled message, or undefined when the stream ended with none. */
  private pollOnce(client: ResearcherServiceClient, onOpen: () => void): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + (this.options.pollDeadlineMs ?? V6_POLL_DEADLINE_MS);
      const call = client.GetTaskUnary({ node: this.options.nodeId, protocol_version: V6_PROTOCOL_VERSION }, { deadline });
      this.call = call;
      const assembler = new ChunkAssembler();
      let message: Buffer | undefined;
      let failed = false;
      call.on('metadata', onOpen);
      call.on('data', (chunk: TaskChunk) => {
        if (failed) return;
        onOpen();
        try {
          const whole = assembler.push(chunk);
          if (whole) message = whole;
        } catch (err) {
          failed = true;
          call.cancel();
          reject(err);
        }
      });
      call.on('error', (err: grpc.ServiceError) => {
        if (failed) return;
        failed = true;
        reject(err);
      });
      call.on('end', () => {
        if (failed) return;
        try {
          assembler.finish();
          resolve(message);
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  /** Sends one message as one ReplyTask stream; retries 5 times, 2 s apart, reconnecting between tries. */
  async send(message: V6Message): Promise<void> {
    const bytes = encodeV6Message(message);
    this.options.tap?.({ kind: 'reply', bytes });
    const chunks = toChunks(bytes);
    let lastError: unknown;
    for (let attempt = 0; attempt < SEND_RETRIES && !this.stopped; attempt++) {
      if (attempt > 0) await sleep(SEND_RETRY_DELAY_MS);
      try {
        const client = await this.ensureClient();
        await new Promise<void>((resolve, reject) => {
          const stream = client.ReplyTask((err) => (err ? reject(err) : resolve()));
          for (const chunk of chunks) stream.write(chunk);
          stream.end();
        });
        return;
      } catch (err) {
        lastError = err;
        if (err instanceof CertificateError) break;
        this.logger.debug(`ReplyTask ${message.className} failed (try ${attempt + 1}): ${describeError(err)}`);
      }
    }
    throw new Error(`cannot send ${message.className} to researcher ${this.address}: ${describeError(lastError)}`);
  }

  /** Sends a log or scalar through Feedback (one try: losing a log line must not hold anything up). */
  async feedback(feedback: Omit<FeedbackMessageProto, 'protocol_version'>): Promise<void> {
    const client = await this.ensureClient();
    const message: FeedbackMessageProto = { protocol_version: V6_PROTOCOL_VERSION, ...feedback };
    this.options.tap?.({ kind: 'feedback', feedback: message });
    await new Promise<void>((resolve, reject) => {
      client.Feedback(message, { deadline: Date.now() + 10_000 },
        (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.call?.cancel();
    await this.loop?.catch(() => undefined);
    this.dropClient();
    this.online = false;
  }
}
