/**
 * A msgpack reader that keeps everything a byte-exact round trip needs, which general-purpose decoders
 * (including @msgpack/msgpack) throw away:
 *  - a float64 with a whole value (Python `1.0`) comes back as a PyFloat, so it is written again as float64,
 *    not as an int that a Python peer would see as `1`;
 *  - a map comes back as a plain object only when a plain object keeps its keys in order (all keys strings,
 *    none array-index-like such as "0", none "__proto__"); otherwise as a JS Map (Python allows any key);
 *  - 64-bit integers beyond 2^53 come back as bigint instead of losing precision;
 *  - `bin` comes back as a Uint8Array view on the input (no copy), so tensors can be views too.
 * Every malformed input (truncated, reserved byte, ext types, bad UTF-8, trailing bytes, absurd counts) raises a
 * SerializationError naming the offset and the path of the value being read.
 *
 * What each type byte means (the table below), how scalars decode and how maps are built are written once here and
 * shared with the streaming mode (`msgpack-stream.ts`), which decodes the same values from chunks as they arrive.
 */
import { PyFloat } from '../protocol/pyfloat';
import { SerializationError } from './errors';
import { PathSegment, formatPath } from './path';

/** A decoded map: plain object when key order allows, else a Map. */
export type DecodedMap = Record<string, unknown> | Map<unknown, unknown>;

/**
 * Called on every decoded map that has a `__type__` key, innermost first (Python's msgpack `object_hook`).
 * Its return value replaces the map. A SerializationError it throws gets the map's path prepended.
 */
export type ObjectHook = (map: DecodedMap) => unknown;

export const MAX_NESTING = 512;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const ARRAY_INDEX = /^(?:0|[1-9][0-9]{0,9})$/;

function keepsOrderAsObjectKey(key: unknown): key is string {
  return typeof key === 'string' && key !== '__proto__' && !(ARRAY_INDEX.test(key) && Number(key) < 4294967295);
}

/** UTF-8 text of a str payload, or undefined when it is not valid UTF-8 (the caller names where). */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A decoded map from its keys and values in file order: a plain object when that keeps the order, else a Map. */
export function buildMap(keys: readonly unknown[], values: readonly unknown[]): DecodedMap {
  if (keys.every(keepsOrderAsObjectKey)) {
    const object: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) object[keys[i]] = values[i];
    return object;
  }
  const map = new Map<unknown, unknown>();
  for (let i = 0; i < keys.length; i++) map.set(keys[i], values[i]);
  return map;
}

/** Containers and byte strings: their length is in the type byte (`lengthBytes` 0, `count`) or in the next 1/2/4 bytes. */
type SizedKind = 'str' | 'bin' | 'array' | 'map';

/** What a msgpack type byte announces. */
export type Head =
  | { readonly kind: 'value'; readonly value: unknown }
  | { readonly kind: 'scalar'; readonly size: 1 | 2 | 4 | 8; readonly what: string; readonly read: (view: DataView, at: number) => unknown }
  | { readonly kind: SizedKind; readonly count: number; readonly lengthBytes: 0 | 1 | 2 | 4 }
  | { readonly kind: 'invalid'; readonly message: string };

function float(v: number): number | PyFloat {
  // Python reads any msgpack float as float; keep whole values marked so they are written back as floats.
  return Number.isInteger(v) ? new PyFloat(v) : v;
}

