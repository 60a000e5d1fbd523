import { createStrategy, sampleFraction } from './strategies';

describe('strategies', () => {
  const nodes = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];

  it('all: every node, every node must succeed', () => {
    const s = createStrategy('all');
    expect(s.select(nodes, 3)).toEqual(nodes);
    expect(s.required(10)).toBe(10);
  });

  it('at-least: asks every node, needs k, refuses when fewer than k nodes exist', () => {
    const s = createStrategy({ name: 'at-least', k: 2 });
    expect(s.select(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(s.required(3)).toBe(2);
    expect(() => s.select(['a'], 0)).toThrow(/needs 2 nodes but only 1/);
    expect(() => createStrategy({ name: 'at-least', k: 0 })).toThrow(/k must be an integer/);
  });

  it('random-fraction: reproducible per (seed, round), varies across rounds, respects the fraction', () => {
    const s = createStrategy({ name: 'random-fraction', fraction: 0.3, seed: 42 });
    const r0 = s.select(nodes, 0);
    expect(r0).toHaveLength(3);
    expect(createStrategy({ name: 'random-fraction', fraction: 0.3, seed: 42 }).select(nodes, 0)).toEqual(r0);
    const rounds = new Set([0, 1, 2, 3, 4, 5].map((r) => s.select(nodes, r).join(',')));
    expect(rounds.size).toBeGreaterThan(1);
    expect(r0.every((n) => nodes.includes(n))).toBe(true);
    expect(sampleFraction(['x'], 0.01, 1, 0)).toEqual(['x']);
    expect(s.required(3)).toBe(3);
    expect(createStrategy({ name: 'random-fraction', fraction: 0.5, seed: 1, minReplies: 2 }).required(5)).toBe(2);
  });

  it('random-fraction draws and stores a seed when none is given', () => {
    const s = createStrategy({ name: 'random-fraction', fraction: 0.5 });
    expect(s.config).toMatchObject({ name: 'random-fraction', fraction: 0.5 });
    expect(Number.isInteger((s.config as { seed: number }).seed)).toBe(true);
  });

  it('names the problem for bad input', () => {
    expect(() => createStrategy({ name: 'random-fraction', fraction: 0 })).toThrow(/fraction must be in \(0, 1\]/);
    expect(() => createStrategy('best' as never)).toThrow(/name must be one of/);
  });
});
