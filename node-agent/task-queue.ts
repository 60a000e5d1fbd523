/**
 * The node's persistent task queue. `train` requests are executed one at a time in arrival order; a request is
 * removed from disk only once it has been answered, so a node that stops (or crashes) mid-round executes it again
 * after restart, as a Python node does with its persist-queue.
 */
import * as fs from 'fs';
import * as path from 'path';

export interface QueuedTask<T> {
  id: number;
  receivedAt: string;
  task: T;
}

export class TaskQueue<T> {
  private tasks: QueuedTask<T>[];
  private nextId: number;
  private running = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly file: string, private readonly execute: (task: T) => Promise<void>,
    private readonly onError: (err: unknown, task: T) => void) {
    this.tasks = readQueueFile<T>(file);
    this.nextId = this.tasks.reduce((m, t) => Math.max(m, t.id), 0) + 1;
  }

  get pending(): number {
    return this.tasks.length;
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
    void this.execute(next.task)
      .catch((err: unknown) => this.onError(err, next.task))
      .finally(() => {
        this.running = false;
        if (!this.stopped) {
          this.tasks = this.tasks.filter((t) => t.id !== next.id);
          this.persist();
        }
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
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.tasks));
    fs.renameSync(tmp, this.file);
  }
}

function readQueueFile<T>(file: string): QueuedTask<T>[] {
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
