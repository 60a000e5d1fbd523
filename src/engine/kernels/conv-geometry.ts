/**
 * Geometry of a 2D or 3D convolution in one shape (2D is 3D with depth 1), channels-last (NHWC / NDHWC),
 * filters HWIO / DHWIO. Derived from tfjs's own conv info so padding (`same`/`valid`/explicit) and output sizes
 * agree exactly with the forward kernels.
 */
import { backend_util } from '@tensorflow/tfjs-core';

export interface ConvGeometry {
  batch: number;
  inDepth: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outDepth: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterDepth: number;
  filterHeight: number;
  filterWidth: number;
  strideDepth: number;
  strideHeight: number;
  strideWidth: number;
  dilationDepth: number;
  dilationHeight: number;
  dilationWidth: number;
  padFront: number;
  padTop: number;
  padLeft: number;
}

export function geometryFrom2D(info: backend_util.Conv2DInfo, kernelName: string): ConvGeometry {
  if (info.dataFormat !== 'channelsLast') {
    throw new Error(`${kernelName} on wasm supports channels-last (NHWC) only, got ${info.dataFormat}`);
  }
  return {
    batch: info.batchSize,
    inDepth: 1,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outDepth: 1,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterDepth: 1,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideDepth: 1,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    dilationDepth: 1,
    dilationHeight: info.dilationHeight,
    dilationWidth: info.dilationWidth,
    padFront: 0,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

export function geometryFrom3D(info: backend_util.Conv3DInfo, kernelName: string): ConvGeometry {
  if (info.dataFormat !== 'channelsLast') {
    throw new Error(`${kernelName} on wasm supports channels-last (NDHWC) only, got ${info.dataFormat}`);
  }
  return {
    batch: info.batchSize,
    inDepth: info.inDepth,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outDepth: info.outDepth,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterDepth: info.filterDepth,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideDepth: info.strideDepth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    dilationDepth: info.dilationDepth,
    dilationHeight: info.dilationHeight,
    dilationWidth: info.dilationWidth,
    padFront: info.padInfo.front,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/** Number of output positions (rows of the im2col matrix). */
export function outputPositions(g: ConvGeometry): number {
  return g.batch * g.outDepth * g.outHeight * g.outWidth;
}

/** Length of one im2col patch: filter taps x input channels. */
export function patchLength(g: ConvGeometry): number {
  return g.filterDepth * g.filterHeight * g.filterWidth * g.inChannels;
}
