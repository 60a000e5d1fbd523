/**
 * A small 2-D U-Net as a graph model, written with the typed builder: per level two 3×3 conv + ReLU (+ batch norm
 * when asked), 2×2 max-pool down; up by a stride-2 transposed convolution (or upsampling then a 3×3 conv), the
 * skip concatenated, two convs; a 1×1 conv to `outChannels`. An optional flat conditioning input (the plan's
 * tabular input, e.g. the radiotherapy technique one-hot) is broadcast over the grid and concatenated to the image
 * channels at the input and at the bottleneck.
 *
 *   model: unet({ size: [48, 48], baseChannels: 8, depth: 2, outChannels: 1, condition: 'tabular' }),
 */
import { GraphBuilder, NodeRef } from './graph-builder';
import { GraphModelSpec, LayerSpec } from './spec';

export interface UnetOptions {
  /** Spatial size of the image input [H, W]; each level halves it, so it must divide by 2^depth. */
  size: [number, number];
  baseChannels: number;
  /** Number of down-sampling steps. */
  depth: number;
  outChannels: number;
  /** Plan input to condition on (broadcast to channels), usually 'tabular'. */
  condition?: 'tabular';
  /** 'transposed' (ConvTranspose2d, default) or an upsampling mode followed by a 3×3 conv. */
  up?: 'transposed' | 'nearest' | 'bilinear';
  batchNorm?: boolean;
  /** A final activation (e.g. sigmoid for a mask). */
  output?: LayerSpec;
}

export function unet(options: UnetOptions): GraphModelSpec {
  const { size, baseChannels, depth, outChannels } = options;
  if (size.some((n) => n % 2 ** depth !== 0)) throw new Error(`unet: size ${size.join('x')} must divide by 2^depth = ${2 ** depth}`);
  const g = new GraphBuilder();
  const convs = (channels: number): LayerSpec[] => {
    const one = (): LayerSpec[] => [
      { type: 'conv2d', outChannels: channels, kernelSize: 3, padding: 1, bias: !options.batchNorm },
      ...(options.batchNorm ? [{ type: 'batch_norm' } as LayerSpec] : []),
      { type: 'relu' },
    ];
    return [...one(), ...one()];
  };
  const conditioned = (name: string, x: NodeRef, grid: [number, number]): NodeRef => {
    if (!options.condition) return x;
    const map = g.layer(`${name}_cond`, { type: 'spatial_broadcast', size: grid }, options.condition);
    return g.concat(`${name}_with_cond`, [x, map]);
  };
  const skips: NodeRef[] = [];
  let x: NodeRef = conditioned('input', 'image', size);
  let grid: [number, number] = [...size];
  for (let level = 0; level < depth; level++) {
    x = g.chain(`down${level}`, x, convs(baseChannels * 2 ** level));
    skips.push(x);
    x = g.layer(`pool${level}`, { type: 'max_pool2d', kernelSize: 2 }, x);
    grid = [grid[0] / 2, grid[1] / 2];
  }
  x = g.chain('bottom', conditioned('bottom', x, grid), convs(baseChannels * 2 ** depth));
  for (let level = depth - 1; level >= 0; level--) {
    const channels = baseChannels * 2 ** level;
    const up: LayerSpec[] = options.up && options.up !== 'transposed'
      ? [{ type: 'upsample', scaleFactor: 2, mode: options.up }, { type: 'conv2d', outChannels: channels, kernelSize: 3, padding: 1 }]
      : [{ type: 'conv_transpose2d', outChannels: channels, kernelSize: 2, stride: 2 }];
    x = g.chain(`up${level}`, x, up);
    x = g.chain(`dec${level}`, g.concat(`skip${level}`, [x, skips[level]]), convs(channels));
  }
  const out = g.chain('out', x, [{ type: 'conv2d', outChannels, kernelSize: 1 }, ...(options.output ? [options.output] : [])]);
  return g.build(out);
}
