/**
 * Streaming federated averaging: each node's weights are folded into one float32 accumulator as soon as they
 * arrive and can then be dropped, so memory stays O(model) whatever the number of nodes.
 *
 * Python's FedAverage needs every sample size before it starts (weight_i = n_i / Σn). Streaming cannot know Σn,
 * so the accumulator holds Σ (n_i / n_ref) · θ_i, with n_ref the first non-empty reply's sample size, and the sum
 * is scaled by n_ref / Σn at the end. With equal sample sizes (the usual case, and the recorded vectors) this is
 * bit-identical to Python's float32 result: Python computes round(½a + ½b), we compute round(a + b) · ½, and
 * halving is exact. With unequal sizes the two differ by float32 rounding only.
 */
import {
  AggregationError,
  WeightMap,
  WeightTensor,
  elementCount,
  numericValues,
  sameShape,
  shapeText,
  valueAt,
} from './tensors';

interface AccumulatorEntry {
  shape: number[];
  data: Float32Array;
}

export interface Contribution {
  nodeId: string;
  sampleSize: number;
}

export class StreamingFedAvg {
  private accumulator: Map<string, AccumulatorEntry> | undefined;
  private referenceSize = 0;
  private totalSize = 0;
  private readonly contributions: Contribution[] = [];
  private finalized = false;

  /** Nodes folded in so far, with their sample sizes. */
  get contributors(): readonly Contribution[] {
    return this.contributions;
  }

  /**
   * Folds one node's weights in. Checks the whole reply before touching the accumulator, so a bad reply
   * (missing key, wrong shape) is rejected with an AggregationError and leaves the average intact.
   */
  add(nodeId: string, weights: WeightMap, sampleSize: number): void {
    if (this.finalized) throw new AggregationError('aggregation already finalized');
    if (!Number.isInteger(sampleSize) || sampleSize < 0) {
      throw new AggregationError(`node ${nodeId}: sample_size must be a non-negative integer, got ${sampleSize}`);
    }
    if (this.contributions.some((c) => c.nodeId === nodeId)) {
      throw new AggregationError(`node ${nodeId}: already aggregated in this round`);
    }
    this.checkCompatible(nodeId, weights);
    this.contributions.push({ nodeId, sampleSize });
    this.totalSize += sampleSize;
    // A node that trained on nothing contributes nothing; it still counts as having answered.
    if (sampleSize === 0) return;

    if (!this.accumulator) {
      this.referenceSize = sampleSize;
      this.accumulator = new Map();
      for (const [name, tensor] of weights) {
        const data = new Float32Array(elementCount(tensor.shape));
        copyInto(data, tensor);
        this.accumulator.set(name, { shape: [...tensor.shape], data });
      }
      return;
    }
    // torch multiplies a float32 tensor by a Python float in float32: mimic it.
    const ratio = Math.fround(sampleSize / this.referenceSize);
    for (const [name, entry] of this.accumulator) {
      accumulate(entry.data, numericValues(weights.get(name) as WeightTensor), ratio);
    }
  }

  /** Every key of the first reply must be present with the same shape (Python indexes by the first reply's keys). */
  private checkCompatible(nodeId: string, weights: WeightMap): void {
    for (const [name, tensor] of weights) {
      const n = elementCount(tensor.shape);
      if (tensor.data.length !== n) {
        throw new AggregationError(
          `node ${nodeId}: parameter ${name} has ${tensor.data.length} values but shape ${shapeText(tensor.shape)}`,
        );
      }
    }
    if (!this.accumulator) {
      if (weights.size === 0) throw new AggregationError(`node ${nodeId}: model_weights is empty`);
      return;
    }
    for (const [name, entry] of this.accumulator) {
      const tensor = weights.get(name);
      if (!tensor) throw new AggregationError(`node ${nodeId}: parameter ${name} is missing`);
      if (!sameShape(tensor.shape, entry.shape)) {
        throw new AggregationError(
          `node ${nodeId}: parameter ${name} has shape ${shapeText(tensor.shape)}, expected ${shapeText(entry.shape)}`,
        );
      }
    }
  }

  /**
   * The weighted average, every tensor float32 (as Python's FedAverage casts buffers too). Scales the
   * accumulator in place, so no second copy of the model is made.
   */
  finalize(): WeightMap {
    if (this.finalized) throw new AggregationError('aggregation already finalized');
    if (this.contributions.length === 0) throw new AggregationError('no node weights to aggregate');
    if (!this.accumulator || this.totalSize === 0) {
      // Python raises FB401 here too: weights that sum to 0 cannot be averaged.
      throw new AggregationError('FB401: every node reported sample_size 0; cannot weight the average');
    }
    this.finalized = true;
    const scale = this.referenceSize / this.totalSize;
    const out: WeightMap = new Map();
    for (const [name, entry] of this.accumulator) {
      const data = entry.data;
      if (scale !== 1) for (let i = 0; i < data.length; i++) data[i] = data[i] * scale;
      out.set(name, { dtype: 'float32', shape: entry.shape, data });
    }
    this.accumulator = undefined;
    return out;
  }
}

function copyInto(target: Float32Array, tensor: WeightTensor): void {
  const values = numericValues(tensor);
  if (values instanceof Float32Array) {
    target.set(values);
    return;
  }
  for (let i = 0; i < target.length; i++) target[i] = valueAt(values, i);
}

/**
 * target += ratio · source, in float32. A double-precision product or sum of float32 values rounded to float32
 * equals the float32 operation (53 ≥ 2·24 + 2), so Math.fround reproduces torch's float32 arithmetic.
 */
function accumulate(target: Float32Array, source: WeightTensor['data'], ratio: number): void {
  const n = target.length;
  if (source instanceof Float32Array) {
    if (ratio === 1) for (let i = 0; i < n; i++) target[i] += source[i];
    else for (let i = 0; i < n; i++) target[i] += Math.fround(ratio * source[i]);
    return;
  }
  for (let i = 0; i < n; i++) target[i] += Math.fround(ratio * Math.fround(valueAt(source, i)));
}

/** Non-streaming convenience: the FedAvg of complete replies (tests, scripts). */
export function federatedAverage(replies: Array<{ nodeId: string; weights: WeightMap; sampleSize: number }>): WeightMap {
  const agg = new StreamingFedAvg();
  for (const r of replies) agg.add(r.nodeId, r.weights, r.sampleSize);
  return agg.finalize();
}
