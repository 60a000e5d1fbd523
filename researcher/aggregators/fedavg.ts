/**
 * Streaming federated averaging: every node's weights are folded into one accumulator as they arrive — big
 * tensors byte chunk by byte chunk straight from the HTTP stream, small ones whole — and then dropped, so memory is
 * O(model) whatever the number of nodes.
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
 *
 * Integer buffers (BatchNorm `num_batches_tracked`, int64) keep their dtype: the average is rounded to the nearest
 * integer and written as the first reply's integer dtype. Python's FedAverage returns every key as float32
 * (`zeros_like(t).float()`), which torch's `load_state_dict` casts back on a Python node; keeping the dtype makes the
 * same file also load where dtypes are checked (`buildModel`, a strict state_dict comparison) and loses nothing, as a
 * counter's weighted mean is only ever used as a counter.
 */
import {
  AggregationError,
  WeightMap,
  WeightTensor,
  elementCount,
  integerArray,
  isIntegerDType,
  numericValues,
  sameShape,
  shapeText,
  valueAt,
} from './tensors';

/** A streamed tensor turned out not to be float32: read that node's file again without streaming. */
export class StreamedDtypeError extends AggregationError {}

interface AccumulatorEntry {
  shape: number[];
  /** The first reply's dtype: integer dtypes are kept (rounded average), every other one gives float32. */
  dtype: string;
  sum: Float64Array | Float32Array;
  /** Set while the first node streams it: the shape is known only once its bytes have passed. */
  provisional?: boolean;
}

export interface Contribution {
  nodeId: string;
  sampleSize: number;
}

/** A source of a node's tensors, read again to undo a partial contribution. */
type TensorSource = () => AsyncIterable<[string, WeightTensor]> | Iterable<[string, WeightTensor]>;

/** Receives one float32 tensor's raw little-endian bytes as they arrive, then its dtype and shape. */
export interface TensorSink {
  write(bytes: Uint8Array): void;
  /** Checks what the bytes were (dtype, shape come after them in the file); throws AggregationError on a mismatch. */
  end(dtype: string, shape: number[]): void;
}

/** One node's reply being folded in. Either commit() or abort() it. */
export interface NodeContribution {
  readonly nodeId: string;
  /** Checks name and shape, then adds n·θ. Throws AggregationError before adding anything on a mismatch. */
  addTensor(name: string, tensor: WeightTensor): void;
  /**
   * Streams a big tensor in, assuming float32 (verified by the sink's end()). Returns undefined when the
   * tensor cannot be streamed (its size does not match a float32 layout): read it whole and use addTensor.
   */
  streamTensor(name: string, byteLength: number): TensorSink | undefined;
  /** Checks that every parameter arrived; throws AggregationError (contribution still open) if not. */
  commit(): void;
  /**
   * Removes what this node added so far. Tensors are not kept in memory (that would cost a model per node), so
   * the node's file is read again from `source` and the same exact products subtracted. If that is impossible the
   * whole round's average is marked unusable (finalize() then throws), never silently wrong.
   */
  abort(source?: TensorSource): Promise<void>;
}

/** Reads float32 little-endian values from byte chunks of any length and alignment. */
class Float32Reader {
  private carry = new Uint8Array(4);
  private carried = 0;
  private scratch = new Float32Array(0);

  /** Calls `each(values, count)` on the complete values contained in carry + bytes. */
  read(bytes: Uint8Array, each: (values: Float32Array, count: number) => void): void {
    let off = 0;
    if (this.carried > 0) {
      const k = Math.min(4 - this.carried, bytes.length);
      this.carry.set(bytes.subarray(0, k), this.carried);
      this.carried += k;
      off = k;
      if (this.carried < 4) return;
      each(new Float32Array(this.carry.slice().buffer), 1);
      this.carried = 0;
    }
    const whole = Math.floor((bytes.length - off) / 4);
    if (whole > 0) {
      const start = bytes.byteOffset + off;
      if (start % 4 === 0) {
        each(new Float32Array(bytes.buffer, start, whole), whole);
      } else {
        if (this.scratch.length < whole) this.scratch = new Float32Array(whole);
        new Uint8Array(this.scratch.buffer, 0, whole * 4).set(bytes.subarray(off, off + whole * 4));
        each(this.scratch, whole);
      }
      off += whole * 4;
    }
    const rest = bytes.length - off;
    if (rest > 0) {
      this.carry.set(bytes.subarray(off), 0);
      this.carried = rest;
    }
  }

