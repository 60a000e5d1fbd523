/**
 * Reads a node's results file (`node_params_<uuid>.mpk`) from a byte stream and yields its `model_weights`
 * tensors one at a time, as soon as each is complete. Only one tensor's bytes are held at once, so folding a
 * reply into the average never needs a second copy of the model in memory.
 *
 * The msgpack decoding is the streaming mode of src/serialize's reader (values decode as `readMsgpack` decodes
 * them); this module knows the file's structure: tensors are
 * `{"__type__": "torch.Tensor" | "np.ndarray", "value": [bin, dtype, shape]}`. Other top-level keys are read
 * as plain values (they are small) and returned by `fields()`.
 */
import { TorchTensor } from '../src/serialize/values';
import { isDType } from '../src/serialize/dtype';
import { ByteQueue, type Parser, readBinLength, readBytes, readHead, readValue } from '../src/serialize/msgpack-stream';
import { AggregationError, WeightTensor } from './aggregators/tensors';
import type { TensorSink } from './aggregators/fedavg';
import { FedbiomedTsError } from '../src/errors';

/** Tensors at least this big are streamed into a sink (when one is offered) instead of being read whole. */
const STREAM_TENSOR_BYTES = 256 * 1024;

export class WeightsStreamError extends FedbiomedTsError {}

function toTensor(name: string, v: unknown): WeightTensor {
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
  const h = yield* readHead();
  if (h.kind !== 'map') throw new WeightsStreamError(`model_weights["${name}"] is not a tensor`);
  const obj: { [key: string]: unknown } = {};
  let streamed = false;
  for (let i = 0; i < h.count; i++) {
    const key = yield* readValue();
    if (typeof key !== 'string') throw new WeightsStreamError(`model_weights["${name}"]: map keys must be strings`);
    if (key === 'value' && typeof obj.__type__ === 'string' && TENSOR_TAGS.includes(obj.__type__)) {
      const arr = yield* readHead();
      if (arr.kind !== 'array' || arr.count !== 3) throw new WeightsStreamError(`model_weights["${name}"]: malformed tensor payload`);
      const length = yield* readBinLength(`model_weights["${name}"]`);
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
        sink.end(dtype, shape);
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
type Item = { tensor: [string, WeightTensor] } | { field: [string, unknown] };

function* readParamsFile(emit: (item: Item) => void, sinkFor: SinkFactory | undefined): Parser<void> {
  const top = yield* readHead();
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
    const h = yield* readHead();
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
    const advance = (bytes: Uint8Array): ReturnType<typeof parser.next> => {
      try {
        return parser.next(bytes);
      } catch (err) {
        // Aggregation errors (from a sink) pass through; parse errors (bad msgpack, bad UTF-8, bad tensor) name
        // the file. Transport errors never get here: they come from the chunk iterator below.
        if (err instanceof AggregationError) throw err;
        throw new WeightsStreamError(`${source}: ${(err as Error).message}`);
      }
    };
    let step = advance(undefined as unknown as Uint8Array);
    for await (const chunk of chunks) {
      queue.push(chunk);
      for (let n = step.done ? 0 : queue.available(step.value); n > 0; n = step.done ? 0 : queue.available(step.value)) {
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
