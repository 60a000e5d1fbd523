/**
 * Shape inference: resolves every layer of a (schema-valid) plan to explicit sizes, in PyTorch's per-sample,
 * channels-first view, and reports what cannot work (shape mismatch, a window larger than its input, a dense layer
 * on an unflattened input, a head output that does not fit the loss) with the path of the field at fault.
 * The tfjs builder and the PyTorch generator both consume the resolved graph, so they cannot disagree on sizes.
 */
import { formatPath, PathSegment, PlanIssue } from './errors';
import { BranchName, LayerSpec, PlanSpec, SpatialParam } from './spec';
import { imageInputChannels } from './preprocess';

export type Shape = number[];

interface ResolvedBase {
  /** Index in its branch = the PyTorch nn.Sequential child index. */
  index: number;
  /** `model.image[2]` */
  path: string;
  /** Per-sample input shape, channels first. */
  inShape: Shape;
  outShape: Shape;
}

export interface ResolvedConv extends ResolvedBase {
  type: 'conv';
  dims: 2 | 3;
  inChannels: number;
  outChannels: number;
  kernel: number[];
  stride: number[];
  padBefore: number[];
  padAfter: number[];
  /** padding 'same' (PyTorch then pads the odd extra voxel after). */
  paddingSame: boolean;
  bias: boolean;
}
export interface ResolvedPool extends ResolvedBase {
  type: 'max_pool' | 'avg_pool';
  dims: 2 | 3;
  kernel: number[];
  stride: number[];
}
export interface ResolvedGlobalAvgPool extends ResolvedBase {
  type: 'global_avg_pool';
  dims: number;
}
export interface ResolvedBatchNorm extends ResolvedBase {
  type: 'batch_norm';
  features: number;
  /** Spatial rank of the input: 0 → BatchNorm1d on [F], 1..3 → BatchNorm{1,2,3}d. */
  spatialDims: number;
  eps: number;
  momentum: number;
}
export interface ResolvedGroupNorm extends ResolvedBase {
  type: 'group_norm';
  features: number;
  groups: number;
  eps: number;
}
export interface ResolvedDropout extends ResolvedBase {
  type: 'dropout';
  rate: number;
}
export interface ResolvedFlatten extends ResolvedBase {
  type: 'flatten';
}
export interface ResolvedDense extends ResolvedBase {
  type: 'dense';
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
}
export interface ResolvedActivation extends ResolvedBase {
  type: 'relu' | 'sigmoid' | 'softmax';
}
export interface ResolvedLeakyRelu extends ResolvedBase {
  type: 'leaky_relu';
  negativeSlope: number;
}

export type ResolvedLayer =
  | ResolvedConv
  | ResolvedPool
  | ResolvedGlobalAvgPool
  | ResolvedBatchNorm
  | ResolvedGroupNorm
  | ResolvedDropout
  | ResolvedFlatten
  | ResolvedDense
  | ResolvedActivation
  | ResolvedLeakyRelu;

export interface ResolvedBranch {
  name: BranchName;
  inShape: Shape;
  outShape: Shape;
  layers: ResolvedLayer[];
}

export interface ResolvedGraph {
  /** Branches in PyTorch module registration order: image, tabular, head. */
  branches: ResolvedBranch[];
  image?: ResolvedBranch;
  tabular?: ResolvedBranch;
  head: ResolvedBranch;
  /** True when the head input is concat(image output, tabular output). */
  concat: boolean;
  /** Network input shapes (per sample, channels first). */
  imageInputShape?: Shape;
  tabularInputShape?: Shape;
  outputShape: Shape;
}

export interface ResolveResult {
  graph?: ResolvedGraph;
  issues: PlanIssue[];
}

export const BATCH_NORM_DEFAULTS = { eps: 1e-5, momentum: 0.1 };
export const LEAKY_RELU_DEFAULT_SLOPE = 0.01;

class InferenceError extends Error {
  constructor(readonly issue: PlanIssue) {
    super(issue.message);
  }
}

function fail(segments: PathSegment[], message: string): never {
  throw new InferenceError({ path: formatPath(segments), message });
}

function spatial(value: SpatialParam, dims: number, segments: PathSegment[], min: number): number[] {
  const list = typeof value === 'number' ? new Array<number>(dims).fill(value) : value;
  if (list.length !== dims) fail(segments, `needs ${dims} values for a ${dims}D layer, got ${list.length}`);
  list.forEach((v, i) => {
    if (!Number.isInteger(v) || v < min) fail(segments, `value ${v} at position ${i} must be an integer >= ${min}`);
  });
  return list;
}

