/**
 * Fed-BioMed v4.5 messaging for one component (a node or a researcher): the right subscriptions, the right
 * topic for every message sent, and a receive path that validates every message BEFORE any handler sees it.
 * A malformed message (not JSON, wrong version, unknown command, missing or extra field, wrong type) is logged
 * and dropped; a handler that throws is logged; neither ever stops the component.
 */
import { EventEmitter } from 'events';
import { MqttConnection, type ConnectionOptions } from './connection';
import { describeError, silentLogger, type Logger } from './logger';
import {
  assertValidNodeId,
  inboundDirection,
  LOGGER_TOPIC,
  MONITORING_TOPIC,
  NODES_TOPIC,
  nodeTopic,
  outboundDirection,
  publishTopicProblem,
  RESEARCHER_TOPIC,
  subscriptionsFor,
  type Role,
} from './topics';
import { protocolCodec, type Direction, type ParseResult, type WireCodec, type WireMessage } from './wire';

export type MessagingRole = { role: 'node'; nodeId: string } | { role: 'researcher' };

export type MessagingOptions = MessagingRole &
  Omit<ConnectionOptions, 'subscriptions'> & {
    /** Parser/serialiser of messages; src/protocol's by default. */
    codec?: WireCodec;
  };

export interface MessageContext {
  topic: string;
}

export type MessageHandler = (message: WireMessage, context: MessageContext) => void | Promise<void>;

/** Where a node sends: its replies, its monitoring scalars, its log records. */
export type NodeTarget = 'researcher' | 'monitoring' | 'logger';

export interface InvalidMessage {
  topic: string;
  error: string;
  field?: string;
  /** The start of the payload as text, for logs. */
  excerpt: string;
}

/**
 * The first connection is the resolution of `Messaging.connect` (its `connect` event fires before anyone can
 * listen); afterwards `offline` says the connection was lost and `reconnect` that it is back, subscribed again.
 */
export interface MessagingEvents {
  connect: [];
  reconnect: [];
  offline: [];
  /** A message that failed validation and was dropped. */
  invalid: [InvalidMessage];
}

const EXCERPT_CHARS = 200;

export function payloadExcerpt(payload: Buffer | string): string {
  const text = typeof payload === 'string' ? payload : payload.subarray(0, EXCERPT_CHARS * 4).toString('utf8');
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text;
}

/** Parses and validates one inbound payload; never throws. */
export function parseInbound(codec: WireCodec, payload: Buffer | string, direction: Direction): ParseResult {
  try {
    return codec.parse(payload, direction);
  } catch (err) {
    return { ok: false, error: `validator failed: ${describeError(err)}` };
  }
}

export class Messaging extends EventEmitter<MessagingEvents> {
  private readonly handlers = new Set<MessageHandler>();
  private readonly logger: Logger;
  private readonly codec: WireCodec;
  readonly role: Role;
  readonly nodeId: string | undefined;

  private constructor(
    private readonly connection: MqttConnection,
    options: MessagingOptions,
  ) {
    super();
    this.role = options.role;
    this.nodeId = options.role === 'node' ? options.nodeId : undefined;
    this.logger = options.logger ?? silentLogger;
    this.codec = options.codec ?? protocolCodec;
    connection.on('message', (topic, payload) => this.receive(topic, payload));
    connection.on('connect', () => this.emit('connect'));
    connection.on('reconnect', () => this.emit('reconnect'));
    connection.on('offline', () => this.emit('offline'));
  }

  /**
   * Connects to the broker and subscribes the role's topics (node: general/nodes + general/<nodeId>;
   * researcher: general/researcher, general/monitoring, general/logger). Resolves once subscribed.
   */
  static async connect(options: MessagingOptions): Promise<Messaging> {
    if (options.role === 'node') assertValidNodeId(options.nodeId);
    const subscriptions = subscriptionsFor(options.role, options.role === 'node' ? options.nodeId : undefined);
    const connection = await MqttConnection.open({
      brokerUrl: options.brokerUrl,
      username: options.username,
      password: options.password,
      caFile: options.caFile,
      ca: options.ca,
      certFile: options.certFile,
      keyFile: options.keyFile,
      rejectUnauthorized: options.rejectUnauthorized,
      connectTimeoutMs: options.connectTimeoutMs,
      publishTimeoutMs: options.publishTimeoutMs,
      reconnectBackoff: options.reconnectBackoff,
      logger: options.logger,
      subscriptions,
    });
    return new Messaging(connection, options);
  }

