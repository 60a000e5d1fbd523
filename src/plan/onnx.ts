/**
 * ONNX export of a plan's network with given weights (PyTorch names and layouts, as exportWeights or a
 * Fed-BioMed weight file gives them), for inference anywhere ONNX Runtime runs.
 *
 * The graph computes what the generated PyTorch module computes in eval mode: inputs `image` `[N, C, ...spatial]`
 * (NCHW, channel index modality × slices + slice, as in spec.ts; or NHWC with `imageLayout: 'NHWC'`, then a
 * Transpose comes first) and `tabular` `[N, F]`, already preprocessed; output `output` `[N, K]` (the head's
 * output, optionally followed by a Sigmoid / Softmax so it gives probabilities for a from-logits loss).
 * Ops: Conv (+ Pad for PyTorch's asymmetric 'same'), MaxPool, AveragePool, GlobalAveragePool / GlobalMaxPool + Flatten,
 * InstanceNormalization, layer norm written out (ReduceMean, Sub, Mul, Add, Sqrt, Div),
 * BatchNormalization (running statistics), Flatten, Gemm, Concat, Add, Relu, LeakyRelu, Sigmoid, Softmax, Transpose.
 * Dropout is the identity at inference and emits nothing. Opset 13.
 */
import type { DenseArray } from '../serialize';
import type { ResolvedGraph, ResolvedLayer } from './graph';
import { describeParameters, type ParameterDescriptor } from './parameters';
import type { PlanSpec } from './spec';
import { validatePlan } from './validate';
import { planHeads } from './heads';
import {
  encodeOnnxModel, float32Raw, int64Raw, ONNX_FLOAT, ONNX_INT64, OnnxAttribute, OnnxNode, OnnxTensor, OnnxValueInfo,
} from './onnx-proto';
import { FedbiomedTsError } from '../errors';

const ONNX_OPSET = 13;
/** IR version 7 goes with opset 13 (ONNX 1.8). */
const ONNX_IR_VERSION = 7;
export const ONNX_INPUT_IMAGE = 'image';
export const ONNX_INPUT_TABULAR = 'tabular';
export const ONNX_OUTPUT = 'output';

export interface OnnxExportOptions {
  /** Layout of the image input: NCHW (PyTorch, default) or NHWC (tfjs, the plan datasets' samples). */
  imageLayout?: 'NCHW' | 'NHWC';
  /** Append an activation to the output; default 'sigmoid' for BCE-with-logits plans, else none. */
  outputActivation?: 'none' | 'sigmoid' | 'softmax';
  producerVersion?: string;
}

export class OnnxExportError extends FedbiomedTsError {}

export interface OnnxExport {
  bytes: Uint8Array;
  /** Distinct op types used, in first-use order. */
  opTypes: string[];
  inputs: OnnxValueInfo[];
  /** The (primary head's) output. */
  output: OnnxValueInfo;
  /** Every output: `[output]`, or with several heads one per head, named after its node (primary first). */
  outputs: OnnxValueInfo[];
}

/** Builds the ONNX model of `spec` with `weights`; every parameter of the plan must be present with its shape. */
export function exportPlanToOnnx(spec: PlanSpec, weights: Record<string, DenseArray>, options: OnnxExportOptions = {}): OnnxExport {
  const { spec: valid, graph } = validatePlan(spec);
  const g = new OnnxGraphBuilder(weights, checkedParameters(valid.name, graph, weights));
  const inputs: OnnxValueInfo[] = [];
  const values = new Map<string, string>();
  const imageShape = graph.inputShapes.image;
  if (imageShape) {
    const nhwc = options.imageLayout === 'NHWC';
    inputs.push({ name: ONNX_INPUT_IMAGE, elemType: ONNX_FLOAT,
      shape: ['N', ...(nhwc ? [...imageShape.slice(1), imageShape[0]] : imageShape)] });
    const rank = imageShape.length + 1;
    const x = nhwc
      ? g.emit('Transpose', [ONNX_INPUT_IMAGE], 'nchw', [{ name: 'perm', type: 'ints', value: [0, rank - 1, ...range(1, rank - 1)] }])
      : ONNX_INPUT_IMAGE;
    values.set('image', x);
  }
  if (graph.inputShapes.tabular) {
    inputs.push({ name: ONNX_INPUT_TABULAR, elemType: ONNX_FLOAT, shape: ['N', ...graph.inputShapes.tabular] });
    values.set('tabular', ONNX_INPUT_TABULAR);
  }
  for (const node of graph.nodes) values.set(node.id, layerNodes(g, node.layer, node.inputs.map((i) => values.get(i)!)));
  const outputs = headOutputs(g, valid, graph, values, options);
  const { nodes, initializers } = g;
  const bytes = encodeOnnxModel({
    irVersion: ONNX_IR_VERSION,
    opsetVersion: ONNX_OPSET,
    producerName: 'fedbiomed-ts',
    producerVersion: options.producerVersion ?? '1',
    docString: `plan ${valid.name}`,
    graph: { name: valid.name, nodes, initializers, inputs, outputs, docString: valid.description },
  });
  const opTypes = [...new Set(nodes.map((n) => n.opType))];
  return { bytes, opTypes, inputs, output: outputs[0], outputs };
}

