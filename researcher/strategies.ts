/**
 * Node selection strategies: which nodes get a training request in a round, and how many successful replies a
 * round needs to be aggregated.
 *  - `all`: every node, every node must succeed (Fed-BioMed's DefaultStrategy).
 *  - `random-fraction`: a seeded random subset each round (reproducible, so a resumed experiment samples the same
 *    nodes as an uninterrupted one); every sampled node must succeed unless `minReplies` says otherwise.
 *  - `at-least`: every node is asked; the round continues if at least `k` succeeded.
 */
import { FedbiomedTsError } from '../src/errors';

export type StrategyConfig =
  | { name: 'all' }
  | { name: 'random-fraction'; fraction: number; seed?: number; minReplies?: number }
  | { name: 'at-least'; k: number };

export type StrategyInput = StrategyConfig | StrategyConfig['name'];

export class StrategyError extends FedbiomedTsError {
  override readonly errnum = 'FB402' as const;
}

export interface Strategy {
  readonly config: StrategyConfig;
  /** Nodes to train this round, a subset of `candidates` (kept in candidate order). */
  select(candidates: readonly string[], round: number): string[];
  /** Successful replies needed for the round to be aggregated. */
  required(selected: number): number;
}

function positiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1;
}

export function createStrategy(input: StrategyInput | undefined): Strategy {
  const config: StrategyConfig = input === undefined ? { name: 'all' } : typeof input === 'string' ? ({ name: input } as StrategyConfig) : input;
  switch (config?.name) {
    case 'all':
      return { config: { name: 'all' }, select: (c) => [...c], required: (n) => n };
    case 'at-least': {
      if (!positiveInt(config.k)) throw new StrategyError(`strategy at-least: k must be an integer ≥ 1, got ${JSON.stringify(config.k)}`);
      const k = config.k;
      return {
        config: { name: 'at-least', k },
        select: (c) => {
          if (c.length < k) throw new StrategyError(`strategy at-least: needs ${k} nodes but only ${c.length} are available`);
          return [...c];
        },
        required: () => k,
      };
    }
    case 'random-fraction': {
      const { fraction, minReplies } = config;
      if (typeof fraction !== 'number' || !(fraction > 0 && fraction <= 1)) {
        throw new StrategyError(`strategy random-fraction: fraction must be in (0, 1], got ${JSON.stringify(fraction)}`);
      }
      if (minReplies !== undefined && !positiveInt(minReplies)) {
        throw new StrategyError(`strategy random-fraction: minReplies must be an integer ≥ 1, got ${JSON.stringify(minReplies)}`);
      }
      const seed = config.seed ?? Math.floor(Math.random() * 2 ** 31);
      if (!Number.isInteger(seed)) throw new StrategyError(`strategy random-fraction: seed must be an integer`);
      return {
        // The drawn seed is stored, so a breakpoint resumes with the same draws.
        config: { name: 'random-fraction', fraction, seed, ...(minReplies !== undefined ? { minReplies } : {}) },
        select: (c, round) => sampleFraction(c, fraction, seed, round),
        required: (n) => Math.min(n, minReplies ?? n),
      };
    }
    default:
      throw new StrategyError(
        `strategy: name must be one of all, random-fraction, at-least, got ${JSON.stringify((config as { name?: unknown })?.name ?? config)}`,
      );
  }
}

/** ceil(fraction · n) nodes (at least 1), drawn by a PRNG seeded from (seed, round). */
export function sampleFraction(candidates: readonly string[], fraction: number, seed: number, round: number): string[] {
  if (candidates.length === 0) return [];
  const count = Math.max(1, Math.ceil(fraction * candidates.length - 1e-9));
  const rand = mulberry32(hashInts(seed, round));
  const indices = candidates.map((_, i) => i);
  for (let i = indices.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [indices[i], indices[j]] = [indices[j], indices[i]];
  }
  const chosen = new Set(indices.slice(0, count));
  return candidates.filter((_, i) => chosen.has(i));
}

function hashInts(a: number, b: number): number {
  let h = 0x811c9dc5;
  for (const v of [a | 0, (a / 2 ** 32) | 0, b | 0]) {
    h = Math.imul(h ^ v, 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  }
  return h;
}

function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}
