/** Fed-BioMed v4.5.0 msgpack weight files: public API of src/serialize. */
export { SerializationError } from './errors';
export { DTYPES, bytesOf } from './dtype';
export type { DType, TypedArray } from './dtype';
export { DenseArray, TorchTensor, NdArray, NpGeneric, PyTuple } from './values';
export { decodeParams, encodeParams, encodeParamsChunks } from './codec';
export { tensorFromFloat32, tensorToFloat32 } from './convert';
export { float16ToFloat32, float32ToFloat16 } from './float16';
export { aggregatedParamsFile, nodeParamsFile, modelWeightsOf, readParamsFile, writeParamsFile } from './params-file';
export type { ModelWeights } from './params-file';
export { PyFloat } from '../protocol/pyfloat';
