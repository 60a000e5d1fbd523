/**
 * xorshift32, the deterministic generator of the fuzz tests: the same inputs on every run, so a failure can be
 * replayed from its seed. Not for anything that needs real randomness.
 */

/** Successive 32-bit unsigned integers (never 0) from `seed` (0 is taken as 1). */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
