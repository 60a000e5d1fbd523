/**
 * Streaming federated averaging: every node's tensors are folded into one accumulator as they arrive (tensor by
 * tensor, straight from the HTTP stream) and then dropped, so memory is O(model) whatever the number of nodes.
 *
 * The accumulator is float64 and holds Σ n_i·θ_i with the integer sample sizes n_i; the result is
 * round_to_float32(Σ n_i·θ_i / Σ n_i). Why not float32 like Python:
 *  - order independence: replies arrive in a different order on every run. Each product n_i·θ_i is exact in float64
 *    (24-bit mantissa × an integer below 2^29), so the sum is exact whenever the terms' magnitudes are within a few
 *    million of each other — then any arrival order gives the same bits. This is what makes a resumed experiment
 *    reproduce an uninterrupted one exactly. (A float32 sum of three or more replies depends on their order.)
 *  - Python compatibility: with equal sample sizes (the recorded vectors) the result is bit-identical to Python's
 *    float32 FedAverage, round(½a + ½b) = round((a+b)/2); otherwise it is the correctly rounded average, which
 *    Python's float32 accumulation approximates within a few ulps.
 * Cost: the accumulator is 2× the float32 model; nothing else of size O(model) is held while replies stream in.
 */
import { AggregationError, WeightMap, WeightTensor, elementCount, numericValues, sameShape, shapeText, valueAt } from './tensors';

interface AccumulatorEntry {
  shape: number[];
  sum: Float64Array;
}

export interface Contribution {
  nodeId: string;
  sampleSize: number;
}

/** A source of a node's tensors, read again to undo a partial contribution. */
export type TensorSource = () => AsyncIterable<[string, WeightTensor]> | Iterable<[string, WeightTensor]>;

/** One node's reply being folded in, tensor by tensor. Either commit() or abort() it. */
export interface NodeContribution {
  readonly nodeId: string;
  /** Names already folded in (a retried download skips them). */
  readonly added: ReadonlySet<string>;
  /** Checks name and shape, then adds n·θ. Throws AggregationError before adding anything on a mismatch. */
  addTensor(name: string, tensor: WeightTensor): void;
  /** Checks that every parameter arrived; throws AggregationError (contribution still open) if not. */
  commit(): void;
  /**
   * Removes what this node added so far. Tensors are not kept in memory (that would cost a model per node), so
   * the node's file is read again from `source` and the same exact products subtracted. If that is impossible the
   * whole round's average is marked unusable (finalize() then throws), never silently wrong.
   */
  abort(source?: TensorSource): Promise<void>;
}

export class StreamingFedAvg {
  private accumulator = new Map<string, AccumulatorEntry>();
  /** The first committed reply fixes the parameter set and order (Python indexes by the first reply's keys). */
  private layoutFixed = false;
  private totalSize = 0;
  private readonly contributions: Contribution[] = [];
  private open: string | undefined;
  private finalized = false;
  private poisoned: string | undefined;

  get contributors(): readonly Contribution[] {
    return this.contributions;
  }

  /** Why the average cannot be used, if a partial contribution could not be undone. */
  get unusable(): string | undefined {
    return this.poisoned;
  }

