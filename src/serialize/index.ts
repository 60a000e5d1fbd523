/** Fed-BioMed v4.5.0 msgpack weight files: public API of src/serialize. */
export { SerializationError } from './errors';
export { DTYPES, isDType, itemSize, bytesOf } from './dtype';
export type { DType, TypedArray, TypedArrayFor, TypedArrayByDType } from './dtype';
export { DenseArray, TorchTensor, NdArray, NpGeneric, PyTuple, shapeSize } from './values';
export { decodeParams, encodeParams, encodeParamsChunks, bigintToBytes, bytesToBigint } from './codec';
export { tensorFromFloat32, tensorToFloat32 } from './convert';
export { float16ToFloat32, float32ToFloat16, float16BitsToNumber, numberToFloat16Bits } from './float16';
export { aggregatedParamsFile, nodeParamsFile, modelWeightsOf, readParamsFile, writeParamsFile } from './params-file';
export type { ModelWeights, AggregatedParamsFile, NodeParamsFile } from './params-file';
export { PyFloat, pyFloat } from '../protocol/pyfloat';
