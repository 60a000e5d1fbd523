/**
 * numpy dtypes that Fed-BioMed weight files carry, by their numpy `dtype.name`, and the typed array that holds
 * each one. Two dtypes have no native JavaScript element type: float16 is kept as its raw IEEE half bits in a
 * Uint16Array (see float16.ts to convert) and bool as one byte per element (0 or 1) in a Uint8Array, exactly as
 * numpy stores them, so bytes round-trip unchanged.
 */
import { SerializationError } from './errors';

export const DTYPES = [
  'float16',
  'float32',
  'float64',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'bool',
] as const;

export type DType = (typeof DTYPES)[number];

interface TypedArrayByDType {
  float16: Uint16Array;
  float32: Float32Array;
  float64: Float64Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
}

export type TypedArrayFor<D extends DType> = TypedArrayByDType[D];
export type TypedArray = TypedArrayByDType[DType];

interface TypedArrayClass<T> {
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
  new (length: number): T;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
}

const ARRAY_CLASS: { [D in DType]: TypedArrayClass<TypedArrayByDType[D]> } = {
  float16: Uint16Array,
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

const DTYPE_SET: ReadonlySet<string> = new Set(DTYPES);

/** The integer dtypes (bool apart), e.g. BatchNorm's int64 `num_batches_tracked`, which aggregation keeps integer. */
const INTEGER_DTYPES = ['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64'] as const satisfies
  readonly DType[];

export type IntegerDType = (typeof INTEGER_DTYPES)[number];

const INTEGER_DTYPE_SET: ReadonlySet<string> = new Set(INTEGER_DTYPES);

export function isIntegerDType(name: string): name is IntegerDType {
  return INTEGER_DTYPE_SET.has(name);
}

export function isDType(name: unknown): name is DType {
  return typeof name === 'string' && DTYPE_SET.has(name);
}

/** Bytes per element (numpy `itemsize`). */
export function itemSize(dtype: DType): number {
  return ARRAY_CLASS[dtype].BYTES_PER_ELEMENT;
}

/** Name of the typed array class that holds `dtype`, for messages. */
export function arrayClassName(dtype: DType): string {
  return ARRAY_CLASS[dtype].name;
}

/** True when `data` is the typed array kind that holds `dtype`. */
export function holdsDType(dtype: DType, data: unknown): boolean {
  return data instanceof ARRAY_CLASS[dtype];
}

export function allocate<D extends DType>(dtype: D, length: number): TypedArrayFor<D> {
  return new ARRAY_CLASS[dtype](length);
}

/** numpy writes native order, and every platform Fed-BioMed runs on is little-endian; so must we be. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A typed array over little-endian `bytes`. It is a view sharing `bytes`' memory when the offset is a multiple
 * of the element size (typed arrays require it), otherwise a copy of just those bytes.
 */
export function typedArrayFromBytes<D extends DType>(dtype: D, bytes: Uint8Array): TypedArrayFor<D> {
  const cls = ARRAY_CLASS[dtype];
  const size = cls.BYTES_PER_ELEMENT;
  if (bytes.byteLength % size !== 0) {
    throw new SerializationError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements (${size} bytes each)`);
  }
  if (size > 1 && !HOST_IS_LITTLE_ENDIAN) {
    throw new SerializationError('weight files are little-endian; this big-endian host is not supported');
  }
  // new Uint8Array(view) copies (unlike Buffer#slice, which would return another misaligned view).
  const source = bytes.byteOffset % size === 0 ? bytes : new Uint8Array(bytes);
  return new cls(source.buffer, source.byteOffset, source.byteLength / size);
}

/** The bytes of a typed array, as a view (no copy). */
export function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
