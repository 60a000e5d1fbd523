/**
 * Batch normalisation in training mode, for channels-last tensors (`[N, ..., C]`), as PyTorch computes it:
 * per channel c over the M = N·spatial values, mean_c and the biased variance var_c, x̂ = (x − mean_c)/√(var_c + eps),
 * y = γ_c·x̂ + β_c. The batch statistics are returned too (no gradient) for the running-statistics update.
 *
 * On the wasm and CPU backends it is one op with its analytic gradient, in plain loops over the tensors' values
 * with float64 accumulation (as PyTorch's CPU kernel accumulates in double): two passes forward, two backward.
 * Written with tfjs's elementary ops instead, the statistics, the normalisation and their automatic gradient took
 * ~20 passes and broadcasts the wasm backend runs slowly on 5-D tensors (a 3-D CNN epoch was 11× slower with batch
 * norm; `npm run bench -- bn`). On tfjs-node the elementary ops run natively, so they are used there.
 * Backward: dβ_c = Σ dy, dγ_c = Σ dy·x̂, dx = γ_c/√(var_c + eps) · (dy − dβ_c/M − x̂·dγ_c/M).
 */
import * as tf from '@tensorflow/tfjs-core';

export interface BatchNormTrainResult {
  y: tf.Tensor;
  /** Per-channel batch mean and biased variance, float32 `[C]`. */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

export function batchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): BatchNormTrainResult {
  return tf.getBackend() === 'tensorflow' ? withOps(x, gamma, beta, eps) : withLoops(x, gamma, beta, eps);
}

function withOps(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): BatchNormTrainResult {
  const { mean, variance } = tf.moments(x, Array.from({ length: x.rank - 1 }, (_, i) => i));
  const y = tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/** Per-channel mean and biased variance of channels-last values, one pass (sums of x and x² in float64). */
function statistics(xs: Float32Array, channels: number): { mean: Float64Array; variance: Float64Array } {
  const sum = new Float64Array(channels);
  const squares = new Float64Array(channels);
  // A per-channel shift (the first sample's value) keeps Σ(x − s)² free of cancellation.
  const shift = Float64Array.from(xs.subarray(0, channels));
  for (let i = 0; i < xs.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      const d = xs[i + c] - shift[c];
      sum[c] += d;
      squares[c] += d * d;
    }
  }
  const count = xs.length / channels;
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const m = sum[c] / count;
    mean[c] = shift[c] + m;
    variance[c] = Math.max(squares[c] / count - m * m, 0);
  }
  return { mean, variance };
}

function withLoops(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): BatchNormTrainResult {
  const channels = x.shape[x.rank - 1];
  const count = x.size / channels;
  let stats: { mean: Float64Array; variance: Float64Array } | undefined;
  const forward = (input: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const xs = input.dataSync() as Float32Array;
    const gs = g.dataSync() as Float32Array;
    const bs = b.dataSync() as Float32Array;
    stats = statistics(xs, channels);
    const { mean, variance } = stats;
    const invStd = Float64Array.from(variance, (v) => 1 / Math.sqrt(v + eps));
    // y = x·a_c + b_c with a_c = γ_c/σ_c, b_c = β_c − mean_c·a_c; one flat loop (V8 runs it ~5× faster than nested).
    const a = Float64Array.from(invStd, (v, c) => v * gs[c]);
    const shift = Float64Array.from(a, (v, c) => bs[c] - mean[c] * v);
    const ys = new Float32Array(xs.length);
    for (let i = 0, c = 0; i < xs.length; i++) {
      ys[i] = xs[i] * a[c] + shift[c];
      if (++c === channels) c = 0;
    }
    // The backward pass recomputes x̂ from x (saved anyway by the tape) rather than keeping a second activation.
    save([input, g, tf.tensor1d(Float32Array.from(mean)), tf.tensor1d(Float32Array.from(invStd))]);
    return {
      value: tf.tensor(ys, input.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedGamma, savedMean, savedInvStd] = saved.map((t) => t.dataSync() as Float32Array);
        const dys = dy.dataSync() as Float32Array;
        const m = Float64Array.from(savedMean);
        const inv = Float64Array.from(savedInvStd);
        const dBeta = new Float64Array(channels);
        const dGamma = new Float64Array(channels);
        for (let i = 0; i < dys.length; i += channels) {
          for (let c = 0; c < channels; c++) {
            const d = dys[i + c];
            dBeta[c] += d;
            dGamma[c] += d * (savedX[i + c] - m[c]) * inv[c];
          }
        }
        // dx = k_c·(dy − dβ_c/M − (x − mean_c)·inv_c·dγ_c/M) = k_c·dy − p_c·x + q_c, one flat loop.
        const dx = new Float32Array(dys.length);
        const k = Float64Array.from(savedGamma, (v, c) => v * inv[c]);
        const p = Float64Array.from(dGamma, (v, c) => (k[c] * v * inv[c]) / count);
        const q = Float64Array.from(dBeta, (v, c) => p[c] * m[c] - (k[c] * v) / count);
        for (let i = 0, c = 0; i < dys.length; i++) {
          dx[i] = k[c] * dys[i] - p[c] * savedX[i] + q[c];
          if (++c === channels) c = 0;
        }
        return [tf.tensor(dx, dy.shape), tf.tensor1d(Float32Array.from(dGamma)), tf.tensor1d(Float32Array.from(dBeta))];
      },
    };
  };
  // customGrad's type lists its arguments as (Tensor | GradSaveFunc)[]; the call below passes exactly three tensors.
  const op = tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = op(x, gamma, beta) as tf.Tensor;
  const { mean, variance } = stats!;
  return { y, mean: tf.tensor1d(Float32Array.from(mean)), variance: tf.tensor1d(Float32Array.from(variance)) };
}
