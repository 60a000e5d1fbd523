/**
 * The image panel a clinician is shown for one held-out patient (PNG): the pre-treatment T1ce with the tumour,
 * the follow-up predicted under conventional, proton and carbon-ion radiotherapy, and the real follow-up, each
 * titled, with the predicted or measured change of the tumour's area under it and a colour legend.
 * Masks and T1ce are the network's grid: the axial slice through the tumour's centre, in the box around it.
 */
import { encodePng } from 'fedbiomed-ts';
import { Canvas, drawText, fillRect, GLYPH_HEIGHT, textWidth } from './bitmap-font';
import type { RtType } from './sites';

export interface PanelTile {
  title: string;
  caption: string;
  /** Grey background [X·Y] (x-major). */
  gray: Float32Array;
  /** Masks [X·Y], shown where > 0.5. */
  tumour?: ArrayLike<number>;
  necrosis?: ArrayLike<number>;
  injury?: ArrayLike<number>;
}

export interface PanelInput {
  heading: string;
  /** Grid [X, Y]. */
  size: [number, number];
  tiles: PanelTile[];
}

const COLOURS = { tumour: [230, 40, 40], necrosis: [250, 210, 0], injury: [40, 160, 255] } as const;
const LEGEND: [keyof typeof COLOURS, string][] = [['tumour', 'enhancing tumour'], ['necrosis', 'necrotic core'], ['injury', 'radiation injury']];
const TILE = 192;
const GAP = 10;
const MARGIN = 12;
const TEXT = [20, 20, 20];

export const RT_LABEL: Record<RtType, string> = { conventional: 'conventional RT', proton: 'proton therapy', carbon: 'carbon ions' };

export function renderPanel(input: PanelInput): Buffer {
  const [nx, ny] = input.size;
  const zoom = Math.max(1, Math.floor(TILE / Math.max(nx, ny)));
  const tileW = nx * zoom;
  const tileH = ny * zoom;
  const line = GLYPH_HEIGHT * 2 + 6;
  const width = MARGIN * 2 + input.tiles.length * (tileW + GAP) - GAP;
  const height = MARGIN + line + 4 + line + tileH + 4 + line + GAP + line + MARGIN;
  const canvas: Canvas = { width, height, rgb: new Uint8Array(width * height * 3).fill(255) };
  drawText(canvas, input.heading, MARGIN, MARGIN, TEXT, 2);
  const top = MARGIN + line + 4;
  input.tiles.forEach((tile, t) => {
    const x0 = MARGIN + t * (tileW + GAP);
    // A title wider than the tile is drawn at scale 1.
    const scale = textWidth(tile.title, 2) <= tileW ? 2 : 1;
    drawText(canvas, tile.title, x0, top, TEXT, scale);
    const y0 = top + line;
    let max = 1e-6;
    let min = Infinity;
    for (const v of tile.gray) { max = Math.max(max, v); min = Math.min(min, v); }
    for (let row = 0; row < tileH; row++) {
      for (let col = 0; col < tileW; col++) {
        // x to the right, y (posterior in LPS) downwards.
        const i = Math.floor(col / zoom) * ny + Math.floor(row / zoom);
        const g = Math.round((255 * (tile.gray[i] - min)) / (max - min || 1));
        let colour: number[] = [g, g, g];
        const blend = (c: readonly number[]): number[] => colour.map((v, k) => Math.round(0.45 * v + 0.55 * c[k]));
        if (tile.injury && tile.injury[i] > 0.5) colour = blend(COLOURS.injury);
        if (tile.tumour && tile.tumour[i] > 0.5) colour = blend(COLOURS.tumour);
        if (tile.necrosis && tile.necrosis[i] > 0.5) colour = blend(COLOURS.necrosis);
        canvas.rgb.set(colour, ((y0 + row) * width + x0 + col) * 3);
      }
    }
    drawText(canvas, tile.caption, x0, y0 + tileH + 6, TEXT, textWidth(tile.caption, 2) <= tileW ? 2 : 1);
  });
  let x = MARGIN;
  const legendY = top + line + tileH + 4 + line + GAP;
  for (const [key, label] of LEGEND) {
    fillRect(canvas, x, legendY, 14, 14, COLOURS[key]);
    drawText(canvas, label, x + 20, legendY, TEXT, 2);
    x += 20 + textWidth(label, 2) + 24;
  }
  return encodePng(width, height, canvas.rgb);
}
