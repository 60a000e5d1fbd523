/**
 * How many epochs and batches a training round runs, following Fed-BioMed v4.5's
 * MiniBatchTrainingIterationsAccountant (fedbiomed/common/training_plans/_training_iterations.py):
 * - `epochs` mode: `epochs` full epochs of `batch_maxnum` (if > 0) or all batches each.
 * - `num_updates` mode (takes precedence; `batch_maxnum` ignored): floor(num_updates / batches_per_epoch) full
 *   epochs then one partial epoch with the remainder.
 * - `dry_run`: stop after the first batch.
 * Reporting values (iteration, samples) follow the same class so the researcher's monitor shows the same numbers.
 */

export interface IterationArgs {
  epochs?: number | null;
  numUpdates?: number | null;
  batchMaxnum?: number | null;
  dryRun?: boolean;
  /** Fed-BioMed `log_interval` (default 10): which batches are reported. */
  logInterval?: number;
}

export interface IterationPlan {
  /** Epochs actually run, including a possibly partial last one. */
  epochs: number;
  batchesPerEpoch: number;
  /** Batches in the final epoch (num_updates mode remainder); equals batchesPerEpoch in epochs mode. */
  batchesInLastEpoch: number;
  /** Total optimizer steps the round will make (before dry_run). */
  totalBatches: number;
  numUpdatesMode: boolean;
}

function checkCount(name: string, v: number | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  if (!Number.isInteger(v) || v < 0) throw new Error(`training_args.${name} must be a non-negative integer, got ${v}`);
  return v;
}

/** `loaderBatches` is len(DataLoader): ceil(n / batch_size), or floor with drop_last. */
export function planIterations(args: IterationArgs, loaderBatches: number): IterationPlan {
  const epochs = checkCount('epochs', args.epochs);
  const numUpdates = checkCount('num_updates', args.numUpdates);
  const batchMaxnum = checkCount('batch_maxnum', args.batchMaxnum);
  if (numUpdates === null) {
    if (epochs === null) throw new Error('training_args: must specify one of num_updates or epochs');
    const perEpoch = batchMaxnum !== null && batchMaxnum > 0 ? batchMaxnum : loaderBatches;
    // Fed-BioMed's batch_maxnum can exceed the loader length: the iterator then simply runs out (StopIteration).
    const effective = Math.min(perEpoch, loaderBatches);
    return {
      epochs,
      batchesPerEpoch: effective,
      batchesInLastEpoch: effective,
      totalBatches: epochs * effective,
      numUpdatesMode: false,
    };
  }
  if (loaderBatches === 0) {
    throw new Error('training_args.num_updates needs a non-empty training set (the data loader has no batch)');
  }
  const full = Math.floor(numUpdates / loaderBatches);
  const remainder = numUpdates % loaderBatches;
  return {
    epochs: remainder > 0 ? full + 1 : full,
    batchesPerEpoch: loaderBatches,
    batchesInLastEpoch: remainder > 0 ? remainder : loaderBatches,
    totalBatches: numUpdates,
    numUpdatesMode: true,
  };
}

/** Batches of epoch `epoch` (1-based). */
export function batchesInEpoch(plan: IterationPlan, epoch: number): number {
  return epoch === plan.epochs ? plan.batchesInLastEpoch : plan.batchesPerEpoch;
}

export function loaderLength(samples: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(samples / batchSize) : Math.ceil(samples / batchSize);
}

/** Fed-BioMed logs the first, the last, every log_interval-th batch, and every batch in dry_run. */
export function shouldReport(
  plan: IterationPlan,
  epoch: number,
  batch: number,
  logInterval: number,
  dryRun: boolean,
): boolean {
  const current = (epoch - 1) * plan.batchesPerEpoch + batch;
  return current % logInterval === 0 || dryRun || batch >= batchesInEpoch(plan, epoch) || batch === 1;
}