  get connected(): boolean {
    return this.connection.connected;
  }

  /** Adds a handler for every valid inbound message; returns a function that removes it. */
  onMessage(handler: MessageHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /**
   * Validates, serialises (Python-compatible JSON) and publishes `message`. Throws, before anything is
   * published, when the message is not valid for this role's direction.
   * Researcher: no target → general/nodes (broadcast); target X → general/X (a node id).
   * Node: no target → general/researcher, except `add_scalar` → general/monitoring and `log` → general/logger;
   * target 'researcher' | 'monitoring' | 'logger' → general/<target>.
   * Resolves once handed to the connection. While offline the message waits for the reconnection (QoS 0: it is
   * lost if the broker restarted meanwhile and peers had not resubscribed), so callers keep their own deadlines.
   */
  async send(message: WireMessage, target?: string): Promise<void> {
    const topic = this.topicFor(message, target);
    const text = this.codec.serialize(message, outboundDirection(this.role));
    await this.connection.publish(topic, text);
  }

  /**
   * Publishes text already serialised (e.g. a `log` record whose key order is Python's). The text must still
   * be a valid message for this role's direction: Python peers die on malformed input.
   */
  async publishRaw(topic: string, text: string): Promise<void> {
    const problem = publishTopicProblem(topic);
    if (problem) throw new Error(`cannot publish: ${problem}`);
    const parsed = parseInbound(this.codec, text, outboundDirection(this.role));
    if (!parsed.ok) {
      const where = parsed.field ? ` (field ${parsed.field})` : '';
      throw new Error(`refusing to publish an invalid message on ${topic}: ${parsed.error}${where}`);
    }
    await this.connection.publish(topic, text);
  }

  async close(): Promise<void> {
    this.handlers.clear();
    await this.connection.close();
  }

  private topicFor(message: WireMessage, target: string | undefined): string {
    if (this.role === 'researcher') {
      if (target === undefined || target === 'nodes') return NODES_TOPIC;
      return nodeTopic(target);
    }
    if (target === undefined) {
      if (message.command === 'add_scalar') return MONITORING_TOPIC;
      if (message.command === 'log') return LOGGER_TOPIC;
      return RESEARCHER_TOPIC;
    }
    switch (target as NodeTarget) {
      case 'researcher':
        return RESEARCHER_TOPIC;
      case 'monitoring':
        return MONITORING_TOPIC;
      case 'logger':
        return LOGGER_TOPIC;
      default:
        throw new Error(`a node sends only to 'researcher', 'monitoring' or 'logger', not ${JSON.stringify(target)}`);
    }
  }

  private receive(topic: string, payload: Buffer): void {
    const parsed = parseInbound(this.codec, payload, inboundDirection(this.role));
    if (!parsed.ok) {
      const invalid: InvalidMessage = { topic, error: parsed.error, excerpt: payloadExcerpt(payload) };
      if (parsed.field !== undefined) invalid.field = parsed.field;
      const where = parsed.field ? ` (field ${parsed.field})` : '';
      this.logger.warn(`dropped invalid message on ${topic}: ${parsed.error}${where}; payload: ${invalid.excerpt}`);
      this.emit('invalid', invalid);
      return;
    }
    if (this.handlers.size === 0) {
      this.logger.debug(`no handler for ${parsed.message.command} on ${topic}`);
      return;
    }
    for (const handler of [...this.handlers]) {
      try {
        const result = handler(parsed.message, { topic });
        if (result && typeof (result).then === 'function') {
          (result).catch((err: unknown) => this.handlerFailed(parsed.message, topic, err));
        }
      } catch (err) {
        this.handlerFailed(parsed.message, topic, err);
      }
    }
  }

  private handlerFailed(message: WireMessage, topic: string, err: unknown): void {
    this.logger.error(`handler for ${message.command} on ${topic} failed: ${describeError(err)}`);
  }
}
