/** The demo's DP flags and the report's privacy section. */
import { demoDp, privacyMarkdown } from './dp';
import type { BinaryEvaluation } from 'fedbiomed-ts';

const evaluation = (auc: number) => ({ auc, sensitivity: 0.5, specificity: 0.75 } as BinaryEvaluation);
const budget = (epsilon: number) => ({ trainingSamples: 40, sampleRate: 0.2, stepsPerRound: 50, rounds: 3, delta: 0.025, epsilon });

describe('demo under differential privacy', () => {
  it('reads --dp, --sigma, --clip and --dp-sweep, refusing incomplete or wrong values', () => {
    expect(demoDp({})).toBeUndefined();
    expect(demoDp({ dp: 'local', sigma: '1.5', clip: '0.8', dpSweep: '0.5, 3' })).toEqual({ type: 'local', sigma: 1.5, clip: 0.8, sweep: [0.5, 3] });
    expect(() => demoDp({ sigma: '1' })).toThrow(/need --dp/);
    expect(() => demoDp({ dp: 'global', sigma: '1', clip: '1' })).toThrow(/local or central/);
    expect(() => demoDp({ dp: 'local', sigma: '1' })).toThrow(/--clip must be a number > 0/);
    expect(() => demoDp({ dp: 'local', sigma: '1', clip: '0' })).toThrow(/--clip must be a number > 0/);
    expect(() => demoDp({ dp: 'local', sigma: '-1', clip: '1' })).toThrow(/--sigma must be a number >= 0/);
  });

  it('reports epsilon per node and, with a sweep, the worst epsilon beside the held-out AUC per noise level', () => {
    const node = (nodeId: string, sigma: number, epsilon: number) =>
      ({ nodeId, type: 'local' as const, sigma, clip: 1, budget: budget(epsilon), note: '' });
    const lines = privacyMarkdown({ type: 'local', sigma: 1, clip: 1, sweep: [2] }, [
      { sigma: 1, privacy: [node('a', 1, 9.5), node('b', 1, 11.25)], evaluation: evaluation(0.75) },
      { sigma: 2, privacy: [node('a', 2, 2.5), node('b', 2, 3.1)], evaluation: evaluation(0.7) },
    ]).join('\n');
    expect(lines).toContain('| a | local | 1 | 1 | 40 | 0.2000 | 150 | 2.50e-2 | 9.50 |');
    expect(lines).toContain('| 1 | 11.25 | 0.750 | 0.500 | 0.750 |');
    expect(lines).toContain('| 2 | 3.10 | 0.700 | 0.500 | 0.750 |');
  });
});
