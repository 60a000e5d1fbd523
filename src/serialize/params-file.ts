/**
 * The two weight files of a Fed-BioMed v4.5.0 round (reference §5.3, §5.4) with their keys in the order
 * Python writes them, so that files we write are byte-identical to Python's for the same content.
 */
import * as fs from 'fs';
import { SerializationError } from './errors';
import { decodeParams, encodeParamsChunks } from './codec';
import { DenseArray, NdArray, TorchTensor } from './values';

/** Parameter name (PyTorch state_dict name) → tensor. */
export type ModelWeights = Record<string, TorchTensor | NdArray>;

/** `aggregated_params_<uuid>.mpk`: researcher → node. */
export interface AggregatedParamsFile {
  researcher_id: string;
  model_weights: ModelWeights;
}

/** `node_params_<uuid>.mpk`: node → researcher (without secure aggregation). */
export interface NodeParamsFile {
  optim_aux_var: Record<string, unknown>;
  encrypted: boolean;
  researcher_id: string;
  job_id: string;
  state_id: string;
  model_weights: ModelWeights;
  node_id: string;
  optimizer_args: Record<string, unknown>;
}

export function aggregatedParamsFile(researcherId: string, weights: ModelWeights): AggregatedParamsFile {
  return { researcher_id: researcherId, model_weights: weights };
}

/** Builds the object with Python's key order whatever order the fields were given in. */
export function nodeParamsFile(fields: NodeParamsFile): NodeParamsFile {
  return {
    optim_aux_var: fields.optim_aux_var,
    encrypted: fields.encrypted,
    researcher_id: fields.researcher_id,
    job_id: fields.job_id,
    state_id: fields.state_id,
    model_weights: fields.model_weights,
    node_id: fields.node_id,
    optimizer_args: fields.optimizer_args,
  };
}

/**
 * The `model_weights` map of a decoded weight file, checked: every entry must be a tensor or array
 * (what Python's `load_state_dict` accepts).
 * @throws SerializationError naming the missing key or the first bad entry.
 */
export function modelWeightsOf(decoded: unknown): ModelWeights {
  if (decoded === null || typeof decoded !== 'object' || decoded instanceof Map || Array.isArray(decoded)) {
    throw new SerializationError('a weight file must hold a map with string keys at the top level');
  }
  const weights = (decoded as Record<string, unknown>).model_weights;
  if (weights === undefined) throw new SerializationError('the file has no "model_weights" key');
  if (weights === null || typeof weights !== 'object' || weights instanceof Map || Array.isArray(weights)) {
    throw new SerializationError('"model_weights" must be a map from parameter names to tensors');
  }
  for (const [name, tensor] of Object.entries(weights)) {
    if (!(tensor instanceof DenseArray)) {
      throw new SerializationError(`model_weights["${name}"] is not a tensor`);
    }
  }
  return weights as ModelWeights;
}

/**
 * Read and decode a weight file; errors name the file.
 *
 * @example
 * ```ts
 * import { readParamsFile, modelWeightsOf } from 'fedbiomed-ts';
 * const weights = modelWeightsOf(readParamsFile('aggregated_params.mpk')); // PyTorch-named tensors
 * ```
 */
export function readParamsFile(path: string): unknown {
  const bytes = fs.readFileSync(path);
  try {
    return decodeParams(bytes);
  } catch (err: unknown) {
    if (err instanceof SerializationError) throw new SerializationError(`${path}: ${err.message}`);
    throw err;
  }
}

/**
 * Encode and write a weight file without joining the tensor payloads into one buffer first.
 *
 * @example
 * ```ts
 * import { writeParamsFile, aggregatedParamsFile } from 'fedbiomed-ts';
 * writeParamsFile('global.mpk', aggregatedParamsFile('my-researcher-id', stateDict));
 * ```
 */
export function writeParamsFile(path: string, value: unknown): void {
  const chunks = encodeParamsChunks(value);
  const fd = fs.openSync(path, 'w');
  try {
    for (const chunk of chunks) {
      let offset = 0;
      while (offset < chunk.byteLength) offset += fs.writeSync(fd, chunk, offset, chunk.byteLength - offset);
    }
  } finally {
    fs.closeSync(fd);
  }
}
