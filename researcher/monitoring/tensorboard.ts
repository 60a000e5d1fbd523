/**
 * TensorBoard scalar logs without a dependency. An event file is a TFRecord stream of `Event` protocol buffers:
 *   record = uint64 length | uint32 masked CRC-32C(length) | data | uint32 masked CRC-32C(data)   (little-endian)
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
 * Only these few fields are written, which is all TensorBoard needs to plot scalars. Layout follows Fed-BioMed:
 * one run directory per node (`<dir>/<node_id>/`), tags such as `TRAINING/Loss`.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { crc32c } from '../../src/serialize/crc';


function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function lengthDelimited(field: number, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(payload.length)]), payload]);
}

function encodeScalarEvent(wallTime: number, step: number, tag: string, value: number): Buffer {
  const valueMsg = Buffer.concat([lengthDelimited(1, Buffer.from(tag, 'utf8')), Buffer.from([(2 << 3) | 5]), float32(value)]);
  const summary = lengthDelimited(1, valueMsg);
  return Buffer.concat([Buffer.from([(1 << 3) | 1]), float64(wallTime), Buffer.from([(2 << 3) | 0, ...varint(step)]), lengthDelimited(5, summary)]);
}

function encodeVersionEvent(wallTime: number): Buffer {
  return Buffer.concat([Buffer.from([(1 << 3) | 1]), float64(wallTime), lengthDelimited(3, Buffer.from('brain.Event:2', 'utf8'))]);
}

function float64(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(v);
  return b;
}

function float32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return b;
}

function tfRecord(data: Buffer): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(data.length));
  const lenCrc = Buffer.alloc(4);
  lenCrc.writeUInt32LE(maskedCrc32c(len));
  const dataCrc = Buffer.alloc(4);
  dataCrc.writeUInt32LE(maskedCrc32c(data));
  return Buffer.concat([len, lenCrc, data, dataCrc]);
}

/** Appends scalar events to one `events.out.tfevents.*` file per run (node). */
export class TensorBoardWriter {
  private readonly files = new Map<string, string>();

  constructor(readonly logDir: string) {}

  addScalar(run: string, tag: string, value: number, step: number, wallTime = Date.now() / 1000): void {
    if (!Number.isFinite(value)) return; // TensorBoard cannot plot NaN/Infinity losses; the history keeps them.
    fs.appendFileSync(this.fileFor(run, wallTime), tfRecord(encodeScalarEvent(wallTime, step, tag, value)));
  }

  private fileFor(run: string, wallTime: number): string {
    let file = this.files.get(run);
    if (!file) {
      const dir = path.join(this.logDir, run.replace(/[^A-Za-z0-9_.-]/g, '_'));
      fs.mkdirSync(dir, { recursive: true });
      file = path.join(dir, `events.out.tfevents.${Math.floor(wallTime)}.${os.hostname()}.${process.pid}`);
      fs.writeFileSync(file, tfRecord(encodeVersionEvent(wallTime)));
      this.files.set(run, file);
    }
    return file;
  }
}

export interface DecodedScalar {
  wallTime: number;
  step: number;
  tag: string;
  value: number;
}

/** Reads an event file back, checking both CRCs of every record (used by tests and `researcher` tooling). */
export function readScalarEvents(file: string): { version: string | null; scalars: DecodedScalar[] } {
  const buf = fs.readFileSync(file);
  let off = 0;
  let version: string | null = null;
  const scalars: DecodedScalar[] = [];
  while (off < buf.length) {
    const lenBytes = buf.subarray(off, off + 8);
    if (buf.readUInt32LE(off + 8) !== maskedCrc32c(lenBytes)) throw new Error(`${file}: bad length CRC at ${off}`);
    const len = Number(buf.readBigUInt64LE(off));
    const data = buf.subarray(off + 12, off + 12 + len);
    if (buf.readUInt32LE(off + 12 + len) !== maskedCrc32c(data)) throw new Error(`${file}: bad data CRC at ${off}`);
    off += 16 + len;
    const ev = parseEvent(data);
    if (ev.version !== undefined) version = ev.version;
    if (ev.scalar) scalars.push(ev.scalar);
  }
  return { version, scalars };
}

interface ProtoField {
  field: number;
  wire: number;
  value: number | bigint | Buffer;
}

function* protoFields(buf: Buffer): Generator<ProtoField> {
  let off = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[off++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (off < buf.length) {
    const key = Number(readVarint());
    const field = key >> 3;
    const wire = key & 7;
    if (wire === 0) yield { field, wire, value: readVarint() };
    else if (wire === 1) {
      yield { field, wire, value: buf.readDoubleLE(off) };
      off += 8;
    } else if (wire === 5) {
      yield { field, wire, value: buf.readFloatLE(off) };
      off += 4;
    } else if (wire === 2) {
      const len = Number(readVarint());
      yield { field, wire, value: buf.subarray(off, off + len) };
      off += len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}

function parseEvent(data: Buffer): { version?: string; scalar?: DecodedScalar } {
  let wallTime = 0;
  let step = 0;
  let version: string | undefined;
  let scalar: DecodedScalar | undefined;
  for (const f of protoFields(data)) {
    if (f.field === 1) wallTime = f.value as number;
    else if (f.field === 2) step = Number(f.value);
    else if (f.field === 3) version = (f.value as Buffer).toString('utf8');
    else if (f.field === 5) {
      for (const v of protoFields(f.value as Buffer)) {
        if (v.field !== 1) continue;
        let tag = '';
        let value = NaN;
        for (const x of protoFields(v.value as Buffer)) {
          if (x.field === 1) tag = (x.value as Buffer).toString('utf8');
          if (x.field === 2) value = x.value as number;
        }
        scalar = { wallTime, step, tag, value };
      }
    }
  }
  if (scalar) scalar.step = step;
  return { version, scalar };
}
