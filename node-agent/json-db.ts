/**
 * A small table store in TinyDB's file format (`{"Table": {"1": {...}, "2": {...}}}`), so a node directory can be
 * read with the same tools as a Python node's `db_<id>.json`.
 *
 * Why not keep it in memory: the node CLI (`node plan approve`, `node dataset add`) and a running agent share the
 * file, so every operation re-reads it. Writes are atomic (temp file + fsync + rename) and serialised between
 * processes by a lock file, so a crash mid-write leaves the previous, complete file in place.
 */
import * as fs from 'fs';
import * as path from 'path';
import { FedbiomedTsError } from '../src/errors';

export type Document = Record<string, unknown>;
type Tables = Record<string, Record<string, Document>>;

export class JsonDbError extends FedbiomedTsError {}

/** Adds `doc` to a table's rows under the next document id, as TinyDB numbers them ("1", "2", …). */
export function appendDocument(rows: Record<string, Document>, doc: Document): void {
  const nextId = Object.keys(rows).reduce((max, k) => Math.max(max, Number(k) || 0), 0) + 1;
  rows[String(nextId)] = doc;
}

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

export class JsonDb {
  constructor(readonly file: string) {}

  /** All documents of a table, in insertion order. */
  all(table: string): Document[] {
    return Object.values(this.read()[table] ?? {});
  }

  find(table: string, predicate: (doc: Document) => boolean): Document[] {
    return this.all(table).filter(predicate);
  }

  insert(table: string, doc: Document): void {
    this.update((tables) => {
      appendDocument((tables[table] ??= {}), doc);
    });
  }

  /** Applies `change` to every matching document; returns how many matched. */
  modify(table: string, predicate: (doc: Document) => boolean, change: (doc: Document) => Document): number {
    let count = 0;
    this.update((tables) => {
      const rows = tables[table] ?? {};
      for (const [id, doc] of Object.entries(rows)) {
        if (predicate(doc)) {
          rows[id] = change(doc);
          count += 1;
        }
      }
    });
    return count;
  }

  remove(table: string, predicate: (doc: Document) => boolean): number {
    let count = 0;
    this.update((tables) => {
      const rows = tables[table] ?? {};
      for (const [id, doc] of Object.entries(rows)) {
        if (predicate(doc)) {
          delete rows[id];
          count += 1;
        }
      }
    });
    return count;
  }

  /** Read-modify-write under the lock. `change` may throw to abort; the file is then untouched. */
  update(change: (tables: Tables) => void): void {
    this.withLock(() => {
      const tables = this.read();
      change(tables);
      this.writeAtomically(tables);
    });
  }

  private read(): Tables {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new JsonDbError(`cannot read database ${this.file}: ${(err as Error).message}`);
    }
    if (text.trim() === '') return {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new Error('top level is not an object');
      }
      return parsed as Tables;
    } catch (err) {
      throw new JsonDbError(`database ${this.file} is not valid JSON (${(err as Error).message}); ` +
        'it was left untouched: repair or move it away');
    }
  }

  private writeAtomically(tables: Tables): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, JSON.stringify(tables, null, 1));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
  }

  private withLock<T>(fn: () => T): T {
    const lock = `${this.file}.lock`;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (this.lockIsStale(lock)) {
          fs.rmSync(lock, { force: true });
          continue;
        }
        if (Date.now() > deadline) {
          throw new JsonDbError(`database ${this.file} is locked by another process (${lock})`);
        }
        sleepSync(20);
      }
    }
    try {
      return fn();
    } finally {
      fs.rmSync(lock, { force: true });
    }
  }

  /** A lock is stale when its owner process is gone or it is older than LOCK_STALE_MS. */
  private lockIsStale(lock: string): boolean {
    try {
      const pid = Number(fs.readFileSync(lock, 'utf8'));
      const age = Date.now() - fs.statSync(lock).mtimeMs;
      if (age > LOCK_STALE_MS) return true;
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
        try {
          process.kill(pid, 0);
        } catch {
          return true;
        }
      }
      return false;
    } catch {
      return false;
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
