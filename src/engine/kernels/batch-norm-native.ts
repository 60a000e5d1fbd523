/**
 * The batch-norm (+ ReLU) kernels behind ../batch-norm.ts's training op, on the wasm backend with the native code
 * (src/engine/native/bn.c): forward gives y and the batch statistics in two passes over the activation, backward
 * the three gradients in two. Only registered while the native kernels are in use; the op composes standard
 * kernels otherwise.
 */
import { GradConfig, KernelConfig, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import type { NativeKernels } from '../native';
import { allocF32, heapF32, nativeKernel, WasmBackend, wasmKernel } from './wasm-backend';

export const BATCH_NORM = 'FedbiomedTsBatchNorm';
export const BATCH_NORM_GRAD = 'FedbiomedTsBatchNormGrad';

export interface BatchNormAttrs {
  eps: number;
  /** A ReLU after the affine step, in the same pass. */
  relu: boolean;
}

export function nativeBatchNormKernels(native: NativeKernels): KernelConfig[] {
  const forward: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
    const { eps, relu } = attrs as unknown as BatchNormAttrs;
    const wasm = backend as WasmBackend;
    const channels = [gamma.shape[0]];
    const y = allocF32(wasm, [...x.shape]);
    const mean = allocF32(wasm, channels);
    const variance = allocF32(wasm, channels);
    // Views after the last allocation (a heap growth invalidates them).
    native.batchNormForward(heapF32(wasm, x), heapF32(wasm, gamma), heapF32(wasm, beta), eps, relu,
      heapF32(wasm, y), heapF32(wasm, mean), heapF32(wasm, variance));
    return [y, mean, variance];
  };
  const backward: KernelFunc = ({ inputs, backend, attrs }) => {
    const { dy, x, gamma, beta, mean, variance } = inputs as Record<'dy' | 'x' | 'gamma' | 'beta' | 'mean' | 'variance', TensorInfo>;
    const { eps, relu } = attrs as unknown as BatchNormAttrs;
    const wasm = backend as WasmBackend;
    const dx = allocF32(wasm, [...x.shape]);
    const dgamma = allocF32(wasm, [gamma.shape[0]]);
    const dbeta = allocF32(wasm, [gamma.shape[0]]);
    const view = (t: TensorInfo) => heapF32(wasm, t);
    native.batchNormBackward(view(dy), view(x), view(gamma), view(beta), view(mean), view(variance), eps, relu,
      view(dx), view(dgamma), view(dbeta));
    return [dx, dgamma, dbeta];
  };
  return [
    wasmKernel(BATCH_NORM, forward),
    wasmKernel(BATCH_NORM_GRAD, backward),
  ].map(nativeKernel);
}

/**
 * The gradient of a normalisation kernel (batch norm here, group norm in group-norm-native.ts) whose backward kernel
 * gives the three gradients at once; the tape asks for them one input at a time. Only y carries a gradient: the
 * statistics (saved outputs) feed the backward kernel and the running averages, never the loss.
 */
export function normGradient(kernelName: string, gradKernelName: string): GradConfig {
  return {
    kernelName,
    inputsToSave: ['x', 'gamma', 'beta'],
    outputsToSave: [false, true, true],
    gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs) => {
      const [x, gamma, beta, mean, variance] = saved;
      const dy = (Array.isArray(dys) ? dys[0] : dys) ?? tf.zerosLike(x);
      const [dx, dgamma, dbeta] = tf.engine().runKernel<Tensor[]>(gradKernelName, { dy, x, gamma, beta, mean, variance }, attrs);
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  };
}

export const batchNormGradient = normGradient(BATCH_NORM, BATCH_NORM_GRAD);

/**
 * Run once before the native kernels are trusted, beside the conv and pool self-checks: a batch norm + ReLU over
 * more rows than one partial-sum chunk, 11 channels (one 8-wide vector + a 3-channel tail), an offset large against
 * the spread, against the definition in float64. Returns what is wrong, or undefined when all agree.
 */
export function nativeBatchNormSelfCheck(native: NativeKernels): string | undefined {
  const rows = 1101; // 2 chunks of 512 rows and 77 more: 4-row steps and one row left over
  const C = 11;
  const eps = 1e-5;
  const x = Float32Array.from({ length: rows * C }, (_, i) => 40 + Math.sin(0.37 * i) * (1 + (i % C) / 4));
  const dy = Float32Array.from({ length: rows * C }, (_, i) => Math.cos(0.61 * i));
  const gamma = Float32Array.from({ length: C }, (_, c) => 0.5 + c / 5);
  const beta = Float32Array.from({ length: C }, (_, c) => (c % 3) - 1);
  const y = new Float32Array(x.length);
  const mean = new Float32Array(C);
  const variance = new Float32Array(C);
  const dx = new Float32Array(x.length);
  const dgamma = new Float32Array(C);
  const dbeta = new Float32Array(C);
  native.batchNormForward(x, gamma, beta, eps, true, y, mean, variance);
  native.batchNormBackward(dy, x, gamma, beta, mean, variance, eps, true, dx, dgamma, dbeta);
  const close = (got: number, want: number, tol: number) => Math.abs(got - want) <= tol * (1 + Math.abs(want));
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += x[r * C + c];
    const m = sum / rows;
    let squares = 0;
    for (let r = 0; r < rows; r++) squares += (x[r * C + c] - m) ** 2;
    const v = squares / rows;
    if (!close(mean[c], m, 1e-6) || !close(variance[c], v, 1e-5)) return `batch norm statistics wrong at channel ${c}`;
    const inv = 1 / Math.sqrt(v + eps);
    let sumDz = 0;
    let sumDzHat = 0;
    const hat = (r: number) => (x[r * C + c] - m) * inv;
    const dz = (r: number) => (hat(r) * gamma[c] + beta[c] > 0 ? dy[r * C + c] : 0);
    for (let r = 0; r < rows; r++) {
      if (!close(y[r * C + c], Math.max(hat(r) * gamma[c] + beta[c], 0), 1e-4)) return `batch norm forward wrong at ${r * C + c}`;
      sumDz += dz(r);
      sumDzHat += dz(r) * hat(r);
    }
    if (!close(dbeta[c], sumDz, 1e-4) || !close(dgamma[c], sumDzHat, 1e-4)) return `batch norm parameter gradients wrong at channel ${c}`;
    for (let r = 0; r < rows; r++) {
      const want = gamma[c] * inv * (dz(r) - sumDz / rows - (hat(r) * sumDzHat) / rows);
      if (!close(dx[r * C + c], want, 1e-3)) return `batch norm input gradient wrong at ${r * C + c}`;
    }
  }
  return undefined;
}
