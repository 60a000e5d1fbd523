/**
 * The researcher's two weight files (protocol reference 5.3 / 5.4), between src/serialize's `ModelWeights`
 * (Record of TorchTensor) and the aggregators' `WeightMap`.
 */
import { aggregatedParamsFile, decodeParams, encodeParamsChunks, modelWeightsOf } from '../src/serialize';
import { TorchTensor } from '../src/serialize/values';
import type { DType } from '../src/serialize/dtype';
import type { ModelWeights } from '../src/serialize/params-file';
import { WeightMap, WeightTensor } from './aggregators/tensors';
import { FedbiomedTsError } from '../src/errors';

export class WeightsFileError extends FedbiomedTsError {}

function toTorchTensor(name: string, t: WeightTensor): TorchTensor {
  if (t instanceof TorchTensor) return t;
  const data = Array.isArray(t.data) ? Float32Array.from(t.data) : t.data;
  const dtype = (Array.isArray(t.data) ? 'float32' : t.dtype) as DType;
  try {
    return new TorchTensor(dtype, t.shape, data);
  } catch (err) {
    throw new WeightsFileError(`parameter ${name}: ${(err as Error).message}`);
  }
}

export function toModelWeights(weights: WeightMap): ModelWeights {
  const out: ModelWeights = {};
  for (const [name, t] of weights) out[name] = toTorchTensor(name, t);
  return out;
}

export function fromModelWeights(weights: ModelWeights): WeightMap {
  return new Map(Object.entries(weights));
}

/**
 * `aggregated_params_<uuid>.mpk`: `{"researcher_id", "model_weights"}`, byte-identical to Python's file for the
 * same tensors. Returned as chunks whose concatenation is the file: tensor payloads are views on the weights'
 * memory, not copies (do not mutate the weights until the chunks are written).
 */
export function encodeAggregatedParams(researcherId: string, weights: WeightMap): Uint8Array[] {
  return encodeParamsChunks(aggregatedParamsFile(researcherId, toModelWeights(weights)));
}

export function concatChunks(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/**
 * model_weights of a node's results file. Tensor data are views on `bytes` (no copy), so the reply costs one
 * model's worth of memory until it has been folded into the average.
 */
export function decodeNodeParams(bytes: Uint8Array, source: string): WeightMap {
  let decoded: unknown;
  try {
    decoded = decodeParams(bytes);
  } catch (err) {
    throw new WeightsFileError(`${source}: not a Fed-BioMed weight file: ${(err as Error).message}`);
  }
  let weights: ModelWeights;
  try {
    weights = modelWeightsOf(decoded);
  } catch (err) {
    throw new WeightsFileError(`${source}: ${(err as Error).message}`);
  }
  const optimAux = (decoded as Record<string, unknown>).optim_aux_var;
  if (optimAux && typeof optimAux === 'object' && Object.keys(optimAux).length > 0) {
    // Python aborts too unless it runs a declearn aggregator optimizer, which we do not.
    throw new WeightsFileError(`${source}: optim_aux_var is not empty (declearn auxiliary variables are not supported)`);
  }
  return fromModelWeights(weights);
}
