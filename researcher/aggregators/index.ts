/**
 * Aggregation as configured by the user: FedAvg always (streaming, weighted by sample_size), optionally FedProx
 * (a node-side proximal term sent as training_args.fedprox_mu) and optionally a server optimizer (FedAdam, FedYogi).
 */
import { AccumulatorPrecision, StreamingFedAvg } from './fedavg';
import {
  AdaptiveServerOptimizer,
  SERVER_OPTIMIZER_DEFAULTS,
  ServerOptimizerName,
  ServerOptimizerState,
} from './server-optimizer';
import { AggregationError, WeightMap } from './tensors';

export * from './tensors';
export { StreamingFedAvg, federatedAverage } from './fedavg';
export type { AccumulatorPrecision } from './fedavg';
export { AdaptiveServerOptimizer } from './server-optimizer';
export type { ServerOptimizerState } from './server-optimizer';

const AGGREGATOR_NAMES = ['fedavg', 'fedprox', 'fedadam', 'fedyogi'] as const;
type AggregatorName = (typeof AGGREGATOR_NAMES)[number];

export interface AggregatorConfig {
  name: AggregatorName;
  /** FedProx μ, sent to nodes as training_args.fedprox_mu (required for `fedprox`, allowed with any). */
  mu?: number;
  /**
   * FedAvg accumulator: 'float64' (default; order-independent, so reruns and resumed runs give identical bits;
   * 2× the model in memory) or 'float32' (Python's arithmetic; 1× the model; last bits depend on arrival order).
   */
  accumulator?: AccumulatorPrecision;
  /** Server optimizer settings (fedadam / fedyogi). */
  lr?: number;
  beta1?: number;
  beta2?: number;
  tau?: number;
}

export type AggregatorInput = AggregatorName | AggregatorConfig;

const ALLOWED_KEYS: Record<AggregatorName, readonly string[]> = {
  fedavg: ['name', 'mu', 'accumulator'],
  fedprox: ['name', 'mu', 'accumulator'],
  fedadam: ['name', 'mu', 'accumulator', 'lr', 'beta1', 'beta2', 'tau'],
  fedyogi: ['name', 'mu', 'accumulator', 'lr', 'beta1', 'beta2', 'tau'],
};

/** Validates and fills defaults; errors name the offending field. */
export function normaliseAggregator(input: AggregatorInput | undefined): AggregatorConfig {
  const raw: AggregatorConfig = input === undefined ? { name: 'fedavg' } : typeof input === 'string' ? { name: input } : input;
  if (typeof raw !== 'object' || raw === null || !(AGGREGATOR_NAMES as readonly string[]).includes(raw.name)) {
    throw new AggregationError(`aggregator: name must be one of ${AGGREGATOR_NAMES.join(', ')}, got ${JSON.stringify(raw?.name ?? raw)}`);
  }
  for (const key of Object.keys(raw)) {
    if (!ALLOWED_KEYS[raw.name].includes(key)) {
      throw new AggregationError(`aggregator ${raw.name}: unknown option "${key}" (allowed: ${ALLOWED_KEYS[raw.name].join(', ')})`);
    }
  }
  if (raw.name === 'fedprox' && raw.mu === undefined) throw new AggregationError('aggregator fedprox: mu is required');
  if (raw.mu !== undefined && !(typeof raw.mu === 'number' && Number.isFinite(raw.mu) && raw.mu >= 0)) {
    throw new AggregationError(`aggregator ${raw.name}: mu must be a non-negative number, got ${JSON.stringify(raw.mu)}`);
  }
  if (raw.accumulator !== undefined && raw.accumulator !== 'float64' && raw.accumulator !== 'float32') {
    throw new AggregationError(`aggregator ${raw.name}: accumulator must be "float64" or "float32", got ${JSON.stringify(raw.accumulator)}`);
  }
  const out: AggregatorConfig = { ...raw };
  if (raw.name === 'fedadam' || raw.name === 'fedyogi') {
    for (const key of ['lr', 'beta1', 'beta2', 'tau'] as const) {
      const v = raw[key] ?? SERVER_OPTIMIZER_DEFAULTS[key];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new AggregationError(`aggregator ${raw.name}: ${key} must be a number, got ${JSON.stringify(v)}`);
      }
      out[key] = v;
    }
  }
  return out;
}

/** One experiment's aggregation: per round a fresh streaming FedAvg, then the optional server step. */
export class Aggregator {
  readonly config: AggregatorConfig;
  private readonly serverOptimizer: AdaptiveServerOptimizer | undefined;

  constructor(input?: AggregatorInput) {
    this.config = normaliseAggregator(input);
    const name: ServerOptimizerName | undefined =
      this.config.name === 'fedadam' ? 'adam' : this.config.name === 'fedyogi' ? 'yogi' : undefined;
    this.serverOptimizer = name
      ? new AdaptiveServerOptimizer({
          name,
          lr: this.config.lr as number,
          beta1: this.config.beta1 as number,
          beta2: this.config.beta2 as number,
          tau: this.config.tau as number,
        })
      : undefined;
  }

  /** μ for training_args.fedprox_mu, or null. */
  get fedproxMu(): number | null {
    return this.config.mu ?? null;
  }

  beginRound(): StreamingFedAvg {
    return new StreamingFedAvg(this.config.accumulator ?? 'float64');
  }

  /** New global weights from this round's FedAvg (which it consumes). */
  completeRound(globalWeights: WeightMap, averaged: WeightMap): WeightMap {
    return this.serverOptimizer ? this.serverOptimizer.step(globalWeights, averaged) : averaged;
  }

  state(): ServerOptimizerState | null {
    return this.serverOptimizer ? this.serverOptimizer.state() : null;
  }

  load(state: ServerOptimizerState | null): void {
    if (!state) return;
    if (!this.serverOptimizer) throw new AggregationError(`aggregator ${this.config.name} has no server optimizer state to load`);
    this.serverOptimizer.load(state);
  }
}
