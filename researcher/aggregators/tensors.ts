/**
 * The minimal view of a tensor the aggregators need: numpy dtype name, shape, and flat C-order values.
 * It is structurally compatible with src/serialize's `TorchTensor`, so decoded weight files pass straight in.
 */
import { float16ToFloat32 } from '../../src/serialize/float16';
import { allocate, isIntegerDType } from '../../src/serialize/dtype';
import { FedbiomedTsError } from '../../src/errors';

export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | number[];

export interface WeightTensor {
  dtype: string;
  shape: number[];
  data: NumericArray;
}

/** Parameter name → tensor, in state_dict order. */
export type WeightMap = Map<string, WeightTensor>;

export class AggregationError extends FedbiomedTsError {
  override readonly errnum = 'FB401' as const;
}

/** Integer dtypes (numpy names) that aggregation keeps integer, e.g. BatchNorm's int64 `num_batches_tracked`. */
export { isIntegerDType };

/** A zeroed typed array of an integer dtype. */
export function integerArray(dtype: string, n: number): Exclude<NumericArray, number[]> {
  if (!isIntegerDType(dtype)) throw new AggregationError(`${dtype} is not an integer dtype`);
  return allocate(dtype, n);
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Element i as a JS number (int64 buffers such as num_batches_tracked arrive as BigInt64Array). */
export function valueAt(data: NumericArray, i: number): number {
  return Number(data[i]);
}

/**
 * The tensor's values in a form `valueAt` reads correctly: float16 tensors hold raw half-precision bits
 * (Uint16Array), so they are widened to float32 first; every other dtype is returned as is.
 */
export function numericValues(tensor: WeightTensor): NumericArray {
  if (tensor.dtype === 'float16') return float16ToFloat32(tensor.data as Uint16Array);
  return tensor.data;
}

export function toWeightMap(weights: WeightMap | Record<string, WeightTensor> | Iterable<[string, WeightTensor]>): WeightMap {
  if (weights instanceof Map) return weights;
  if (Symbol.iterator in Object(weights)) return new Map(weights as Iterable<[string, WeightTensor]>);
  return new Map(Object.entries(weights as Record<string, WeightTensor>));
}

/**
 * Replaces, one tensor at a time, every tensor whose data view is smaller than its buffer with a compact copy
 * (FedAvg results live in the first half of float64 buffers). In place; returns the same map.
 */
export function compactWeights(weights: WeightMap): WeightMap {
  for (const [name, t] of weights) {
    const d = t.data;
    if (Array.isArray(d) || d.byteLength === d.buffer.byteLength) continue;
    weights.set(name, { dtype: t.dtype, shape: t.shape, data: d.slice() as NumericArray });
  }
  return weights;
}
