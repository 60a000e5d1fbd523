/**
 * A msgpack writer producing exactly what Python's msgpack 1.0 `packb(…, strict_types=True)` produces for the
 * same data: ints in their smallest format, floats always float64, str/bin families by byte length, maps in
 * key order. It writes into a list of chunks: small tokens go into shared scratch buffers, while large binary
 * payloads (tensor bytes) are referenced, not copied, so a 100 MB model costs one copy when the chunks are
 * joined, or none when they are written out directly (fs.writev, a streamed upload).
 *
 * Why not @msgpack/msgpack's Encoder: it cannot write a whole-valued number as float64 (Python `1.0`), does
 * not write JS Maps as maps, and copies every payload into a buffer that grows by doubling.
 */
import { PyFloat } from '../protocol/pyfloat';
import { SerializationError } from './errors';
import { MAX_NESTING } from './msgpack-reader';
import { PathSegment, formatPath } from './path';

/** Returned by an EncodeHook for values it does not know. */
export const NOT_HANDLED: unique symbol = Symbol('not handled');

/**
 * Called for every value msgpack has no native form for (class instances, bigints beyond 64 bits), like
 * Python msgpack's `default`. It returns a replacement made of native values, or NOT_HANDLED.
 * A SerializationError it throws gets the value's path prepended.
 */
export type EncodeHook = (value: unknown) => unknown;

const SCRATCH_SIZE = 64 * 1024;
/** Payloads at least this large are referenced instead of copied into scratch buffers. */
const REFERENCE_THRESHOLD = 4 * 1024;

const INT64_MIN = -(BigInt(1) << BigInt(63));
const UINT64_MAX = (BigInt(1) << BigInt(64)) - BigInt(1);

export function writeMsgpackChunks(value: unknown, hook?: EncodeHook): Uint8Array[] {
  const writer = new Writer(hook);
  writer.writeValue(value, 0, true);
  return writer.finish();
}

export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  let total = 0;
  for (const chunk of chunks) total += chunk.byteLength;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return typeof value;
  return (value).constructor?.name ?? 'object';
}

class Writer {
  private readonly chunks: Uint8Array[] = [];
  private scratch: Buffer = Buffer.allocUnsafe(SCRATCH_SIZE);
  private view = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
  private pos = 0;
  /** Start of the scratch bytes not yet handed to `chunks`. */
  private start = 0;
  private readonly path: PathSegment[] = [];

  constructor(private readonly hook: EncodeHook | undefined) {}

  finish(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }

  private fail(message: string): never {
    throw new SerializationError(`cannot encode ${formatPath(this.path)}: ${message}`);
  }

  private flush(): void {
    if (this.pos > this.start) this.chunks.push(this.scratch.subarray(this.start, this.pos));
    this.start = this.pos;
  }

  /** Room for `n` bytes in scratch; a fresh scratch buffer when full (the old one stays referenced by chunks). */
  private reserve(n: number): void {
    if (this.pos + n <= this.scratch.byteLength) return;
    this.flush();
    this.scratch = Buffer.allocUnsafe(Math.max(SCRATCH_SIZE, n));
    this.view = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
    this.pos = 0;
    this.start = 0;
  }

  private byte(b: number): void {
    this.reserve(1);
    this.scratch[this.pos++] = b;
  }
  private head8(type: number, n: number): void {
    this.reserve(2);
    this.scratch[this.pos] = type;
    this.scratch[this.pos + 1] = n;
    this.pos += 2;
  }
  private head16(type: number, n: number): void {
    this.reserve(3);
    this.scratch[this.pos] = type;
    this.view.setUint16(this.pos + 1, n);
    this.pos += 3;
  }
  private head32(type: number, n: number): void {
    this.reserve(5);
    this.scratch[this.pos] = type;
    this.view.setUint32(this.pos + 1, n);
    this.pos += 5;
  }

