/**
 * The parameters a plan's network has, exactly as PyTorch's `state_dict()` lists them for the generated module:
 * branch modules in order (image, tabular, head) with nn.Sequential children by index, or a graph's nodes in their
 * order, and per module its parameters (weight, bias) then its buffers (running_mean, running_var,
 * num_batches_tracked).
 */
import { ResolvedGraph, ResolvedLayer } from './graph';

/** How a tensor is laid out in tfjs versus PyTorch, which decides the conversion at the boundary. */
export type ParameterLayout =
  /** conv weight: torch [O, I, kh, kw] ↔ tfjs [kh, kw, I, O] */
  | 'conv2d_weight'
  /** conv weight: torch [O, I, kd, kh, kw] ↔ tfjs [kd, kh, kw, I, O] */
  | 'conv3d_weight'
  /** linear weight: torch [out, in] ↔ tfjs [in, out] */
  | 'dense_weight'
  /** a per-sample feature map: torch [C, ...spatial] ↔ tfjs [...spatial, C] (layer_norm's affine tensors) */
  | 'feature_map'
  /** same layout on both sides: biases, batch-norm vectors, counters */
  | 'same';

type ParameterRole = 'weight' | 'bias' | 'running_mean' | 'running_var' | 'num_batches_tracked';

export interface ParameterDescriptor {
  /** PyTorch state_dict key, e.g. `image.0.weight`. */
  name: string;
  /** The layer owning it (its index in the branch = nn.Sequential index). */
  layer: ResolvedLayer;
  role: ParameterRole;
  /** PyTorch shape. */
  torchShape: number[];
  /** tfjs shape of the variable holding it. */
  tfShape: number[];
  /** Wire dtype: float32, or int64 for num_batches_tracked. */
  dtype: 'float32' | 'int64';
  trainable: boolean;
  layout: ParameterLayout;
  /** fan_in of the owning conv/dense layer (PyTorch's default init bound is 1/sqrt(fan_in)). */
  fanIn?: number;
}

function product(values: number[]): number {
  return values.reduce((a, b) => a * b, 1);
}

function layerParameters(layer: ResolvedLayer): ParameterDescriptor[] {
  const named = (role: ParameterRole): string => `${layer.key}.${role}`;
  switch (layer.type) {
    case 'conv_transpose': {
      // torch [I, O, (kd,) kh, kw] ↔ tfjs conv{2,3}dTranspose filter [(kd,) kh, kw, O, I]: the conv permutation.
      // PyTorch's default init computes fan_in from dim 1, here the output channels.
      const fanIn = layer.outChannels * product(layer.kernel);
      const torchShape = [layer.inChannels, layer.outChannels, ...layer.kernel];
      const tfShape = [...layer.kernel, layer.outChannels, layer.inChannels];
      const out: ParameterDescriptor[] = [
        { name: named('weight'), layer, role: 'weight', torchShape, tfShape, dtype: 'float32', trainable: true, layout: layer.dims === 2 ? 'conv2d_weight' : 'conv3d_weight', fanIn },
      ];
      if (layer.bias) {
        const shape = [layer.outChannels];
        out.push({ name: named('bias'), layer, role: 'bias', torchShape: shape, tfShape: shape, dtype: 'float32', trainable: true, layout: 'same', fanIn });
      }
      return out;
    }
    case 'conv': {
      const fanIn = layer.inChannels * product(layer.kernel);
      const torchShape = [layer.outChannels, layer.inChannels, ...layer.kernel];
      const tfShape = [...layer.kernel, layer.inChannels, layer.outChannels];
      const layout = layer.dims === 2 ? 'conv2d_weight' : 'conv3d_weight';
      const out: ParameterDescriptor[] = [
        { name: named('weight'), layer, role: 'weight', torchShape, tfShape, dtype: 'float32', trainable: true, layout, fanIn },
      ];
      if (layer.bias) {
        const shape = [layer.outChannels];
        out.push({ name: named('bias'), layer, role: 'bias', torchShape: shape, tfShape: shape, dtype: 'float32', trainable: true, layout: 'same', fanIn });
      }
      return out;
    }
    case 'dense': {
      const fanIn = layer.inFeatures;
      const out: ParameterDescriptor[] = [
        {
          name: named('weight'),
          layer,
          role: 'weight',
          torchShape: [layer.outFeatures, layer.inFeatures],
          tfShape: [layer.inFeatures, layer.outFeatures],
          dtype: 'float32',
          trainable: true,
          layout: 'dense_weight',
          fanIn,
        },
      ];
      if (layer.bias) {
        const shape = [layer.outFeatures];
        out.push({ name: named('bias'), layer, role: 'bias', torchShape: shape, tfShape: shape, dtype: 'float32', trainable: true, layout: 'same', fanIn });
      }
      return out;
    }
    case 'group_norm': {
      const shape = [layer.features];
      const vector = (role: ParameterRole): ParameterDescriptor =>
        ({ name: named(role), layer, role, torchShape: shape, tfShape: shape, dtype: 'float32', trainable: true, layout: 'same' });
      return [vector('weight'), vector('bias')];
    }
    case 'batch_norm': {
      const shape = [layer.features];
      const vector = (role: ParameterRole, trainable: boolean): ParameterDescriptor => ({
        name: named(role),
        layer,
        role,
        torchShape: shape,
        tfShape: shape,
        dtype: 'float32',
        trainable,
        layout: 'same',
      });
      return [
        vector('weight', true),
        vector('bias', true),
        vector('running_mean', false),
        vector('running_var', false),
        { name: named('num_batches_tracked'), layer, role: 'num_batches_tracked', torchShape: [], tfShape: [], dtype: 'int64', trainable: false, layout: 'same' },
      ];
    }
    case 'instance_norm':
    case 'layer_norm': {
      if (!layer.affine) return [];
      const torchShape = layer.type === 'instance_norm' ? [layer.features] : layer.inShape;
      const tfShape = torchShape.length > 1 ? [...torchShape.slice(1), torchShape[0]] : torchShape;
      const layout: ParameterLayout = torchShape.length > 1 ? 'feature_map' : 'same';
      const affine = (role: ParameterRole): ParameterDescriptor => ({
        name: named(role), layer, role, torchShape, tfShape, dtype: 'float32', trainable: true, layout,
      });
      return [affine('weight'), affine('bias')];
    }
    default:
      return [];
  }
}

/** Every parameter and buffer of the network, in PyTorch state_dict order. */
export function describeParameters(graph: ResolvedGraph): ParameterDescriptor[] {
  return graph.nodes.flatMap((node) => layerParameters(node.layer));
}
