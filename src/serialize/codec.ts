/**
 * Fed-BioMed v4.5.0 weight-file codec (fedbiomed/common/serializer.py): plain msgpack in which Python objects
 * msgpack has no form for travel as 2-key maps `{"__type__": tag, "value": payload}`:
 *
 *   "torch.Tensor" / "np.ndarray"  [bin raw little-endian C-order bytes, str numpy dtype name, [int shape…]]
 *   "np.generic"                   [bin raw bytes, str dtype name]
 *   "tuple"                        [items…]
 *   "int"                          bin: unsigned big-endian magnitude, ceil(bit_length / 8) bytes; only used for
 *                                  ints above 2^64 - 1 (Python's own serializer fails on ints below -2^63)
 *
 * Any other tag (e.g. declearn's "Vector") is left as the plain map, as Python does, so it round-trips.
 *
 * JS ↔ Python: null ↔ None, boolean ↔ bool, integer number/bigint ↔ int, other number or PyFloat ↔ float,
 * string ↔ str, Uint8Array ↔ bytes, array ↔ list, plain object/Map ↔ dict, PyTuple ↔ tuple,
 * TorchTensor ↔ torch.Tensor, NdArray ↔ numpy.ndarray, NpGeneric ↔ numpy scalar.
 */
import { SerializationError } from './errors';
import { DTYPES, isDType } from './dtype';
import { DecodedMap, getKey, readMsgpack } from './msgpack-reader';
import { NOT_HANDLED, joinChunks, writeMsgpackChunks } from './msgpack-writer';
import { NdArray, NpGeneric, PyTuple, TorchTensor } from './values';

const UINT64_MAX = (BigInt(1) << BigInt(64)) - BigInt(1);
const INT64_MIN = -(BigInt(1) << BigInt(63));

/**
 * Decode a weight file. Tensors' `data` are views on `bytes` wherever alignment allows (so no copy is made):
 * do not reuse `bytes` for something else while the result is in use, and copy a tensor's data before
 * mutating it if `bytes` must stay intact.
 * @throws SerializationError for anything that is not a well-formed Fed-BioMed msgpack file.
 */
export function decodeParams(bytes: Uint8Array): unknown {
  return readMsgpack(bytes, (map) => untagPythonValue(map, 'unsigned'));
}

/** Encode to one contiguous buffer, byte-identical to what Fed-BioMed's Python serializer writes. */
export function encodeParams(value: unknown): Uint8Array {
  return joinChunks(encodeParamsChunks(value));
}

/**
 * Encode to a list of chunks whose concatenation is the file. Tensor payloads of 4 KiB or more are not copied:
 * the chunks are views on the tensors' own memory, so write them out (e.g. with fs.writev or a stream) before
 * mutating the tensors.
 */
export function encodeParamsChunks(value: unknown): Uint8Array[] {
  return writeMsgpackChunks(value, (v) => tagPythonValue(v, 'unsigned'));
}

/**
 * How integers beyond 64 bits travel in an `"int"` tag: v4.5 writes the unsigned magnitude in
 * ceil(bit_length / 8) bytes; v6 (protocol "7") the signed two's complement in ceil(bit_length / 8) + 1 bytes.
 */
export type BigIntTag = 'unsigned' | 'signed';

/** The `{"__type__", "value"}` form of a Python value msgpack has no form for, or NOT_HANDLED. */
export function tagPythonValue(value: unknown, bigInts: BigIntTag): unknown {
  if (value instanceof TorchTensor || value instanceof NdArray) {
    const name = value instanceof TorchTensor ? TorchTensor.TAG : NdArray.TAG;
    return { __type__: name, value: [value.bytes(), value.dtype, value.shape] };
  }
  if (value instanceof NpGeneric) return { __type__: NpGeneric.TAG, value: [value.bytes(), value.dtype] };
  if (value instanceof PyTuple) return { __type__: PyTuple.TAG, value: value.items };
  if (typeof value === 'bigint') {
    if (bigInts === 'signed') {
      return value > UINT64_MAX || value < INT64_MIN ? { __type__: 'int', value: bigintToSignedBytes(value) } : NOT_HANDLED;
    }
    if (value > UINT64_MAX) return { __type__: 'int', value: bigintToBytes(value) };
    if (value < INT64_MIN) {
      throw new SerializationError(
        `integer ${value} is below -2^63; Fed-BioMed's "int" tag only holds non-negative integers`,
      );
    }
  }
  return NOT_HANDLED;
}

