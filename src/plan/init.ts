/**
 * Round-0 weights, PyTorch's default initialisation, seeded and computed in plain JS (the same numbers on every
 * tfjs backend): conv and linear weights kaiming_uniform(a=√5) = U(-1/√fan_in, 1/√fan_in), their biases
 * U(-1/√fan_in, 1/√fan_in); batch norm weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0.
 * The numbers are not PyTorch's (its generator is another one); the distributions are.
 */
import { SeededRandom } from '../engine/prng';
import { TorchTensor } from '../serialize';
import { describeParameters, ParameterDescriptor } from './parameters';
import { PlanSpec } from './spec';
import { validatePlan } from './validate';
import { ResolvedGraph } from './graph';

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function initialValue(p: ParameterDescriptor, rng: SeededRandom): TorchTensor {
  if (p.dtype === 'int64') return new TorchTensor('int64', p.torchShape, new BigInt64Array(size(p.torchShape)));
  const data = new Float32Array(size(p.torchShape));
  if (p.fanIn !== undefined) {
    const bound = 1 / Math.sqrt(p.fanIn);
    for (let i = 0; i < data.length; i++) data[i] = (rng.next() * 2 - 1) * bound;
  } else if (p.role === 'weight' || p.role === 'running_var') {
    data.fill(1);
  }
  return new TorchTensor('float32', p.torchShape, data);
}

/** Initial weights for a resolved graph, keyed by PyTorch state_dict name, in state_dict order. */
export function initialWeightsForGraph(graph: ResolvedGraph, seed: number): Record<string, TorchTensor> {
  const rng = new SeededRandom(seed);
  const out: Record<string, TorchTensor> = {};
  for (const p of describeParameters(graph)) out[p.name] = initialValue(p, rng);
  return out;
}

/** Initial weights (PyTorch layout and names) for a plan: what a TS researcher sends in round 0. */
export function initialWeights(spec: PlanSpec, seed: number): Record<string, TorchTensor> {
  return initialWeightsForGraph(validatePlan(spec).graph, seed);
}
