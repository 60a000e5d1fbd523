/**
 * The stock wasm Conv2D family hands `same` padding to XNNPACK's TensorFlow-SAME mode, which gives wrong outputs
 * for some stride / filter combinations (e.g. stride 3 with an even filter height: off by ~1.0 against the CPU
 * backend). These wrappers translate `same` into the explicit pads tfjs itself computes, then call the stock
 * XNNPACK kernel, so results match tfjs's definition everywhere.
 */
import { backend_util, getKernel, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

const SAME_PADDED_KERNELS = ['Conv2D', 'FusedConv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2D'] as const;

function explicitSamePads(kernelName: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap): NamedAttrMap {
  if (attrs.pad !== 'same') return attrs;
  const x = inputs.x;
  const filter = inputs.filter;
  const depthwise = kernelName.includes('Depthwise');
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides as number | [number, number],
    (attrs.dilations as number | [number, number] | undefined) ?? 1,
    'same',
    undefined,
    depthwise,
    backend_util.convertConv2DDataFormat((attrs.dataFormat as 'NHWC' | 'NCHW' | undefined) ?? 'NHWC'),
  );
  const { top, bottom, left, right } = info.padInfo;
  return {
    ...attrs,
    pad: [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ],
  };
}

/** Wrapped configs for the stock kernels; call after the wasm package registered its kernels. */
export function samePaddingWrappers(): KernelConfig[] {
  const out: KernelConfig[] = [];
  for (const name of SAME_PADDED_KERNELS) {
    const stock = getKernel(name, 'wasm');
    if (!stock) continue;
    const stockFunc = stock.kernelFunc;
    const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) =>
      stockFunc({ inputs, backend, attrs: explicitSamePads(name, inputs as Record<string, TensorInfo>, attrs ?? {}) });
    out.push({ ...stock, kernelFunc });
  }
  return out;
}