function int64(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function scalar(size: 1 | 2 | 4 | 8, what: string, read: (view: DataView, at: number) => unknown): Head {
  return { kind: 'scalar', size, what, read };
}

function buildHeads(): readonly Head[] {
  const heads = new Array<Head>(256);
  for (let b = 0; b < 256; b++) {
    if (b <= 0x7f) heads[b] = { kind: 'value', value: b };
    else if (b >= 0xe0) heads[b] = { kind: 'value', value: b - 0x100 };
    else if (b >= 0xa0 && b <= 0xbf) heads[b] = { kind: 'str', count: b & 0x1f, lengthBytes: 0 };
    else if (b >= 0x90 && b <= 0x9f) heads[b] = { kind: 'array', count: b & 0x0f, lengthBytes: 0 };
    else if (b >= 0x80 && b <= 0x8f) heads[b] = { kind: 'map', count: b & 0x0f, lengthBytes: 0 };
    else if (b === 0xc1) heads[b] = { kind: 'invalid', message: 'byte 0xc1 is never used in msgpack: this is not a msgpack file' };
    else {
      // 0xc7-0xc9 ext 8/16/32, 0xd4-0xd8 fixext; the known bytes are overwritten below.
      heads[b] = { kind: 'invalid', message: `msgpack extension type (byte 0x${b.toString(16)}): Fed-BioMed weight files never contain one` };
    }
  }
  heads[0xc0] = { kind: 'value', value: null };
  heads[0xc2] = { kind: 'value', value: false };
  heads[0xc3] = { kind: 'value', value: true };
  heads[0xc4] = { kind: 'bin', count: 0, lengthBytes: 1 };
  heads[0xc5] = { kind: 'bin', count: 0, lengthBytes: 2 };
  heads[0xc6] = { kind: 'bin', count: 0, lengthBytes: 4 };
  heads[0xca] = scalar(4, 'a float32', (v, at) => float(v.getFloat32(at)));
  heads[0xcb] = scalar(8, 'a float64', (v, at) => float(v.getFloat64(at)));
  heads[0xcc] = scalar(1, 'a length', (v, at) => v.getUint8(at));
  heads[0xcd] = scalar(2, 'a length', (v, at) => v.getUint16(at));
  heads[0xce] = scalar(4, 'a length', (v, at) => v.getUint32(at));
  heads[0xcf] = scalar(8, 'a uint64', (v, at) => int64(v.getBigUint64(at)));
  heads[0xd0] = scalar(1, 'an int8', (v, at) => v.getInt8(at));
  heads[0xd1] = scalar(2, 'an int16', (v, at) => v.getInt16(at));
  heads[0xd2] = scalar(4, 'an int32', (v, at) => v.getInt32(at));
  heads[0xd3] = scalar(8, 'an int64', (v, at) => int64(v.getBigInt64(at)));
  heads[0xd9] = { kind: 'str', count: 0, lengthBytes: 1 };
  heads[0xda] = { kind: 'str', count: 0, lengthBytes: 2 };
  heads[0xdb] = { kind: 'str', count: 0, lengthBytes: 4 };
  heads[0xdc] = { kind: 'array', count: 0, lengthBytes: 2 };
  heads[0xdd] = { kind: 'array', count: 0, lengthBytes: 4 };
  heads[0xde] = { kind: 'map', count: 0, lengthBytes: 2 };
  heads[0xdf] = { kind: 'map', count: 0, lengthBytes: 4 };
  return heads;
}

/** The meaning of every type byte, indexed by the byte. */
export const HEADS: readonly Head[] = buildHeads();

export function readMsgpack(bytes: Uint8Array, hook?: ObjectHook): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new SerializationError('expected the file content as a Uint8Array/Buffer');
  }
  if (bytes.byteLength === 0) throw new SerializationError('empty input: a weight file holds one msgpack value');
  // A plain Uint8Array view, so that `bin` values are plain Uint8Arrays even when given a Node Buffer.
  const reader = new Reader(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), hook);
  const value = reader.readValue(0);
  if (reader.pos !== bytes.byteLength) {
    throw new SerializationError(
      `${bytes.byteLength - reader.pos} unexpected byte(s) after the msgpack value ending at offset ${reader.pos}` +
        ` (file is ${bytes.byteLength} bytes): not a single msgpack value, so not a weight file`,
    );
  }
  return value;
}

class Reader {
  pos = 0;
  private readonly view: DataView;
  private readonly path: PathSegment[] = [];

