/** Aggregated weights (a researcher's WeightMap) as the plan model's full, PyTorch-named state dict. */
import type { WeightMap } from '../aggregators/tensors';
import { initialWeights } from '../../src/plan/init';
import type { PlanSpec } from '../../src/plan/spec';
import { TorchTensor } from '../../src/serialize';

/**
 * The full state dict of the plan's model: the aggregated tensors, and for anything the aggregate does not carry
 * (non-trainable buffers when no node shared them) the plan's initial value, as a node's load_state_dict keeps it.
 *
 * @example
 * ```ts
 * const result = await experiment.run();
 * const weights = stateDictFromWeightMap(plan, result.weights, 0);
 * writeParamsFile('global.mpk', aggregatedParamsFile('my-researcher', weights));
 * ```
 */
export function stateDictFromWeightMap(spec: PlanSpec, weights: WeightMap, seed: number): Record<string, TorchTensor> {
  const out = initialWeights(spec, seed);
  for (const [name, t] of weights) {
    const own = out[name];
    if (!own) throw new Error(`aggregated weights hold '${name}', which plan ${spec.name} does not have`);
    const data = own.dtype === 'int64'
      ? BigInt64Array.from(Array.from(t.data as ArrayLike<number | bigint>, (v) => BigInt(Math.round(Number(v)))))
      : Float32Array.from(Array.from(t.data as ArrayLike<number | bigint>, Number));
    out[name] = new TorchTensor(own.dtype, t.shape, data);
  }
  return out;
}
