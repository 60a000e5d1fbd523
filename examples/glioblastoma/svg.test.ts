/** The report's SVG charts: round-numbered ticks, points inside the plot, a legend entry per series. */
import { lineChart, ticks } from './svg';
import { aucStandardError } from 'fedbiomed-ts';

describe('report charts', () => {
  test('ticks are round numbers inside the range', () => {
    expect(ticks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(ticks(1, 12)).toEqual([2, 4, 6, 8, 10, 12]);
    expect(ticks(0.31, 0.69)).toEqual([0.4, 0.5, 0.6]);
    expect(ticks(0, 120)).toEqual([0, 20, 40, 60, 80, 100, 120]);
  });

  test('draws every series inside the plot area with its legend, and the chance diagonal', () => {
    const svg = lineChart({
      title: 'ROC <held-out>', xLabel: 'fpr', yLabel: 'tpr', x: [0, 1], y: [0, 1], diagonal: true,
      series: [
        { name: 'Federated (FedAvg) (0.947)', color: '#111111', points: [[0, 0], [0.5, 0.9], [1, 1]] },
        { name: 'Caen alone', color: '#222222', points: [[0, 0], [1, 1]], dashed: true },
      ],
    });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('ROC &lt;held-out&gt;');
    const paths = [...svg.matchAll(/<path d="([^"]+)" fill="none" stroke="(#\d+)"/g)];
    expect(paths.map((p) => p[2])).toEqual(['#111111', '#222222']);
    const width = Number(/width="(\d+)"/.exec(svg)?.[1]);
    for (const [, d] of paths) {
      for (const [, x, y] of d.matchAll(/[ML]([\d.]+),([\d.]+)/g)) {
        expect(Number(x)).toBeGreaterThanOrEqual(62);
        expect(Number(x)).toBeLessThan(width);
        expect(Number(y)).toBeGreaterThanOrEqual(36);
      }
    }
    // The legend column is wide enough for the longest name (no clipping at the right edge).
    const legendX = Math.max(...[...svg.matchAll(/<text x="([\d.]+)" y="[\d.]+">Federated/g)].map((m) => Number(m[1])));
    expect(legendX + 7 * 'Federated (FedAvg) (0.947)'.length).toBeLessThanOrEqual(width);
    expect(svg).toContain('stroke-dasharray="4 4"');
  });

  test('AUC standard error (Hanley & McNeil) shrinks with more cases and vanishes at AUC 1', () => {
    const small = aucStandardError(0.8, 19, 31);
    expect(small).toBeGreaterThan(0.04);
    expect(small).toBeLessThan(0.08);
    expect(aucStandardError(0.8, 190, 310)).toBeLessThan(small / 2);
    expect(aucStandardError(1, 19, 31)).toBe(0);
  });
});
