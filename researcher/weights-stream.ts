/**
 * Reads a node's results file (`node_params_<uuid>.mpk`) from a byte stream and yields its `model_weights`
 * tensors one at a time, as soon as each is complete. Only one tensor's bytes are held at once, so folding a
 * reply into the average never needs a second copy of the model in memory.
 *
 * The msgpack subset is Fed-BioMed's (reference 5.1/5.2): maps, arrays, str, bin, ints, floats, nil, bool; tensors
 * are `{"__type__": "torch.Tensor" | "np.ndarray", "value": [bin, dtype, shape]}`. Other top-level keys are read
 * as plain values (they are small) and returned by `fields()`.
 */
import { TorchTensor } from '../src/serialize/values';
import { isDType } from '../src/serialize/dtype';
import { AggregationError, WeightTensor } from './aggregators/tensors';
import type { TensorSink } from './aggregators/fedavg';

/** Tensors at least this big are streamed into a sink (when one is offered) instead of being read whole. */
export const STREAM_TENSOR_BYTES = 256 * 1024;

export class WeightsStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WeightsStreamError';
  }
}

type Value = null | boolean | number | bigint | string | Uint8Array | Value[] | { [key: string]: Value };

/** Bytes received but not yet parsed, as a list of chunks. */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // offset into chunks[0]
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.byteLength;
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

/** A parser step: yields how many bytes it needs next (exactly n, or any 1..n), and receives them. */
type Need = number | { upTo: number };
type Parser<T> = Generator<Need, T, Uint8Array>;

function* readBytes(n: number): Parser<Uint8Array> {
  if (n === 0) return new Uint8Array(0);
  return yield n;
}