  get pendingBytes(): number {
    return this.carried;
  }
}

function float32View(tensor: WeightTensor): Float32Array {
  const d = tensor.data as ArrayBufferView;
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  return new Float32Array(bytes.slice().buffer);
}

/** What a node's contribution may read and change of the aggregate it is folded into. */
interface AggregateAccess {
  entry(name: string): AccumulatorEntry | undefined;
  addEntry(name: string, entry: AccumulatorEntry): void;
  names(): Iterable<string>;
  allocate(n: number): Float64Array | Float32Array;
  /** The contribution is complete: it fixes the parameter layout (first one) and counts in the average. */
  committed(nodeId: string, sampleSize: number): void;
  /** The contribution is over (committed or aborted): another node may begin. */
  closed(): void;
  /** An abort restores what beginNode changed: the float32 reference size, and the layout the node was establishing. */
  undoStart(hadReference: number, establishing: boolean): void;
  /** A partial contribution could not be removed: the average must not be used. */
  poison(reason: string): void;
}

/** One node's reply being folded in: what was added (to undo it on abort) and the checks on the way. */
class NodeFold implements NodeContribution {
  /** Parameters (partly) added: name → number of leading values added, and whether they were read as raw float32. */
  private readonly added = new Map<string, { count: number; raw: boolean }>();
  private readonly complete = new Set<string>();
  private streaming: string | undefined;
  private closed = false;

  constructor(
    readonly nodeId: string,
    private readonly sampleSize: number,
    /** What this node's values are multiplied by (StreamingFedAvg.factorFor). */
    private readonly factor: number,
    /** What beginNode changed, restored by abort; `establishing`: the first reply, which fixes the layout. */
    private readonly start: { hadReference: number; establishing: boolean },
    private readonly aggregate: AggregateAccess,
  ) {}

  addTensor(name: string, tensor: WeightTensor): void {
    this.ensureOpen();
    this.checkNew(name);
    const n = elementCount(tensor.shape);
    if (tensor.data.length !== n) {
      throw new AggregationError(`node ${this.nodeId}: parameter ${name} has ${tensor.data.length} values but shape ${shapeText(tensor.shape)}`);
    }
    let entry = this.aggregate.entry(name);
    if (!entry) {
      this.checkKnown(name);
      entry = { shape: [...tensor.shape], dtype: tensor.dtype, sum: this.aggregate.allocate(n) };
      this.aggregate.addEntry(name, entry);
    } else if (!sameShape(entry.shape, tensor.shape)) {
      throw new AggregationError(`node ${this.nodeId}: parameter ${name} has shape ${shapeText(tensor.shape)}, expected ${shapeText(entry.shape)}`);
    }
    addScaled(entry.sum, numericValues(tensor), this.factor, 0, n);
    this.added.set(name, { count: n, raw: false });
    this.complete.add(name);
  }

