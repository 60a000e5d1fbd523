/**
 * Shape inference for the image-to-image layers (transposed convolution, upsampling, spatial broadcast of a
 * vector), kept beside graph.ts so the layer families stay in their own modules. Shapes are per sample, channels
 * first (PyTorch's view), as everywhere in the resolved graph.
 */
import type { PathSegment } from './errors';
// Type-only: graph.ts imports this module's values, this module only graph.ts's types.
import type { ResolvedBase, Shape } from './graph';
import type { ConvTranspose2dLayer, SpatialBroadcastLayer, SpatialParam } from './spec';


export interface ResolvedConvTranspose extends ResolvedBase {
  type: 'conv_transpose';
  dims: 2 | 3;
  inChannels: number;
  outChannels: number;
  kernel: number[];
  stride: number[];
  padding: number[];
  outputPadding: number[];
  bias: boolean;
}
interface ResolvedSpatialBroadcast extends ResolvedBase {
  type: 'spatial_broadcast';
  size: number[];
}
export type ResolvedImageLayer = ResolvedConvTranspose | ResolvedSpatialBroadcast;
export type ImageLayerSpec = ConvTranspose2dLayer | SpatialBroadcastLayer;
const IMAGE_LAYER_TYPES: readonly ImageLayerSpec['type'][] = ['conv_transpose2d', 'conv_transpose3d', 'spatial_broadcast'];

export function isImageLayer(layer: { type: string }): layer is ImageLayerSpec {
  return (IMAGE_LAYER_TYPES as readonly string[]).includes(layer.type);
}

/** graph.ts's error and parameter helpers, so the messages and paths are those of every other layer. */
export interface ResolveHelpers {
  fail(segments: PathSegment[], message: string): never;
  spatial(value: SpatialParam, dims: number, segments: PathSegment[], min: number): number[];
  describe(shape: Shape): string;
}

export function resolveImageLayer(
  layer: ImageLayerSpec, common: Omit<ResolvedBase, 'outShape'>, at: PathSegment[], h: ResolveHelpers,
): ResolvedImageLayer {
  const { inShape } = common;
  switch (layer.type) {
    case 'conv_transpose2d':
    case 'conv_transpose3d': {
      const dims = layer.type === 'conv_transpose2d' ? 2 : 3;
      if (inShape.length !== dims + 1) {
        h.fail([...at, 'type'], `${layer.type} needs a [C, ${dims === 3 ? 'D, ' : ''}H, W] input, got ${h.describe(inShape)}`);
      }
      const kernel = h.spatial(layer.kernelSize, dims, [...at, 'kernelSize'], 1);
      const stride = h.spatial(layer.stride ?? 1, dims, [...at, 'stride'], 1);
      const padding = h.spatial(layer.padding ?? 0, dims, [...at, 'padding'], 0);
      const outputPadding = h.spatial(layer.outputPadding ?? 0, dims, [...at, 'outputPadding'], 0);
      outputPadding.forEach((p, i) => {
        if (p >= stride[i]) h.fail([...at, 'outputPadding'], `must be smaller than the stride (PyTorch's rule), got ${p} with stride ${stride[i]}`);
      });
      const spatialOut = inShape.slice(1).map((n, i) => (n - 1) * stride[i] - 2 * padding[i] + kernel[i] + outputPadding[i]);
      if (spatialOut.some((n) => n < 1)) h.fail([...at, 'padding'], `leaves no output (${h.describe(spatialOut)}) for input ${h.describe(inShape)}`);
      return {
        ...common, type: 'conv_transpose', dims, inChannels: inShape[0], outChannels: layer.outChannels, kernel, stride,
        padding, outputPadding, bias: layer.bias ?? true, outShape: [layer.outChannels, ...spatialOut],
      };
    }
    case 'spatial_broadcast':
      if (inShape.length !== 1) {
        h.fail([...at, 'type'], `spatial_broadcast needs a flat [F] input, got ${h.describe(inShape)}`);
      }
      layer.size.forEach((n, i) => {
        if (!Number.isInteger(n) || n < 1) h.fail([...at, 'size', i], `must be a positive integer, got ${n}`);
      });
      return { ...common, type: 'spatial_broadcast', size: [...layer.size], outShape: [inShape[0], ...layer.size] };
  }
}