/** Length of a bin value whose header comes next. */
function* readBinHeader(what: string): Parser<number> {
  const [t] = yield* readBytes(1);
  if (t === 0xc4) return yield* readLength(1);
  if (t === 0xc5) return yield* readLength(2);
  if (t === 0xc6) return yield* readLength(4);
  throw new WeightsStreamError(`${what}: tensor bytes are not bin`);
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function* readLength(bytes: 1 | 2 | 4): Parser<number> {
  const b = yield* readBytes(bytes);
  return bytes === 1 ? b[0] : bytes === 2 ? dv(b).getUint16(0) : dv(b).getUint32(0);
}

/** Reads a container header or a scalar; returns [kind, value-or-count]. */
function* readHeader(): Parser<{ kind: 'map' | 'array'; count: number } | { kind: 'value'; value: Value }> {
  const [t] = yield* readBytes(1);
  if (t <= 0x7f) return { kind: 'value', value: t };
  if (t >= 0xe0) return { kind: 'value', value: t - 0x100 };
  if ((t & 0xf0) === 0x80) return { kind: 'map', count: t & 0x0f };
  if ((t & 0xf0) === 0x90) return { kind: 'array', count: t & 0x0f };
  if ((t & 0xe0) === 0xa0) return { kind: 'value', value: utf8.decode(yield* readBytes(t & 0x1f)) };
  switch (t) {
    case 0xc0:
      return { kind: 'value', value: null };
    case 0xc2:
      return { kind: 'value', value: false };
    case 0xc3:
      return { kind: 'value', value: true };
    case 0xc4:
      return { kind: 'value', value: yield* readBytes(yield* readLength(1)) };
    case 0xc5:
      return { kind: 'value', value: yield* readBytes(yield* readLength(2)) };
    case 0xc6:
      return { kind: 'value', value: yield* readBytes(yield* readLength(4)) };
    case 0xca:
      return { kind: 'value', value: dv(yield* readBytes(4)).getFloat32(0) };
    case 0xcb:
      return { kind: 'value', value: dv(yield* readBytes(8)).getFloat64(0) };
    case 0xcc:
      return { kind: 'value', value: (yield* readBytes(1))[0] };
    case 0xcd:
      return { kind: 'value', value: dv(yield* readBytes(2)).getUint16(0) };
    case 0xce:
      return { kind: 'value', value: dv(yield* readBytes(4)).getUint32(0) };
    case 0xcf: {
      const v = dv(yield* readBytes(8)).getBigUint64(0);
      return { kind: 'value', value: v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v };
    }
    case 0xd0:
      return { kind: 'value', value: dv(yield* readBytes(1)).getInt8(0) };
    case 0xd1:
      return { kind: 'value', value: dv(yield* readBytes(2)).getInt16(0) };
    case 0xd2:
      return { kind: 'value', value: dv(yield* readBytes(4)).getInt32(0) };
    case 0xd3: {
      const v = dv(yield* readBytes(8)).getBigInt64(0);
      return { kind: 'value', value: Number.isSafeInteger(Number(v)) ? Number(v) : v };
    }
    case 0xd9:
      return { kind: 'value', value: utf8.decode(yield* readBytes(yield* readLength(1))) };
    case 0xda:
      return { kind: 'value', value: utf8.decode(yield* readBytes(yield* readLength(2))) };
    case 0xdb:
      return { kind: 'value', value: utf8.decode(yield* readBytes(yield* readLength(4))) };
    case 0xdc:
      return { kind: 'array', count: yield* readLength(2) };
    case 0xdd:
      return { kind: 'array', count: yield* readLength(4) };
    case 0xde:
      return { kind: 'map', count: yield* readLength(2) };
    case 0xdf:
      return { kind: 'map', count: yield* readLength(4) };
    default:
      throw new WeightsStreamError(`unsupported msgpack type byte 0x${t.toString(16)} (Fed-BioMed files use no ext types)`);
  }
}

function* readValue(depth = 0): Parser<Value> {
  if (depth > 64) throw new WeightsStreamError('msgpack nesting deeper than 64 levels');
  const h = yield* readHeader();
  if (h.kind === 'value') return h.value;
  if (h.kind === 'array') {
    const out: Value[] = [];
    for (let i = 0; i < h.count; i++) out.push(yield* readValue(depth + 1));
    return out;
  }
  const out: { [key: string]: Value } = {};
  for (let i = 0; i < h.count; i++) {
    const key = yield* readValue(depth + 1);
    if (typeof key !== 'string') throw new WeightsStreamError('map keys must be strings in a weight file');
    out[key] = yield* readValue(depth + 1);
  }
  return out;
}

function toTensor(name: string, v: Value): WeightTensor {
  const tagged = v as { __type__?: unknown; value?: unknown };
  if (!tagged || typeof tagged !== 'object' || (tagged.__type__ !== 'torch.Tensor' && tagged.__type__ !== 'np.ndarray')) {
    throw new WeightsStreamError(`model_weights["${name}"] is not a tensor`);
  }
  const payload = tagged.value;
  if (!Array.isArray(payload) || payload.length !== 3) throw new WeightsStreamError(`model_weights["${name}"]: malformed tensor payload`);
  const [raw, dtype, shape] = payload as [unknown, unknown, unknown];
  if (!(raw instanceof Uint8Array)) throw new WeightsStreamError(`model_weights["${name}"]: tensor bytes are not bin`);
  if (!isDType(dtype)) throw new WeightsStreamError(`model_weights["${name}"]: unsupported dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
    throw new WeightsStreamError(`model_weights["${name}"]: malformed shape`);
  }
  try {
    return TorchTensor.fromBytes(dtype, shape as number[], raw);
  } catch (err) {
    throw new WeightsStreamError(`model_weights["${name}"]: ${(err as Error).message}`);
  }
}

const TENSOR_TAGS = ['torch.Tensor', 'np.ndarray'];

/**
 * One model_weights entry. A tensor tag map is `{"__type__": tag, "value": [bin, dtype, shape]}`; when `__type__`
 * comes first (Python's order) and the bytes are big and a sink is offered, the bytes go to the sink as they
 * arrive and the entry yields no tensor ('streamed'). Anything else is read whole and checked.
 */
function* readTensorEntry(name: string, sinkFor: SinkFactory | undefined): Parser<WeightTensor | 'streamed'> {
  const h = yield* readHeader();
  if (h.kind !== 'map') throw new WeightsStreamError(`model_weights["${name}"] is not a tensor`);
  const obj: { [key: string]: Value } = {};
  let streamed = false;
  for (let i = 0; i < h.count; i++) {
    const key = yield* readValue();
    if (typeof key !== 'string') throw new WeightsStreamError(`model_weights["${name}"]: map keys must be strings`);
    if (key === 'value' && typeof obj.__type__ === 'string' && TENSOR_TAGS.includes(obj.__type__)) {
      const arr = yield* readHeader();
      if (arr.kind !== 'array' || arr.count !== 3) throw new WeightsStreamError(`model_weights["${name}"]: malformed tensor payload`);
      const length = yield* readBinHeader(`model_weights["${name}"]`);
      const sink = length >= STREAM_TENSOR_BYTES ? sinkFor?.(name, length) : undefined;
      if (sink) {
        for (let remaining = length; remaining > 0; ) {
          const chunk: Uint8Array = yield { upTo: remaining };
          sink.write(chunk);
          remaining -= chunk.byteLength;
        }
        const dtype = yield* readValue();
        const shape = yield* readValue();
        if (typeof dtype !== 'string' || !Array.isArray(shape) || !shape.every((d) => typeof d === 'number')) {
          throw new WeightsStreamError(`model_weights["${name}"]: malformed tensor payload`);
        }
        sink.end(dtype, shape as number[]);
        streamed = true;
      } else {
        const raw = yield* readBytes(length);
        obj.value = [raw, yield* readValue(), yield* readValue()];
      }
    } else {
      obj[key] = yield* readValue();
    }
  }
  if (streamed) {
    if (h.count !== 2) throw new WeightsStreamError(`model_weights["${name}"]: unexpected keys in tensor map`);
    return 'streamed';
  }
  return toTensor(name, obj);
}

/** Offers a sink for a big tensor's bytes (or undefined to read it whole). */
export type SinkFactory = (name: string, byteLength: number) => TensorSink | undefined;

/** Events of the file-level parser: a tensor, or a top-level field. */
type Item = { tensor: [string, WeightTensor] } | { field: [string, Value] };

function* readParamsFile(emit: (item: Item) => void, sinkFor: SinkFactory | undefined): Parser<void> {
  const top = yield* readHeader();
  if (top.kind !== 'map') throw new WeightsStreamError('a weight file must hold a map at the top level');
  let sawWeights = false;
  for (let i = 0; i < top.count; i++) {
    const key = yield* readValue();
    if (typeof key !== 'string') throw new WeightsStreamError('top-level keys must be strings');
    if (key !== 'model_weights') {
      emit({ field: [key, yield* readValue()] });
      continue;
    }
    sawWeights = true;
    const h = yield* readHeader();
    if (h.kind !== 'map') throw new WeightsStreamError('"model_weights" must be a map from parameter names to tensors');
    for (let j = 0; j < h.count; j++) {
      const name = yield* readValue();
      if (typeof name !== 'string') throw new WeightsStreamError('parameter names must be strings');
      const tensor = yield* readTensorEntry(name, sinkFor);
      if (tensor !== 'streamed') emit({ tensor: [name, tensor] });
    }
  }
  if (!sawWeights) throw new WeightsStreamError('the file has no "model_weights" key');
}

export interface StreamedParams {
  /** Tensors in file order, each as soon as it is complete. */
  tensors: AsyncIterable<[string, WeightTensor]>;
  /** Top-level fields other than model_weights (complete once `tensors` is exhausted). */
  fields(): Record<string, unknown>;
}

/**
 * Parses a stream of chunks (e.g. an HTTP body) lazily, yielding tensors as they complete. With `sinkFor`, big
 * tensors may instead be streamed into sinks (and are then not yielded).
 */
export function streamParams(chunks: AsyncIterable<Uint8Array>, source: string, sinkFor?: SinkFactory): StreamedParams {
  const fields: Record<string, unknown> = {};
  async function* tensors(): AsyncGenerator<[string, WeightTensor]> {
    const queue = new ByteQueue();
    const ready: Array<[string, WeightTensor]> = [];
    const parser = readParamsFile((item) => {
      if ('tensor' in item) ready.push(item.tensor);
      else fields[item.field[0]] = item.field[1];
    }, sinkFor);
    const advance = (bytes: Uint8Array): IteratorResult<Need, void> => {
      try {
        return parser.next(bytes);
      } catch (err) {
        // Aggregation errors (from a sink) pass through; parse errors (bad msgpack, bad UTF-8, bad tensor) name
        // the file. Transport errors never get here: they come from the chunk iterator below.
        if (err instanceof AggregationError) throw err;
        throw new WeightsStreamError(`${source}: ${(err as Error).message}`);
      }
    };
    const available = (need: Need): number =>
      typeof need === 'number' ? (queue.length >= need ? need : 0) : Math.min(need.upTo, queue.length);
    let step = advance(undefined as unknown as Uint8Array);
    for await (const chunk of chunks) {
      queue.push(chunk);
      for (let n = step.done ? 0 : available(step.value); n > 0; n = step.done ? 0 : available(step.value)) {
        step = advance(queue.take(n));
        while (ready.length > 0) yield ready.shift() as [string, WeightTensor];
      }
    }
    while (ready.length > 0) yield ready.shift() as [string, WeightTensor];
    if (!step.done) throw new WeightsStreamError(`${source}: the file ends early (truncated download?)`);
    if (queue.length > 0) throw new WeightsStreamError(`${source}: ${queue.length} unexpected bytes after the weights map`);
  }
  return { tensors: { [Symbol.asyncIterator]: () => tensors() }, fields: () => fields };
}