function describe(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

function resolveLayer(layer: LayerSpec, index: number, base: PathSegment[], inShape: Shape): ResolvedLayer {
  const at = [...base, index];
  const path = formatPath(at);
  const common = { index, path, inShape };
  switch (layer.type) {
    case 'conv2d':
    case 'conv3d': {
      const dims = layer.type === 'conv2d' ? 2 : 3;
      if (inShape.length !== dims + 1) {
        fail([...at, 'type'], `${layer.type} needs a [C, ${dims === 2 ? 'H, W' : 'D, H, W'}] input, got ${describe(inShape)}`);
      }
      const kernel = spatial(layer.kernelSize, dims, [...at, 'kernelSize'], 1);
      const stride = spatial(layer.stride ?? 1, dims, [...at, 'stride'], 1);
      let padBefore: number[];
      let padAfter: number[];
      const padding = layer.padding ?? 0;
      const paddingSame = padding === 'same';
      if (padding === 'same') {
        if (stride.some((s) => s !== 1)) fail([...at, 'padding'], "'same' padding needs stride 1 (as in PyTorch)");
        padBefore = kernel.map((k) => Math.floor((k - 1) / 2));
        padAfter = kernel.map((k, i) => k - 1 - padBefore[i]);
      } else {
        const pad = padding === 'valid' ? 0 : padding;
        padBefore = spatial(pad, dims, [...at, 'padding'], 0);
        padAfter = padBefore.slice();
      }
      const spatialIn = inShape.slice(1);
      const spatialOut = spatialIn.map((n, i) => {
        const padded = n + padBefore[i] + padAfter[i];
        if (kernel[i] > padded) {
          fail([...at, 'kernelSize'], `kernel ${describe(kernel)} is larger than the padded input ${describe(spatialIn)}`);
        }
        return Math.floor((padded - kernel[i]) / stride[i]) + 1;
      });
      return {
        ...common,
        type: 'conv',
        dims,
        inChannels: inShape[0],
        outChannels: layer.outChannels,
        kernel,
        stride,
        padBefore,
        padAfter,
        paddingSame,
        bias: layer.bias ?? true,
        outShape: [layer.outChannels, ...spatialOut],
      };
    }
    case 'max_pool2d':
    case 'max_pool3d':
    case 'avg_pool2d':
    case 'avg_pool3d': {
      const dims = layer.type.endsWith('2d') ? 2 : 3;
      if (inShape.length !== dims + 1) {
        fail([...at, 'type'], `${layer.type} needs a [C, ${dims === 2 ? 'H, W' : 'D, H, W'}] input, got ${describe(inShape)}`);
      }
      const kernel = spatial(layer.kernelSize, dims, [...at, 'kernelSize'], 1);
      const stride = spatial(layer.stride ?? kernel, dims, [...at, 'stride'], 1);
      const spatialIn = inShape.slice(1);
      const spatialOut = spatialIn.map((n, i) => {
        if (kernel[i] > n) fail([...at, 'kernelSize'], `window ${describe(kernel)} is larger than the input ${describe(spatialIn)}`);
        return Math.floor((n - kernel[i]) / stride[i]) + 1;
      });
      return {
        ...common,
        type: layer.type.startsWith('max') ? 'max_pool' : 'avg_pool',
        dims,
        kernel,
        stride,
        outShape: [inShape[0], ...spatialOut],
      };
    }
    case 'global_avg_pool':
      if (inShape.length < 3 || inShape.length > 4) {
        fail([...at, 'type'], `global_avg_pool needs a [C, H, W] or [C, D, H, W] input, got ${describe(inShape)}`);
      }
      return { ...common, type: 'global_avg_pool', dims: inShape.length - 1, outShape: [inShape[0]] };
    case 'batch_norm':
      if (inShape.length < 1 || inShape.length > 4) fail([...at, 'type'], `batch_norm cannot take ${describe(inShape)}`);
      return {
        ...common,
        type: 'batch_norm',
        features: inShape[0],
        spatialDims: inShape.length - 1,
        eps: layer.eps ?? BATCH_NORM_DEFAULTS.eps,
        momentum: layer.momentum ?? BATCH_NORM_DEFAULTS.momentum,
        outShape: inShape,
      };
    case 'group_norm':
      if (inShape.length < 1 || inShape.length > 4) fail([...at, 'type'], `group_norm cannot take ${describe(inShape)}`);
      if (inShape[0] % layer.groups !== 0) {
        fail([...at, 'groups'], `group_norm: ${layer.groups} groups do not divide ${inShape[0]} channels`);
      }
      // PyTorch's GroupNorm default eps (not batch norm's: Opacus does not carry it over either).
      return { ...common, type: 'group_norm', features: inShape[0], groups: layer.groups, eps: layer.eps ?? 1e-5, outShape: inShape };
    case 'dropout':
      return { ...common, type: 'dropout', rate: layer.rate, outShape: inShape };
    case 'flatten':
      return { ...common, type: 'flatten', outShape: [inShape.reduce((a, b) => a * b, 1)] };
    case 'dense':
      if (inShape.length !== 1) {
        fail([...at, 'type'], `dense needs a flat [F] input, got ${describe(inShape)} (add a flatten or global_avg_pool layer before it)`);
      }
      return {
        ...common,
        type: 'dense',
        inFeatures: inShape[0],
        outFeatures: layer.outFeatures,
        bias: layer.bias ?? true,
        outShape: [layer.outFeatures],
      };
    case 'relu':
    case 'sigmoid':
    case 'softmax':
      return { ...common, type: layer.type, outShape: inShape };
    case 'leaky_relu':
      return { ...common, type: 'leaky_relu', negativeSlope: layer.negativeSlope ?? LEAKY_RELU_DEFAULT_SLOPE, outShape: inShape };
    default: {
      const unknown = (layer as { type?: unknown }).type;
      return fail([...at, 'type'], `unknown layer type ${JSON.stringify(unknown)}`);
    }
  }
}

function resolveBranch(name: BranchName, layers: LayerSpec[], inShape: Shape): ResolvedBranch {
  const resolved: ResolvedLayer[] = [];
  let shape = inShape;
  layers.forEach((layer, i) => {
    const r = resolveLayer(layer, i, ['model', name], shape);
    resolved.push(r);
    shape = r.outShape;
  });
  return { name, inShape, outShape: shape, layers: resolved };
}

function checkLossAgainstOutput(spec: PlanSpec, output: Shape, head: ResolvedBranch): void {
  const headPath: PathSegment[] = ['model', 'head'];
  if (output.length !== 1) {
    fail(headPath, `the head must end with a flat output [K], got ${describe(output)}`);
  }
  const k = output[0];
  const last = head.layers[head.layers.length - 1];
  switch (spec.loss.type) {
    case 'bce':
      if (k !== 1) fail(['loss', 'type'], `bce needs one output, the head gives ${describe(output)}`);
      if (!spec.loss.fromLogits && last?.type !== 'sigmoid') {
        fail(['loss', 'fromLogits'], 'bce on probabilities needs the head to end with a sigmoid (or set fromLogits: true)');
      }
      break;
    case 'cross_entropy':
      if (k < 2) fail(['loss', 'type'], `cross_entropy needs at least 2 class logits, the head gives ${describe(output)}`);
      break;
    case 'mse':
      if (k !== 1) fail(['loss', 'type'], `mse needs one output, the head gives ${describe(output)}`);
      break;
  }
}

function resolveAll(spec: PlanSpec): ResolvedGraph {
  const { inputs, model } = spec;
  if (inputs.image && !model.image) fail(['model'], 'inputs.image is declared but model.image (its branch) is missing');
  if (!inputs.image && model.image) fail(['model', 'image'], 'there is no inputs.image for this branch');
  if (inputs.tabular && !model.tabular) fail(['model'], 'inputs.tabular is declared but model.tabular (its branch) is missing');
  if (!inputs.tabular && model.tabular) fail(['model', 'tabular'], 'there is no inputs.tabular for this branch');

  const branches: ResolvedBranch[] = [];
  let imageInputShape: Shape | undefined;
  let tabularInputShape: Shape | undefined;
  let image: ResolvedBranch | undefined;
  let tabular: ResolvedBranch | undefined;
  if (inputs.image && model.image) {
    if (inputs.image.size.length !== inputs.image.dims) {
      fail(['inputs', 'image', 'size'], `needs ${inputs.image.dims} values (dims is ${inputs.image.dims})`);
    }
    imageInputShape = [imageInputChannels(spec), ...inputs.image.size];
    image = resolveBranch('image', model.image, imageInputShape);
    branches.push(image);
  }
  if (inputs.tabular && model.tabular) {
    tabularInputShape = [inputs.tabular.columns.length];
    tabular = resolveBranch('tabular', model.tabular, tabularInputShape);
    branches.push(tabular);
  }
  const concat = image !== undefined && tabular !== undefined;
  let headIn: Shape;
  if (image && tabular) {
    if (image.outShape.length !== 1) {
      fail(['model', 'image'], `must end flat ([F]) to be concatenated with the tabular branch, ends with ${describe(image.outShape)}`);
    }
    if (tabular.outShape.length !== 1) {
      fail(['model', 'tabular'], `must end flat ([F]) to be concatenated with the image branch, ends with ${describe(tabular.outShape)}`);
    }
    headIn = [image.outShape[0] + tabular.outShape[0]];
  } else {
    headIn = (image ?? tabular)!.outShape;
  }
  const head = resolveBranch('head', model.head, headIn);
  branches.push(head);
  checkLossAgainstOutput(spec, head.outShape, head);
  return { branches, image, tabular, head, concat, imageInputShape, tabularInputShape, outputShape: head.outShape };
}

/** Resolves a schema-valid plan; returns the first semantic problem found (later ones depend on it). */
export function resolveGraph(spec: PlanSpec): ResolveResult {
  try {
    return { graph: resolveAll(spec), issues: [] };
  } catch (err) {
    if (err instanceof InferenceError) return { issues: [err.issue] };
    throw err;
  }
}
