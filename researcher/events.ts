/**
 * Everything an experiment reports while it runs. The same objects are emitted as events, yielded by the async
 * iterator, written to the JSON-lines history and rendered by the console monitor.
 */

import type { NodePrivacyEstimate } from './privacy';

export type ScalarPhase = 'training' | 'validation-global' | 'validation-local';

export interface ScalarRecord {
  round: number;
  nodeId: string;
  phase: ScalarPhase;
  metric: Record<string, number>;
  iteration: number;
  epoch: number | null;
  numBatches: number;
  totalSamples: number;
  batchSamples: number;
  numSamplesTrained: number | null;
  /** Cumulative step per node and phase across rounds (TensorBoard x axis). */
  step: number;
}

export interface NodeRoundSummary {
  nodeId: string;
  status: 'ok' | 'failed' | 'error' | 'timeout' | 'rejected';
  sampleSize: number | null;
  /** Last training loss reported by add_scalar in this round. */
  lastLoss: number | null;
  /** Validation metrics on the received global weights / after local training. */
  validationGlobal: Record<string, number> | null;
  validationLocal: Record<string, number> | null;
  /** Node-side training wall time (s), from the reply's timing. */
  trainingSeconds: number | null;
  /** Request sent → reply received. */
  replyMs: number | null;
  message: string;
}

export interface RoundSummary {
  round: number;
  training: boolean;
  durationMs: number;
  /** Request sent → aggregated weights ready (training rounds). */
  aggregationReadyMs: number | null;
  nodes: NodeRoundSummary[];
  aggregated: boolean;
  /** URL of the new global weights (training rounds). */
  paramsUrl: string | null;
}

export type ExperimentEvent =
  | { type: 'experiment-start'; researcherId: string; jobId: string; roundLimit: number; nodes: string[] }
  | { type: 'privacy-estimate'; nodes: NodePrivacyEstimate[] }
  | { type: 'round-start'; round: number; training: boolean; nodes: string[] }
  | { type: 'request-sent'; round: number; nodeId: string }
  | {
      type: 'node-reply';
      round: number;
      nodeId: string;
      success: boolean;
      sampleSize: number | null;
      message: string;
      replyMs: number;
      done: number;
      total: number;
    }
  | { type: 'node-failed'; round: number; nodeId: string; reason: NodeRoundSummary['status']; message: string; done: number; total: number }
  | ({ type: 'scalar' } & ScalarRecord)
  | { type: 'log'; nodeId: string; level: string; message: string; time: string | null }
  | { type: 'round-end'; summary: RoundSummary }
  /** A train reply not taken: a duplicate, a replay, or a late answer to an earlier round. */
  | { type: 'reply-dropped'; round: number; nodeId: string; reason: string }
  /** A round asked again once: too few replies while the broker connection was lost (they may have been lost with it). */
  | { type: 'round-retried'; round: number; reason: string }
  /** A node left out of a round: silent for several rounds and to a ping. */
  | { type: 'node-skipped'; round: number; nodeId: string; reason: string }
  | { type: 'breakpoint'; round: number; dir: string }
  | { type: 'experiment-end'; roundsCompleted: number; error?: string };
