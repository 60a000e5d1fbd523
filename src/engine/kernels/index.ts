/**
 * Registers the project-owned kernels and gradients in tfjs's registries (never by patching node_modules).
 * Idempotent; safe to call before or after a backend is set.
 */
// The wasm package registers its stock kernels on import; importing it first guarantees ours replace them.
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core ships its gradients separately (the union package registers them); ours override some, so theirs first.
import '@tensorflow/tfjs';
import { getKernel, KernelConfig, registerGradient, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import { avgPool3DGradient, avgPoolGradient } from './avgpool-gradient';
import { conv2DGradient } from './conv2d-gradient';
import { conv2DBackpropFilterWasm, conv2DBackpropInputWasm } from './conv2d-wasm';
import { conv3DBackpropFilterWasm, conv3DBackpropInputWasm, conv3DWasm } from './conv3d-wasm';
import { identityWasm } from './identity-wasm';
import { maxPool3DGradWasm, maxPool3DWasm, maxPoolGradWasm } from './pool-wasm';
import { sumWrapper } from './reduce-wasm';
import { samePaddingWrappers } from './same-padding-wasm';

/** Kernels we provide for the wasm backend, replacing the stock one when there is one. */
export const WASM_KERNELS: readonly KernelConfig[] = [
  identityWasm,
  conv2DBackpropFilterWasm,
  conv2DBackpropInputWasm,
  conv3DWasm,
  conv3DBackpropFilterWasm,
  conv3DBackpropInputWasm,
  maxPoolGradWasm,
  maxPool3DWasm,
  maxPool3DGradWasm,
];

let registered = false;

export function registerProjectKernels(): void {
  if (registered) return;
  registered = true;
  const sum = sumWrapper();
  for (const config of [...samePaddingWrappers(), ...(sum ? [sum] : []), ...WASM_KERNELS]) {
    if (getKernel(config.kernelName, config.backendName)) unregisterKernel(config.kernelName, config.backendName);
    registerKernel(config);
  }
  registerGradient(conv2DGradient);
  registerGradient(avgPoolGradient);
  registerGradient(avgPool3DGradient);
}
