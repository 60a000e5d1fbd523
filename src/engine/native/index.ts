/**
 * The optional native kernels: convolutions (conv.c), max pooling (pool.c), leading-axes sums (reduce.c), the
 * fused bias + ReLU (bias_relu.c), batch norm (+ ReLU) and group norm (bn.c), concat / split copies (copy.c), the
 * Adam step (adam.c) and BCE with logits (bce.c), AVX2 + FMA, built by build.js at install time.
 *
 * They run on the wasm backend's own memory: tensors stay on the wasm heap and the addon reads and writes them
 * through Float32Array views, so using them costs no copies. When the addon is missing, cannot load, or the CPU
 * lacks AVX2/FMA, `loadNativeKernels()` says why and the engine keeps the pure wasm kernels.
 * `FEDBIOMED_TS_NATIVE=0` turns them off (e.g. to compare both paths). They use every core the process may use
 * (as PyTorch does by default), or `FEDBIOMED_TS_THREADS` threads.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface NativeKernels {
  /** The conv kernels' register tiles run on AVX-512 (else AVX2; the same bits either way). */
  readonly avx512: boolean;
  convForward(geometry: Int32Array, x: Float32Array, w: Float32Array, y: Float32Array): void;
  /** y = max(conv(x, w) + bias, 0) with bias [out channels]: the bits of convForward then biasReluForward. */
  convForwardBiasRelu(geometry: Int32Array, x: Float32Array, w: Float32Array, bias: Float32Array, y: Float32Array): void;
  convBackpropFilter(geometry: Int32Array, x: Float32Array, dy: Float32Array, dw: Float32Array): void;
  convBackpropInput(geometry: Int32Array, dy: Float32Array, w: Float32Array, dx: Float32Array): void;
  maxPoolForward(geometry: Int32Array, x: Float32Array, y: Float32Array): void;
  maxPoolBackprop(geometry: Int32Array, x: Float32Array, y: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /** y = max(x + bias, 0), x and y [rows x bias.length]. */
  biasReluForward(x: Float32Array, bias: Float32Array, y: Float32Array): void;
  /** y = x + bias, x and y [rows x bias.length]. */
  biasAddForward(x: Float32Array, bias: Float32Array, y: Float32Array): void;
  /** dx = dy where y > 0 else 0, dbias = column sums of dx. */
  biasReluBackward(dy: Float32Array, y: Float32Array, dx: Float32Array, dbias: Float32Array): void;
  /**
   * Batch norm in training mode over x [rows x C] (C = gamma.length), then ReLU when `relu`: y, the batch mean and
   * biased variance per channel (bn.h).
   */
  batchNormForward(
    x: Float32Array, gamma: Float32Array, beta: Float32Array, eps: number, relu: boolean,
    y: Float32Array, mean: Float32Array, variance: Float32Array,
  ): void;
  /** Its gradients from dy and the forward's inputs and statistics: dx, dgamma, dbeta. */
  batchNormBackward(
    dy: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, mean: Float32Array, variance: Float32Array,
    eps: number, relu: boolean, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array,
  ): void;
  /**
   * Group norm over x [samples x positions x C] (C = gamma.length, `groups` consecutive-channel groups), then ReLU
   * when `relu`: y and each sample's group mean and biased variance, [samples x groups] (bn.h).
   */
  groupNormForward(
    x: Float32Array, gamma: Float32Array, beta: Float32Array, eps: number, relu: boolean, samples: number, groups: number,
    y: Float32Array, mean: Float32Array, variance: Float32Array,
  ): void;
  /** Its gradients from dy and the forward's inputs and statistics: dx, dgamma, dbeta. */
  groupNormBackward(
    dy: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, mean: Float32Array, variance: Float32Array,
    eps: number, relu: boolean, samples: number, groups: number, dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array,
  ): void;
  /**
   * For every row r (src.length / srcCols of them, as many as dst.length / dstCols): the `width` floats of src's row
   * from srcOffset to dst's row at dstOffset (concat / split along an axis).
   */
  copyColumns(src: Float32Array, srcCols: number, srcOffset: number, dst: Float32Array, dstCols: number, dstOffset: number, width: number): void;
  /** out[c] = sum over rows r of x[r * out.length + c]. */
  sumLeadingAxes(x: Float32Array, out: Float32Array): void;
  /** Differential privacy (dp.h): each sample's conv filter and bias gradient, and its squared norm over both. */
  dpConvPerSample(geometry: Int32Array, x: Float32Array, dy: Float32Array, filterGrads: Float32Array,
    biasGrads: Float32Array | null, normSq: Float32Array): void;
  /** out[k] = sum over rows i of factors[i] * m[i * out.length + k] (clip-weighted sum over samples). */
  dpWeightedRowSum(m: Float32Array, factors: Float32Array, out: Float32Array): void;
  /**
   * One Adam / AdamW step (adam.h): pOut, mOut, vOut from p, its gradient g and the moments m, v (null on the first
   * step). `step`: [beta1, 1 - beta1, beta2, 1 - beta2, sqrt(1 - beta2^t), eps, lr / (1 - beta1^t), weight decay,
   * 1 - lr * weight decay, mode (0 none, 1 L2, 2 decoupled), first (1 on the first step)], each rounded to float32.
   */
  adamUpdate(step: Float64Array, p: Float32Array, g: Float32Array, m: Float32Array | null, v: Float32Array | null,
    pOut: Float32Array, mOut: Float32Array, vOut: Float32Array): void;
  /** Element-wise BCE-with-logits terms max(x, 0) - x y + log1p(exp(-|x|)) (bce.h). */
  bceWithLogitsForward(x: Float32Array, y: Float32Array, terms: Float32Array): void;
  /** Their gradients: dx = dy (sigmoid(x) - y), dyTarget = -dy x (either null when not wanted). */
  bceWithLogitsBackward(dy: Float32Array, x: Float32Array, y: Float32Array, dx: Float32Array | null, dyTarget: Float32Array | null): void;
  /**
   * Threads every kernel call may use (work split by sample); results are deterministic per thread count.
   * `workPerThread`: the work (multiply-adds) that pays for one more thread, 2M by default; tests pass 1.
   */
  setThreads(threads: number, workPerThread?: number): void;
  threads(): number;
}

