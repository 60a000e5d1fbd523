/**
 * Registers the project-owned kernels and gradients in tfjs's registries (never by patching node_modules).
 * Idempotent; safe to call before or after a backend is set.
 */
// The wasm package registers its stock kernels on import; importing it first guarantees ours replace them.
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core ships its gradients separately (the union package registers them); ours override some, so theirs first.
import '@tensorflow/tfjs';
import { getKernel, KernelConfig, registerGradient, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import { loadNativeKernels } from '../native';
import { ADAM_UPDATE, nativeAdamKernel } from './adam-native';
import { avgPool3DGradient, avgPoolGradient } from './avgpool-gradient';
import { BCE_LOGITS_KERNELS, bceLogitsGradient, nativeBceKernels } from './bce-native';
import { BIAS_ADD, BIAS_RELU, BIAS_RELU_GRAD, biasAddGradient, biasReluGradient, nativeBiasReluKernels } from './bias-relu-native';
import { BATCH_NORM, BATCH_NORM_GRAD, batchNormGradient, nativeBatchNormKernels, nativeBatchNormSelfCheck } from './batch-norm-native';
import { GROUP_NORM, GROUP_NORM_GRAD, groupNormGradient, nativeGroupNormKernels, nativeGroupNormSelfCheck } from './group-norm-native';
import { conv2DGradient } from './conv2d-gradient';
import { CONV2D_BIAS_RELU, conv2dBiasReluGradient, nativeConv2DBiasReluKernel } from './conv-bias-relu-native';
import { conv3DBackpropInputGradient } from './conv3d-transpose-gradient';
import { nativeConcatKernels } from './concat-native';
import { nativeConvKernels, nativeConvSelfCheck } from './conv-native';
import { DP_CONV_PER_SAMPLE, DP_WEIGHTED_ROW_SUM, nativeDpKernels } from './dp-native';
import { nativePoolKernels, nativePoolSelfCheck } from './pool-native';
import { nativePerSampleSumKernel, nativeSumKernel, PER_SAMPLE_SUM } from './reduce-native';
import { conv2DBackpropFilterWasm, conv2DBackpropInputWasm } from './conv2d-wasm';
import { conv3DBackpropFilterWasm, conv3DBackpropInputWasm, conv3DWasm } from './conv3d-wasm';
import { identityWasm } from './identity-wasm';
import { maxPool3DGradWasm, maxPool3DWasm, maxPoolGradWasm } from './pool-wasm';
import { sumWrapper } from './reduce-wasm';
import { samePaddingWrappers } from './same-padding-wasm';
import { spatialBroadcastGradient, spatialBroadcastWasm } from './spatial-broadcast-wasm';

/** Kernels we provide for the wasm backend, replacing the stock one when there is one. */
const WASM_KERNELS: readonly KernelConfig[] = [
  identityWasm,
  spatialBroadcastWasm,
  conv2DBackpropFilterWasm,
  conv2DBackpropInputWasm,
  conv3DWasm,
  conv3DBackpropFilterWasm,
  conv3DBackpropInputWasm,
  maxPoolGradWasm,
  maxPool3DWasm,
  maxPool3DGradWasm,
];

/** The kernels that have a native (AVX2+FMA) version as well as a wasm one. */
const NATIVE_KERNEL_NAMES = [
  'Conv2D',
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'Conv3D',
  'Conv3DBackpropFilterV2',
  'Conv3DBackpropInputV2',
  'MaxPool',
  'MaxPoolGrad',
  'MaxPool3D',
  'MaxPool3DGrad',
  'Sum',
  'Concat',
  'SplitV',
] as const;

export type KernelImplementation = 'native' | 'wasm';

let registered = false;
/** The wasm versions of NATIVE_KERNEL_NAMES, kept to switch back from native ones. */
let wasmKernels: KernelConfig[] = [];
let inUse: KernelImplementation = 'wasm';
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

/** Registers everything; convolutions, max pools and bias-gradient sums run natively when the addon loads (see
 *  ../native), else on wasm. */
export function registerProjectKernels(): void {
  if (registered) return;
  registered = true;
  const sum = sumWrapper();
  for (const config of [...samePaddingWrappers(), ...(sum ? [sum] : []), ...WASM_KERNELS]) replaceKernel(config);
  wasmKernels = NATIVE_KERNEL_NAMES.map((name) => {
    const config = getKernel(name, 'wasm');
    if (!config) throw new Error(`wasm backend has no ${name} kernel`);
    return config;
  });
  registerGradient(conv2DGradient);
  registerGradient(conv3DBackpropInputGradient);
  registerGradient(avgPoolGradient);
  registerGradient(avgPool3DGradient);
  registerGradient(biasReluGradient);
  registerGradient(biasAddGradient);
  registerGradient(conv2dBiasReluGradient);
  registerGradient(bceLogitsGradient);
  registerGradient(spatialBroadcastGradient);
  registerGradient(batchNormGradient);
  registerGradient(groupNormGradient);
  const native = loadNativeKernels();
  if (native.ok) {
    nativeSelfCheckFailure = nativeConvSelfCheck(native.kernels) ?? nativePoolSelfCheck(native.kernels) ??
      nativeBatchNormSelfCheck(native.kernels) ?? nativeGroupNormSelfCheck(native.kernels);
    if (!nativeSelfCheckFailure) useKernels('native');
  }
}

/** Switches the wasm backend's NATIVE_KERNEL_NAMES between native and pure wasm kernels (tests, benchmarks). */
export function useKernels(implementation: KernelImplementation): void {
  registerProjectKernels();
  if (implementation === 'native') {
    const native = loadNativeKernels();
    if (!native.ok) throw new Error(`cannot use native kernels: ${native.detail}`);
    const wasmSum = wasmKernels.find((k) => k.kernelName === 'Sum') as KernelConfig;
    const wasmKernel = (name: string) => wasmKernels.find((k) => k.kernelName === name) as KernelConfig;
    [
      ...nativeConvKernels(native.kernels),
      ...nativePoolKernels(native.kernels),
      nativeSumKernel(native.kernels, wasmSum),
      ...nativeBiasReluKernels(native.kernels),
      ...nativeBatchNormKernels(native.kernels),
      ...nativeGroupNormKernels(native.kernels),
      ...nativeConcatKernels(native.kernels, { concat: wasmKernel('Concat'), splitV: wasmKernel('SplitV') }),
      ...nativeDpKernels(native.kernels),
      nativePerSampleSumKernel(native.kernels),
      nativeAdamKernel(native.kernels),
      nativeConv2DBiasReluKernel(native.kernels),
      ...nativeBceKernels(native.kernels),
    ].forEach(replaceKernel);
  } else {
    wasmKernels.forEach(replaceKernel);
    // Without them the biasRelu and biasAdd ops (../fused.ts) compose add + relu and add, batch norm (../batch-norm.ts) composes
    // standard ops, per-sample filter gradients use slices, the Adam step (../optimizers.ts) and BCE with logits (../losses.ts) compose standard ops.
    for (const name of [BIAS_ADD, BIAS_RELU, BIAS_RELU_GRAD, CONV2D_BIAS_RELU, DP_CONV_PER_SAMPLE, DP_WEIGHTED_ROW_SUM, PER_SAMPLE_SUM, ADAM_UPDATE, ...BCE_LOGITS_KERNELS]) if (getKernel(name, 'wasm')) unregisterKernel(name, 'wasm');
    for (const name of [BATCH_NORM, BATCH_NORM_GRAD, GROUP_NORM, GROUP_NORM_GRAD]) if (getKernel(name, 'wasm')) unregisterKernel(name, 'wasm');
  }
  inUse = implementation;
}

export function kernelsInUse(): KernelImplementation {
  return inUse;
}

/** One phrase for the backend log line: which kernels run, and why. */
export function kernelsDetail(): string {
  const native = loadNativeKernels();
  if (inUse === 'native' && native.ok) {
    const threads = native.kernels.threads();
    return `${native.detail}, ${threads} thread${threads > 1 ? 's' : ''}, self-checked against the float64 reference`;
  }
  if (nativeSelfCheckFailure) return `wasm kernels; the native ones failed their self-check (${nativeSelfCheckFailure})`;
  return `wasm kernels; ${native.detail}`;
}
