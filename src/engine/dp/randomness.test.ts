/** DP randomness within statistical bounds (seeded nothing: these are the node's real CSPRNG draws). */
import { poissonSample, secureRandom } from './randomness';

describe('DP randomness', () => {
  it('draws Gaussian noise with mean 0 and the asked variance (bounds at 6 standard errors)', () => {
    const n = 400_000;
    const std = 1.7;
    const x = secureRandom().gaussian(n, std);
    let sum = 0;
    let sq = 0;
    let fourth = 0;
    for (const v of x) {
      sum += v;
      sq += v * v;
      fourth += v ** 4;
    }
    const mean = sum / n;
    const variance = sq / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(6 * std / Math.sqrt(n));
    // Var of the sample variance of a normal: 2 sigma^4 / n.
    expect(Math.abs(variance - std * std)).toBeLessThan(6 * Math.sqrt(2 / n) * std * std);
    // Kurtosis 3 (a uniform or a clipped draw would fail): Var of m4 / sigma^4 is 96 / n.
    expect(Math.abs(fourth / n / std ** 4 - 3)).toBeLessThan(6 * Math.sqrt(96 / n));
    expect(secureRandom().gaussian(5, 0)).toEqual(new Float32Array(5));
  });

  it('Poisson batch sizes follow the binomial law Bin(N, q) (chi-square goodness of fit)', () => {
    const random = secureRandom();
    const n = 40;
    const q = 0.2;
    const draws = 20_000;
    const counts = new Array<number>(n + 1).fill(0);
    for (let d = 0; d < draws; d++) counts[poissonSample(n, q, random).length]++;
    const pmf = (k: number) => {
      let logC = 0;
      for (let i = 0; i < k; i++) logC += Math.log((n - i) / (i + 1));
      return Math.exp(logC + k * Math.log(q) + (n - k) * Math.log(1 - q));
    };
    // Bins with expected count >= 5; the tails pooled into the first and last bin.
    const bins: { observed: number; expected: number }[] = [];
    let pending = { observed: 0, expected: 0 };
    for (let k = 0; k <= n; k++) {
      pending.observed += counts[k];
      pending.expected += draws * pmf(k);
      if (pending.expected >= 5) {
        bins.push(pending);
        pending = { observed: 0, expected: 0 };
      }
    }
    bins[bins.length - 1].observed += pending.observed;
    bins[bins.length - 1].expected += pending.expected;
    const chi2 = bins.reduce((s, b) => s + (b.observed - b.expected) ** 2 / b.expected, 0);
    const dof = bins.length - 1;
    // Wilson-Hilferty: the 0.9999 quantile of chi2(dof) (a false alarm once in 10 000 runs).
    const z = 3.719;
    const quantile = dof * (1 - 2 / (9 * dof) + z * Math.sqrt(2 / (9 * dof))) ** 3;
    expect(chi2).toBeLessThan(quantile);
    // And the sampled indices are distinct, sorted, in range.
    const one = poissonSample(n, 0.5, random);
    expect(one.every((v, i) => v >= 0 && v < n && (i === 0 || v > one[i - 1]))).toBe(true);
  });

  it('refuses an impossible sampling rate or noise scale', () => {
    expect(() => poissonSample(10, 0, secureRandom())).toThrow(/sampling rate/);
    expect(() => secureRandom().gaussian(3, -1)).toThrow(/standard deviation/);
  });
});