  streamTensor(name: string, byteLength: number): TensorSink | undefined {
    this.ensureOpen();
    this.checkNew(name);
    if (byteLength % 4 !== 0) return undefined;
    const n = byteLength / 4;
    let entry = this.aggregate.entry(name);
    if (!entry) {
      this.checkKnown(name);
      entry = { shape: [n], dtype: 'float32', sum: this.aggregate.allocate(n), provisional: true };
      this.aggregate.addEntry(name, entry);
    } else if (entry.sum.length !== n) {
      return undefined; // wrong size: read whole, addTensor reports the shape mismatch
    }
    const target = entry;
    const record = { count: 0, raw: true };
    this.added.set(name, record);
    this.streaming = name;
    const reader = new Float32Reader();
    const { nodeId, factor } = this;
    return {
      write: (bytes) => {
        reader.read(bytes, (values, count) => {
          if (record.count + count > n) throw new AggregationError(`node ${nodeId}: parameter ${name} has more bytes than announced`);
          addScaled(target.sum, values, factor, record.count, count);
          record.count += count;
        });
      },
      end: (dtype, shape) => {
        this.streaming = undefined;
        if (record.count !== n || reader.pendingBytes !== 0) throw new AggregationError(`node ${nodeId}: parameter ${name} is truncated`);
        if (dtype !== 'float32') throw new StreamedDtypeError(`node ${nodeId}: parameter ${name} is ${dtype}, not float32`);
        if (elementCount(shape) !== n) {
          throw new AggregationError(`node ${nodeId}: parameter ${name} has ${n} values but shape ${shapeText(shape)}`);
        }
        if (target.provisional) {
          target.shape = [...shape];
          target.provisional = false;
        } else if (!sameShape(target.shape, shape)) {
          throw new AggregationError(`node ${nodeId}: parameter ${name} has shape ${shapeText(shape)}, expected ${shapeText(target.shape)}`);
        }
        this.complete.add(name);
      },
    };
  }

  commit(): void {
    this.ensureOpen();
    if (this.complete.size === 0) throw new AggregationError(`node ${this.nodeId}: model_weights is empty`);
    const missing = [...this.aggregate.names()].find((k) => !this.complete.has(k));
    if (missing !== undefined) throw new AggregationError(`node ${this.nodeId}: parameter ${missing} is missing`);
    this.aggregate.committed(this.nodeId, this.sampleSize);
    this.close();
  }

  abort(source?: TensorSource): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.close();
    this.aggregate.undoStart(this.start.hadReference, this.start.establishing);
    if (this.start.establishing) return Promise.resolve();
    const remaining = new Map([...this.added].filter(([, r]) => r.count > 0));
    if (remaining.size === 0) return Promise.resolve();
    const subtract = (name: string, tensor: WeightTensor): void => {
      const r = remaining.get(name);
      if (!r) return;
      remaining.delete(name);
      const entry = this.aggregate.entry(name) as AccumulatorEntry;
      // Undo exactly what was added: the same leading values, read the same way.
      const values = r.raw ? float32View(tensor) : numericValues(tensor);
      if (values.length < r.count) throw new Error(`parameter ${name} is shorter when read again`);
      addScaled(entry.sum, values, -this.factor, 0, r.count);
    };
    const finish = (): void => {
      if (remaining.size > 0) throw new Error(`parameter ${[...remaining.keys()][0]} could not be read again`);
    };
    const poison = (err: unknown): void => {
      this.aggregate.poison(`node ${this.nodeId}'s partial contribution could not be removed: ${(err as Error).message}`);
    };
    try {
      if (!source) throw new Error('no way to read its weights again');
      const items = source();
      if (Symbol.asyncIterator in items) {
        return (async () => {
          try {
            for await (const [name, tensor] of items) subtract(name, tensor);
            finish();
          } catch (err) {
            poison(err);
          }
        })();
      }
      // In-memory weights: undone synchronously, before the caller can add anything else.
      for (const [name, tensor] of items) subtract(name, tensor);
      finish();
    } catch (err) {
      poison(err);
    }
    return Promise.resolve();
  }

  private close(): void {
    this.closed = true;
    this.aggregate.closed();
  }

  private ensureOpen(): void {
    if (this.closed) throw new AggregationError(`node ${this.nodeId}: contribution already closed`);
    if (this.streaming !== undefined) throw new AggregationError(`node ${this.nodeId}: parameter ${this.streaming} is still streaming`);
  }

  private checkNew(name: string): void {
    if (this.added.has(name)) throw new AggregationError(`node ${this.nodeId}: parameter ${name} sent twice`);
  }

  /** After the first reply, the parameter set is fixed. */
  private checkKnown(name: string): void {
    if (!this.start.establishing) throw new AggregationError(`node ${this.nodeId}: unexpected parameter ${name} (not in the first reply)`);
  }
}