/** The plan's parameters by PyTorch name, once `weights` are checked to hold each of them with its shape. */
function checkedParameters(planName: string, graph: ResolvedGraph, weights: Record<string, DenseArray>): Map<string, ParameterDescriptor> {
  const known = new Map(describeParameters(graph).map((d) => [d.name, d]));
  const problems: string[] = [];
  for (const [name, d] of known) {
    const w = weights[name];
    if (!w) problems.push(`missing '${name}'`);
    else if (w.shape.length !== d.torchShape.length || w.shape.some((n, i) => n !== d.torchShape[i])) {
      problems.push(`'${name}' has shape [${w.shape.join(', ')}], expected [${d.torchShape.join(', ')}]`);
    }
  }
  if (problems.length > 0) throw new OnnxExportError(`weights do not fit plan ${planName}: ${problems.join('; ')}`);
  return known;
}

/** The ONNX graph being written: its nodes, its initializers, and fresh names for both. */
class OnnxGraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private counter = 0;

  constructor(
    readonly weights: Record<string, DenseArray>,
    private readonly known: ReadonlyMap<string, ParameterDescriptor>,
  ) {}

  fresh(hint: string): string {
    return `${hint}_${++this.counter}`;
  }

  /** Adds a node with one output and returns the output's name. */
  emit(opType: string, inputs: string[], hint: string, attributes?: OnnxAttribute[]): string {
    const out = this.fresh(hint);
    this.nodes.push({ opType, name: `${opType}_${this.counter}`, inputs, outputs: [out], attributes });
    return out;
  }

  /** A plan parameter as an initializer under its PyTorch name (added once). */
  param(name: string): string {
    if (!this.initializers.some((t) => t.name === name)) {
      const w = this.weights[name];
      const isInt = this.known.get(name)?.dtype === 'int64';
      this.initializers.push({
        name, dims: [...w.shape], dataType: isInt ? ONNX_INT64 : ONNX_FLOAT,
        raw: isInt ? int64Raw(w.data) : float32Raw(Array.from(w.data as ArrayLike<number | bigint>, Number)),
      });
    }
    return name;
  }

  /** A constant (shapes, axes, scales, fixed scales and shifts) under a fresh name. */
  constant(hint: string, dims: number[], values: number[], dataType: typeof ONNX_FLOAT | typeof ONNX_INT64): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dims, dataType, raw: dataType === ONNX_INT64 ? int64Raw(values) : float32Raw(values) });
    return name;
  }
}

const filled = (dims: number[], value: number): number[] => new Array<number>(dims.reduce((a, b) => a * b, 1)).fill(value);

