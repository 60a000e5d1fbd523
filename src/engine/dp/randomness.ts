/**
 * Randomness for differential privacy: which samples a step uses (Poisson sampling, Opacus's DPDataLoader) and the
 * Gaussian noise. Both come from the operating system's CSPRNG, never from `random_seed`: the researcher chooses
 * that seed, and noise it could regenerate would protect nothing (nor would a batch composition it could predict,
 * which the privacy amplification by sampling assumes secret).
 */
import { randomFillSync } from 'crypto';

export interface DpRandom {
  /** Uniform in [0, 1), 53 random bits. */
  uniform(): number;
  /** `count` independent N(0, std²) draws. */
  gaussian(count: number, std: number): Float32Array;
}

/** The node's DP randomness: crypto.randomFillSync, buffered. */
export function secureRandom(): DpRandom {
  const words = new Uint32Array(4096);
  let next = words.length;
  const word = (): number => {
    if (next === words.length) {
      randomFillSync(words);
      next = 0;
    }
    return words[next++];
  };
  const uniform = () => ((word() >>> 5) * 67108864 + (word() >>> 6)) / 9007199254740992;
  return {
    uniform,
    gaussian(count: number, std: number): Float32Array {
      if (!(std >= 0 && Number.isFinite(std))) throw new Error(`noise standard deviation must be finite and >= 0, got ${std}`);
      const out = new Float32Array(count);
      if (std === 0) return out;
      // Box-Muller: two independent normals per pair of uniforms (1 - u keeps the logarithm finite).
      for (let i = 0; i < count; i += 2) {
        const r = Math.sqrt(-2 * Math.log(1 - uniform()));
        const theta = 2 * Math.PI * uniform();
        out[i] = std * r * Math.cos(theta);
        if (i + 1 < count) out[i + 1] = std * r * Math.sin(theta);
      }
      return out;
    },
  };
}

/** Opacus's UniformWithReplacementSampler step: every sample of 0..n-1 independently with probability `rate`. */
export function poissonSample(n: number, rate: number, random: DpRandom): number[] {
  if (!(rate > 0 && rate <= 1)) throw new Error(`sampling rate must be in (0, 1], got ${rate}`);
  const picked: number[] = [];
  for (let i = 0; i < n; i++) if (random.uniform() < rate) picked.push(i);
  return picked;
}
