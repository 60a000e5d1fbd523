/**
 * Turns `add_scalar` and `log` messages into records. `add_scalar` carries no round number, so the round is
 * supplied by the experiment; the cumulative step (TensorBoard x axis) is counted here per node and phase, as
 * Python's Monitor does with its MetricStore.
 */
import type { InboundMessage } from '../requests/collector';
import type { ExperimentEvent, ScalarPhase, ScalarRecord } from '../events';

function scalarPhase(msg: InboundMessage): ScalarPhase {
  if (msg.train === true) return 'training';
  return msg.test_on_local_updates === true ? 'validation-local' : 'validation-global';
}

/** TensorBoard tag prefixes used by Fed-BioMed's Monitor. */
export const PHASE_TAGS: Record<ScalarPhase, string> = {
  training: 'TRAINING',
  'validation-global': 'VALIDATION ON GLOBAL UPDATES',
  'validation-local': 'VALIDATION ON LOCAL UPDATES',
};

function num(v: unknown): number | null {
  return typeof v === 'number' ? v : null;
}

export class ScalarTracker {
  /** Per node+phase: steps counted in finished rounds, and the highest iteration seen this round. */
  private readonly offsets = new Map<string, { base: number; round: number; maxInRound: number }>();

  record(msg: InboundMessage, round: number): ScalarRecord {
    const phase = scalarPhase(msg);
    const nodeId = String(msg.node_id);
    const iteration = num(msg.iteration) ?? 1;
    const key = `${nodeId}\u0000${phase}`;
    let o = this.offsets.get(key);
    if (!o) {
      o = { base: 0, round, maxInRound: 0 };
      this.offsets.set(key, o);
    }
    if (o.round !== round) {
      o.base += o.maxInRound;
      o.round = round;
      o.maxInRound = 0;
    }
    o.maxInRound = Math.max(o.maxInRound, iteration);
    const metric: Record<string, number> = {};
    for (const [k, v] of Object.entries((msg.metric as Record<string, unknown>) ?? {})) {
      if (typeof v === 'number') metric[k] = v;
    }
    return {
      round,
      nodeId,
      phase,
      metric,
      iteration,
      epoch: num(msg.epoch),
      numBatches: num(msg.num_batches) ?? 0,
      totalSamples: num(msg.total_samples) ?? 0,
      batchSamples: num(msg.batch_samples) ?? 0,
      numSamplesTrained: num(msg.num_samples_trained),
      step: o.base + iteration,
    };
  }
}

/** A node `log`: `msg` is itself JSON text with asctime / level / message (protocol reference 3.7). */
export function logRecord(msg: InboundMessage): Extract<ExperimentEvent, { type: 'log' }> {
  let message = typeof msg.msg === 'string' ? msg.msg : '';
  let time: string | null = null;
  try {
    const inner = JSON.parse(message) as Record<string, unknown>;
    if (inner && typeof inner === 'object') {
      if (typeof inner.message === 'string') message = inner.message;
      if (typeof inner.asctime === 'string') time = inner.asctime;
    }
  } catch {
    // Not JSON: keep the raw text (a Python researcher would crash here; we just show it).
  }
  return { type: 'log', nodeId: String(msg.node_id ?? ''), level: String(msg.level ?? 'INFO'), message, time };
}