/** The nodes of one plan layer; returns the name of its output. */
function layerNodes(g: OnnxGraphBuilder, layer: ResolvedLayer, args: string[]): string {
  const emit = (opType: string, inputs: string[], hint: string, attributes?: OnnxAttribute[]): string =>
    g.emit(opType, inputs, hint, attributes);
  const { weights } = g;
  const x = args[0];
  const p = (role: string): string => g.param(`${layer.key}.${role}`);
  /** A constant input of this layer's nodes, named after the layer. */
  const initializer = (hint: string, dims: number[], values: number[], dataType: typeof ONNX_FLOAT | typeof ONNX_INT64 = ONNX_FLOAT): string =>
    g.constant(`${layer.key}.${hint}`, dims, values, dataType);
  const vector = (hint: string, dataType: typeof ONNX_FLOAT | typeof ONNX_INT64, values: number[]): string =>
    initializer(hint, [values.length], values, dataType);
  switch (layer.type) {
    case 'conv_transpose':
      return emit('ConvTranspose', [x, p('weight'), ...(layer.bias ? [p('bias')] : [])], 'convt', [
        { name: 'kernel_shape', type: 'ints', value: layer.kernel },
        { name: 'strides', type: 'ints', value: layer.stride },
        { name: 'pads', type: 'ints', value: [...layer.padding, ...layer.padding] },
        { name: 'output_padding', type: 'ints', value: layer.outputPadding },
      ]);
    case 'upsample':
      // Resize(X, roi = none, scales): nearest as PyTorch picks floor(i / s); linear with half-pixel centres.
      return emit('Resize', [x, '', vector('scales', ONNX_FLOAT, [1, 1, ...layer.scale])], 'upsample', layer.mode === 'nearest'
        ? [{ name: 'mode', type: 'string', value: 'nearest' }, { name: 'coordinate_transformation_mode', type: 'string', value: 'asymmetric' },
          { name: 'nearest_mode', type: 'string', value: 'floor' }]
        : [{ name: 'mode', type: 'string', value: 'linear' }, { name: 'coordinate_transformation_mode', type: 'string', value: 'half_pixel' }]);
    case 'spatial_broadcast': {
      const axes = layer.size.map((_, i) => i + 2);
      const unsqueezed = emit('Unsqueeze', [x, vector('axes', ONNX_INT64, axes)], 'unsqueeze');
      return emit('Expand', [unsqueezed, vector('shape', ONNX_INT64, [1, 1, ...layer.size])], 'broadcast');
    }
    case 'add':
      return args.slice(1).reduce((sum, t) => emit('Add', [sum, t], 'add'), x);
    case 'concat':
      return emit('Concat', args, 'concat', [{ name: 'axis', type: 'int', value: 1 }]);
    case 'conv': {
      let input = x;
      const symmetric = layer.padBefore.every((b, i) => b === layer.padAfter[i]);
      let pads = [...layer.padBefore, ...layer.padAfter];
      if (!symmetric) {
        // ONNX Conv pads may be asymmetric too, but an explicit Pad keeps the graph identical to PyTorch's
        // F.pad + conv for 'same' with an even kernel.
        const padsTensor = vector('pads', ONNX_INT64, [0, 0, ...layer.padBefore, 0, 0, ...layer.padAfter]);
        input = emit('Pad', [x, padsTensor], 'pad');
        pads = pads.map(() => 0);
      }
      const inputs = [input, p('weight'), ...(layer.bias ? [p('bias')] : [])];
      return emit('Conv', inputs, 'conv', [
        { name: 'kernel_shape', type: 'ints', value: layer.kernel },
        { name: 'strides', type: 'ints', value: layer.stride },
        { name: 'pads', type: 'ints', value: pads },
      ]);
    }
    case 'max_pool':
    case 'avg_pool':
      return emit(layer.type === 'max_pool' ? 'MaxPool' : 'AveragePool', [x], layer.type, [
        { name: 'kernel_shape', type: 'ints', value: layer.kernel },
        { name: 'strides', type: 'ints', value: layer.stride },
      ]);
    case 'global_avg_pool':
      return emit('Flatten', [emit('GlobalAveragePool', [x], 'gap')], 'flat', [{ name: 'axis', type: 'int', value: 1 }]);
    case 'global_max_pool':
      return emit('Flatten', [emit('GlobalMaxPool', [x], 'gmp')], 'flat', [{ name: 'axis', type: 'int', value: 1 }]);
    case 'instance_norm': {
      const scale = layer.affine ? p('weight') : initializer('ones', [layer.features], filled([layer.features], 1));
      const shift = layer.affine ? p('bias') : initializer('zeros', [layer.features], filled([layer.features], 0));
      return emit('InstanceNormalization', [x, scale, shift], 'in', [{ name: 'epsilon', type: 'float', value: layer.eps }]);
    }
    case 'layer_norm': {
      // LayerNormalization is opset 17; with opset 13 it is written out: (x - mean) / sqrt(var + eps).
      const axes = [{ name: 'axes', type: 'ints' as const, value: range(1, layer.inShape.length + 1) }];
      const centred = emit('Sub', [x, emit('ReduceMean', [x], 'mean', axes)], 'centred');
      const variance = emit('ReduceMean', [emit('Mul', [centred, centred], 'sq')], 'var', axes);
      const std = emit('Sqrt', [emit('Add', [variance, initializer('eps', [], [layer.eps])], 'vareps')], 'std');
      const y = emit('Div', [centred, std], 'ln');
      return layer.affine ? emit('Add', [emit('Mul', [y, p('weight')], 'scaled'), p('bias')], 'shifted') : y;
    }
    case 'batch_norm':
      return emit('BatchNormalization', [x, p('weight'), p('bias'), p('running_mean'), p('running_var')], 'bn', [
        { name: 'epsilon', type: 'float', value: layer.eps },
      ]);
    case 'group_norm': {
      // Opset 13 has no GroupNormalization: [N, C, ...] -> [N, G, rest], InstanceNormalization (statistics per
      // sample and group), back to the input shape, then the per-channel affine part.
      const perChannel = [layer.features, ...layer.inShape.slice(1).map(() => 1)];
      const affine = (role: string): string =>
        initializer(role, perChannel, Array.from(weights[`${layer.key}.${role}`].data as ArrayLike<number>, Number));
      const grouped = emit('Reshape', [x, vector('groups_shape', ONNX_INT64, [0, layer.groups, -1])], 'gn_grouped');
      const normalised = emit('InstanceNormalization', [grouped,
        initializer('ones', [layer.groups], filled([layer.groups], 1)),
        initializer('zeros', [layer.groups], filled([layer.groups], 0))], 'gn_norm', [
        { name: 'epsilon', type: 'float', value: layer.eps },
      ]);
      const restored = emit('Reshape', [normalised, emit('Shape', [x], 'gn_shape')], 'gn_restored');
      return emit('Add', [emit('Mul', [restored, affine('weight')], 'gn_scaled'), affine('bias')], 'gn');
    }
    case 'dropout':
    case 'dropout2d':
    case 'dropout3d':
      return x;
    case 'flatten':
      return layer.inShape.length === 1 ? x : emit('Flatten', [x], 'flat', [{ name: 'axis', type: 'int', value: 1 }]);
    case 'dense':
      return emit('Gemm', [x, p('weight'), ...(layer.bias ? [p('bias')] : [])], 'dense', [
        { name: 'transB', type: 'int', value: 1 },
      ]);
    case 'relu':
      return emit('Relu', [x], 'relu');
    case 'leaky_relu':
      return emit('LeakyRelu', [x], 'lrelu', [{ name: 'alpha', type: 'float', value: layer.negativeSlope }]);
    case 'sigmoid':
      return emit('Sigmoid', [x], 'sigmoid');
    case 'softmax':
      return emit('Softmax', [x], 'softmax', [{ name: 'axis', type: 'int', value: 1 }]);
  }
}

