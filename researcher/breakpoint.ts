/**
 * Breakpoints: everything needed to resume an experiment after round r so that the remaining rounds produce
 * exactly the weights an uninterrupted run would. A breakpoint is a directory:
 *   breakpoint.json        ids, round counter, datasets, node state ids, plan, training/model args, aggregator and
 *                          strategy configuration (with the random-fraction seed), owed stale replies, summaries
 *   global_weights.mpk     current global weights (Fed-BioMed aggregated-params layout)
 *   server_optimizer.mpk   FedAdam/FedYogi moments, when used
 * Files are written to a temporary name and renamed, so an interrupted save never leaves a half breakpoint.
 */
import * as fs from 'fs';
import * as path from 'path';
import { decodeParams, encodeParamsChunks } from '../src/serialize';
import type { PlanSpec } from '../src/plan/spec';
import { ServerOptimizerState, WeightMap } from './aggregators';
import type { AggregatorConfig } from './aggregators';
import type { StrategyConfig } from './strategies';
import type { RoundSummary } from './events';
import type { LrSchedule } from './lr-schedule';
import { decodeNodeParams, encodeAggregatedParams, toModelWeights, fromModelWeights } from './weights-file';
import type { ModelWeights } from '../src/serialize/params-file';
import { FedbiomedTsError } from '../src/errors';

export const BREAKPOINT_VERSION = 1;

export interface BreakpointState {
  version: number;
  savedAt: string;
  researcherId: string;
  jobId: string;
  /** Next round to run. */
  round: number;
  roundLimit: number;
  finalValidation: boolean;
  finalValidationDone: boolean;
  tags: string[] | null;
  nodes: string[] | null;
  datasets: Record<string, string>;
  stateIds: Record<string, string | null>;
  plan: { kind: 'spec'; spec: PlanSpec; className: string } | { kind: 'python'; source: string; className: string };
  modelArgs: unknown;
  /** training_args with floats marked `{"$pyfloat": x}`. */
  trainingArgs: unknown;
  aggregator: AggregatorConfig;
  strategy: StrategyConfig;
  roundTimeoutMs: number;
  nodeTimeoutsMs: Record<string, number>;
  staleReplies: Record<string, number>;
  summaries: RoundSummary[];
  /** Absent in breakpoints written before schedules existed (= none). */
  lrSchedule?: LrSchedule | null;
  /** Identifiers (node, state_id / params_url) of the replies taken so far; absent in older breakpoints. */
  seenReplies?: string[];
}

export interface Breakpoint {
  state: BreakpointState;
  weights: WeightMap;
  serverOptimizer: ServerOptimizerState | null;
}

export class BreakpointError extends FedbiomedTsError {
  override readonly errnum = 'FB413' as const;
}

function writeAtomic(file: string, data: string | readonly Uint8Array[]): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    for (const chunk of typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data) {
      let off = 0;
      while (off < chunk.byteLength) off += fs.writeSync(fd, chunk, off, chunk.byteLength - off);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function saveBreakpoint(dir: string, bp: Breakpoint): string {
  fs.mkdirSync(dir, { recursive: true });
  writeAtomic(path.join(dir, 'global_weights.mpk'), encodeAggregatedParams(bp.state.researcherId, bp.weights));
  const optFile = path.join(dir, 'server_optimizer.mpk');
  if (bp.serverOptimizer) {
    const s = bp.serverOptimizer;
    writeAtomic(optFile, encodeParamsChunks({ step: s.step, m: toModelWeights(s.m), v: toModelWeights(s.v) }));
  } else if (fs.existsSync(optFile)) {
    fs.unlinkSync(optFile);
  }
  // Written last: its presence marks a complete breakpoint.
  writeAtomic(path.join(dir, 'breakpoint.json'), JSON.stringify(bp.state, null, 2) + '\n');
  return dir;
}

export function loadBreakpoint(dir: string): Breakpoint {
  const stateFile = path.join(dir, 'breakpoint.json');
  if (!fs.existsSync(stateFile)) throw new BreakpointError(`${dir}: no breakpoint.json (not a breakpoint directory)`);
  let state: BreakpointState;
  try {
    state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as BreakpointState;
  } catch (err) {
    throw new BreakpointError(`${stateFile}: not valid JSON: ${(err as Error).message}`);
  }
  if (state.version !== BREAKPOINT_VERSION) {
    throw new BreakpointError(`${stateFile}: breakpoint version ${String(state.version)} is not supported (expected ${BREAKPOINT_VERSION})`);
  }
  for (const key of ['researcherId', 'jobId', 'round', 'roundLimit', 'datasets', 'plan', 'trainingArgs', 'aggregator', 'strategy'] as const) {
    if (state[key] === undefined) throw new BreakpointError(`${stateFile}: missing "${key}"`);
  }
  const weightsFile = path.join(dir, 'global_weights.mpk');
  if (!fs.existsSync(weightsFile)) throw new BreakpointError(`${dir}: global_weights.mpk is missing`);
  const weights = decodeNodeParams(fs.readFileSync(weightsFile), weightsFile);
  let serverOptimizer: ServerOptimizerState | null = null;
  const optFile = path.join(dir, 'server_optimizer.mpk');
  if (fs.existsSync(optFile)) {
    const decoded = decodeParams(fs.readFileSync(optFile)) as { step?: unknown; m?: ModelWeights; v?: ModelWeights };
    if (typeof decoded.step !== 'number' || !decoded.m || !decoded.v) throw new BreakpointError(`${optFile}: malformed optimizer state`);
    serverOptimizer = { step: decoded.step, m: fromModelWeights(decoded.m), v: fromModelWeights(decoded.v) };
  }
  return { state, weights, serverOptimizer };
}
