/**
 * The researcher side of Fed-BioMed v6's gRPC transport (fedbiomed/transport/server.py, node_agent.py): a TLS
 * gRPC server that nodes dial; each node's first `GetTaskUnary` registers it; each poll carries at most one queued
 * message (chunked); replies come back by `ReplyTask` and are matched to requests by `request_id`; logs and
 * scalars arrive by `Feedback`.
 *
 * As v6 does: a node that stops polling for 10 s is DISCONNECTED (its pending requests end, messages for it are
 * dropped); queued messages older than 300 s are dropped; a message whose poll was cut is queued again (5 times).
 * The certificate is generated once per researcher (RSA 2048, 5 years, CN = host, O = researcher id) and kept
 * in the researcher directory, so nodes that pinned it keep trusting it across restarts.
 */
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as path from 'path';
import { randomUUID, X509Certificate } from 'crypto';
import * as grpc from '@grpc/grpc-js';
import { generate as generateCertificate } from 'selfsigned';
import { describeError, silentLogger, type Logger } from '../logger';
import { ChunkAssembler, toChunks } from './chunks';
import { DEFAULT_V6_PORT, researcherService, V6_SERVER_OPTIONS, type FeedbackMessageProto, type TaskChunk,
  type TaskRequestProto } from './grpc';
import { decodeV6Message, encodeV6Message, type V6Message } from './messages';

const NODE_DISCONNECTION_TIMEOUT_MS = 10_000;
const MAX_SEND_DURATION_MS = 300_000;
const MAX_SEND_RETRIES = 5;

export type NodeStatus = 'ACTIVE' | 'WAITING' | 'DISCONNECTED';

export interface NodeRecord {
  nodeId: string;
  status: NodeStatus;
  /** Last poll or reply (ms since epoch). */
  lastSeen: number;
}

interface Queued {
  message: V6Message;
  bytes: Uint8Array;
  queuedAt: number;
  retries: number;
}

interface Pending {
  nodes: Set<string>;
  replies: Map<string, V6Message>;
  resolve(replies: Map<string, V6Message>): void;
  timer: NodeJS.Timeout | undefined;
}

export interface ResearcherIdentityFiles {
  researcherId: string;
  certPem: string;
  keyPem: string;
}

/**
 * The researcher's id and certificate, created on first use in `dir` (researcher.json, certs/) and reused after:
 * nodes pin the certificate, so it must not change between runs.
 */
export async function researcherIdentity(dir: string, host: string): Promise<ResearcherIdentityFiles> {
  const idFile = path.join(dir, 'researcher.json');
  const certFile = path.join(dir, 'certs', 'server_certificate.pem');
  const keyFile = path.join(dir, 'certs', 'server_certificate.key');
  if (fs.existsSync(idFile) && fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    const { researcher_id: researcherId } = JSON.parse(fs.readFileSync(idFile, 'utf8')) as { researcher_id: string };
    const certPem = fs.readFileSync(certFile, 'utf8');
    const cn = /CN=([^\n]*)/.exec(new X509Certificate(certPem).subject)?.[1];
    if (cn !== host) {
      throw new Error(`the certificate in ${certFile} is for "${cn}", not "${host}": nodes check the host name ` +
        'against it. Use that host, or move the certs folder away to make a new certificate (nodes must then ' +
        'trust the new one).');
    }
    return { researcherId, certPem, keyPem: fs.readFileSync(keyFile, 'utf8') };
  }
  const researcherId = `RESEARCHER_${randomUUID()}`;
  const isIp = /^[0-9.]+$/.test(host) || host.includes(':');
  const now = Date.now();
  const pems = await generateCertificate(
    [{ name: 'commonName', value: host }, { name: 'organizationName', value: researcherId }],
    { keySize: 2048, algorithm: 'sha256', notBeforeDate: new Date(now - 60_000),
      notAfterDate: new Date(now + 5 * 365 * 24 * 3600_000),
      extensions: [{ name: 'subjectAltName', altNames: [isIp ? { type: 7, ip: host } : { type: 2, value: host }] }] });
  fs.mkdirSync(path.dirname(certFile), { recursive: true });
  fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
  fs.writeFileSync(certFile, pems.cert);
  fs.writeFileSync(idFile, JSON.stringify({ researcher_id: researcherId }, null, 2) + '\n');
  return { researcherId, certPem: pems.cert, keyPem: pems.private };
}

export interface V6ResearcherServerOptions {
  /** Where the researcher keeps its id and certificate. */
  dir: string;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  logger?: Logger;
  disconnectionTimeoutMs?: number;
  /** Sees every message: bytes sent to a node in a poll, bytes of a reply received (recording). */
  tap?: (event: { kind: 'task' | 'reply'; nodeId: string; bytes: Uint8Array }) => void;
}

export interface V6ResearcherEvents {
  feedback: [FeedbackMessageProto];
  node: [NodeRecord];
  /** A reply that matched no pending request (late or duplicate). */
  unmatched: [V6Message];
}

class NodeAgentState {
  status: NodeStatus = 'ACTIVE';
  lastSeen = Date.now();
  readonly queue: Queued[] = [];
  private waiter: (() => void) | undefined;
  disconnectTimer: NodeJS.Timeout | undefined;