  constructor(
    private readonly bytes: Uint8Array,
    private readonly hook: ObjectHook | undefined,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private fail(message: string, at = this.pos): never {
    throw new SerializationError(`${message} at offset ${at}, in ${formatPath(this.path)}`);
  }

  /** Make sure `n` more bytes exist; `what` names them for the message. */
  private need(n: number, what: string): void {
    if (this.pos + n > this.bytes.byteLength) {
      this.fail(
        `truncated input: ${what} needs ${n} byte(s) but only ${this.bytes.byteLength - this.pos} remain` +
          ` (file is ${this.bytes.byteLength} bytes)`,
      );
    }
  }

  private length(bytes: 1 | 2 | 4): number {
    this.need(bytes, 'a length');
    const v = bytes === 1 ? this.bytes[this.pos] : bytes === 2 ? this.view.getUint16(this.pos) : this.view.getUint32(this.pos);
    this.pos += bytes;
    return v;
  }

  readValue(depth: number): unknown {
    if (depth > MAX_NESTING) this.fail(`values nested deeper than ${MAX_NESTING} levels`);
    this.need(1, 'a value');
    const start = this.pos;
    const head = HEADS[this.bytes[this.pos++]];
    switch (head.kind) {
      case 'value':
        return head.value;
      case 'scalar': {
        this.need(head.size, head.what);
        const v = head.read(this.view, this.pos);
        this.pos += head.size;
        return v;
      }
      case 'invalid':
        return this.fail(head.message, start);
      default: {
        const count = head.lengthBytes === 0 ? head.count : this.length(head.lengthBytes);
        if (head.kind === 'str') return this.str(count);
        if (head.kind === 'bin') return this.bin(count);
        if (head.kind === 'array') return this.array(count, depth);
        return this.map(count, depth);
      }
    }
  }

  private str(length: number): string {
    const start = this.pos;
    this.need(length, `a ${length}-byte string`);
    this.pos += length;
    const text = decodeUtf8(this.bytes.subarray(start, this.pos));
    return text ?? this.fail('string is not valid UTF-8', start);
  }

  private bin(length: number): Uint8Array {
    this.need(length, `a ${length}-byte binary payload`);
    const start = this.pos;
    this.pos += length;
    return this.bytes.subarray(start, this.pos);
  }

  private array(count: number, depth: number): unknown[] {
    // Each item takes at least one byte: reject absurd counts before allocating anything.
    this.need(count, `an array of ${count} item(s)`);
    const items = new Array<unknown>(count);
    for (let i = 0; i < count; i++) {
      this.path.push(i);
      items[i] = this.readValue(depth + 1);
      this.path.pop();
    }
    return items;
  }

  private map(count: number, depth: number): unknown {
    this.need(2 * count, `a map of ${count} entr${count === 1 ? 'y' : 'ies'}`);
    const keys = new Array<unknown>(count);
    const values = new Array<unknown>(count);
    for (let i = 0; i < count; i++) {
      this.path.push(`<key ${i}>`);
      const key = this.readValue(depth + 1);
      this.path.pop();
      this.path.push(typeof key === 'string' ? key : `<key ${i}>`);
      values[i] = this.readValue(depth + 1);
      this.path.pop();
      keys[i] = key;
    }
    const result = buildMap(keys, values);
    if (this.hook && hasKey(result, '__type__')) {
      try {
        return this.hook(result);
      } catch (err: unknown) {
        if (err instanceof SerializationError) throw new SerializationError(`${formatPath(this.path)}: ${err.message}`);
        throw err;
      }
    }
    return result;
  }
}

function hasKey(map: DecodedMap, key: string): boolean {
  return map instanceof Map ? map.has(key) : Object.hasOwn(map, key);
}

export function getKey(map: DecodedMap, key: string): unknown {
  return map instanceof Map ? map.get(key) : map[key];
}
