/**
 * Shape inference: resolves every layer of a (schema-valid) plan to explicit sizes, in PyTorch's per-sample,
 * channels-first view, and reports what cannot work (shape mismatch, a window larger than its input, a dense layer
 * on an unflattened input, a head output that does not fit the loss) with the path of the field at fault.
 * The tfjs builder and the PyTorch generator both consume the resolved graph, so they cannot disagree on sizes.
 */
import { formatPath, PathSegment, PlanIssue } from './errors';
import { BranchName, GraphModelSpec, IMAGE_LOSS_TYPES, LossSpec, GraphNodeSpec, isGraphModel, LayerSpec, ModelGraphSpec, PlanSpec, SpatialParam } from './spec';
import { imageInputChannels, tabularFeatureIndex } from './preprocess';
import { isImageLayer, resolveImageLayer, ResolvedImageLayer } from './image-layers';
import { FedbiomedTsError } from '../errors';

export type Shape = number[];

export interface ResolvedBase {
  /** Index in its branch = the PyTorch nn.Sequential child index (graph models: index in `nodes`). */
  index: number;
  /** The PyTorch module path its parameters are named under: `image.2` (branch models) or `conv1` (graph models). */
  key: string;
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
interface ResolvedGlobalPool extends ResolvedBase {
  type: 'global_avg_pool' | 'global_max_pool';
  dims: number;
}
/** instance_norm: statistics over the spatial axes; layer_norm: over the whole per-sample tensor. */
interface ResolvedNorm extends ResolvedBase {
  type: 'instance_norm' | 'layer_norm';
  /** Channels (instance_norm's affine vectors). */
  features: number;
  spatialDims: number;
  eps: number;
  affine: boolean;
}
export interface ResolvedBatchNorm extends ResolvedBase {
  type: 'batch_norm';
  features: number;
  /** Spatial rank of the input: 0 → BatchNorm1d on [F], 1..3 → BatchNorm{1,2,3}d. */
  spatialDims: number;
  eps: number;
  momentum: number;
}
export interface ResolvedUpsample extends ResolvedBase {
  type: 'upsample';
  dims: 2 | 3;
  scale: number[];
  mode: 'nearest' | 'bilinear';
}
export interface ResolvedGroupNorm extends ResolvedBase {
  type: 'group_norm';
  features: number;
  groups: number;
  eps: number;
}
interface ResolvedDropout extends ResolvedBase {
  type: 'dropout' | 'dropout2d' | 'dropout3d';
  rate: number;
}
interface ResolvedFlatten extends ResolvedBase {
  type: 'flatten';
}
interface ResolvedDense extends ResolvedBase {
  type: 'dense';
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
}
interface ResolvedActivation extends ResolvedBase {
  type: 'relu' | 'sigmoid' | 'softmax';
}
interface ResolvedLeakyRelu extends ResolvedBase {
  type: 'leaky_relu';
  negativeSlope: number;
}

/** A merge node of a graph model: `inShapes` are its inputs' shapes (channels first). */
interface ResolvedMerge extends ResolvedBase {
  type: 'add' | 'concat';
  inShapes: Shape[];
}

export type ResolvedLayer =
  | ResolvedImageLayer
  | ResolvedMerge
  | ResolvedConv
  | ResolvedPool
  | ResolvedGlobalPool
  | ResolvedNorm
  | ResolvedUpsample
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

/** The plan inputs a network reads, by name; their values are the plan's input tensors. */
export type InputName = 'image' | 'tabular';
const INPUT_NAMES: readonly InputName[] = ['image', 'tabular'];

/**
 * One step of the network as a DAG, for every kind of model: `inputs` name plan inputs or earlier nodes' `id`s.
 * Branch models become a chain per branch (ids `image.0`, …) and, with two branches, a concat node `head_input`
 * (no parameters) before the head; graph models map node for node. Listed in evaluation order, which is also the
 * PyTorch state_dict order of their parameters.
 */
interface ResolvedNode {
  id: string;
  inputs: string[];
  layer: ResolvedLayer;
}

export interface ResolvedGraph {
  /** 'branches' (version 1 models: nn.Sequential per branch) or 'graph' (version 2: a module per named node). */
  kind: 'branches' | 'graph';
  /** Every node in evaluation order. */
  nodes: ResolvedNode[];
  /** Id of the node giving the network output (the primary head's, with several heads). */
  output: string;
  /** Ids of the nodes giving the heads' outputs, primary first: `[output]` for one head (PlanSpec.heads). */
  outputs: string[];
  /** Their shapes, per sample. */
  outputShapes: Shape[];
  /** Plan inputs the network reads, with their per-sample shapes (channels first). */
  inputShapes: Partial<Record<InputName, Shape>>;
  /** Branches in PyTorch module registration order: image, tabular, head (branch models only; [] for graphs). */
  branches: ResolvedBranch[];
  image?: ResolvedBranch;
  tabular?: ResolvedBranch;
  head?: ResolvedBranch;
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

const BATCH_NORM_DEFAULTS = { eps: 1e-5, momentum: 0.1 };
/** PyTorch defaults: InstanceNorm affine=False, LayerNorm elementwise_affine=True, eps 1e-5 for both. */
const NORM_DEFAULTS = { instance_norm: { eps: 1e-5, affine: false }, layer_norm: { eps: 1e-5, affine: true } };
const LEAKY_RELU_DEFAULT_SLOPE = 0.01;

class InferenceError extends FedbiomedTsError {
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

function resolveLayer(layer: LayerSpec, index: number, base: PathSegment[], inShape: Shape, key: string): ResolvedLayer {
  const at = [...base, index];
  const path = formatPath(at);
  const common = { index, key, path, inShape };
  if (isImageLayer(layer)) return resolveImageLayer(layer, common, at, { fail, spatial, describe });
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
    case 'global_max_pool':
      if (inShape.length < 3 || inShape.length > 4) {
        fail([...at, 'type'], `${layer.type} needs a [C, H, W] or [C, D, H, W] input, got ${describe(inShape)}`);
      }
      return { ...common, type: layer.type, dims: inShape.length - 1, outShape: [inShape[0]] };
    case 'instance_norm':
    case 'layer_norm': {
      const defaults = NORM_DEFAULTS[layer.type];
      if (layer.type === 'instance_norm' && (inShape.length < 2 || inShape.length > 4)) {
        fail([...at, 'type'], `instance_norm needs a [C, L], [C, H, W] or [C, D, H, W] input, got ${describe(inShape)}`);
      }
      if (inShape.length > 4) fail([...at, 'type'], `layer_norm cannot take ${describe(inShape)}`);
      return {
        ...common,
        type: layer.type,
        features: inShape[0],
        spatialDims: inShape.length - 1,
        eps: layer.eps ?? defaults.eps,
        affine: layer.affine ?? defaults.affine,
        outShape: inShape,
      };
    }
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
    case 'upsample': {
      if (inShape.length < 3 || inShape.length > 4) {
        fail([...at, 'type'], `upsample needs a [C, H, W] or [C, D, H, W] input, got ${describe(inShape)}`);
      }
      const dims = (inShape.length - 1) as 2 | 3;
      const scale = spatial(layer.scaleFactor, dims, [...at, 'scaleFactor'], 1);
      const mode = layer.mode ?? 'nearest';
      if (mode === 'bilinear' && dims !== 2) fail([...at, 'mode'], `bilinear upsampling takes a [C, H, W] input, got ${describe(inShape)}`);
      return { ...common, type: 'upsample', dims, scale, mode, outShape: [inShape[0], ...inShape.slice(1).map((n, i) => n * scale[i])] };
    }
    case 'group_norm':
      if (inShape.length < 1 || inShape.length > 4) fail([...at, 'type'], `group_norm cannot take ${describe(inShape)}`);
      if (inShape[0] % layer.groups !== 0) {
        fail([...at, 'groups'], `group_norm: ${layer.groups} groups do not divide ${inShape[0]} channels`);
      }
      // PyTorch's GroupNorm default eps (not batch norm's: Opacus does not carry it over either).
      return { ...common, type: 'group_norm', features: inShape[0], groups: layer.groups, eps: layer.eps ?? 1e-5, outShape: inShape };
    case 'dropout':
      return { ...common, type: 'dropout', rate: layer.rate, outShape: inShape };
    case 'dropout2d':
    case 'dropout3d': {
      const rank = layer.type === 'dropout2d' ? 3 : 4;
      if (inShape.length !== rank) {
        fail([...at, 'type'], `${layer.type} drops whole channels of a ${rank === 3 ? '[C, H, W]' : '[C, D, H, W]'} input, got ${describe(inShape)}`);
      }
      return { ...common, type: layer.type, rate: layer.rate, outShape: inShape };
    }
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
    const r = resolveLayer(layer, i, ['model', name], shape, `${name}.${i}`);
    resolved.push(r);
    shape = r.outShape;
  });
  return { name, inShape, outShape: shape, layers: resolved };
}

const LOSS_OPTIONS: Record<LossSpec['type'], (keyof LossSpec)[]> = {
  bce: ['posWeight'],
  cross_entropy: ['classWeights'],
  mse: [],
  focal: ['gamma', 'alpha'],
  l1: [],
  soft_dice: ['channel', 'smooth'],
  weighted: ['terms'],
};
const LOSS_KEYS = ['posWeight', 'classWeights', 'gamma', 'alpha', 'channel', 'smooth', 'terms'] as const;

/**
 * The loss of an image output (image-to-image models), the target being an image of the output's shape:
 * element-wise mse / bce, l1, soft_dice, or a weighted sum of those (each term checked at its own path).
 */
function checkImageLoss(loss: LossSpec, output: Shape, last: ResolvedLayer | undefined, path: PathSegment[]): void {
  if (!['mse', 'bce', ...IMAGE_LOSS_TYPES].includes(loss.type)) {
    fail([...path, 'type'], `${loss.type} needs a flat output [K], the model gives an image ${describe(output)} (image losses: mse, bce, l1, soft_dice, weighted)`);
  }
  const misplaced = LOSS_KEYS.find((key) => loss[key] !== undefined && !LOSS_OPTIONS[loss.type].includes(key));
  if (misplaced) fail([...path, misplaced], `is not an option of the ${loss.type} loss`);
  if ((loss.type === 'bce' || loss.type === 'soft_dice') && !loss.fromLogits && last?.type !== 'sigmoid') {
    fail([...path, 'fromLogits'], `${loss.type} on probabilities needs the output to end with a sigmoid (or set fromLogits: true)`);
  }
  if (loss.type === 'soft_dice' && loss.channel !== undefined && loss.channel >= output[0]) {
    fail([...path, 'channel'], `is not one of the ${output[0]} output channels`);
  }
  if (loss.type === 'weighted') {
    if (!loss.terms || loss.terms.length === 0) fail([...path, 'terms'], 'a weighted loss needs at least one term');
    loss.terms.forEach((term, i) => checkImageLoss(term.loss, output, last, [...path, 'terms', i, 'loss']));
  }
}

function checkLossAgainstOutput(spec: PlanSpec, output: Shape, last: ResolvedLayer | undefined, headPath: PathSegment[]): void {
  if (output.length > 1 && ['mse', 'bce', ...IMAGE_LOSS_TYPES].includes(spec.loss.type)) {
    checkImageLoss(spec.loss, output, last, ['loss']);
    return;
  }
  if (IMAGE_LOSS_TYPES.includes(spec.loss.type)) fail(['loss', 'type'], `${spec.loss.type} is an image loss, the model gives ${describe(output)}`);
  if (output.length !== 1) {
    fail(headPath, `the head must end with a flat output [K], got ${describe(output)}`);
  }
  const k = output[0];
  // (fromLogits is left unchecked as in version 1, where other losses ignored it.)
  const misplaced = LOSS_KEYS.find((key) => spec.loss[key] !== undefined && !LOSS_OPTIONS[spec.loss.type].includes(key));
  if (misplaced) fail(['loss', misplaced], `is not an option of the ${spec.loss.type} loss`);
  switch (spec.loss.type) {
    case 'bce':
      if (k !== 1) fail(['loss', 'type'], `bce needs one output, the head gives ${describe(output)}`);
      if (!spec.loss.fromLogits && last?.type !== 'sigmoid') {
        fail(['loss', 'fromLogits'], 'bce on probabilities needs the head to end with a sigmoid (or set fromLogits: true)');
      }
      if (spec.loss.posWeight !== undefined && !spec.loss.fromLogits) fail(['loss', 'posWeight'], 'posWeight needs fromLogits: true (PyTorch BCELoss has no pos_weight)');
      break;
    case 'focal':
      if (k !== 1) fail(['loss', 'type'], `focal needs one output (a logit), the head gives ${describe(output)}`);
      break;
    case 'cross_entropy':
      if (k < 2) fail(['loss', 'type'], `cross_entropy needs at least 2 class logits, the head gives ${describe(output)}`);
      if (spec.loss.classWeights && spec.loss.classWeights.length !== k) {
        fail(['loss', 'classWeights'], `needs one weight per class (${k}), got ${spec.loss.classWeights.length}`);
      }
      break;
    case 'mse':
      if (k !== 1) fail(['loss', 'type'], `mse needs one output, the head gives ${describe(output)}`);
      break;
  }
}

function resolveBranches(spec: PlanSpec, model: ModelGraphSpec): ResolvedGraph {
  const { inputs } = spec;
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
    tabularInputShape = [tabularFeatureIndex(spec).count];
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
  checkLossAgainstOutput(spec, head.outShape, head.layers[head.layers.length - 1], ['model', 'head']);

  // The same network as a DAG: a chain per branch, a concat before the head when there are two branches.
  const nodes: ResolvedNode[] = [];
  const chain = (branch: ResolvedBranch, from: string): string =>
    branch.layers.reduce((input, layer) => {
      nodes.push({ id: layer.key, inputs: [input], layer });
      return layer.key;
    }, from);
  const ends: string[] = [];
  if (image) ends.push(chain(image, 'image'));
  if (tabular) ends.push(chain(tabular, 'tabular'));
  let headFrom = ends[0];
  if (ends.length === 2) {
    headFrom = 'head_input';
    const merge: ResolvedMerge = {
      type: 'concat', index: -1, key: 'head_input', path: 'model.head', inShape: image!.outShape, inShapes: [image!.outShape, tabular!.outShape], outShape: headIn,
    };
    nodes.push({ id: headFrom, inputs: ends, layer: merge });
  }
  const output = chain(head, headFrom);
  const inputShapes: Partial<Record<InputName, Shape>> = {};
  if (imageInputShape) inputShapes.image = imageInputShape;
  if (tabularInputShape) inputShapes.tabular = tabularInputShape;
  return {
    kind: 'branches', nodes, output, inputShapes,
    branches, image, tabular, head, concat, imageInputShape, tabularInputShape, outputShape: head.outShape,
    outputs: [output], outputShapes: [head.outShape],
  };
}

/** Attribute names nn.Module already has (torch 1.13 and later): a node named so could not be registered. */
const TORCH_MODULE_ATTRIBUTES = new Set(
  ('T_destination add_module apply bfloat16 buffers children compile cpu cuda double dump_patches eval extra_repr float ' +
    'forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers ' +
    'named_children named_modules named_parameters parameters register_backward_hook register_buffer ' +
    'register_forward_hook register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook ' +
    'register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module register_parameter ' +
    'register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state share_memory ' +
    'state_dict to to_empty train training type xpu zero_grad').split(' '),
);
const PYTHON_KEYWORDS = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield'.split(' '),
);