export type AccumulatorPrecision = 'float64' | 'float32';

export class StreamingFedAvg {
  /**
   * float64 (default): order-independent and exact as described above, accumulator 2× the model.
   * float32: Python's arithmetic (bit-identical to it for equal sample sizes, as Σ (n_i/n_first)·θ_i scaled by
   * n_first/Σn), accumulator 1× the model, but with three or more nodes the last bits depend on arrival order.
   */
  constructor(readonly precision: AccumulatorPrecision = 'float64') {
    if (precision !== 'float64' && precision !== 'float32') throw new AggregationError(`accumulator precision must be float64 or float32, got ${String(precision)}`);
  }

  /** float32 mode: the first non-empty node's sample size (weights are kept relative to it). */
  private referenceSize = 0;

  private allocate(n: number): Float64Array | Float32Array {
    if (this.precision === 'float32') return new Float32Array(n);
    // Resizable, so that finalize() can hand back the half it does not need at once (no copy, no GC wait).
    return new Float64Array(resizableBuffer(n * 8));
  }

  /** The factor a node's values are multiplied by before being added. */
  private factorFor(sampleSize: number): number {
    if (this.precision === 'float64') return sampleSize;
    if (this.referenceSize === 0) this.referenceSize = sampleSize;
    // torch multiplies a float32 tensor by a Python float in float32.
    return this.referenceSize === 0 ? 0 : Math.fround(sampleSize / this.referenceSize);
  }

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

  /** What a node's contribution may read and change of this aggregate (and nothing else). */
  private readonly access: AggregateAccess = {
    entry: (name) => this.accumulator.get(name),
    addEntry: (name, entry) => void this.accumulator.set(name, entry),
    names: () => this.accumulator.keys(),
    allocate: (n) => this.allocate(n),
    committed: (nodeId, sampleSize) => {
      this.layoutFixed = true;
      this.contributions.push({ nodeId, sampleSize });
      this.totalSize += sampleSize;
    },
    closed: () => {
      this.open = undefined;
    },
    undoStart: (hadReference, establishing) => {
      this.referenceSize = hadReference;
      if (establishing) this.accumulator.clear();
    },
    poison: (reason) => {
      this.poisoned = reason;
    },
  };

  beginNode(nodeId: string, sampleSize: number): NodeContribution {
    if (this.finalized) throw new AggregationError('aggregation already finalized');
    if (this.open !== undefined) throw new AggregationError(`node ${nodeId}: node ${this.open} is still being aggregated`);
    if (!Number.isInteger(sampleSize) || sampleSize < 0 || sampleSize >= 2 ** 29) {
      throw new AggregationError(`node ${nodeId}: sample_size must be an integer in [0, 2^29), got ${sampleSize}`);
    }
    if (this.contributions.some((c) => c.nodeId === nodeId)) throw new AggregationError(`node ${nodeId}: already aggregated in this round`);
    this.open = nodeId;
    const hadReference = this.referenceSize;
    const factor = this.factorFor(sampleSize);
    return new NodeFold(nodeId, sampleSize, factor, { hadReference, establishing: !this.layoutFixed }, this.access);
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
   * The weighted average: float32 for every floating-point tensor, the first reply's dtype for integer buffers
   * (rounded to the nearest integer, see the top of this file). Each float32 result is
   * written in place over the first half of its own float64 sum (value i overwrites bytes of sum ⌊i/2⌋, already
   * read) and the buffer is then shrunk to that half, so finishing allocates nothing and frees half the
   * accumulator at once. (Where buffers cannot shrink, compactWeights() gives the spare halves back.)
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
    // float64: Σ n_i·θ_i / Σn. float32: Σ r_i·θ_i · (n_ref / Σn), r_i = n_i / n_ref.
    const scale = this.precision === 'float64' ? 1 / this.totalSize : this.referenceSize / this.totalSize;
    const divide = this.precision === 'float64';
    const total = this.totalSize;
    for (const [name, entry] of this.accumulator) {
      const sum = entry.sum;
      const n = sum.length;
      if (isIntegerDType(entry.dtype)) {
        out.set(name, { dtype: entry.dtype, shape: entry.shape, data: roundedIntegers(entry.dtype, sum, divide ? (v) => v / total : (v) => v * scale) });
        continue;
      }
      const data = new Float32Array(sum.buffer, sum.byteOffset, n);
      if (divide) for (let i = 0; i < n; i++) data[i] = sum[i] / total;
      else if (scale !== 1) for (let i = 0; i < n; i++) data[i] = sum[i] * scale;
      // float64 sums: shrink the buffer to the float32 result (the sum view is invalid from here on).
      if (sum instanceof Float64Array) shrinkBuffer(sum.buffer, n * 4);
      out.set(name, { dtype: 'float32', shape: entry.shape, data });
    }
    this.accumulator = new Map();
    return out;
  }
}