  beginNode(nodeId: string, sampleSize: number): NodeContribution {
    if (this.finalized) throw new AggregationError('aggregation already finalized');
    if (this.open !== undefined) throw new AggregationError(`node ${nodeId}: node ${this.open} is still being aggregated`);
    if (!Number.isInteger(sampleSize) || sampleSize < 0 || sampleSize >= 2 ** 29) {
      throw new AggregationError(`node ${nodeId}: sample_size must be an integer in [0, 2^29), got ${sampleSize}`);
    }
    if (this.contributions.some((c) => c.nodeId === nodeId)) throw new AggregationError(`node ${nodeId}: already aggregated in this round`);
    this.open = nodeId;
    const added = new Set<string>();
    const establishing = !this.layoutFixed;
    let closed = false;
    const close = (): void => {
      closed = true;
      this.open = undefined;
    };
    const ensureOpen = (): void => {
      if (closed) throw new AggregationError(`node ${nodeId}: contribution already closed`);
    };

    return {
      nodeId,
      added,
      addTensor: (name, tensor) => {
        ensureOpen();
        if (added.has(name)) throw new AggregationError(`node ${nodeId}: parameter ${name} sent twice`);
        const n = elementCount(tensor.shape);
        if (tensor.data.length !== n) {
          throw new AggregationError(`node ${nodeId}: parameter ${name} has ${tensor.data.length} values but shape ${shapeText(tensor.shape)}`);
        }
        let entry = this.accumulator.get(name);
        if (!entry) {
          if (!establishing) throw new AggregationError(`node ${nodeId}: unexpected parameter ${name} (not in the first reply)`);
          entry = { shape: [...tensor.shape], sum: new Float64Array(n) };
          this.accumulator.set(name, entry);
        } else if (!sameShape(entry.shape, tensor.shape)) {
          throw new AggregationError(`node ${nodeId}: parameter ${name} has shape ${shapeText(tensor.shape)}, expected ${shapeText(entry.shape)}`);
        }
        addScaled(entry.sum, numericValues(tensor), sampleSize);
        added.add(name);
      },
      commit: () => {
        ensureOpen();
        if (added.size === 0) throw new AggregationError(`node ${nodeId}: model_weights is empty`);
        const missing = [...this.accumulator.keys()].find((k) => !added.has(k));
        if (missing !== undefined) throw new AggregationError(`node ${nodeId}: parameter ${missing} is missing`);
        this.layoutFixed = true;
        this.contributions.push({ nodeId, sampleSize });
        this.totalSize += sampleSize;
        close();
      },
      abort: (source) => {
        if (closed) return Promise.resolve();
        close();
        if (establishing) {
          this.accumulator.clear();
          return Promise.resolve();
        }
        if (added.size === 0) return Promise.resolve();
        const remaining = new Set(added);
        const subtract = (name: string, tensor: WeightTensor): void => {
          if (!remaining.delete(name)) return;
          const entry = this.accumulator.get(name) as AccumulatorEntry;
          if (!sameShape(entry.shape, tensor.shape)) throw new Error(`parameter ${name} changed shape`);
          addScaled(entry.sum, numericValues(tensor), -sampleSize);
        };
        const finish = (): void => {
          if (remaining.size > 0) throw new Error(`parameter ${[...remaining][0]} could not be read again`);
        };
        const poison = (err: unknown): void => {
          this.poisoned = `node ${nodeId}'s partial contribution could not be removed: ${(err as Error).message}`;
        };
        try {
          if (!source) throw new Error('no way to read its weights again');
          const items = source();
          if (Symbol.asyncIterator in items) {
            return (async () => {
              try {
                for await (const [name, tensor] of items as AsyncIterable<[string, WeightTensor]>) subtract(name, tensor);
                finish();
              } catch (err) {
                poison(err);
              }
            })();
          }
          // In-memory weights: undone synchronously, before the caller can add anything else.
          for (const [name, tensor] of items as Iterable<[string, WeightTensor]>) subtract(name, tensor);
          finish();
        } catch (err) {
          poison(err);
        }
        return Promise.resolve();
      },
    };
  }

  /** Folds one complete reply in; a bad reply is rejected with an AggregationError and leaves the average intact. */
  add(nodeId: string, weights: WeightMap, sampleSize: number): void {
    const c = this.beginNode(nodeId, sampleSize);
    try {
      for (const [name, tensor] of weights) c.addTensor(name, tensor);
      c.commit();
    } catch (err) {
      void c.abort(() => weights); // synchronous for an in-memory source

      throw err;
    }
  }

  /**
   * The weighted average, every tensor float32 (Python's FedAverage casts buffers too). Converts tensor by tensor,
   * releasing each float64 sum as it goes, so the peak stays near the accumulator's own size.
   */
  finalize(): WeightMap {
    if (this.finalized) throw new AggregationError('aggregation already finalized');
    if (this.open !== undefined) throw new AggregationError(`node ${this.open} is still being aggregated`);
    if (this.poisoned) throw new AggregationError(this.poisoned);
    if (this.contributions.length === 0) throw new AggregationError('no node weights to aggregate');
    if (this.totalSize === 0) {
      // Python raises FB401 too: weights that sum to 0 cannot be averaged.
      throw new AggregationError('FB401: every node reported sample_size 0; cannot weight the average');
    }
    this.finalized = true;
    const out: WeightMap = new Map();
    const total = this.totalSize;
    for (const [name, entry] of [...this.accumulator]) {
      const data = new Float32Array(entry.sum.length);
      for (let i = 0; i < data.length; i++) data[i] = entry.sum[i] / total;
      out.set(name, { dtype: 'float32', shape: entry.shape, data });
      this.accumulator.delete(name);
    }
    return out;
  }
}

/** sum += factor · values, in float64 (factor · float32 value is exact for |factor| < 2^29). */
function addScaled(sum: Float64Array, values: WeightTensor['data'], factor: number): void {
  const n = sum.length;
  if (values instanceof Float32Array || values instanceof Float64Array) {
    for (let i = 0; i < n; i++) sum[i] += factor * values[i];
    return;
  }
  for (let i = 0; i < n; i++) sum[i] += factor * valueAt(values, i);
}

/** Non-streaming convenience: the FedAvg of complete replies (tests, scripts). */
export function federatedAverage(replies: Array<{ nodeId: string; weights: WeightMap; sampleSize: number }>): WeightMap {
  const agg = new StreamingFedAvg();
  for (const r of replies) agg.add(r.nodeId, r.weights, r.sampleSize);
  return agg.finalize();
}
