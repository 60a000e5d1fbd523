/**
 * A node transport: how requests reach the node agent and how its replies, errors, scalars and log lines go back.
 * The agent handles requests in one form (the v4.5 message shapes of src/protocol) whatever the network speaks;
 * each transport translates. Two implementations: Fed-BioMed v4.5 (MQTT + HTTP file repository, below) and
 * Fed-BioMed v6 (gRPC, transport-v6.ts).
 */
import type { NodeToResearcherMessage, ResearcherToNodeMessage } from '../src/protocol';
import type { ErrorMessage } from '../src/protocol/messages';
import { Messaging, type InvalidMessage } from '../src/transport/mqtt';
import { RepositoryClient, type DownloadOptions } from '../src/transport/repository';
import type { Logger } from '../src/transport/logger';
import type { NodeConfig } from './config';

/**
 * Where the reply to a request goes, as the transport needs it (v6: the request id). Plain JSON: it is stored
 * with a queued train request so the reply finds its way after a node restart. v4.5 needs none.
 */
export type ReplyRoute = Record<string, unknown> | undefined;

export interface NodeTransportHandlers {
  /** A validated request, in the agent's shapes; its reply is sent with `route`. */
  request(message: ResearcherToNodeMessage, route: ReplyRoute): void;
  /** The link to the researcher(s) went down / came back (the agent holds a round's reply meanwhile). */
  offline(): void;
  reconnect(): void;
}

export interface NodeTransport {
  /** For the node's "ready" log line, e.g. `broker mqtt://…` or `researcher localhost:50051 (v6)`. */
  readonly description: string;
  /** Whether the link to the researcher(s) is up now (news such as logs and scalars is dropped while it is not). */
  readonly connected: boolean;
  start(handlers: NodeTransportHandlers): Promise<void>;
  /** Sends a reply, error, scalar or log line; `route` is the one given with the request it answers. */
  send(message: NodeToResearcherMessage | ErrorMessage, route?: ReplyRoute): Promise<void>;
  /** The agent chose not to answer a request (a v4.5 search without match): v6 answers anyway. */
  noReply(route: ReplyRoute): Promise<void>;
  /** Content a request refers to by URL (training plan, weights), within the given size and time. */
  download(url: string, options?: Pick<DownloadOptions, 'maxBytes' | 'deadlineMs'>): Promise<Buffer>;
  /** Publishes a result file; resolves to the URL a reply names it by. */
  upload(data: Uint8Array, fileName: string): Promise<string>;
  close(): Promise<void>;
}

/** Fed-BioMed v4.5: MQTT broker for messages, HTTP file repository for plans and weights. */
export class MqttNodeTransport implements NodeTransport {
  private messaging: Messaging | undefined;
  private readonly repository: RepositoryClient;

  private readonly onInvalid: (invalid: InvalidMessage) => void;
  private readonly publishTimeoutMs: number | undefined;

  constructor(private readonly config: NodeConfig, private readonly logger: Logger, options: {
    repository?: { retries?: number; downloadTimeoutMs?: number; uploadTimeoutMs?: number; downloadFrom?: 'uploads' | 'any' };
    publishTimeoutMs?: number;
    onInvalid?: (invalid: InvalidMessage) => void;
  } = {}) {
    this.onInvalid = options.onInvalid ?? (() => undefined);
    this.publishTimeoutMs = options.publishTimeoutMs;
    // Files come from this node's repository only: a URL from the wire cannot make the node fetch anything else.
    // The network's CA (repository_ca, else broker_ca) and the client certificate also serve an https repository.
    this.repository = new RepositoryClient({ uploadsUrl: config.uploadsUrl, logger, downloadFrom: 'uploads',
      tls: { caFile: config.repositoryCa ?? config.brokerCa, certFile: config.clientCert, keyFile: config.clientKey },
      ...options.repository });
  }

  get connected(): boolean {
    return this.messaging?.connected ?? false;
  }

  get description(): string {
    return `broker ${this.config.broker}`;
  }

  async start(handlers: NodeTransportHandlers): Promise<void> {
    const { config } = this;
    const messaging = await Messaging.connect({
      role: 'node', nodeId: config.nodeId, brokerUrl: config.broker, username: config.brokerUsername,
      password: config.brokerPassword, caFile: config.brokerCa, certFile: config.clientCert, keyFile: config.clientKey,
      logger: this.logger,
      publishTimeoutMs: this.publishTimeoutMs,
    });
    this.messaging = messaging;
    messaging.on('invalid', (invalid) => this.onInvalid(invalid));
    messaging.on('offline', () => handlers.offline());
    messaging.on('reconnect', () => handlers.reconnect());
    messaging.onMessage((message) => handlers.request(message as ResearcherToNodeMessage, undefined));
  }

  send(message: NodeToResearcherMessage | ErrorMessage): Promise<void> {
    if (!this.messaging) return Promise.reject(new Error('the MQTT transport is not started'));
    return this.messaging.send(message);
  }

  async noReply(): Promise<void> {
    // A v4.5 node stays silent.
  }

  download(url: string, options?: Pick<DownloadOptions, 'maxBytes' | 'deadlineMs'>): Promise<Buffer> {
    return this.repository.download(url, options);
  }

  upload(data: Uint8Array, fileName: string): Promise<string> {
    return this.repository.upload(Buffer.from(data.buffer, data.byteOffset, data.byteLength), fileName);
  }

  async close(): Promise<void> {
    await this.messaging?.close();
    this.messaging = undefined;
  }
}
