/**
 * The gradient-check suite shared by the Conv2D and Conv3D kernel tests (jest only: it declares tests). For each
 * kernel implementation (native, pure wasm) and each case: forward output, input and filter gradients on the wasm
 * backend against the CPU backend and against finite differences of the float64 reference conv.
 */
import * as tf from '@tensorflow/tfjs-core';
import { KernelImplementation, useKernels } from '../kernels';
import { caseName, ConvCase, finiteDifferenceGradients, tfjsConvGradients, worstMismatch } from '../kernels/gradient-check';

export const KERNEL_IMPLEMENTATIONS: KernelImplementation[] = ['native', 'wasm'];

/** `tolerance` bounds |got - want| / (1 + |want|); `samples` finite differences per gradient. */
export function describeConvGradientChecks(label: string, cases: ConvCase[], samples: number, tolerance: number): void {
  describe.each(KERNEL_IMPLEMENTATIONS)('%s kernels', (implementation) => {
    beforeAll(() => useKernels(implementation));
    afterAll(() => useKernels('native'));

    describe.each(cases.map((c) => [caseName(c), c] as const))(`${label} %s`, (_name, c) => {
      test('wasm-backend forward and gradients match the CPU backend and finite differences', async () => {
        await tf.setBackend('wasm');
        const wasm = tfjsConvGradients(c);
        await tf.setBackend('cpu');
        const cpu = tfjsConvGradients(c);
        await tf.setBackend('wasm');
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
