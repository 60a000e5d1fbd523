/** The researcher's expected differential privacy per node, from search replies and training arguments. */
import { buildTrainingArgs } from './training-args';
import { datasetSamples, formatPrivacyEstimates, privacyEstimates } from './privacy';
import { expectedPrivacy } from '../src/engine/dp/expected';
import type { DatasetEntry } from '../src/protocol/messages';

const entry = (shape: unknown): DatasetEntry => ({ dataset_id: 'd', shape } as unknown as DatasetEntry);

describe('expected privacy per node', () => {
  it('reads the sample count of CSV and medical-folder search replies', () => {
    expect(datasetSamples(entry([48, 5]))).toBe(48);
    expect(datasetSamples(entry({ T1: [8, 8, 3], demographics: [60, 4], num_modalities: 1 }))).toBe(60);
    expect(datasetSamples(entry({ T1: [8, 8, 3], demographics: null }))).toBeNull();
  });

  it('gives each local-DP node the epsilon of its own dataset size, and describes central DP', () => {
    const args = buildTrainingArgs({ loader_args: { batch_size: 8 }, num_updates: 6, test_ratio: 0.25,
      dp_args: { type: 'local', sigma: 1.1, clip: 0.5 } });
    const nodes = new Map([['a', entry([40, 5])], ['b', entry([200, 5])], ['c', entry({ odd: true })]]);
    const est = privacyEstimates(args, nodes, 3);
    expect(est).not.toBeNull();
    const [a, b, c] = est!;
    expect(a.budget).toEqual(expectedPrivacy({ samples: 40, testRatio: 0.25, batchSize: 8, numUpdates: 6, sigma: 1.1, rounds: 3 }));
    // Same steps on a bigger dataset: a smaller sampling rate, so less epsilon.
    expect(b.budget!.epsilon).toBeLessThan(a.budget!.epsilon);
    expect(c.budget).toBeNull();
    expect(c.note).toMatch(/size unknown/);
    const table = formatPrivacyEstimates(est!);
    expect(table).toContain(a.budget!.epsilon.toFixed(3));
    expect(table.split('\n')[1]).toMatch(/^node +dp +sigma +clip +train N +q +steps +delta +epsilon/);

    const central = privacyEstimates(buildTrainingArgs({ loader_args: { batch_size: 8 }, num_updates: 6,
      dp_args: { type: 'central', sigma: 2, clip: 0.5 } }), nodes, 3);
    expect(central![0]).toMatchObject({ type: 'central', budget: null });
    expect(central![0].note).toMatch(/noise of std 1 added once/);
    expect(privacyEstimates(buildTrainingArgs({ loader_args: { batch_size: 8 }, num_updates: 6 }), nodes, 3)).toBeNull();
  });
});