/** The Python value a tagged map stands for; unknown tags stay as the map, as in Python. */
export function untagPythonValue(map: DecodedMap, bigInts: BigIntTag): unknown {
  const type = getKey(map, '__type__');
  switch (type) {
    case TorchTensor.TAG:
    case NdArray.TAG: {
      const [bytes, dtype, shape] = payload(map, type, ['bytes', 'dtype', 'shape']);
      return type === TorchTensor.TAG
        ? TorchTensor.fromBytes(dtype, shape, bytes)
        : NdArray.fromBytes(dtype, shape, bytes);
    }
    case NpGeneric.TAG: {
      const [bytes, dtype] = payload(map, type, ['bytes', 'dtype']);
      return NpGeneric.fromBytes(dtype, bytes);
    }
    case PyTuple.TAG: {
      const items = getKey(map, 'value');
      if (!Array.isArray(items)) throw new SerializationError(`"tuple" value must be a list, got ${kind(items)}`);
      return new PyTuple(items);
    }
    case 'int': {
      const bytes = getKey(map, 'value');
      if (!(bytes instanceof Uint8Array)) throw new SerializationError(`"int" value must be bytes, got ${kind(bytes)}`);
      return bigInts === 'signed' ? signedBytesToBigint(bytes) : bytesToBigint(bytes);
    }
    default:
      return map; // unknown tags stay as they are, as in Python
  }
}

type Field = 'bytes' | 'dtype' | 'shape';
type FieldValue<F extends Field> = F extends 'bytes' ? Uint8Array : F extends 'dtype' ? (typeof DTYPES)[number] : number[];

/** The `[bytes, dtype, shape?]` payload of an array tag, each element checked. */
function payload<F extends Field[]>(map: DecodedMap, type: string, fields: [...F]): { [I in keyof F]: FieldValue<F[I]> } {
  const value = getKey(map, 'value');
  const spec = `[${fields.join(', ')}]`;
  if (!Array.isArray(value) || value.length !== fields.length) {
    throw new SerializationError(`"${type}" value must be a list ${spec}, got ${kind(value)}`);
  }
  fields.forEach((field, i) => {
    const item: unknown = value[i];
    if (field === 'bytes' && !(item instanceof Uint8Array)) {
      throw new SerializationError(`"${type}" raw data must be bytes, got ${kind(item)}`);
    }
    if (field === 'dtype' && !isDType(item)) {
      throw new SerializationError(
        typeof item === 'string'
          ? `"${type}" has unsupported dtype "${item}" (supported: ${DTYPES.join(', ')})`
          : `"${type}" dtype must be a string, got ${kind(item)}`,
      );
    }
    if (field === 'shape' && !(Array.isArray(item) && item.every((n) => Number.isSafeInteger(n) && n >= 0))) {
      throw new SerializationError(`"${type}" shape must be a list of non-negative integers, got ${kind(item)}`);
    }
  });
  return value as { [I in keyof F]: FieldValue<F[I]> };
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `bytes(${value.byteLength})`;
  if (Array.isArray(value)) {
    try {
      const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
      return text.length <= 60 ? `list ${text}` : `list of ${value.length}`;
    } catch {
      return `list of ${value.length}`;
    }
  }
  if (typeof value === 'string') return `"${value.length <= 40 ? value : value.slice(0, 40) + '…'}"`;
  if (typeof value === 'object') return value instanceof Map ? 'map' : (value.constructor?.name ?? 'object');
  return typeof value;
}

/** Minimal unsigned big-endian bytes, as Python's `int.to_bytes(ceil(bit_length / 8), "big")`. */
function bigintToBytes(value: bigint): Uint8Array {
  if (value < BigInt(0)) throw new SerializationError('negative integers have no unsigned byte form');
  if (value === BigInt(0)) return new Uint8Array(0);
  let hex = value.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** Python's `int.from_bytes(bytes, "big")` (unsigned). */
function bytesToBigint(bytes: Uint8Array): bigint {
  return bytes.byteLength === 0 ? BigInt(0) : BigInt('0x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex'));
}

/** Python's `int.to_bytes(ceil(bit_length / 8) + 1, "big", signed=True)`, as Fed-BioMed v6 writes big ints. */
function bigintToSignedBytes(value: bigint): Uint8Array {
  const magnitude = value < BigInt(0) ? -value : value;
  const length = Math.ceil(magnitude.toString(2).length / 8) + (magnitude === BigInt(0) ? 0 : 1);
  const out = new Uint8Array(Math.max(length, 1));
  let v = BigInt.asUintN(out.length * 8, value);
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(v & BigInt(0xff));
    v >>= BigInt(8);
  }
  return out;
}

/** Python's `int.from_bytes(bytes, "big", signed=True)`. */
function signedBytesToBigint(bytes: Uint8Array): bigint {
  if (bytes.byteLength === 0) return BigInt(0);
  return BigInt.asIntN(bytes.byteLength * 8, bytesToBigint(bytes));
}
