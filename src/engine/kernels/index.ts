/**
 * Registers the project-owned kernels and gradients in tfjs's registries (never by patching node_modules).
 * Idempotent; safe to call before or after a backend is set.
 */
// The wasm package registers its stock kernels on import; importing it first guarantees ours replace them.
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core ships its gradients separately (the union package registers them); ours override some, so theirs first.
import '@tensorflow/tfjs';
import { getKernel, KernelConfig, registerGradient, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import { loadNativeConv } from '../native';
import { avgPool3DGradient, avgPoolGradient } from './avgpool-gradient';
import { conv2DGradient } from './conv2d-gradient';
import { nativeConvKernels, nativeConvSelfCheck } from './conv-native';
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

/** The convolution kernels that have a native (AVX2+FMA) version as well as a wasm one. */
const CONV_KERNEL_NAMES = [
  'Conv2D',
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'Conv3D',
  'Conv3DBackpropFilterV2',
  'Conv3DBackpropInputV2',
] as const;

export type ConvImplementation = 'native' | 'wasm';

let registered = false;
/** The wasm versions of CONV_KERNEL_NAMES, kept to switch back from native ones. */
let wasmConvKernels: KernelConfig[] = [];
let convInUse: ConvImplementation = 'wasm';
/** Why the native kernels were refused at start-up, if they were (their results disagreed with the reference). */
let nativeSelfCheckFailure: string | undefined;

/**
 * Registers `config` in place of the current kernel of that name. A stock kernel's setupFunc (the wasm backend
 * binds its C functions there, when the backend initialises) is carried over to its replacement: the wasm kernels
 * still call the stock code underneath, and a replaced kernel's setup would otherwise never run.
 */
function replaceKernel(config: KernelConfig): void {
  const current = getKernel(config.kernelName, config.backendName);
  if (current) unregisterKernel(config.kernelName, config.backendName);
  const setupFunc = config.setupFunc ?? current?.setupFunc;
  registerKernel(setupFunc ? { ...config, setupFunc } : config);
}

/** Registers everything; the convolutions run natively when the addon loads (see ../native), else on wasm. */
export function registerProjectKernels(): void {
  if (registered) return;
  registered = true;
  const sum = sumWrapper();
  for (const config of [...samePaddingWrappers(), ...(sum ? [sum] : []), ...WASM_KERNELS]) replaceKernel(config);
  wasmConvKernels = CONV_KERNEL_NAMES.map((name) => {
    const config = getKernel(name, 'wasm');
    if (!config) throw new Error(`wasm backend has no ${name} kernel`);
    return config;
  });
  registerGradient(conv2DGradient);
  registerGradient(avgPoolGradient);
  registerGradient(avgPool3DGradient);
  const native = loadNativeConv();
  if (native.ok) {
    nativeSelfCheckFailure = nativeConvSelfCheck(native.kernels);
    if (!nativeSelfCheckFailure) useConvKernels('native');
  }
}

/** Switches the wasm backend's convolutions between the native and the pure wasm kernels (tests, benchmarks). */
export function useConvKernels(implementation: ConvImplementation): void {
  registerProjectKernels();
  if (implementation === 'native') {
    const native = loadNativeConv();
    if (!native.ok) throw new Error(`cannot use native convolutions: ${native.detail}`);
    nativeConvKernels(native.kernels).forEach(replaceKernel);
  } else {
    wasmConvKernels.forEach(replaceKernel);
  }
  convInUse = implementation;
}

export function convKernelsInUse(): ConvImplementation {
  return convInUse;
}

/** One phrase for the backend log line: which convolutions run, and why. */
export function convKernelsDetail(): string {
  const native = loadNativeConv();
  if (convInUse === 'native') return `${native.detail}, self-checked against the float64 reference`;
  if (nativeSelfCheckFailure) return `wasm conv kernels; the native ones failed their self-check (${nativeSelfCheckFailure})`;
  return `wasm conv kernels; ${native.detail}`;
}
