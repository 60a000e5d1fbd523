/**
 * JavaScript counterparts of the Python objects Fed-BioMed tags in weight files. Each maps to one tag:
 * TorchTensor ↔ "torch.Tensor", NdArray ↔ "np.ndarray", NpGeneric ↔ "np.generic", PyTuple ↔ "tuple".
 * (Python ints beyond 64 bits, the "int" tag, are plain `bigint`s.)
 */
import { SerializationError } from './errors';
import {
  DType,
  TypedArrayFor,
  allocate,
  arrayClassName,
  bytesOf,
  holdsDType,
  isDType,
  itemSize,
  typedArrayFromBytes,
} from './dtype';
import { float16BitsToNumber, numberToFloat16Bits } from './float16';

function checkShape(shape: readonly number[]): void {
  if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new SerializationError(`shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
}

/** Number of elements of a shape (1 for the scalar shape []). */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((product, n) => product * n, 1);
}

/**
 * A dense, C-ordered (row-major) array: what numpy's `tobytes()` produces. `data` holds `shapeSize(shape)`
 * elements; after decoding it may be a view on the decoded file's bytes (see decodeParams).
 */
export abstract class DenseArray<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: number[];
  readonly data: TypedArrayFor<D>;

  constructor(dtype: D, shape: readonly number[], data: TypedArrayFor<D>) {
    if (!isDType(dtype)) throw new SerializationError(`unsupported dtype ${JSON.stringify(dtype)}`);
    checkShape(shape);
    if (!holdsDType(dtype, data)) {
      throw new SerializationError(`${dtype} data must be a ${arrayClassName(dtype)}`);
    }
    const expected = shapeSize(shape);
    if (data.length !== expected) {
      throw new SerializationError(`shape [${shape.join(', ')}] needs ${expected} elements, data has ${data.length}`);
    }
    this.dtype = dtype;
    this.shape = [...shape];
    this.data = data;
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** The raw little-endian bytes, as a view on `data` (no copy). */
  bytes(): Uint8Array {
    return bytesOf(this.data);
  }
}

/** A `torch.Tensor` (always on CPU). This is the tag Python nodes require for torch model weights. */
export class TorchTensor<D extends DType = DType> extends DenseArray<D> {
  static readonly TAG = 'torch.Tensor';

  /** From raw little-endian bytes; the data is a view on `bytes` when their offset is aligned. */
  static fromBytes<D extends DType>(dtype: D, shape: readonly number[], bytes: Uint8Array): TorchTensor<D> {
    return new TorchTensor(dtype, shape, arrayFromBytes(dtype, shape, bytes));
  }

  static zeros<D extends DType>(dtype: D, shape: readonly number[]): TorchTensor<D> {
    checkShape(shape);
    return new TorchTensor(dtype, shape, allocate(dtype, shapeSize(shape)));
  }
}

/** A `numpy.ndarray` (e.g. scikit-learn plans' `coef_`, float64). */
export class NdArray<D extends DType = DType> extends DenseArray<D> {
  static readonly TAG = 'np.ndarray';

  static fromBytes<D extends DType>(dtype: D, shape: readonly number[], bytes: Uint8Array): NdArray<D> {
    return new NdArray(dtype, shape, arrayFromBytes(dtype, shape, bytes));
  }

  static zeros<D extends DType>(dtype: D, shape: readonly number[]): NdArray<D> {
    checkShape(shape);
    return new NdArray(dtype, shape, allocate(dtype, shapeSize(shape)));
  }
}

function arrayFromBytes<D extends DType>(dtype: D, shape: readonly number[], bytes: Uint8Array): TypedArrayFor<D> {
  if (!isDType(dtype)) throw new SerializationError(`unsupported dtype ${JSON.stringify(dtype)}`);
  checkShape(shape);
  const needed = shapeSize(shape) * itemSize(dtype);
  if (bytes.byteLength !== needed) {
    throw new SerializationError(
      `${dtype} shape [${shape.join(', ')}] needs ${needed} bytes, payload has ${bytes.byteLength}`,
    );
  }
  return typedArrayFromBytes(dtype, bytes);
}

/** A numpy scalar (`np.float32(…)`, `np.int64(…)`, …): one element, no shape on the wire. */
export class NpGeneric<D extends DType = DType> {
  static readonly TAG = 'np.generic';
  readonly dtype: D;
  /** Exactly one element. */
  readonly data: TypedArrayFor<D>;

  constructor(dtype: D, data: TypedArrayFor<D>) {
    if (!isDType(dtype)) throw new SerializationError(`unsupported dtype ${JSON.stringify(dtype)}`);
    if (!holdsDType(dtype, data)) throw new SerializationError(`${dtype} data must be a ${arrayClassName(dtype)}`);
    if (data.length !== 1) throw new SerializationError(`a numpy scalar holds 1 element, got ${data.length}`);
    this.dtype = dtype;
    this.data = data;
  }

  static fromBytes<D extends DType>(dtype: D, bytes: Uint8Array): NpGeneric<D> {
    if (!isDType(dtype)) throw new SerializationError(`unsupported dtype ${JSON.stringify(dtype)}`);
    if (bytes.byteLength !== itemSize(dtype)) {
      throw new SerializationError(`a ${dtype} scalar is ${itemSize(dtype)} bytes, payload has ${bytes.byteLength}`);
    }
    return new NpGeneric(dtype, typedArrayFromBytes(dtype, bytes));
  }

  /** A scalar from a JS value (numbers are cast like numpy would store them: floats rounded, ints wrapped). */
  static of<D extends DType>(dtype: D, value: number | bigint | boolean): NpGeneric<D> {
    if (!isDType(dtype)) throw new SerializationError(`unsupported dtype ${JSON.stringify(dtype)}`);
    const data = allocate(dtype, 1);
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[0] = BigInt(value);
    else if (dtype === 'float16') data[0] = numberToFloat16Bits(Number(value));
    else data[0] = Number(value);
    return new NpGeneric(dtype, data);
  }

  /** The element as a JS value: boolean for bool, bigint for int64/uint64, number otherwise. */
  get value(): number | bigint | boolean {
    const element = this.data[0];
    if (this.dtype === 'bool') return element !== 0;
    if (this.dtype === 'float16') return float16BitsToNumber(element as number);
    return element;
  }

  bytes(): Uint8Array {
    return bytesOf(this.data);
  }
}

/** A Python tuple (msgpack would otherwise turn it into a list). */
export class PyTuple {
  static readonly TAG = 'tuple';
  constructor(readonly items: unknown[]) {
    if (!Array.isArray(items)) throw new SerializationError('a tuple holds a list of items');
  }
}
