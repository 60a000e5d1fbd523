/**
 * The streaming mode of the msgpack reader: the same type-byte table, scalar decoding and map building as
 * `readMsgpack` (msgpack-reader.ts), written as resumable parsers that ask for bytes as they need them, so a file
 * can be decoded from chunks as they arrive (an HTTP body) without ever holding the whole file. A parser is a
 * generator that yields how many bytes it needs next and receives them; `ByteQueue` holds the bytes received but
 * not yet parsed. Values decode exactly as in `readMsgpack` (PyFloat for whole floats, bigint beyond 2^53, a Map
 * when a plain object would reorder the keys); no object hook is applied.
 */
import { SerializationError } from './errors';
import { HEADS, MAX_NESTING, buildMap, decodeUtf8 } from './msgpack-reader';

/** What a parser asks for next: exactly n bytes, or any 1..n of them (to pass a big payload on as it arrives). */
export type Need = number | { upTo: number };
export type Parser<T> = Generator<Need, T, Uint8Array>;

/** Bytes received but not yet parsed, as a list of chunks. */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // offset into chunks[0]
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.byteLength;
  }

  /** How many bytes can be handed to a parser asking for `need` now (0: wait for more). */
  available(need: Need): number {
    return typeof need === 'number' ? (this.length >= need ? need : 0) : Math.min(need.upTo, this.length);
  }

  /** Exactly n bytes: a view when they lie in one chunk, otherwise a fresh (aligned) copy. */
  take(n: number): Uint8Array {
    if (n > this.length) throw new Error('ByteQueue underflow');
    this.length -= n;
    const first = this.chunks[0];
    if (first && first.byteLength - this.head >= n) {
      const view = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.byteLength) {
        this.chunks.shift();
        this.head = 0;
      }
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const k = Math.min(c.byteLength - this.head, n - filled);
      out.set(c.subarray(this.head, this.head + k), filled);
      filled += k;
      this.head += k;
      if (this.head === c.byteLength) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    return out;
  }
}

export function* readBytes(n: number): Parser<Uint8Array> {
  if (n === 0) return new Uint8Array(0);
  return yield n;
}

function dataView(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function* readLength(bytes: 1 | 2 | 4): Parser<number> {
  const b = yield* readBytes(bytes);
  return bytes === 1 ? b[0] : bytes === 2 ? dataView(b).getUint16(0) : dataView(b).getUint32(0);
}

/** A container's header (its kind and entry count), or a whole scalar, string or byte string. */
export type StreamHead = { kind: 'map' | 'array'; count: number } | { kind: 'value'; value: unknown };

export function* readHead(): Parser<StreamHead> {
  const [b] = yield* readBytes(1);
  const head = HEADS[b];
  switch (head.kind) {
    case 'value':
      return head;
    case 'scalar':
      return { kind: 'value', value: head.read(dataView(yield* readBytes(head.size)), 0) };
    case 'invalid':
      throw new SerializationError(head.message);
    default: {
      const count = head.lengthBytes === 0 ? head.count : yield* readLength(head.lengthBytes);
      if (head.kind === 'array' || head.kind === 'map') return { kind: head.kind, count };
      const bytes = yield* readBytes(count);
      if (head.kind === 'bin') return { kind: 'value', value: bytes };
      const text = decodeUtf8(bytes);
      if (text === undefined) throw new SerializationError('string is not valid UTF-8');
      return { kind: 'value', value: text };
    }
  }
}

/** The length of a bin value whose header comes next (its bytes are left for the caller to read or stream). */
export function* readBinLength(what: string): Parser<number> {
  const [b] = yield* readBytes(1);
  const head = HEADS[b];
  if (head.kind !== 'bin') throw new SerializationError(`${what}: tensor bytes are not bin`);
  return head.lengthBytes === 0 ? head.count : yield* readLength(head.lengthBytes);
}

/** One whole value, decoded as `readMsgpack` decodes it. */
export function* readValue(depth = 0): Parser<unknown> {
  if (depth > MAX_NESTING) throw new SerializationError(`values nested deeper than ${MAX_NESTING} levels`);
  const head = yield* readHead();
  if (head.kind === 'value') return head.value;
  // Entries are pushed as they arrive (no allocation from the announced count: it may be hostile).
  if (head.kind === 'array') {
    const items: unknown[] = [];
    for (let i = 0; i < head.count; i++) items.push(yield* readValue(depth + 1));
    return items;
  }
  const keys: unknown[] = [];
  const values: unknown[] = [];
  for (let i = 0; i < head.count; i++) {
    keys.push(yield* readValue(depth + 1));
    values.push(yield* readValue(depth + 1));
  }
  return buildMap(keys, values);
}
