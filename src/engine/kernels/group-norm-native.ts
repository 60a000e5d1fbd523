/**
 * The group-norm kernels behind ../group-norm.ts's op, on the wasm backend with the native code
 * (src/engine/native/bn.c, the batch-norm passes with per-sample statistics): forward gives y and each sample's
 * group statistics in two passes over the activation, backward the three gradients in two. Only registered while
 * the native kernels are in use; the op composes standard kernels otherwise.
 */
import { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { normGradient } from './batch-norm-native';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

export const GROUP_NORM = 'FedbiomedTsGroupNorm';
export const GROUP_NORM_GRAD = 'FedbiomedTsGroupNormGrad';

export interface GroupNormAttrs {
  eps: number;
  /** Groups of consecutive channels (channels / groups each). */
  groups: number;
  /** A ReLU after the affine step, in the same pass. */
  relu: boolean;
}

export function nativeGroupNormKernels(native: NativeKernels): KernelConfig[] {
  const forward: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
    const { eps, groups, relu } = attrs as unknown as GroupNormAttrs;
    const wasm = backend as WasmBackend;
    const samples = x.shape[0];
    const y = allocF32(wasm, [...x.shape]);
    const mean = allocF32(wasm, [samples, groups]);
    const variance = allocF32(wasm, [samples, groups]);
    // Views after the last allocation (a heap growth invalidates them).
    native.groupNormForward(heapF32(wasm, x), heapF32(wasm, gamma), heapF32(wasm, beta), eps, relu, samples, groups,
      heapF32(wasm, y), heapF32(wasm, mean), heapF32(wasm, variance));
    return [y, mean, variance];
  };
  const backward: KernelFunc = ({ inputs, backend, attrs }) => {
    const { dy, x, gamma, beta, mean, variance } = inputs as Record<'dy' | 'x' | 'gamma' | 'beta' | 'mean' | 'variance', TensorInfo>;
    const { eps, groups, relu } = attrs as unknown as GroupNormAttrs;
    const wasm = backend as WasmBackend;
    const dx = allocF32(wasm, [...x.shape]);
    const dgamma = allocF32(wasm, [gamma.shape[0]]);
    const dbeta = allocF32(wasm, [gamma.shape[0]]);
    const view = (t: TensorInfo) => heapF32(wasm, t);
    native.groupNormBackward(view(dy), view(x), view(gamma), view(beta), view(mean), view(variance), eps, relu, x.shape[0],
      groups, view(dx), view(dgamma), view(dbeta));
    return [dx, dgamma, dbeta];
  };
  return [
    wasmKernel(GROUP_NORM, forward),
    wasmKernel(GROUP_NORM_GRAD, backward),
  ].map(nativeKernel);
}

export const groupNormGradient = normGradient(GROUP_NORM, GROUP_NORM_GRAD);

/**
 * Run once before the native kernels are trusted, beside the batch-norm self-check: 3 samples of 601 positions
 * (two 512-row chunks in each, 4-row steps and a row left over) and 12 channels in 3 groups (one 8-wide vector + a
 * 4-channel tail), with the ReLU, an offset large against the spread, against the definition in float64. Returns what is wrong,
 * or undefined when all agree.
 */
export function nativeGroupNormSelfCheck(native: NativeKernels): string | undefined {
  const [N, P, C, G] = [3, 601, 12, 3];
  const per = C / G;
  const eps = 1e-5;
  const x = Float32Array.from({ length: N * P * C }, (_, i) => 30 + Math.sin(0.37 * i) * (1 + (i % C) / 4));
  const dy = Float32Array.from({ length: x.length }, (_, i) => Math.cos(0.61 * i));
  const gamma = Float32Array.from({ length: C }, (_, c) => 0.5 + c / 5);
  const beta = Float32Array.from({ length: C }, (_, c) => (c % 3) - 1);
  const y = new Float32Array(x.length);
  const mean = new Float32Array(N * G);
  const variance = new Float32Array(N * G);
  const dx = new Float32Array(x.length);
  const dgamma = new Float32Array(C);
  const dbeta = new Float32Array(C);
  native.groupNormForward(x, gamma, beta, eps, true, N, G, y, mean, variance);
  native.groupNormBackward(dy, x, gamma, beta, mean, variance, eps, true, N, G, dx, dgamma, dbeta);
  const close = (got: number, want: number, tol: number) => Math.abs(got - want) <= tol * (1 + Math.abs(want));
  const wantDgamma = new Float64Array(C);
  const wantDbeta = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const at = (p: number, k: number) => (n * P + p) * C + g * per + k;
      let sum = 0;
      for (let p = 0; p < P; p++) for (let k = 0; k < per; k++) sum += x[at(p, k)];
      const m = sum / (P * per);
      let squares = 0;
      for (let p = 0; p < P; p++) for (let k = 0; k < per; k++) squares += (x[at(p, k)] - m) ** 2;
      const v = squares / (P * per);
      if (!close(mean[n * G + g], m, 1e-6) || !close(variance[n * G + g], v, 1e-5)) return `group norm statistics wrong at sample ${n} group ${g}`;
      const inv = 1 / Math.sqrt(v + eps);
      let sumG = 0;
      let sumGHat = 0;
      for (let p = 0; p < P; p++) {
        for (let k = 0; k < per; k++) {
          const i = at(p, k);
          const c = g * per + k;
          const hat = (x[i] - m) * inv;
          if (!close(y[i], Math.max(hat * gamma[c] + beta[c], 0), 1e-4)) return `group norm forward wrong at ${i}`;
          const dz = hat * gamma[c] + beta[c] > 0 ? dy[i] : 0;
          sumG += dz * gamma[c];
          sumGHat += dz * gamma[c] * hat;
          wantDbeta[c] += dz;
          wantDgamma[c] += dz * hat;
        }
      }
      const count = P * per;
      for (let p = 0; p < P; p++) {
        for (let k = 0; k < per; k++) {
          const i = at(p, k);
          const c = g * per + k;
          const hat = (x[i] - m) * inv;
          const dz = hat * gamma[c] + beta[c] > 0 ? dy[i] : 0;
          const want = inv * (dz * gamma[c] - sumG / count - (hat * sumGHat) / count);
          if (!close(dx[i], want, 1e-3)) return `group norm input gradient wrong at ${i}`;
        }
      }
    }
  }
  for (let c = 0; c < C; c++) {
    if (!close(dbeta[c], wantDbeta[c], 1e-4) || !close(dgamma[c], wantDgamma[c], 1e-4)) return `group norm parameter gradients wrong at channel ${c}`;
  }
  return undefined;
}