export type NativeLoad = { ok: true; kernels: NativeKernels; detail: string } | { ok: false; detail: string };

const NATIVE_ENV_VAR = 'FEDBIOMED_TS_NATIVE';
/** The addon's FBTS_API_VERSION these sources were written for (addon.c). An addon left over from older sources
 *  (say, after a git pull without npm ci) is refused instead of failing mid-training on a missing function. */
export const NATIVE_API_VERSION = 7;
export const THREADS_ENV_VAR = 'FEDBIOMED_TS_THREADS';
const MAX_THREADS = 64;
/** Where build.js puts the addon: beside these sources, which a compiled copy (dist/src/...) finds four levels up. */
export const NATIVE_ADDON_PATH = [
  path.join(__dirname, 'build', 'fbts-native.node'),
  path.join(__dirname, '..', '..', '..', '..', 'src', 'engine', 'native', 'build', 'fbts-native.node'),
].find((p) => fs.existsSync(p)) ?? path.join(__dirname, 'build', 'fbts-native.node');

let loaded: NativeLoad | undefined;

export function loadNativeKernels(): NativeLoad {
  if (!loaded) loaded = tryLoad();
  return loaded;
}

function tryLoad(): NativeLoad {
  const setting = process.env[NATIVE_ENV_VAR]?.trim().toLowerCase();
  if (setting === '0' || setting === 'false' || setting === 'off') {
    return { ok: false, detail: `native kernels off (${NATIVE_ENV_VAR}=${process.env[NATIVE_ENV_VAR]})` };
  }
  threadsSetting(); // a bad FEDBIOMED_TS_THREADS is an error whether or not the addon loads
  return loadAddon(NATIVE_ADDON_PATH);
}

/** Loads and vets the addon at `file` (exported for tests, which point it at stand-ins). */
export function loadAddon(file: string): NativeLoad {
  if (!fs.existsSync(file)) {
    // Installed package: its install script builds them (npm 11 runs it once allowed); a clone: npm run build:native.
    return { ok: false, detail: 'native kernels not built (needs a C compiler; then `npm rebuild fedbiomed-ts`, or ' +
      '`npm run build:native` in a clone; npm 11 first: `npm install-scripts approve fedbiomed-ts`)' };
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the addon's path is known only at run time
    const addon = require(file) as NativeKernels & { supported: boolean; apiVersion?: number };
    if (addon.apiVersion !== NATIVE_API_VERSION) {
      return {
        ok: false,
        detail: `native kernels out of date (built for API ${addon.apiVersion ?? 'unknown'}, these sources need ` +
          `${NATIVE_API_VERSION}); rebuild with npm run build:native`,
      };
    }
    if (!addon.supported) return { ok: false, detail: 'native kernels need AVX2 and FMA, which this CPU lacks' };
    addon.setThreads(threadsSetting());
    return { ok: true, kernels: addon, detail: `native kernels (AVX2+FMA${addon.avx512 ? ', AVX-512 tiles' : ''})` };
  } catch (e) {
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return { ok: false, detail: `native kernels failed to load (${reason}); rebuild with npm run build:native` };
  }
}

/** FEDBIOMED_TS_THREADS, or every core this process may use; throws on a value that is not 1..64. */
export function threadsSetting(): number {
  const raw = process.env[THREADS_ENV_VAR];
  if (raw === undefined || raw.trim() === '') return Math.min(MAX_THREADS, os.availableParallelism());
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new Error(`${THREADS_ENV_VAR}=${raw} is not an integer from 1 to ${MAX_THREADS}`);
  }
  return n;
}

/** Sets the native kernels' thread count (tests, benchmarks); an error when they are not loaded. */
export function setNativeThreads(threads: number, workPerThread?: number): void {
  const load = loadNativeKernels();
  if (!load.ok) throw new Error(`cannot set native threads: ${load.detail}`);
  if (workPerThread === undefined) load.kernels.setThreads(threads);
  else load.kernels.setThreads(threads, workPerThread);
}
