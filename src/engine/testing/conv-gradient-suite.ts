/**
 * The gradient-check suite shared by the Conv2D and Conv3D kernel tests (jest only: it declares tests). For each
 * kernel set-up (native on 1 and 2 threads, pure wasm) and each case: forward output, input and filter gradients on the wasm
 * backend against the CPU backend and against finite differences of the float64 reference conv.
 */
import * as tf from '@tensorflow/tfjs-core';
import { KernelImplementation, useKernels } from '../kernels';
import { caseName, ConvCase, finiteDifferenceGradients, tfjsConvGradients, worstMismatch } from '../kernels/gradient-check';
import { initBackend } from '../backend';
import { setNativeThreads, threadsSetting } from '../native';

/** The kernel set-ups every kernel test runs under: native on one thread and on two (work split by sample, even
 *  for the tests' small problems), wasm. */
export const KERNEL_CONFIGS: ReadonlyArray<readonly [string, KernelImplementation, number]> = [
  ['native, 1 thread', 'native', 1],
  ['native, 2 threads', 'native', 2],
  ['wasm', 'wasm', 1],
];

export function useKernelConfig(implementation: KernelImplementation, threads: number): void {
  useKernels(implementation);
  // A work threshold of 1: split even the tests' small problems (by default they would stay on one thread).
  if (implementation === 'native') setNativeThreads(threads, threads > 1 ? 1 : undefined);
}

/** Back to what the engine picks by itself. */
export function restoreDefaultKernels(): void {
  useKernels('native');
  setNativeThreads(threadsSetting());
}

/**
 * Declares `body` once per kernel set-up of KERNEL_CONFIGS (a describe block named after it, the set-up applied
 * before its tests and the default kernels given back after them), on the engine's own backend initialised first
 * and given back after: the frame of the kernel tests that compare the wasm backend with the CPU oracle. Tests
 * declared after it in the same file find the default kernels.
 */
export function describeOnEveryKernelConfig(body: (implementation: KernelImplementation, threads: number) => void): void {
  let engine: string;
  beforeAll(async () => {
    engine = (await initBackend(() => undefined)).tfjsName;
  });
  afterAll(async () => {
    await tf.setBackend(engine);
  });
  describe.each(KERNEL_CONFIGS)('%s', (_label, implementation, threads) => {
    beforeAll(() => useKernelConfig(implementation, threads));
    afterAll(restoreDefaultKernels);
    body(implementation, threads);
  });
}

/** `run` on the wasm backend and on the CPU oracle; the wasm backend is active again after. */
export async function onWasmAndCpu<T>(run: () => T): Promise<{ wasm: T; cpu: T }> {
  await tf.setBackend('wasm');
  const wasm = run();
  await tf.setBackend('cpu');
  const cpu = run();
  await tf.setBackend('wasm');
  return { wasm, cpu };
}

/** `tolerance` bounds |got - want| / (1 + |want|); `samples` finite differences per gradient. */
export function describeConvGradientChecks(label: string, cases: ConvCase[], samples: number, tolerance: number): void {
  describeOnEveryKernelConfig(() => {
    describe.each(cases.map((c) => [caseName(c), c] as const))(`${label} %s`, (_name, c) => {
      test('wasm-backend forward and gradients match the CPU backend and finite differences', async () => {
        const { wasm, cpu } = await onWasmAndCpu(() => tfjsConvGradients(c));
        expect(worstMismatch('y', wasm.y, cpu.y).error).toBeLessThanOrEqual(tolerance);
        expect(worstMismatch('dx', wasm.dx, cpu.dx).error).toBeLessThanOrEqual(tolerance);
        expect(worstMismatch('dw', wasm.dw, cpu.dw).error).toBeLessThanOrEqual(tolerance);
        const fd = finiteDifferenceGradients(c, samples);
        expect(worstMismatch('dx', wasm.dx, fd.dx, fd.xIdx).error).toBeLessThanOrEqual(tolerance);
        expect(worstMismatch('dw', wasm.dw, fd.dw, fd.wIdx).error).toBeLessThanOrEqual(tolerance);
      });
    });
  });
}