  constructor(readonly nodeId: string) {}

  push(item: Queued): void {
    this.queue.push(item);
    this.wake();
  }

  unshift(item: Queued): void {
    this.queue.unshift(item);
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** The next message still fresh enough to send, waiting for one; undefined when `cancelled` fires first. */
  async next(cancelled: () => boolean, onCancel: (wake: () => void) => void): Promise<Queued | undefined> {
    for (;;) {
      while (this.queue.length > 0) {
        const item = this.queue.shift() as Queued;
        if (Date.now() - item.queuedAt <= MAX_SEND_DURATION_MS) return item;
      }
      if (cancelled()) return undefined;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        onCancel(resolve);
      });
      if (cancelled()) return undefined;
    }
  }
}

export class V6ResearcherServer extends EventEmitter<V6ResearcherEvents> {
  private readonly agents = new Map<string, NodeAgentState>();
  private readonly pending = new Map<string, Pending>();
  private readonly openPolls = new Set<() => void>();
  private readonly logger: Logger;

  private constructor(private readonly server: grpc.Server, readonly researcherId: string, readonly host: string,
    readonly port: number, readonly certPem: string, private readonly options: V6ResearcherServerOptions) {
    super();
    this.logger = options.logger ?? silentLogger;
  }

  static async start(options: V6ResearcherServerOptions): Promise<V6ResearcherServer> {
    const host = options.host ?? 'localhost';
    const identity = await researcherIdentity(options.dir, host);
    const server = new grpc.Server(V6_SERVER_OPTIONS);
    const holder: { self?: V6ResearcherServer } = {};
    server.addService(researcherService(), {
      GetTask: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.destroy(
        Object.assign(new Error('GetTask is not implemented (Fed-BioMed v6 nodes use GetTaskUnary)'),
          { code: grpc.status.UNIMPLEMENTED })),
      GetTaskUnary: (call: grpc.ServerWritableStream<TaskRequestProto, TaskChunk>) => void holder.self?.onPoll(call),
      ReplyTask: (call: grpc.ServerReadableStream<TaskChunk, unknown>, done: grpc.sendUnaryData<unknown>) =>
        holder.self?.onReply(call, done),
      Feedback: (call: grpc.ServerUnaryCall<FeedbackMessageProto, unknown>, done: grpc.sendUnaryData<unknown>) => {
        done(null, {});
        holder.self?.emit('feedback', call.request);
      },
    });
    const credentials = grpc.ServerCredentials.createSsl(null,
      [{ cert_chain: Buffer.from(identity.certPem), private_key: Buffer.from(identity.keyPem) }], false);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:${options.port ?? DEFAULT_V6_PORT}`,
      credentials, (err, bound) => (err ? reject(new Error(`cannot listen on ${host}:${options.port}: ${err.message}`))
        : resolve(bound))));
    holder.self = new V6ResearcherServer(server, identity.researcherId, host, port, identity.certPem, options);
    return holder.self;
  }

  /** Every node seen, with its status and last contact. */
  nodes(): NodeRecord[] {
    return [...this.agents.values()].map((a) => ({ nodeId: a.nodeId, status: a.status, lastSeen: a.lastSeen }));
  }

  activeNodes(): string[] {
    return this.nodes().filter((n) => n.status !== 'DISCONNECTED').map((n) => n.nodeId);
  }

  private agent(nodeId: string): NodeAgentState {
    let agent = this.agents.get(nodeId);
    if (!agent) {
      agent = new NodeAgentState(nodeId);
      this.agents.set(nodeId, agent);
      this.logger.info(`node ${nodeId} connected`);
    }
    return agent;
  }

  private setStatus(agent: NodeAgentState, status: NodeStatus): void {
    if (agent.status === status) return;
    agent.status = status;
    this.emit('node', { nodeId: agent.nodeId, status, lastSeen: agent.lastSeen });
    if (status === 'DISCONNECTED') {
      agent.queue.length = 0;
      for (const pending of this.pending.values()) {
        if (pending.nodes.has(agent.nodeId) && !pending.replies.has(agent.nodeId)) this.settleIfDone(pending);
      }
    }
  }

  private async onPoll(call: grpc.ServerWritableStream<TaskRequestProto, TaskChunk>): Promise<void> {
    const agent = this.agent(call.request.node);
    if (agent.disconnectTimer) clearTimeout(agent.disconnectTimer);
    agent.lastSeen = Date.now();
    this.setStatus(agent, 'ACTIVE');
    let cancelled = false;
    let wakeOnCancel: (() => void) | undefined;
    const cancel = () => {
      cancelled = true;
      wakeOnCancel?.();
    };
    call.on('cancelled', cancel);
    this.openPolls.add(cancel);
    const item = await agent.next(() => cancelled, (wake) => (wakeOnCancel = wake));
    this.openPolls.delete(cancel);
    if (item && !cancelled) {
      try {
        for (const chunk of toChunks(item.bytes)) call.write(chunk);
        call.end();
        this.options.tap?.({ kind: 'task', nodeId: agent.nodeId, bytes: item.bytes });
      } catch (err) {
        this.logger.warn(`sending ${item.message.className} to ${agent.nodeId} failed: ${describeError(err)}`);
        if (item.retries < MAX_SEND_RETRIES) agent.unshift({ ...item, retries: item.retries + 1 });
      }
    } else if (item) {
      if (item.retries < MAX_SEND_RETRIES) agent.unshift({ ...item, retries: item.retries + 1 });
    } else {
      call.end();
    }
    // WAITING until the next poll; DISCONNECTED when none comes in time.
    this.setStatus(agent, 'WAITING');
    agent.disconnectTimer = setTimeout(() => this.setStatus(agent, 'DISCONNECTED'),
      this.options.disconnectionTimeoutMs ?? NODE_DISCONNECTION_TIMEOUT_MS);
    agent.disconnectTimer.unref();
  }

  private onReply(call: grpc.ServerReadableStream<TaskChunk, unknown>, done: grpc.sendUnaryData<unknown>): void {
    const assembler = new ChunkAssembler();
    let whole: Buffer | undefined;
    let failed: Error | undefined;
    call.on('data', (chunk: TaskChunk) => {
      if (failed) return;
      try {
        whole = assembler.push(chunk) ?? whole;
      } catch (err) {
        failed = err as Error;
      }
    });
    call.on('end', () => {
      try {
        if (failed) throw failed;
        assembler.finish();
        if (!whole) throw new Error('empty reply stream');
        const message = decodeV6Message(whole);
        done(null, {});
        this.options.tap?.({ kind: 'reply', nodeId: String(message.fields['node_id']), bytes: whole });
        this.onMessage(message);
      } catch (err) {
        this.logger.warn(`a reply was refused: ${describeError(err)}`);
        done({ code: grpc.status.INVALID_ARGUMENT, details: describeError(err) });
      }
    });
  }

  private onMessage(message: V6Message): void {
    const nodeId = message.fields['node_id'] as string;
    const agent = this.agents.get(nodeId);
    if (!agent) {
      this.logger.warn(`a ${message.className} from ${nodeId}, which never polled, was dropped`);
      return;
    }
    agent.lastSeen = Date.now();
    if (message.className === 'OverlayMessage') {
      // Node-to-node: relayed unread to its destination, as v6 does.
      this.send(message.fields['dest_node_id'] as string, message);
      return;
    }
    const pending = this.pending.get(message.fields['request_id'] as string);
    if (!pending || !pending.nodes.has(nodeId) || pending.replies.has(nodeId)) {
      this.emit('unmatched', message);
      return;
    }
    pending.replies.set(nodeId, message);
    this.settleIfDone(pending);
  }

  private settleIfDone(pending: Pending): void {
    const open = [...pending.nodes].filter((n) => !pending.replies.has(n) && this.agents.get(n)?.status !== 'DISCONNECTED');
    if (open.length === 0) this.finish(pending);
  }

  private finish(pending: Pending): void {
    if (pending.timer) clearTimeout(pending.timer);
    for (const [id, p] of this.pending) if (p === pending) this.pending.delete(id);
    pending.resolve(pending.replies);
  }

  /** Queues a message for a node's next poll (dropped, with a warning, for a disconnected node). */
  send(nodeId: string, message: V6Message): void {
    const agent = this.agents.get(nodeId);
    if (!agent || agent.status === 'DISCONNECTED') {
      this.logger.warn(`${message.className} for ${nodeId} dropped: the node is not connected`);
      return;
    }
    agent.push({ message, bytes: encodeV6Message(message), queuedAt: Date.now(), retries: 0 });
  }

  /**
   * Sends one request (its `request_id` set) to each node and resolves with the replies by node id once every node
   * has replied or disconnected, or when `timeoutMs` passes (then with the replies so far). Replies include
   * ErrorMessages carrying the request id.
   */
  request(nodeIds: string[], build: (nodeId: string) => V6Message, timeoutMs?: number): Promise<Map<string, V6Message>> {
    const requestId = randomUUID();
    return new Promise((resolve) => {
      const pending: Pending = { nodes: new Set(nodeIds), replies: new Map(), resolve, timer: undefined };
      this.pending.set(requestId, pending);
      if (timeoutMs !== undefined) pending.timer = setTimeout(() => this.finish(pending), timeoutMs);
      for (const nodeId of nodeIds) {
        const message = build(nodeId);
        this.send(nodeId, { ...message, fields: { ...message.fields, request_id: requestId } });
      }
      this.settleIfDone(pending);
    });
  }

  /** Ends open polls (nodes see the researcher go and retry), then stops; calls still open after 2 s are cut. */
  async close(): Promise<void> {
    for (const pending of [...this.pending.values()]) this.finish(pending);
    for (const agent of this.agents.values()) if (agent.disconnectTimer) clearTimeout(agent.disconnectTimer);
    for (const cancel of [...this.openPolls]) cancel();
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2_000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  /** Stops at once: open polls are cut (a crash, for tests). */
  kill(): void {
    this.server.forceShutdown();
  }
}