/** One graph output per head (one for most plans, named 'output'; several heads are named after their nodes). */
function headOutputs(
  g: OnnxGraphBuilder, valid: PlanSpec, graph: ResolvedGraph, values: ReadonlyMap<string, string>, options: OnnxExportOptions,
): OnnxValueInfo[] {
  const { nodes } = g;
  const heads = planHeads(valid);
  return heads.map((head, h) => {
    let y = values.get(graph.outputs[h])!;
    const fromLogits = (head.loss.type === 'bce' && head.loss.fromLogits) || head.loss.type === 'focal';
    const activation = (h === 0 ? options.outputActivation : undefined) ?? (fromLogits ? 'sigmoid' : 'none');
    if (activation === 'sigmoid') y = g.emit('Sigmoid', [y], 'prob');
    if (activation === 'softmax') y = g.emit('Softmax', [y], 'prob', [{ name: 'axis', type: 'int', value: 1 }]);
    const name = heads.length === 1 ? ONNX_OUTPUT : head.output;
    // The graph output gets its public name through an Identity-free rename of the last node's output.
    const last = nodes[nodes.length - 1];
    if (last && last.outputs[0] === y) last.outputs[0] = name;
    else nodes.push({ opType: 'Identity', name: `${name}_identity`, inputs: [y], outputs: [name] });
    return { name, elemType: ONNX_FLOAT, shape: ['N', ...graph.outputShapes[h]] };
  });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}
