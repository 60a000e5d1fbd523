/**
 * The node's log on disk, capped in size: `node.log` grows to `maxBytes`, then becomes `node.log.1` (older files
 * shift to .2 …) and the oldest beyond `files` is deleted. A node left running for months keeps at most
 * files x maxBytes of logs. Writes are synchronous appends: a line is on disk before the node goes on, even if it
 * dies just after (these are the lines an operator reads after a crash).
 */
import * as fs from 'fs';
import * as path from 'path';

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_LOG_FILES = 5;

export interface RotatingLogOptions {
  maxBytes?: number;
  /** Files kept, the current one included (>= 1). */
  files?: number;
}

export class RotatingLogFile {
  private readonly maxBytes: number;
  private readonly files: number;
  private size: number;

  constructor(readonly file: string, options: RotatingLogOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
    this.files = options.files ?? DEFAULT_LOG_FILES;
    if (!(this.maxBytes > 0)) throw new RangeError(`log size cap must be positive, got ${this.maxBytes}`);
    if (!Number.isInteger(this.files) || this.files < 1) throw new RangeError(`log files kept must be an integer >= 1, got ${this.files}`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.size = fs.existsSync(file) ? fs.statSync(file).size : 0;
  }

  write(line: string): void {
    const bytes = Buffer.byteLength(line) + 1;
    if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
    fs.appendFileSync(this.file, `${line}\n`);
    this.size += bytes;
  }

  private rotate(): void {
    if (this.files === 1) {
      fs.rmSync(this.file, { force: true });
    } else {
      fs.rmSync(`${this.file}.${this.files - 1}`, { force: true });
      for (let k = this.files - 2; k >= 1; k--) {
        if (fs.existsSync(`${this.file}.${k}`)) fs.renameSync(`${this.file}.${k}`, `${this.file}.${k + 1}`);
      }
      fs.renameSync(this.file, `${this.file}.1`);
    }
    this.size = 0;
  }
}
