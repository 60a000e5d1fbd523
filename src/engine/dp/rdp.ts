/**
 * Rényi-DP accounting of the Sampled Gaussian Mechanism, the analysis Opacus 1.4 uses by default
 * (opacus/accountants/analysis/rdp.py, itself from TF Privacy; Mironov, Talwar & Zhang 2019,
 * https://arxiv.org/abs/1908.10530, section 3.3), with the RDP → (ε, δ) conversion of Balle et al. 2020
 * (Theorem 21 of https://arxiv.org/abs/1905.09982), over Opacus's default orders.
 */

/** Opacus RDPAccountant.DEFAULT_ALPHAS: 1.1 … 10.9 by 0.1, then 12 … 63. */
export const DEFAULT_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 52 }, (_, x) => 12 + x),
];

/** One run of `steps` steps of the sampled Gaussian mechanism with sampling rate `q` and noise multiplier `sigma`. */
export interface MechanismRun {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
}

export interface PrivacySpent {
  epsilon: number;
  /** The RDP order that gave the smallest ε (NaN when there is no privacy). */
  order: number;
}

/** ε for `delta` after the composition of `runs` (rounds add up: RDP composes by addition). */
export function epsilonFor(runs: readonly MechanismRun[], delta: number, orders: readonly number[] = DEFAULT_ORDERS): PrivacySpent {
  if (!(delta > 0 && delta < 1)) throw new Error(`delta must be in (0, 1), got ${delta}`);
  const rdp = orders.map((alpha) => runs.reduce((sum, r) => sum + r.steps * rdpOf(r.sampleRate, r.noiseMultiplier, alpha), 0));
  let best: PrivacySpent = { epsilon: Infinity, order: NaN };
  orders.forEach((alpha, i) => {
    const eps = rdp[i] - (Math.log(delta) + Math.log(alpha)) / (alpha - 1) + Math.log((alpha - 1) / alpha);
    if (eps < best.epsilon) best = { epsilon: eps, order: alpha };
  });
  return best;
}

/** RDP of one step at order `alpha` (Opacus `_compute_rdp`). */
export function rdpOf(q: number, sigma: number, alpha: number): number {
  if (!(q >= 0 && q <= 1)) throw new Error(`sampling rate must be in [0, 1], got ${q}`);
  if (!(sigma >= 0)) throw new Error(`noise multiplier must be >= 0, got ${sigma}`);
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (!Number.isFinite(alpha)) return Infinity;
  const logA = Number.isInteger(alpha) ? logAIntegerOrder(q, sigma, alpha) : logAFractionalOrder(q, sigma, alpha);
  return logA / (alpha - 1);
}

function logAIntegerOrder(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  for (let i = 0; i <= alpha; i++) {
    const logCoef = Math.log(binomial(alpha, i)) + i * Math.log(q) + (alpha - i) * Math.log(1 - q);
    logA = logAdd(logA, logCoef + (i * i - i) / (2 * sigma * sigma));
  }
  return logA;
}

function logAFractionalOrder(q: number, sigma: number, alpha: number): number {
  // The two parts of A_alpha, integrals over (-inf, z0] and [z0, +inf), summed in log space until negligible.
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  for (let i = 0; ; i++) {
    const coef = binomial(alpha, i);
    const logCoef = Math.log(Math.abs(coef));
    const j = alpha - i;
    const logT0 = logCoef + i * Math.log(q) + j * Math.log(1 - q);
    const logT1 = logCoef + j * Math.log(q) + i * Math.log(1 - q);
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (coef > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

/** Generalised binomial coefficient C(alpha, i) for real alpha (scipy.special.binom). */
function binomial(alpha: number, i: number): number {
  let c = 1;
  for (let k = 0; k < i; k++) c *= (alpha - k) / (k + 1);
  return c;
}

function logAdd(x: number, y: number): number {
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  if (a === -Infinity) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

function logSub(x: number, y: number): number {
  if (x < y) throw new Error('RDP accountant: log-space subtraction would be negative');
  if (y === -Infinity) return x;
  if (x === y) return -Infinity;
  const d = Math.expm1(x - y);
  return Number.isFinite(d) ? Math.log(d) + y : x;
}

/**
 * log(erfc(x)) to double precision for any x: erfc from the all-positive erf series for |x| < 2.5, and from the
 * continued fraction of the scaled erfc for x >= 2.5, kept in log space so it never underflows.
 */
export function logErfc(x: number): number {
  if (x < 2.5) {
    if (x <= -2.5) return Math.log(2 - Math.exp(logErfcLarge(-x)));
    return Math.log(1 - erfSeries(x));
  }
  return logErfcLarge(x);
}

/** erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1)): positive terms, no cancellation. */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

/** log erfc(x) for x >= 2.5: −x² − log √π + log(1 / (x + (1/2)/(x + 1/(x + (3/2)/(x + …))))) (modified Lentz). */
function logErfcLarge(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = d === 0 ? tiny : d;
    c = x + a / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -x * x - 0.5 * Math.log(Math.PI) - Math.log(f);
}
