/**
 * The node's persistent task queue. `train` requests are executed one at a time in arrival order; a request is
 * removed from disk only once it has been answered, so a node that stops mid-round executes it again after
 * restart, as a Python node does with its persist-queue.
 * A task is marked on disk when it starts and unmarked when the node stops it cleanly: a task still marked when
 * the queue is opened was running when the node died (killed for memory, power cut). It is handed to
 * `onInterrupted` instead of being run again, so that one request cannot kill a node at every restart.
 */
import * as fs from 'fs';
import * as path from 'path';

export interface QueuedTask<T> {
  id: number;
  receivedAt: string;
  /** Set while the task runs; still set on disk after a crash. */
  startedAt?: string;
  task: T;
}

export interface TaskQueueHandlers<T> {
  execute(task: T): Promise<void>;
  onError(err: unknown, task: T): void;
  /** A task that was running when the node died; it is dropped from the queue once this resolves. */
  onInterrupted?(task: QueuedTask<T>): Promise<void>;
}

export class TaskQueue<T> {
  private tasks: QueuedTask<T>[];
  private nextId: number;
  private running = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  private readonly handlers: TaskQueueHandlers<T>;

  constructor(file: string, handlers: TaskQueueHandlers<T>);
  constructor(file: string, execute: (task: T) => Promise<void>, onError: (err: unknown, task: T) => void);
  constructor(private readonly file: string, executeOrHandlers: TaskQueueHandlers<T> | ((task: T) => Promise<void>),
    onError?: (err: unknown, task: T) => void) {
    this.handlers = typeof executeOrHandlers === 'function'
      ? { execute: executeOrHandlers, onError: onError ?? (() => undefined) }
      : executeOrHandlers;
    this.tasks = readQueueFile<T>(file);
    this.nextId = this.tasks.reduce((m, t) => Math.max(m, t.id), 0) + 1;
  }

  get pending(): number {
    return this.tasks.length;
  }

  /** The queued tasks, the running one first. */
  list(): readonly QueuedTask<T>[] {
    return this.tasks;
  }

  push(task: T): void {
    this.tasks.push({ id: this.nextId++, receivedAt: new Date().toISOString(), task });
    this.persist();
    this.drain();
  }

  /** Starts executing whatever is queued (including tasks left over from a previous run). */
  start(): void {
    this.stopped = false;
    this.drain();
  }

  /** Stops taking new tasks after the current one; queued tasks stay on disk. */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves when no task is running and the queue is empty (or stopped). */
  idle(): Promise<void> {
    if (!this.running && (this.tasks.length === 0 || this.stopped)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private drain(): void {
    if (this.running || this.stopped) return;
    const next = this.tasks[0];
    if (!next) {
      this.notifyIdle();
      return;
    }
    this.running = true;
    const interrupted = next.startedAt !== undefined;
    if (!interrupted) {
      next.startedAt = new Date().toISOString();
      this.persist();
    }
    const work = interrupted
      ? (this.handlers.onInterrupted ?? (async () => undefined))(next)
      : this.handlers.execute(next.task);
    void work
      .catch((err: unknown) => this.handlers.onError(err, next.task))
      .finally(() => {
        this.running = false;
        if (!this.stopped || interrupted) {
          this.tasks = this.tasks.filter((t) => t.id !== next.id);
        } else {
          // Stopped cleanly in the middle: run it again at the next start.
          delete next.startedAt;
        }
        this.persist();
        if (this.stopped) this.notifyIdle();
        else this.drain();
      });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    waiters.forEach((w) => w());
  }

  private persist(): void {
    writeQueueFile(this.file, this.tasks);
  }
}

/** The tasks of a queue file (for `node queue list`, while the node is stopped or running). */
export function readQueueFile<T>(file: string): QueuedTask<T>[] {
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return Array.isArray(parsed) ? (parsed as QueuedTask<T>[]) : [];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    // A damaged queue file is kept aside for inspection rather than silently overwritten.
    const aside = `${file}.damaged-${Date.now()}`;
    fs.renameSync(file, aside);
    process.stderr.write(`task queue ${file} was unreadable; moved to ${aside}\n`);
    return [];
  }
}

export function writeQueueFile<T>(file: string, tasks: readonly QueuedTask<T>[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(tasks));
  fs.renameSync(tmp, file);
}
