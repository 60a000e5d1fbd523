/**
 * Learning-rate schedules over federated rounds. Nodes build a fresh optimizer every round (Fed-BioMed does, and
 * so do TS nodes), so a schedule lives on the researcher: round r's learning rate goes out as
 * `training_args.optimizer_args.lr`, which the generated PyTorch plan's init_optimizer and TS nodes both apply
 * over the plan's value. Each rule is PyTorch's, with one scheduler step per round:
 * - step: StepLR, lr = base · γ^⌊r / stepSize⌋;
 * - cosine: CosineAnnealingLR, lr = ηmin + (base − ηmin)(1 + cos(π·r / tMax)) / 2 (past tMax it rises again, as
 *   PyTorch's does: choose tMax ≥ the round limit);
 * - plateau: ReduceLROnPlateau on a validation metric of the global model (default the node-weighted `LOSS` of
 *   test_on_global_updates), one step per round with a result; rounds without one are skipped.
 * A pure function of the round and the recorded summaries, so a resumed experiment gets the same rates.
 */
import type { RoundSummary } from './events';
import { FedbiomedTsError } from '../src/errors';

export type LrSchedule =
  | { type: 'step'; stepSize: number; gamma?: number }
  | { type: 'cosine'; tMax: number; etaMin?: number }
  | {
      type: 'plateau';
      /** Validation metric key (as nodes report it). Default 'LOSS'. */
      metric?: string;
      mode?: 'min' | 'max';
      factor?: number;
      patience?: number;
      /** Relative improvement needed to count as better (PyTorch threshold_mode 'rel'). */
      threshold?: number;
      cooldown?: number;
      minLr?: number;
    };

class LrScheduleError extends FedbiomedTsError {
  constructor(message: string) {
    super(`lrSchedule: ${message}`);
  }
}

/** Checks a schedule (from YAML or code) and returns it; throws LrScheduleError naming the bad field. */
export function checkLrSchedule(value: unknown): LrSchedule {
  const s = value as Record<string, unknown>;
  if (!s || typeof s !== 'object') throw new LrScheduleError('must be an object with a type');
  const number = (key: string, test: (v: number) => boolean, rule: string): void => {
    const v = s[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || !test(v))) throw new LrScheduleError(`${key} must be ${rule}, got ${JSON.stringify(v)}`);
  };
  const allowed: Record<string, string[]> = {
    step: ['type', 'stepSize', 'gamma'],
    cosine: ['type', 'tMax', 'etaMin'],
    plateau: ['type', 'metric', 'mode', 'factor', 'patience', 'threshold', 'cooldown', 'minLr'],
  };
  const keys = allowed[String(s.type)];
  if (!keys) throw new LrScheduleError(`type must be one of step, cosine, plateau, got ${JSON.stringify(s.type)}`);
  const unknown = Object.keys(s).find((k) => !keys.includes(k));
  if (unknown) throw new LrScheduleError(`unknown field '${unknown}' for type ${String(s.type)}`);
  if (s.type === 'step' && s.stepSize === undefined) throw new LrScheduleError('stepSize is required');
  if (s.type === 'cosine' && s.tMax === undefined) throw new LrScheduleError('tMax is required');
  number('stepSize', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1');
  number('tMax', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1');
  number('gamma', (v) => v > 0, '> 0');
  number('etaMin', (v) => v >= 0, '>= 0');
  number('factor', (v) => v > 0 && v < 1, 'in (0, 1)');
  number('patience', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0');
  number('cooldown', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0');
  number('threshold', (v) => v >= 0, '>= 0');
  number('minLr', (v) => v >= 0, '>= 0');
  if (s.mode !== undefined && s.mode !== 'min' && s.mode !== 'max') throw new LrScheduleError(`mode must be min or max, got ${JSON.stringify(s.mode)}`);
  if (s.metric !== undefined && (typeof s.metric !== 'string' || s.metric === '')) throw new LrScheduleError('metric must be a metric name');
  return s as unknown as LrSchedule;
}

/** The global model's validation value of `metric` in a round: mean over nodes weighted by sample size. */
function roundValidation(summary: RoundSummary, metric: string): number | undefined {
  let sum = 0;
  let weight = 0;
  for (const n of summary.nodes) {
    const v = n.validationGlobal?.[metric];
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    const w = n.sampleSize && n.sampleSize > 0 ? n.sampleSize : 1;
    sum += v * w;
    weight += w;
  }
  return weight > 0 ? sum / weight : undefined;
}

/** The learning rate of round `round` (0-based), given the summaries of the rounds before it. */
export function scheduledLr(schedule: LrSchedule, baseLr: number, round: number, history: readonly RoundSummary[]): number {
  switch (schedule.type) {
    case 'step':
      return baseLr * Math.pow(schedule.gamma ?? 0.1, Math.floor(round / schedule.stepSize));
    case 'cosine': {
      const etaMin = schedule.etaMin ?? 0;
      return etaMin + ((baseLr - etaMin) * (1 + Math.cos((Math.PI * round) / schedule.tMax))) / 2;
    }
    case 'plateau': {
      const metric = schedule.metric ?? 'LOSS';
      const mode = schedule.mode ?? 'min';
      const factor = schedule.factor ?? 0.1;
      const patience = schedule.patience ?? 10;
      const threshold = schedule.threshold ?? 1e-4;
      const cooldown = schedule.cooldown ?? 0;
      const minLr = schedule.minLr ?? 0;
      let lr = baseLr;
      let best = mode === 'min' ? Infinity : -Infinity;
      let bad = 0;
      let cooling = 0;
      for (const summary of history.filter((s) => s.round < round).sort((a, b) => a.round - b.round)) {
        const value = roundValidation(summary, metric);
        if (value === undefined) continue;
        const better = mode === 'min' ? value < best * (1 - threshold) : value > best * (1 + threshold);
        if (better) {
          best = value;
          bad = 0;
        } else bad += 1;
        if (cooling > 0) {
          cooling -= 1;
          bad = 0;
        }
        if (bad > patience) {
          const next = Math.max(lr * factor, minLr);
          if (lr - next > 1e-8) lr = next; // PyTorch's eps: smaller changes are ignored
          cooling = cooldown;
          bad = 0;
        }
      }
      return lr;
    }
  }
}
