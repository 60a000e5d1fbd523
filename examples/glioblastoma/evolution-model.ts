/**
 * The evolution model's network and loss: a U-Net (the library's `unet()` layout: two 3×3 conv per level, 2×2
 * max-pool down, stride-2 transposed conv up, skips concatenated) with three changes the counterfactual check needs.
 *
 * - **The conditioning reaches the decoder.** The radiotherapy technique (one-hot) is broadcast and concatenated at
 *   the input, the bottleneck and every decoder level, and the raw input channels (the planning dose among them)
 *   are concatenated again at the last decoder level. With the technique and the dose only at the input, the
 *   injury channel learnt a dilation of the tumour and ignored the dose: it predicted as much radiation injury for
 *   40 Gy plans (which never injure in the generative model) as for 60 Gy ones, and the same under every technique.
 * - **One Dice term per mask**, the injury's with a larger smoothing term (see `evolutionLoss`).
 * - (Not here: the dose input is centred on the injury threshold, `evolutionPreprocessing` in evolution-data.ts.)
 * Batch norm was tried: it also made the dose matter, but the held-out Dice then swung by up to ±0.07 between
 * FedAvg rounds and between seeds, so the federated model's standing against a single centre was a draw.
 */
import { GraphBuilder } from 'fedbiomed-ts';
import type { GraphModelSpec, LayerSpec, LossSpec, NodeRef } from 'fedbiomed-ts';
import { CHANNEL } from './evolution-data';

export interface EvolutionUnetOptions {
  size: [number, number];
  baseChannels: number;
  /** Down-sampling steps (the grid must divide by 2^depth). */
  depth: number;
  outChannels: number;
}

export function evolutionUnet(options: EvolutionUnetOptions): GraphModelSpec {
  const { size, baseChannels, depth, outChannels } = options;
  if (size.some((n) => n % 2 ** depth !== 0)) throw new Error(`evolutionUnet: size ${size.join('x')} must divide by 2^depth = ${2 ** depth}`);
  const g = new GraphBuilder();
  const conv = (channels: number): LayerSpec[] => [{ type: 'conv2d', outChannels: channels, kernelSize: 3, padding: 1 }, { type: 'relu' }];
  const convs = (channels: number): LayerSpec[] => [...conv(channels), ...conv(channels)];
  /** `parts` concatenated with the technique broadcast over `grid`. */
  const withTechnique = (name: string, parts: NodeRef[], grid: [number, number]): NodeRef =>
    g.concat(`${name}_with_rt`, [...parts, g.layer(`${name}_rt`, { type: 'spatial_broadcast', size: grid }, 'tabular')]);

  const skips: NodeRef[] = [];
  let grid: [number, number] = [...size];
  let x = withTechnique('input', ['image'], grid);
  for (let level = 0; level < depth; level++) {
    x = g.chain(`down${level}`, x, convs(baseChannels * 2 ** level));
    skips.push(x);
    x = g.layer(`pool${level}`, { type: 'max_pool2d', kernelSize: 2 }, x);
    grid = [grid[0] / 2, grid[1] / 2];
  }
  x = g.chain('bottom', withTechnique('bottom', [x], grid), convs(baseChannels * 2 ** depth));
  for (let level = depth - 1; level >= 0; level--) {
    const channels = baseChannels * 2 ** level;
    grid = [grid[0] * 2, grid[1] * 2];
    x = g.layer(`up${level}`, { type: 'conv_transpose2d', outChannels: channels, kernelSize: 2, stride: 2 }, x);
    // At full resolution the raw inputs come back: the dose map decides where healthy brain is injured.
    const parts = level === 0 ? [x, skips[level], 'image'] : [x, skips[level]];
    x = g.chain(`dec${level}`, withTechnique(`skip${level}`, parts, grid), convs(channels));
  }
  return g.build(g.layer('out', { type: 'conv2d', outChannels, kernelSize: 1 }, x));
}

/**
 * Smoothing of the injury mask's soft Dice, in pixels of the grid (of the order of a typical injury cross-section's
 * area). 20 suited projected footprints at 6 mm; on the 4 mm slice through the tumour it made the injury channel
 * collapse to none (README, "The tumour-centred crop"); 5 lost the federated model's lead.
 */
export const INJURY_DICE_SMOOTH = 10;

/**
 * BCE over every mask + a soft Dice per mask, the injury's weighted twice and smoothed by `INJURY_DICE_SMOOTH`.
 * A third of the patients (40 Gy schedules) have no injury at all. Per-sample soft Dice with the default smoothing (1)
 * gives an empty target almost no gradient once anything is predicted (d/dΣp of Σp / (Σp + 1)), so with one Dice over
 * every channel the model predicted about 60 injured pixels for patients with none, and 46 on average for 21. A
 * smoothing of the order of an injury's area makes false injury on those patients cost, and the weight keeps the
 * thin, rare mask from being traded away for the tumour's.
 */
export function evolutionLoss(): LossSpec {
  const dice = (channel: number, weight = 1, smooth?: number) =>
    ({ weight, loss: { type: 'soft_dice' as const, fromLogits: true, channel, ...(smooth !== undefined ? { smooth } : {}) } });
  return {
    type: 'weighted',
    terms: [
      { weight: 1, loss: { type: 'bce', fromLogits: true } },
      dice(CHANNEL.tumour),
      dice(CHANNEL.necrosis),
      dice(CHANNEL.injury, 2, INJURY_DICE_SMOOTH),
    ],
  };
}