/** round(average(sum[i])) as an array of `dtype` (integer buffers are small: a counter per BatchNorm layer). */
function roundedIntegers(dtype: string, sum: Float64Array | Float32Array, average: (v: number) => number): Exclude<WeightTensor['data'], number[]> {
  const out = integerArray(dtype, sum.length);
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let i = 0; i < sum.length; i++) {
    const v = Math.round(average(sum[i]));
    (out as unknown as Array<number | bigint>)[i] = big ? BigInt(v) : v;
  }
  return out;
}

type ResizableArrayBuffer = ArrayBuffer & { readonly resizable?: boolean; resize?(byteLength: number): void };

/** An ArrayBuffer that can shrink (ES2024 resizable buffers, Node ≥ 20); a plain one where unsupported. */
function resizableBuffer(byteLength: number): ArrayBuffer {
  try {
    const Ctor = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ArrayBuffer;
    return new Ctor(byteLength, { maxByteLength: byteLength });
  } catch {
    return new ArrayBuffer(byteLength);
  }
}

/** Shrinks a resizable buffer in place (memory returned immediately); no-op otherwise (compactWeights() copies). */
function shrinkBuffer(buffer: ArrayBufferLike, byteLength: number): void {
  const b = buffer as ResizableArrayBuffer;
  if (b.resizable && typeof b.resize === 'function') b.resize(byteLength);
}

/**
 * sum[start + i] += factor · values[i] for i < count. float64 sums: exact products for float32 values and
 * |factor| < 2^29. float32 sums: the product is rounded to float32 first, as torch does (a double product or sum of
 * float32 values rounded to float32 equals the float32 operation, since 53 ≥ 2·24 + 2).
 */
function addScaled(sum: Float64Array | Float32Array, values: WeightTensor['data'], factor: number, start: number, count: number): void {
  if (sum instanceof Float32Array) {
    if (factor === 1) for (let i = 0; i < count; i++) sum[start + i] += Math.fround(valueAt(values, i));
    else for (let i = 0; i < count; i++) sum[start + i] += Math.fround(factor * Math.fround(valueAt(values, i)));
    return;
  }
  if (values instanceof Float32Array || values instanceof Float64Array) {
    for (let i = 0; i < count; i++) sum[start + i] += factor * values[i];
    return;
  }
  for (let i = 0; i < count; i++) sum[start + i] += factor * valueAt(values, i);
}

/** Non-streaming convenience: the FedAvg of complete replies (tests, scripts). */
export function federatedAverage(
  replies: Array<{ nodeId: string; weights: WeightMap; sampleSize: number }>,
  precision: AccumulatorPrecision = 'float64',
): WeightMap {
  const agg = new StreamingFedAvg(precision);
  for (const r of replies) agg.add(r.nodeId, r.weights, r.sampleSize);
  return agg.finalize();
}
