/** FedAvg of the simulated nodes' known training (affineTrain), computed independently in float64, for tests. */
import type { WeightMap } from '../aggregators/tensors';

export function referenceRound(global: Map<string, number[]>, round: number, participants: string[],
  sizes: Record<string, number>, offsets: Record<string, number>): Map<string, number[]> {
  const total = participants.reduce((s, n) => s + sizes[n], 0);
  const out = new Map<string, number[]>();
  for (const [name, values] of global) {
    out.set(
      name,
      values.map((_, i) =>
        participants.reduce((acc, n) => {
          const trained = Math.fround(Math.fround(values[i] * 0.9) + offsets[n] + round * 0.001 + i * 1e-4);
          return acc + (sizes[n] / total) * trained;
        }, 0),
      ),
    );
  }
  return out;
}

export function asArrays(w: WeightMap): Map<string, number[]> {
  return new Map([...w].map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
}

/** Largest absolute difference between aggregated weights and a reference (Infinity when the keys differ). */
export function maxDifference(actual: WeightMap, expected: Map<string, number[]>): number {
  if ([...actual.keys()].join() !== [...expected.keys()].join()) return Infinity;
  let worst = 0;
  for (const [name, values] of expected) {
    const got = actual.get(name)?.data as Float32Array;
    values.forEach((v, i) => (worst = Math.max(worst, Math.abs(got[i] - v))));
  }
  return worst;
}
