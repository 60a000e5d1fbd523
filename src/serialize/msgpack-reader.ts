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

  private u8(): number {
    this.need(1, 'a length');
    return this.bytes[this.pos++];
  }
  private u16(): number {
    this.need(2, 'a length');
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  private u32(): number {
    this.need(4, 'a length');
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  readValue(depth: number): unknown {
    if (depth > MAX_NESTING) this.fail(`values nested deeper than ${MAX_NESTING} levels`);
    this.need(1, 'a value');
    const start = this.pos;
    const b = this.bytes[this.pos++];
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b >= 0xa0 && b <= 0xbf) return this.str(b & 0x1f);
    if (b >= 0x90 && b <= 0x9f) return this.array(b & 0x0f, depth);
    if (b >= 0x80 && b <= 0x8f) return this.map(b & 0x0f, depth);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.u8());
      case 0xc5:
        return this.bin(this.u16());
      case 0xc6:
        return this.bin(this.u32());
      case 0xca:
        return this.float(4);
      case 0xcb:
        return this.float(8);
      case 0xcc:
        return this.u8();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf:
        return this.int64(false);
      case 0xd0:
        this.need(1, 'an int8');
        return this.view.getInt8(this.pos++);
      case 0xd1: {
        this.need(2, 'an int16');
        const v = this.view.getInt16(this.pos);
        this.pos += 2;
        return v;
      }
      case 0xd2: {
        this.need(4, 'an int32');
        const v = this.view.getInt32(this.pos);
        this.pos += 4;
        return v;
      }
      case 0xd3:
        return this.int64(true);
      case 0xd9:
        return this.str(this.u8());
      case 0xda:
        return this.str(this.u16());
      case 0xdb:
        return this.str(this.u32());
      case 0xdc:
        return this.array(this.u16(), depth);
      case 0xdd:
        return this.array(this.u32(), depth);
      case 0xde:
        return this.map(this.u16(), depth);
      case 0xdf:
        return this.map(this.u32(), depth);
      case 0xc1:
        return this.fail('byte 0xc1 is never used in msgpack: this is not a msgpack file', start);
      default:
        // 0xc7-0xc9 ext 8/16/32, 0xd4-0xd8 fixext
        return this.fail(
          `msgpack extension type (byte 0x${b.toString(16)}): Fed-BioMed weight files never contain one`,
          start,
        );
    }
  }

  private float(size: 4 | 8): number | PyFloat {
    this.need(size, `a float${size * 8}`);
    const v = size === 8 ? this.view.getFloat64(this.pos) : this.view.getFloat32(this.pos);
    this.pos += size;
    // Python reads any msgpack float as float; keep whole values marked so they are written back as floats.
    return Number.isInteger(v) ? new PyFloat(v) : v;
  }

  private int64(signed: boolean): number | bigint {
    this.need(8, signed ? 'an int64' : 'a uint64');
    const v = signed ? this.view.getBigInt64(this.pos) : this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  private str(length: number): string {
    const start = this.pos;
    this.need(length, `a ${length}-byte string`);
    this.pos += length;
    try {
      return utf8.decode(this.bytes.subarray(start, this.pos));
    } catch {
      return this.fail('string is not valid UTF-8', start);
    }
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
    let plain = true;
    for (let i = 0; i < count; i++) {
      this.path.push(`<key ${i}>`);
      const key = this.readValue(depth + 1);
      this.path.pop();
      this.path.push(typeof key === 'string' ? key : `<key ${i}>`);
      values[i] = this.readValue(depth + 1);
      this.path.pop();
      keys[i] = key;
      if (plain && !keepsOrderAsObjectKey(key)) plain = false;
    }
    let result: DecodedMap;
    if (plain) {
      const object: Record<string, unknown> = {};
      for (let i = 0; i < count; i++) object[keys[i] as string] = values[i];
      result = object;
    } else {
      result = new Map<unknown, unknown>();
      for (let i = 0; i < count; i++) result.set(keys[i], values[i]);
    }
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

export function hasKey(map: DecodedMap, key: string): boolean {
  return map instanceof Map ? map.has(key) : Object.hasOwn(map, key);
}

export function getKey(map: DecodedMap, key: string): unknown {
  return map instanceof Map ? map.get(key) : map[key];
}
