/**
 * What the code answering a researcher sees of its node: who it is, its stores, its log, its limits and its one
 * way to fetch a file. One object per running node, made by the {@link NodeAgent} (its owner) when it is built and
 * lent as it is to every immediate request (requests.ts) and every round (round.ts); what belongs to a single round
 * (its deadline, where its replies go) travels beside it, in round.ts's `RoundChannel`. A plain record of values
 * and functions (no prototype), so that a round can spread it beside its channel.
 */
import type { DatasetRegistry } from './datasets';
import type { TrainingPlanStore } from './training-plans';
import type { JsonDb } from './json-db';
import type { NodeLog } from './node-log';
import type { NodeLimits } from './config';

export interface NodeContext {
  readonly nodeId: string;
  /** Training plans must be approved before they train here. */
  readonly approval: boolean;
  readonly datasets: DatasetRegistry;
  readonly plans: TrainingPlanStore;
  readonly db: JsonDb;
  readonly log: NodeLog;
  readonly limits: NodeLimits;
  /**
   * Downloads a file from the node's repository only, within the node's download timeout (or `deadlineMs` when
   * that is shorter); a `'plan'` is also capped at the node's plan size. Rejects with a RepositoryError.
   */
  readonly download: (url: string, what: 'plan' | 'params', deadlineMs?: number) => Promise<Buffer>;
}
