/**
 * The cohort's own seeded random numbers (Math.random is never used, so a seed always gives the same cohort).
 * sfc32, seeded from SHA-256 of the labels, so that each patient has an independent stream: patient 7 of Nice is the
 * same whatever the number of patients of the other sites.
 */
import * as crypto from 'crypto';

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** A stream identified by its labels, e.g. `new Prng(seed, 'Nice', 7, 'anatomy')`. */
  constructor(...labels: (string | number)[]) {
    const digest = crypto.createHash('sha256').update(labels.join('\u0000')).digest();
    this.a = digest.readUInt32LE(0);
    this.b = digest.readUInt32LE(4);
    this.c = digest.readUInt32LE(8);
    this.d = digest.readUInt32LE(12) | 1;
    for (let i = 0; i < 12; i++) this.next(); // warm up
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box-Muller), times sd plus mean. */
  normal(mean = 0, sd = 1): number {
    const u = 1 - this.next();
    const v = this.next();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Two independent standard normals from one Box-Muller draw (the fast path for image noise). */
  normalPair(out: [number, number]): [number, number] {
    const u = 1 - this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    out[0] = r * Math.cos(2 * Math.PI * v);
    out[1] = r * Math.sin(2 * Math.PI * v);
    return out;
  }

  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /** Index drawn with the given (unnormalised) weights. */
  categorical(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0);
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0) return i;
    }
    return weights.length - 1;
  }
}

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