  writeValue(value: unknown, depth: number, mayUseHook: boolean): void {
    if (depth > MAX_NESTING) this.fail(`values nested deeper than ${MAX_NESTING} levels (a cycle?)`);
    switch (typeof value) {
      case 'undefined':
        return this.byte(0xc0); // like null: Python has no undefined
      case 'boolean':
        return this.byte(value ? 0xc3 : 0xc2);
      case 'number':
        return Number.isSafeInteger(value) && !Object.is(value, -0) ? this.int(value) : this.float64(value);
      case 'bigint':
        if (value >= INT64_MIN && value <= UINT64_MAX) return this.bigint(value);
        break;
      case 'string':
        return this.str(value);
      case 'object':
        if (value === null) return this.byte(0xc0);
        if (value instanceof PyFloat) return this.float64(value.value);
        if (value instanceof Uint8Array) return this.bin(value);
        if (Array.isArray(value)) return this.array(value, depth);
        if (value instanceof Map) return this.map([...value.keys()], (k) => value.get(k), depth);
        if (isPlainObject(value)) return this.map(Object.keys(value), (k) => value[k as string], depth);
        break;
      default:
        break;
    }
    if (mayUseHook && this.hook) {
      let replacement: unknown;
      try {
        replacement = this.hook(value);
      } catch (err: unknown) {
        if (err instanceof SerializationError) this.fail(err.message);
        throw err;
      }
      // Like Python's `default`, the replacement itself must be native (no second hook on the same value).
      if (replacement !== NOT_HANDLED) return this.writeValue(replacement, depth, false);
    }
    if (ArrayBuffer.isView(value)) {
      this.fail(`a bare ${describe(value)} has no Fed-BioMed form; wrap it in a TorchTensor or NdArray`);
    }
    this.fail(`${describe(value)} values cannot be written to a Fed-BioMed weight file`);
  }

  private int(v: number): void {
    if (v >= 0) {
      if (v < 0x80) return this.byte(v);
      if (v < 0x100) return this.head8(0xcc, v);
      if (v < 0x10000) return this.head16(0xcd, v);
      if (v < 0x100000000) return this.head32(0xce, v);
      return this.uint64(BigInt(v));
    }
    if (v >= -0x20) return this.byte(v & 0xff);
    if (v >= -0x80) return this.head8(0xd0, v & 0xff);
    if (v >= -0x8000) return this.head16(0xd1, v & 0xffff);
    if (v >= -0x80000000) return this.head32(0xd2, v >>> 0);
    return this.int64(BigInt(v));
  }

  private bigint(v: bigint): void {
    // Python packs an int by value, so a bigint and a number of equal value must give the same bytes.
    if (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return this.int(Number(v));
    return v >= BigInt(0) ? this.uint64(v) : this.int64(v);
  }

  private uint64(v: bigint): void {
    this.typeAndEightBytes(0xcf, (at) => this.view.setBigUint64(at, v));
  }

  private int64(v: bigint): void {
    this.typeAndEightBytes(0xd3, (at) => this.view.setBigInt64(at, v));
  }

  private float64(v: number): void {
    this.typeAndEightBytes(0xcb, (at) => this.view.setFloat64(at, v));
  }

  /** A type byte, then 8 big-endian bytes that `write` puts at `at`. */
  private typeAndEightBytes(type: number, write: (at: number) => void): void {
    this.reserve(9);
    this.scratch[this.pos] = type;
    write(this.pos + 1);
    this.pos += 9;
  }

  private str(s: string): void {
    if (!(s as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      this.fail('string contains a lone UTF-16 surrogate, which Python cannot encode as UTF-8');
    }
    const length = Buffer.byteLength(s, 'utf8');
    if (length < 32) this.byte(0xa0 | length);
    else if (length < 0x100) this.head8(0xd9, length);
    else if (length < 0x10000) this.head16(0xda, length);
    else if (length <= 0xffffffff) this.head32(0xdb, length);
    else this.fail(`string of ${length} bytes exceeds msgpack's 4 GiB limit`);
    this.reserve(length);
    this.pos += this.scratch.write(s, this.pos, length, 'utf8');
  }

  private bin(bytes: Uint8Array): void {
    const length = bytes.byteLength;
    if (length < 0x100) this.head8(0xc4, length);
    else if (length < 0x10000) this.head16(0xc5, length);
    else if (length <= 0xffffffff) this.head32(0xc6, length);
    else this.fail(`binary payload of ${length} bytes exceeds msgpack's 4 GiB limit`);
    if (length >= REFERENCE_THRESHOLD) {
      this.flush();
      this.chunks.push(bytes);
    } else {
      this.reserve(length);
      this.scratch.set(bytes, this.pos);
      this.pos += length;
    }
  }

  private array(items: readonly unknown[], depth: number): void {
    const n = items.length;
    if (n < 16) this.byte(0x90 | n);
    else if (n < 0x10000) this.head16(0xdc, n);
    else this.head32(0xdd, n);
    for (let i = 0; i < n; i++) {
      this.path.push(i);
      this.writeValue(items[i], depth + 1, true);
      this.path.pop();
    }
  }

  private map(keys: unknown[], get: (key: unknown) => unknown, depth: number): void {
    const n = keys.length;
    if (n < 16) this.byte(0x80 | n);
    else if (n < 0x10000) this.head16(0xde, n);
    else this.head32(0xdf, n);
    for (let i = 0; i < n; i++) {
      const key = keys[i];
      this.path.push(typeof key === 'string' ? key : `<key ${i}>`);
      this.writeValue(key, depth + 1, true);
      this.writeValue(get(key), depth + 1, true);
      this.path.pop();
    }
  }
}
