import * as fs from 'fs';
import * as path from 'path';
import { readMsgpack } from './msgpack-reader';
import { ByteQueue, Parser, readValue } from './msgpack-stream';
import { joinChunks, writeMsgpackChunks } from './msgpack-writer';
import { SerializationError } from './errors';
import { PyFloat } from '../protocol/pyfloat';
import { VECTORS_DIR } from '../testing/vectors-dir';

const FILES = path.join(VECTORS_DIR, 'files');
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));

/** Feeds `bytes` to the parser `size` bytes at a time; returns its value, or 'waiting' if it still wants bytes. */
function parseInChunks<T>(parser: Parser<T>, bytes: Uint8Array, size: number): { value: T; rest: number } | 'waiting' {
  const queue = new ByteQueue();
  let step = parser.next(undefined as unknown as Uint8Array);
  for (let i = 0; i < bytes.length; i += size) {
    queue.push(bytes.slice(i, i + size));
    for (let n = step.done ? 0 : queue.available(step.value); n > 0; n = step.done ? 0 : queue.available(step.value)) {
      step = parser.next(queue.take(n));
    }
  }
  return step.done ? { value: step.value, rest: queue.length } : 'waiting';
}

// Every msgpack family Fed-BioMed files use, in its short and long forms, plus what only a hand-written file has:
// int8/int16/float32, 64-bit integers beyond 2^53, a whole float64, and maps whose keys a plain object would reorder.
const HAND_WRITTEN = [
  '93 d0 80 d1 8000 ca 3fc00000', // [-128, -32768, 1.5f]
  'cf ffffffffffffffff', // uint64 max: a bigint
  'd3 8000000000000000', // int64 min: a bigint
  'cb 3ff0000000000000', // 1.0: a PyFloat
  '82 a1 31 c3 a1 61 c2', // {"1": true, "a": false}: a Map (an object would move "1" first)
  '81 01 c0', // {1: null}: a Map
  'dc 0002 c0 c0', // array16
  'de 0001 a1 6b 7f', // map16
  'd9 03 616263 c4 00', // str8 "abc", then a byte left over
];

describe('msgpack reader, streaming mode', () => {
  it.each([1, 2, 5, 4096])('decodes the recorded weight files exactly as readMsgpack does (chunks of %i bytes)', (size) => {
    const files = fs.readdirSync(FILES).filter((f) => f.endsWith('.mpk'));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const bytes = new Uint8Array(fs.readFileSync(path.join(FILES, file)));
      expect(parseInChunks(readValue(), bytes, size)).toEqual({ value: readMsgpack(bytes), rest: 0 });
    }
  });

  it.each(HAND_WRITTEN)('decodes %s as readMsgpack does', (hex) => {
    const bytes = fromHex(hex);
    const streamed = parseInChunks(readValue(), bytes, 1);
    expect(streamed).not.toBe('waiting');
    const { value, rest } = streamed as { value: unknown; rest: number };
    expect(value).toEqual(readMsgpack(bytes.subarray(0, bytes.length - rest)));
  });

  it('keeps the round-trip markers: PyFloat, bigint and Map', () => {
    const value = { f: new PyFloat(2), big: 2n ** 60n, odd: new Map<unknown, unknown>([[1, 'x']]) };
    const bytes = joinChunks(writeMsgpackChunks(value));
    const streamed = parseInChunks(readValue(), bytes, 3);
    expect(streamed).toEqual({ value, rest: 0 });
    expect((streamed as { value: typeof value }).value.f).toBeInstanceOf(PyFloat);
  });

  it.each([
    ['the never-used byte', 'c1', /0xc1 is never used/],
    ['an ext type', 'd4 01 00', /extension type \(byte 0xd4\)/],
    ['bad UTF-8', 'a2 c3 28', /not valid UTF-8/],
    ['600 nested arrays', '91'.repeat(600) + 'c0', /nested deeper than 512 levels/],
  ])('refuses %s with a clear error', (_label, hex, message) => {
    const run = () => parseInChunks(readValue(), fromHex(hex), 7);
    expect(run).toThrow(SerializationError);
    expect(run).toThrow(message);
  });

  it('waits for the bytes a hostile count announces instead of allocating for it', () => {
    // An array of 2^32-1 items followed by two: the parser asks for more, it does not reserve 4 G slots.
    expect(parseInChunks(readValue(), fromHex('dd ffffffff c0 c0'), 2)).toBe('waiting');
  });
});
