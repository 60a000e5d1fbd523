import { batchesInEpoch, loaderLength, planIterations, shouldReport } from './iterations';

describe('Fed-BioMed iteration semantics', () => {
  test('epochs mode runs all loader batches per epoch', () => {
    const plan = planIterations({ epochs: 3 }, loaderLength(10, 3, false));
    expect(plan).toMatchObject({ epochs: 3, batchesPerEpoch: 4, totalBatches: 12, numUpdatesMode: false });
  });

  test('drop_last shortens the loader', () => {
    expect(loaderLength(10, 3, true)).toBe(3);
    expect(loaderLength(9, 3, true)).toBe(3);
    expect(loaderLength(10, 3, false)).toBe(4);
  });

  test('batch_maxnum caps batches per epoch; 0 means no cap', () => {
    expect(planIterations({ epochs: 2, batchMaxnum: 2 }, 4).totalBatches).toBe(4);
    expect(planIterations({ epochs: 2, batchMaxnum: 0 }, 4).totalBatches).toBe(8);
  });

  test('num_updates takes precedence over epochs and ignores batch_maxnum', () => {
    const plan = planIterations({ epochs: 7, numUpdates: 10, batchMaxnum: 1 }, 4);
    expect(plan).toMatchObject({ epochs: 3, batchesPerEpoch: 4, batchesInLastEpoch: 2, totalBatches: 10 });
    expect(batchesInEpoch(plan, 1)).toBe(4);
    expect(batchesInEpoch(plan, 3)).toBe(2);
    expect(planIterations({ numUpdates: 8 }, 4)).toMatchObject({ epochs: 2, batchesInLastEpoch: 4, totalBatches: 8 });
  });

  test('missing epochs and num_updates, negative or fractional counts are clear errors', () => {
    expect(() => planIterations({}, 4)).toThrow(/num_updates or epochs/);
    expect(() => planIterations({ epochs: -1 }, 4)).toThrow(/epochs must be a non-negative integer/);
    expect(() => planIterations({ numUpdates: 1.5 }, 4)).toThrow(/num_updates/);
    expect(() => planIterations({ numUpdates: 3 }, 0)).toThrow(/non-empty/);
  });

  test('reported batches: first, last, every log_interval-th, all in dry_run', () => {
    const plan = planIterations({ epochs: 2 }, 25);
    const logged = Array.from({ length: 25 }, (_, i) => i + 1).filter((b) => shouldReport(plan, 1, b, 10, false));
    expect(logged).toEqual([1, 10, 20, 25]);
    // Cumulated index across epochs: epoch 2 batch 5 is overall batch 30.
    expect(shouldReport(plan, 2, 5, 10, false)).toBe(true);
    expect(shouldReport(plan, 2, 6, 10, false)).toBe(false);
    expect(shouldReport(plan, 2, 6, 10, true)).toBe(true);
  });
});
