/**
 * One running node per node folder. Two agents on one folder would both answer and train under one node id, and
 * interleave writes to its database and queue: `node start` takes `node.lock` (the pid and start time, created
 * exclusively) and refuses while the process named there is alive. A lock left by a process that died (kill -9,
 * power loss) is stale: it is taken over, and said so.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FedbiomedTsError } from '../src/errors';

export const LOCK_FILE = 'node.lock';

export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
}

export class NodeLockedError extends FedbiomedTsError {
  constructor(readonly dir: string, readonly owner: LockOwner) {
    super(`node folder ${dir} is already in use by a running node (pid ${owner.pid}, started ${owner.startedAt}); ` +
      'stop it first, or use another --dir');
  }
}

/** Whether `pid` is a live process on this machine (EPERM: alive, owned by another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lock's owner as written, or undefined when there is no lock (or it cannot be read: a crash mid-write). */
export function readLock(dir: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')) as LockOwner;
    return typeof owner.pid === 'number' ? owner : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the lock names a live process: one on this host that is still running. */
export function lockHeld(owner: LockOwner | undefined): owner is LockOwner {
  // A lock from another host (a folder on shared storage) cannot be checked from here: it counts as held.
  return owner !== undefined && (owner.host !== os.hostname() || processAlive(owner.pid));
}

export interface NodeLock {
  /** Set when a stale lock (dead process) was taken over. */
  readonly replaced?: LockOwner;
  release(): void;
}

export function acquireNodeLock(dir: string): NodeLock {
  const file = path.join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
  let replaced: LockOwner | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const owner = readLock(dir);
      if (lockHeld(owner)) throw new NodeLockedError(dir, owner);
      replaced = owner;
      fs.rmSync(file, { force: true });
    }
  }
  let released = false;
  return {
    replaced,
    release(): void {
      if (released) return;
      released = true;
      // Only our own lock is removed: never one a later process took over.
      if (readLock(dir)?.pid === process.pid) fs.rmSync(file, { force: true });
    },
  };
}
