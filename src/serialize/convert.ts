/** Conversions between tensors and the float32 arrays training and aggregation work with. */
import { SerializationError } from './errors';
import { float16ToFloat32 } from './float16';
import { DenseArray, TorchTensor, shapeSize } from './values';

/** A float32 torch tensor over `data` (kept, not copied, when it is already a Float32Array). */
export function tensorFromFloat32(shape: readonly number[], data: Float32Array | readonly number[]): TorchTensor<'float32'> {
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  if (values.length !== shapeSize(shape)) {
    throw new SerializationError(`shape [${shape.join(', ')}] needs ${shapeSize(shape)} values, got ${values.length}`);
  }
  return new TorchTensor('float32', shape, values);
}

/**
 * The values of any numeric tensor as float32. A float32 tensor's own `data` is returned as is (no copy: do
 * not mutate it unless you own the tensor); every other dtype gives a new array (int64 via Number(), bool as 0/1).
 */
export function tensorToFloat32(tensor: DenseArray): Float32Array {
  const { dtype, data } = tensor;
  if (dtype === 'float32') return data as Float32Array;
  if (dtype === 'float16') return float16ToFloat32(data as Uint16Array);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
    return out;
  }
  return Float32Array.from(data as ArrayLike<number>);
}
