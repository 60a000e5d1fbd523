/**
 * The synchronous gzip bridge (gunzip-stream.ts) against Node's one-shot zlib.gunzipSync on the same files: every
 * byte, across several members and many ring slots, also when the reader is slower than the worker (the worker must
 * wait for free slots, else it would overwrite chunks not read yet); files closed early leave the next file intact;
 * unreadable and corrupt files name their problem; the worker never keeps a process alive.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { GunzipStream, GunzipStreamError } from './gunzip-stream';

let dir: string;
let raw: Buffer;
let members: string;

/** Every chunk of `file` concatenated (copied at once: a chunk is valid only until the next call). */
function inflateAll(file: string, pauseMs = 0): Buffer {
  const stream = GunzipStream.open(file);
  const parts: Buffer[] = [];
  try {
    for (let chunk = stream.next(); chunk; chunk = stream.next()) {
      parts.push(Buffer.from(chunk));
      if (pauseMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pauseMs);
    }
  } finally {
    stream.close();
  }
  return Buffer.concat(parts);
}

function errorOf(run: () => unknown): GunzipStreamError {
  try {
    run();
  } catch (error) {
    if (error instanceof GunzipStreamError) return error;
    throw error;
  }
  throw new Error('no error');
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gunzip-stream-'));
  // 3 MiB that compress a little (random bytes over a small alphabet), in three gzip members.
  raw = Buffer.from(Array.from({ length: 3 << 20 }, (_, i) => (i * 7919 + (i >> 9)) % 97));
  members = path.join(dir, 'members.gz');
  fs.writeFileSync(members, Buffer.concat([zlib.gzipSync(raw.subarray(0, 5)), zlib.gzipSync(raw.subarray(5, 2_000_000)), zlib.gzipSync(raw.subarray(2_000_000))]));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('inflates every member as zlib.gunzipSync does, also for a reader slower than the worker', () => {
  const expected = zlib.gunzipSync(fs.readFileSync(members));
  expect(expected.equals(raw)).toBe(true);
  expect(inflateAll(members).equals(expected)).toBe(true);
  expect(inflateAll(members, 2).equals(expected)).toBe(true);
});

test('a file closed after its first chunk leaves the next file on the thread whole', () => {
  const other = path.join(dir, 'other.gz');
  const otherRaw = Buffer.from(raw.subarray(0, 1 << 20).map((b) => 255 - b));
  fs.writeFileSync(other, zlib.gzipSync(otherRaw));
  for (let round = 0; round < 3; round++) {
    const early = GunzipStream.open(members);
    const first = Buffer.from(early.next() ?? []);
    expect(first.length).toBeGreaterThan(0);
    expect(first.equals(raw.subarray(0, first.length))).toBe(true);
    early.close();
    expect(early.next()).toBeNull();
    expect(inflateAll(other).equals(otherRaw)).toBe(true);
  }
  // A stream left open is closed by the next open (and says so), the new one unharmed.
  const forgotten = GunzipStream.open(members);
  forgotten.next();
  expect(inflateAll(other).equals(otherRaw)).toBe(true);
  expect(() => forgotten.next()).toThrow('another file was opened on this thread before this one was closed');
});

test('an unreadable, a corrupt and a truncated file each name their problem', () => {
  const missing = errorOf(() => inflateAll(path.join(dir, 'missing.gz')));
  expect(missing.kind).toBe('read');
  expect(missing.message).toMatch(/ENOENT/);
  const notGzip = path.join(dir, 'plain.gz');
  fs.writeFileSync(notGzip, raw.subarray(0, 1000));
  expect(errorOf(() => inflateAll(notGzip))).toMatchObject({ kind: 'gzip', message: 'incorrect header check' });
  const whole = fs.readFileSync(members);
  const truncated = path.join(dir, 'truncated.gz');
  fs.writeFileSync(truncated, whole.subarray(0, whole.length - 100_000));
  expect(errorOf(() => inflateAll(truncated))).toMatchObject({ kind: 'gzip', message: 'unexpected end of file' });
  // The bridge still works after errors.
  expect(inflateAll(members).equals(raw)).toBe(true);
});

test('the worker does not keep a process alive, even with a file left open mid-way', () => {
  const script = `
    const { GunzipStream } = require(${JSON.stringify(path.join(__dirname, 'gunzip-stream.ts'))});
    const stream = GunzipStream.open(${JSON.stringify(members)});
    let bytes = 0;
    for (let i = 0; i < 3; i++) bytes += stream.next().length;
    console.log(bytes);`;
  const run = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script],
    { encoding: 'utf8', cwd: path.join(__dirname, '..', '..'), timeout: 30_000 });
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  expect(Number(run.stdout.trim())).toBeGreaterThan(5);
});
