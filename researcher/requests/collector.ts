/**
 * Event-driven reply collection. A request completes as soon as every expected node has answered (or failed),
 * or when its deadline passes — never after a fixed sleep. Python's researcher waits in 5-second windows until a
 * window brings nothing new; here a two-node round ends the moment the second reply lands.
 *
 * Each collection decides for itself which inbound messages belong to it (`accept`), so correlation rules
 * (researcher_id, job_id, node_id, sequence, outstanding request) live with the request that needs them.
 */

/** A validated inbound Fed-BioMed message. */
export interface InboundMessage {
  command: string;
  [field: string]: unknown;
}

export type NodeOutcome<T> =
  | { nodeId: string; status: 'replied'; reply: T; atMs: number }
  | { nodeId: string; status: 'error'; errnum: string; message: string; atMs: number }
  | { nodeId: string; status: 'timeout'; atMs: number };

export interface CollectionResult<T> {
  /** Per node, in arrival order (timeouts last). */
  outcomes: Map<string, NodeOutcome<T>>;
  replies: Map<string, T>;
  /** Nodes that were expected but neither answered nor failed before their deadline. */
  timedOut: string[];
  /** Nodes that sent an `error` message for this request. */
  errored: string[];
  elapsedMs: number;
  /** True when every expected node answered or failed before its deadline. */
  complete: boolean;
}

export interface CollectionSpec<T> {
  /** Used in messages, e.g. `train round 2`. */
  what: string;
  /**
   * Nodes whose answer is awaited. Without it the collection is open: it takes one reply per node from anyone
   * until the deadline (used for broadcast discovery: ping, list, search).
   */
  expected?: readonly string[];
  /** Milliseconds from start; one value for all nodes or one per expected node. */
  deadlineMs: number | ReadonlyMap<string, number>;
  /** Returns the typed reply when `msg` answers this request, otherwise undefined. */
  accept(msg: InboundMessage): { nodeId: string; reply: T } | undefined;
  /** Returns the node id when `msg` is an `error` that ends this request for that node. */
  acceptError?(msg: InboundMessage): string | undefined;
  /** Called for each outcome as it happens (progress reporting, streaming aggregation). */
  onOutcome?(outcome: NodeOutcome<T>): void;
}

export class Collection<T> {
  readonly result: Promise<CollectionResult<T>>;
  private resolveResult!: (r: CollectionResult<T>) => void;
  private readonly outcomes = new Map<string, NodeOutcome<T>>();
  private readonly pending: Set<string> | undefined;
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(private readonly spec: CollectionSpec<T>) {
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
    this.pending = spec.expected ? new Set(spec.expected) : undefined;
    if (this.pending && this.pending.size === 0) {
      this.finish();
      return;
    }
    this.scheduleDeadline();
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** Nodes still awaited (empty for an open collection). */
  get outstanding(): string[] {
    return this.pending ? [...this.pending] : [];
  }

  /** Offers an inbound message; returns true when this collection consumed it. */
  offer(msg: InboundMessage): boolean {
    if (this.finished) return false;
    if (msg.command === 'error') {
      const nodeId = this.spec.acceptError?.(msg);
      if (nodeId === undefined || !this.isAwaited(nodeId)) return false;
      this.record({
        nodeId,
        status: 'error',
        errnum: String(msg.errnum ?? ''),
        message: String(msg.extra_msg ?? ''),
        atMs: Date.now() - this.startedAt,
      });
      return true;
    }
    const accepted = this.spec.accept(msg);
    if (!accepted || !this.isAwaited(accepted.nodeId)) return false;
    this.record({ nodeId: accepted.nodeId, status: 'replied', reply: accepted.reply, atMs: Date.now() - this.startedAt });
    return true;
  }

  /** Ends the collection now (e.g. the experiment is being stopped); missing nodes count as timed out. */
  cancel(): void {
    if (!this.finished) this.expire(Number.POSITIVE_INFINITY);
  }

  private isAwaited(nodeId: string): boolean {
    if (this.outcomes.has(nodeId)) return false; // duplicates and late repeats are ignored
    return this.pending ? this.pending.has(nodeId) : true;
  }

  private record(outcome: NodeOutcome<T>): void {
    this.outcomes.set(outcome.nodeId, outcome);
    this.pending?.delete(outcome.nodeId);
    this.notify(outcome);
    if (this.pending && this.pending.size === 0) this.finish();
  }

  private notify(outcome: NodeOutcome<T>): void {
    try {
      this.spec.onOutcome?.(outcome);
    } catch {
      // A faulty progress listener must not break reply collection.
    }
  }

  private deadlineOf(nodeId: string | undefined): number {
    const d = this.spec.deadlineMs;
    if (typeof d === 'number') return d;
    return nodeId !== undefined ? d.get(nodeId) ?? Math.max(0, ...d.values()) : Math.max(0, ...d.values());
  }

  /** Arms one timer for the earliest deadline still relevant. */
  private scheduleDeadline(): void {
    if (this.finished) return;
    const next = this.pending ? Math.min(...[...this.pending].map((n) => this.deadlineOf(n))) : this.deadlineOf(undefined);
    const delay = Math.max(0, next - (Date.now() - this.startedAt));
    this.timer = setTimeout(() => this.expire(Date.now() - this.startedAt), delay);
  }

  private expire(nowMs: number): void {
    if (this.finished) return;
    if (this.pending) {
      for (const nodeId of [...this.pending]) {
        if (this.deadlineOf(nodeId) <= nowMs) {
          this.pending.delete(nodeId);
          const outcome: NodeOutcome<T> = { nodeId, status: 'timeout', atMs: Date.now() - this.startedAt };
          this.outcomes.set(nodeId, outcome);
          this.notify(outcome);
        }
      }
      if (this.pending.size > 0) {
        this.scheduleDeadline();
        return;
      }
    }
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    const replies = new Map<string, T>();
    const timedOut: string[] = [];
    const errored: string[] = [];
    for (const o of this.outcomes.values()) {
      if (o.status === 'replied') replies.set(o.nodeId, o.reply);
      else if (o.status === 'timeout') timedOut.push(o.nodeId);
      else errored.push(o.nodeId);
    }
    this.resolveResult({
      outcomes: this.outcomes,
      replies,
      timedOut,
      errored,
      elapsedMs: Date.now() - this.startedAt,
      complete: this.spec.expected !== undefined && timedOut.length === 0,
    });
  }
}

/** Hands every inbound message to the open collections; the first one that accepts it consumes it. */
export class RequestRouter {
  private readonly open = new Set<Collection<unknown>>();

  start<T>(spec: CollectionSpec<T>): Collection<T> {
    const c = new Collection(spec);
    if (!c.isFinished) {
      this.open.add(c as Collection<unknown>);
      void c.result.then(() => this.open.delete(c as Collection<unknown>));
    }
    return c;
  }

  dispatch(msg: InboundMessage): boolean {
    for (const c of this.open) {
      if (c.offer(msg)) return true;
    }
    return false;
  }

  cancelAll(): void {
    for (const c of [...this.open]) c.cancel();
  }

  get openCount(): number {
    return this.open.size;
  }
}