function mergeShape(node: GraphNodeSpec, at: PathSegment[], shapes: Shape[], names: string[]): Shape {
  const list = names.map((n, i) => `${n} ${describe(shapes[i])}`).join(', ');
  if (node.type === 'add') {
    if (shapes.some((s) => s.length !== shapes[0].length || s.some((d, i) => d !== shapes[0][i]))) {
      fail([...at, 'input'], `add needs inputs of one shape, got ${list}`);
    }
    return shapes[0];
  }
  const rank = shapes[0].length;
  if (shapes.some((s) => s.length !== rank || s.some((d, i) => i > 0 && d !== shapes[0][i]))) {
    fail([...at, 'input'], `concat joins channels (the first axis): the other axes must agree, got ${list}`);
  }
  return [shapes.reduce((n, s) => n + s[0], 0), ...shapes[0].slice(1)];
}

function resolveGraphModel(spec: PlanSpec, model: GraphModelSpec): ResolvedGraph {
  const inputShapes: Partial<Record<InputName, Shape>> = {};
  if (spec.inputs.image) {
    if (spec.inputs.image.size.length !== spec.inputs.image.dims) {
      fail(['inputs', 'image', 'size'], `needs ${spec.inputs.image.dims} values (dims is ${spec.inputs.image.dims})`);
    }
    inputShapes.image = [imageInputChannels(spec), ...spec.inputs.image.size];
  }
  if (spec.inputs.tabular) inputShapes.tabular = [tabularFeatureIndex(spec).count];
  const shapes = new Map<string, Shape>(Object.entries<Shape>(inputShapes));
  const used = new Set<string>();
  const nodes: ResolvedNode[] = [];
  model.nodes.forEach((node, index) => {
    const at: PathSegment[] = ['model', 'nodes', index];
    const { name } = node;
    if (INPUT_NAMES.includes(name as InputName)) fail([...at, 'name'], `'${name}' is the name of a plan input`);
    if (PYTHON_KEYWORDS.has(name) || TORCH_MODULE_ATTRIBUTES.has(name)) {
      fail([...at, 'name'], `'${name}' cannot name a PyTorch submodule (a Python keyword or an nn.Module attribute)`);
    }
    if (shapes.has(name)) fail([...at, 'name'], `'${name}' is already the name of an earlier node`);
    let inputs: string[];
    if (node.input === undefined) {
      if (index > 0) inputs = [model.nodes[index - 1].name];
      else {
        const declared = Object.keys(inputShapes);
        if (declared.length !== 1) fail([...at, 'input'], `the first node must name its input (${declared.join(' or ')})`);
        inputs = declared;
      }
    } else {
      inputs = typeof node.input === 'string' ? [node.input] : node.input;
    }
    inputs.forEach((input, k) => {
      if (!shapes.has(input)) {
        const where = Array.isArray(node.input) ? [...at, 'input', k] : [...at, 'input'];
        const isLater = model.nodes.some((n) => n.name === input);
        fail(where, isLater ? `'${input}' comes later in nodes (list every node after its inputs)` : `'${input}' is neither a plan input nor an earlier node`);
      }
      used.add(input);
    });
    const inShapesOf = inputs.map((i) => shapes.get(i)!);
    let layer: ResolvedLayer;
    if (node.type === 'add' || node.type === 'concat') {
      if (inputs.length < 2) fail([...at, 'input'], `${node.type} needs at least two inputs`);
      const outShape = mergeShape(node, at, inShapesOf, inputs);
      layer = { type: node.type, index, key: name, path: formatPath(at), inShape: inShapesOf[0], inShapes: inShapesOf, outShape };
    } else {
      if (inputs.length !== 1) fail([...at, 'input'], `${node.type} takes one input, got ${inputs.length}`);
      const { name: _name, input: _input, ...layerSpec } = node as LayerSpec & { name: string; input?: unknown };
      layer = resolveLayer(layerSpec, index, ['model', 'nodes'], inShapesOf[0], name);
    }
    shapes.set(name, layer.outShape);
    nodes.push({ id: name, inputs, layer });
  });
  const outputNode = nodes.find((n) => n.id === model.output);
  if (!outputNode) fail(['model', 'output'], `'${model.output}' is not a node`);
  for (const input of Object.keys(inputShapes)) {
    if (!used.has(input)) fail(['model', 'nodes'], `no node reads the plan input '${input}'`);
  }
  const heads = spec.heads ?? [];
  const outputs = [model.output, ...heads.map((h) => h.output)];
  const headNodes = heads.map((h, k) => {
    const node = nodes.find((n) => n.id === h.output);
    if (!node) fail(['heads', k, 'output'], `'${h.output}' is not a node`);
    if (outputs.indexOf(h.output) !== k + 1) fail(['heads', k, 'output'], `'${h.output}' is already the output of another head`);
    return node;
  });
  // Shapes first (a head on an image output names its head), then nodes leading nowhere, then the losses.
  const outputShape = outputNode.layer.outShape;
  if (heads.length > 0 && outputShape.length !== 1) {
    fail(['model', 'output'], `with several heads every head ends with a flat output [K] (one target column each), got ${describe(outputShape)}`);
  }
  headNodes.forEach((node, k) => {
    if (node.layer.outShape.length !== 1) fail(['heads', k, 'output'], `a head ends with a flat output [K] (one target column), got ${describe(node.layer.outShape)}`);
  });
  const dangling = nodes.filter((n) => !outputs.includes(n.id) && !used.has(n.id)).map((n) => n.id);
  if (dangling.length > 0) fail(['model', 'output'], `node(s) ${dangling.join(', ')} do not lead to ${heads.length > 0 ? 'a head output' : 'the output'}`);
  checkLossAgainstOutput(spec, outputShape, outputNode.layer, ['model', 'output']);
  const { heads: _heads, ...single } = spec;
  heads.forEach((h, k) => {
    // The head's own loss, its errors pointing into heads[k].
    try {
      checkLossAgainstOutput({ ...single, loss: h.loss }, headNodes[k].layer.outShape, headNodes[k].layer, ['heads', k, 'output']);
    } catch (err) {
      if (err instanceof InferenceError && err.issue.path.startsWith('loss')) fail(['heads', k, ...err.issue.path.split('.')], err.issue.message);
      throw err;
    }
  });
  return {
    kind: 'graph', nodes, output: model.output, inputShapes, branches: [], concat: false,
    imageInputShape: inputShapes.image, tabularInputShape: inputShapes.tabular, outputShape,
    outputs, outputShapes: [outputShape, ...headNodes.map((n) => n.layer.outShape)],
  };
}

function resolveAll(spec: PlanSpec): ResolvedGraph {
  const graph = isGraphModel(spec.model);
  if (graph !== (spec.version === 2)) {
    fail(['version'], graph ? 'a plan whose model is a graph (nodes) has version 2' : 'a plan whose model is branches has version 1');
  }
  if (spec.heads && !isGraphModel(spec.model)) fail(['heads'], 'several heads need a graph model (plan version 2: nodes and output)');
  if (!spec.heads && spec.loss.weight !== undefined) fail(['loss', 'weight'], 'weighs a head\'s loss in a plan with several heads (heads); this plan has one');
  return isGraphModel(spec.model) ? resolveGraphModel(spec, spec.model) : resolveBranches(spec, spec.model);
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
