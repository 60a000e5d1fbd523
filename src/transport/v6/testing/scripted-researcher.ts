/**
 * Test double of a Fed-BioMed v6 researcher's gRPC server (the real one needs the Python Fed-BioMed tree, which CI
 * does not have): a real grpc-js server over TLS serving the upstream service, that hands out the tasks a test
 * queues for a node (one per GetTaskUnary, chunked as v6 does) and collects what nodes send back by ReplyTask
 * (reassembled, decoded, validated) and Feedback.
 */
import * as grpc from '@grpc/grpc-js';
import { ChunkAssembler, toChunks } from '../chunks';
import { researcherService, V6_SERVER_OPTIONS, type FeedbackMessageProto, type TaskChunk,
  type TaskRequestProto } from '../grpc';
import { decodeV6Message, type V6Message } from '../messages';

interface Waiter<T> {
  resolve(value: T): void;
}

/** A FIFO whose `take` waits for the next item. */
class Mailbox<T> {
  private items: T[] = [];
  private waiters: Waiter<T>[] = [];

  put(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(item);
    else this.items.push(item);
  }

  take(timeoutMs: number, what: string): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve, reject) => {
      const waiter: Waiter<T> = { resolve: (v) => { clearTimeout(timer); resolve(v); } };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.waiters.push(waiter);
    });
  }

  /** Gives an item back (its taker went away): first in line again. */
  putBack(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(item);
    else this.items.unshift(item);
  }

  get waiting(): number {
    return this.waiters.length;
  }
}

/** What a poll gets: a whole message, or (fault tests) chunks exactly as given. */
type Task = { bytes: Uint8Array } | { chunks: TaskChunk[] };

export class ScriptedResearcher {
  readonly feedback: FeedbackMessageProto[] = [];
  /** Node ids in the order of their polls. */
  readonly polls: string[] = [];
  private readonly tasks = new Map<string, Mailbox<Task>>();
  private readonly replies = new Map<string, Mailbox<V6Message>>();
  private readonly openPolls = new Set<grpc.ServerWritableStream<TaskRequestProto, TaskChunk>>();

  private constructor(private readonly server: grpc.Server, readonly port: number) {}

  static async start(cert: string, key: string, port = 0): Promise<ScriptedResearcher> {
    const server = new grpc.Server(V6_SERVER_OPTIONS);
    const holder: { researcher?: ScriptedResearcher } = {};
    server.addService(researcherService(), {
      GetTask: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.destroy(
        Object.assign(new Error('GetTask is not implemented by Fed-BioMed v6'), { code: grpc.status.UNIMPLEMENTED })),
      GetTaskUnary: (call: grpc.ServerWritableStream<TaskRequestProto, TaskChunk>) => void holder.researcher?.poll(call),
      ReplyTask: (call: grpc.ServerReadableStream<TaskChunk, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        holder.researcher?.reply(call, callback),
      Feedback: (call: grpc.ServerUnaryCall<FeedbackMessageProto, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        holder.researcher?.feedback.push(call.request);
        callback(null, {});
      },
    });
    const credentials = grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(cert), private_key: Buffer.from(key) }]);
    const bound = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`localhost:${port}`, credentials, (err, p) => (err ? reject(err) : resolve(p))));
    holder.researcher = new ScriptedResearcher(server, bound);
    return holder.researcher;
  }

  private box<T>(map: Map<string, Mailbox<T>>, nodeId: string): Mailbox<T> {
    let box = map.get(nodeId);
    if (!box) map.set(nodeId, (box = new Mailbox<T>()));
    return box;
  }

  /** Queues one message for the node's next poll. */
  send(nodeId: string, bytes: Uint8Array): void {
    this.box(this.tasks, nodeId).put({ bytes });
  }

  /** Queues raw chunks (malformed sequences) for the node's next poll. */
  sendChunks(nodeId: string, chunks: TaskChunk[]): void {
    this.box(this.tasks, nodeId).put({ chunks });
  }

  /** The next message the node sent back. */
  nextReply(nodeId: string, timeoutMs = 20_000): Promise<V6Message> {
    return this.box(this.replies, nodeId).take(timeoutMs, `reply from ${nodeId}`);
  }

  /** Resolves once the node has a poll open (it is connected and waiting for a task). */
  async waitForPoll(nodeId: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.box(this.tasks, nodeId).waiting === 0) {
      if (Date.now() > deadline) throw new Error(`${nodeId} did not poll within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async poll(call: grpc.ServerWritableStream<TaskRequestProto, TaskChunk>): Promise<void> {
    this.polls.push(call.request.node);
    this.openPolls.add(call);
    const box = this.box(this.tasks, call.request.node);
    try {
      const task = await box.take(3_600_000, 'task');
      if (call.cancelled) return box.putBack(task); // the node hung up meanwhile: keep the task for its next poll
      const chunks = 'bytes' in task ? toChunks(task.bytes) : task.chunks;
      for (const chunk of chunks) call.write(chunk);
      call.end();
    } catch {
      call.end();
    } finally {
      this.openPolls.delete(call);
    }
  }

  private reply(call: grpc.ServerReadableStream<TaskChunk, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    const assembler = new ChunkAssembler();
    let whole: Buffer | undefined;
    call.on('data', (chunk: TaskChunk) => {
      whole = assembler.push(chunk) ?? whole;
    });
    call.on('end', () => {
      if (!whole) return callback({ code: grpc.status.INVALID_ARGUMENT, details: 'no complete message' });
      const message = decodeV6Message(whole);
      this.box(this.replies, message.fields['node_id'] as string).put(message);
      callback(null, {});
    });
  }

  /** Stops at once (a researcher killed): open polls are cut. */
  async kill(): Promise<void> {
    this.server.forceShutdown();
  }
}
