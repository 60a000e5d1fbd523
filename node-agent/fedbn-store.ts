/**
 * A TS node's side of FedBN (src/plan/fedbn.ts): the plan's local parameters are kept in the node's database, per
 * plan and dataset, left out of the weights the node returns, and put back when a global model lacks them.
 */
import { DenseArray, TorchTensor } from '../src/serialize';
import type { JsonDb } from './json-db';

const FEDBN_TABLE = 'FedBN_Local_Parameters';

interface StoredTensor {
  dtype: 'float32' | 'int64';
  shape: number[];
  /** float32 values as numbers (exact in JSON), int64 as decimal strings. */
  values: Array<number | string>;
}

function toStored(t: TorchTensor): StoredTensor {
  const int = t.dtype === 'int64';
  return { dtype: int ? 'int64' : 'float32', shape: [...t.shape], values: Array.from(t.data as ArrayLike<number | bigint>, (v) => (int ? String(v) : Number(v))) };
}

function fromStored(s: StoredTensor): TorchTensor {
  return s.dtype === 'int64'
    ? new TorchTensor('int64', s.shape, BigInt64Array.from(s.values, (v) => BigInt(v)))
    : new TorchTensor('float32', s.shape, Float32Array.from(s.values, Number));
}

/** The received global weights, with the local parameters they lack taken from this node's stored copy. */
export function restoreLocalParameters(db: JsonDb, key: string, names: string[], received: Record<string, DenseArray>): Record<string, DenseArray> {
  const missing = names.filter((n) => !(n in received));
  if (missing.length === 0) return received;
  const doc = db.find(FEDBN_TABLE, (d) => d['key'] === key)[0];
  if (!doc) return received; // first round of this node with this plan and dataset: the model's own values
  const stored = doc['weights'] as Record<string, StoredTensor>;
  const out: Record<string, DenseArray> = { ...received };
  for (const name of missing) if (stored[name]) out[name] = fromStored(stored[name]);
  return out;
}

/** Stores the local parameters of `weights` and returns the weights without them (what leaves the node). */
export function keepLocalParameters(db: JsonDb, key: string, names: string[], weights: Record<string, TorchTensor>): Record<string, TorchTensor> {
  if (names.length === 0) return weights;
  const local = Object.fromEntries(names.filter((n) => weights[n]).map((n) => [n, toStored(weights[n])]));
  const doc = { key, weights: local };
  if (db.modify(FEDBN_TABLE, (d) => d['key'] === key, () => doc) === 0) db.insert(FEDBN_TABLE, doc);
  return Object.fromEntries(Object.entries(weights).filter(([name]) => !names.includes(name)));
}
