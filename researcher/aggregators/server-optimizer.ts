/**
 * Adaptive server optimizers (Reddi et al., "Adaptive Federated Optimization", ICLR 2021): the FedAvg result is
 * treated as a pseudo-gradient step Δ = avg − global, and the server applies Adam (FedAdam) or Yogi (FedYogi)
 * moments to it:
 *   m ← β1·m + (1−β1)·Δ
 *   v ← β2·v + (1−β2)·Δ²                 (Adam)
 *   v ← v − (1−β2)·Δ²·sign(v − Δ²)       (Yogi)
 *   x ← x + η·m / (√v + τ)
 * with m₀ = 0, v₀ = τ² as in the paper (no bias correction). Only parameters present in the global weights are
 * updated; keys that appear only in node replies (BatchNorm buffers) take the plain average.
 */
import { AggregationError, WeightMap, elementCount, isIntegerDType, numericValues, sameShape, shapeText, valueAt } from './tensors';

export type ServerOptimizerName = 'adam' | 'yogi';

export interface ServerOptimizerConfig {
  name: ServerOptimizerName;
  /** Server learning rate η. */
  lr: number;
  beta1: number;
  beta2: number;
  /** Adaptivity τ (also the initial √v). */
  tau: number;
}

export const SERVER_OPTIMIZER_DEFAULTS: Omit<ServerOptimizerConfig, 'name'> = {
  lr: 0.1,
  beta1: 0.9,
  beta2: 0.99,
  tau: 1e-3,
};

/** Moments keyed by parameter name; serialisable for breakpoints. */
export interface ServerOptimizerState {
  step: number;
  m: WeightMap;
  v: WeightMap;
}

export class AdaptiveServerOptimizer {
  private m = new Map<string, Float32Array>();
  private v = new Map<string, Float32Array>();
  private steps = 0;

  constructor(readonly config: ServerOptimizerConfig) {
    for (const key of ['lr', 'beta1', 'beta2', 'tau'] as const) {
      if (!Number.isFinite(config[key]) || config[key] < 0) {
        throw new AggregationError(`server optimizer ${config.name}: ${key} must be a non-negative number`);
      }
    }
    if (config.beta1 >= 1 || config.beta2 >= 1) {
      throw new AggregationError(`server optimizer ${config.name}: beta1 and beta2 must be < 1`);
    }
  }

  get stepCount(): number {
    return this.steps;
  }

  /**
   * Returns the new global weights. `averaged` is consumed: its float32 arrays are updated in place and returned,
   * so no extra model copy is made.
   */
  step(global: WeightMap, averaged: WeightMap): WeightMap {
    const { beta1, beta2, tau, lr, name } = this.config;
    for (const [key, avg] of averaged) {
      const prev = global.get(key);
      if (!prev) continue;
      if (!sameShape(prev.shape, avg.shape)) {
        throw new AggregationError(
          `server optimizer: parameter ${key} has shape ${shapeText(avg.shape)}, global model has ${shapeText(prev.shape)}`,
        );
      }
      if (isIntegerDType(avg.dtype)) continue; // counters (num_batches_tracked) are averaged, not optimised
      if (!(avg.data instanceof Float32Array)) throw new AggregationError(`server optimizer: ${key} is not float32`);
      const n = elementCount(avg.shape);
      const m = this.moment(this.m, key, n, 0);
      const v = this.moment(this.v, key, n, tau * tau);
      const out = avg.data;
      const prevValues = numericValues(prev);
      for (let i = 0; i < n; i++) {
        const x = valueAt(prevValues, i);
        const delta = out[i] - x;
        const d2 = delta * delta;
        m[i] = beta1 * m[i] + (1 - beta1) * delta;
        if (name === 'adam') v[i] = beta2 * v[i] + (1 - beta2) * d2;
        else v[i] = v[i] - (1 - beta2) * d2 * Math.sign(v[i] - d2);
        out[i] = x + (lr * m[i]) / (Math.sqrt(v[i]) + tau);
      }
    }
    this.steps += 1;
    return averaged;
  }

  private moment(store: Map<string, Float32Array>, key: string, n: number, init: number): Float32Array {
    let a = store.get(key);
    if (!a) {
      a = new Float32Array(n).fill(init);
      store.set(key, a);
    }
    return a;
  }

  state(): ServerOptimizerState {
    const toMap = (store: Map<string, Float32Array>): WeightMap => {
      const out: WeightMap = new Map();
      for (const [k, a] of store) out.set(k, { dtype: 'float32', shape: [a.length], data: a });
      return out;
    };
    return { step: this.steps, m: toMap(this.m), v: toMap(this.v) };
  }

  load(state: ServerOptimizerState): void {
    const fromMap = (map: WeightMap): Map<string, Float32Array> => {
      const out = new Map<string, Float32Array>();
      for (const [k, t] of map) {
        const a = new Float32Array(elementCount(t.shape));
        for (let i = 0; i < a.length; i++) a[i] = valueAt(t.data, i);
        out.set(k, a);
      }
      return out;
    };
    this.steps = state.step;
    this.m = fromMap(state.m);
    this.v = fromMap(state.v);
  }
}
