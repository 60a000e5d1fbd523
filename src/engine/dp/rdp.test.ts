/**
 * The RDP accountant against published reference values of the same analysis, and its log-erfc against scipy.
 */
import { DEFAULT_ORDERS, epsilonFor, logErfc, rdpOf } from './rdp';
import { expectedPrivacy } from './expected';
import { runTorchScript } from '../testing/torch';

describe('RDP accountant (sampled Gaussian mechanism)', () => {
  it("gives Opacus's reference epsilon (opacus/tests/accountants_test.py test_rdp_accountant, v1.4.1)", () => {
    // sigma 1.5, sample rate 0.04, int(90 / 0.04) steps, delta 1e-5 -> 7.32911117143 (assertAlmostEqual, 7 places).
    const { epsilon } = epsilonFor([{ sampleRate: 0.04, noiseMultiplier: 1.5, steps: Math.trunc(90 / 0.04) }], 1e-5);
    expect(epsilon).toBeCloseTo(7.32911117143, 7);
  });

  it("gives the worked example of Opacus's rdp.py docstring (two mechanisms composed, orders 2..32)", () => {
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const spent = epsilonFor([
      { sampleRate: 1e-5, noiseMultiplier: 1.0, steps: 10 },
      { sampleRate: 1e-4, noiseMultiplier: 3.0, steps: 4 },
    ], 1e-5, orders);
    expect(spent.epsilon).toBeCloseTo(0.336, 3);
    expect(spent.order).toBe(23);
  });

  it('has the closed forms at the edges: no sampling, full batch, no noise', () => {
    expect(rdpOf(0, 1, 2)).toBe(0);
    expect(rdpOf(1, 2, 3)).toBeCloseTo(3 / 8, 15); // alpha / (2 sigma^2): the plain Gaussian mechanism
    expect(rdpOf(0.1, 0, 2)).toBe(Infinity);
    expect(epsilonFor([{ sampleRate: 0.1, noiseMultiplier: 0, steps: 1 }], 1e-5).epsilon).toBe(Infinity);
    expect(DEFAULT_ORDERS.length).toBe(151);
  });

  it('grows with steps and shrinks with noise', () => {
    const eps = (sigma: number, steps: number) => epsilonFor([{ sampleRate: 0.1, noiseMultiplier: sigma, steps }], 1e-5).epsilon;
    expect(eps(1, 200)).toBeGreaterThan(eps(1, 100));
    expect(eps(2, 100)).toBeLessThan(eps(1, 100));
  });

  it('computes log(erfc(x)) as scipy does (log 2 + log_ndtr(-x sqrt 2)) across the range', () => {
    const xs = [-6, -3, -1, -0.2, 0, 0.3, 1, 2.4, 2.5, 2.6, 5, 10, 30, 100];
    const expected = runTorchScript<number[]>(
      'import json,sys,math\nfrom scipy import special\nxs=json.load(sys.stdin)\n' +
      'print(json.dumps([math.log(2)+float(special.log_ndtr(-x*2**0.5)) for x in xs]))', xs);
    xs.forEach((x, i) => {
      expect(Math.abs(logErfc(x) - expected[i])).toBeLessThanOrEqual(1e-13 * Math.max(1, Math.abs(expected[i])));
    });
  });
});

describe('expected privacy before a run', () => {
  it('counts steps as the node will (split, len(loader), num_updates or epochs, rounds) and composes them', () => {
    // 40 samples, test_ratio 0.25 -> 30 training samples; batch 8 -> 4 batches, rate 1/4; 2 epochs -> 8 steps.
    const b = expectedPrivacy({ samples: 40, testRatio: 0.25, batchSize: 8, epochs: 2, sigma: 1.1, rounds: 3 });
    expect(b).toMatchObject({ trainingSamples: 30, sampleRate: 0.25, stepsPerRound: 8, rounds: 3, delta: 1 / 30 });
    expect(b.epsilon).toBe(epsilonFor([{ sampleRate: 0.25, noiseMultiplier: 1.1, steps: 24 }], 1 / 30).epsilon);
    const updates = expectedPrivacy({ samples: 40, testRatio: 0.25, batchSize: 8, numUpdates: 6, sigma: 1.1, rounds: 1, delta: 1e-5 });
    expect(updates.stepsPerRound).toBe(6);
    expect(updates.delta).toBe(1e-5);
  });
});
