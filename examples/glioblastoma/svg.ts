/**
 * A minimal SVG line chart (axes, ticks, grid, legend), enough for the report's loss and ROC plots without a
 * plotting dependency. Output is deterministic text.
 */

export interface Series {
  name: string;
  color: string;
  points: [number, number][];
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Axis ranges; default: the data's extent. */
  x?: [number, number];
  y?: [number, number];
  /** Width of the plot area plus axes (the legend is added to it), and height. */
  width?: number;
  height?: number;
  /** Draw the y = x diagonal (ROC chance line). */
  diagonal?: boolean;
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf'];


export function lineChart(o: ChartOptions): string {
  // The legend sits right of the plot; its width follows the longest name (about 7 px per character at 12 px).
  const legendWidth = 48 + 7 * Math.max(0, ...o.series.map((s) => s.name.length));
  const MARGIN = { left: 62, right: Math.max(120, legendWidth), top: 36, bottom: 48 };
  const width = (o.width ?? 470) + MARGIN.right;
  const height = o.height ?? 400;
  const all = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const x = o.x ?? padRange(extent(all.map((p) => p[0])), 0);
  const y = o.y ?? padRange(extent(all.map((p) => p[1])), 0.05);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const sx = (v: number): number => MARGIN.left + ((v - x[0]) / (x[1] - x[0] || 1)) * plotW;
  const sy = (v: number): number => MARGIN.top + plotH - ((v - y[0]) / (y[1] - y[0] || 1)) * plotH;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${width / 2 - MARGIN.right / 2 + MARGIN.left / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`);
  for (const t of ticks(x[0], x[1])) {
    parts.push(`<line x1="${n(sx(t))}" y1="${MARGIN.top}" x2="${n(sx(t))}" y2="${MARGIN.top + plotH}" stroke="#e6e6e6"/>`);
    parts.push(`<text x="${n(sx(t))}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${label(t)}</text>`);
  }
  for (const t of ticks(y[0], y[1])) {
    parts.push(`<line x1="${MARGIN.left}" y1="${n(sy(t))}" x2="${MARGIN.left + plotW}" y2="${n(sy(t))}" stroke="#e6e6e6"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${n(sy(t) + 4)}" text-anchor="end">${label(t)}</text>`);
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${height - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  if (o.diagonal) {
    parts.push(`<line x1="${n(sx(x[0]))}" y1="${n(sy(y[0]))}" x2="${n(sx(x[1]))}" y2="${n(sy(y[1]))}" stroke="#999" stroke-dasharray="4 4"/>`);
  }
  o.series.forEach((s, i) => {
    const pts = s.points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
    if (pts.length > 0) {
      const d = pts.map(([a, b], k) => `${k === 0 ? 'M' : 'L'}${n(sx(a))},${n(sy(b))}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      if (pts.length <= 40) for (const [a, b] of pts) parts.push(`<circle cx="${n(sx(a))}" cy="${n(sy(b))}" r="2.5" fill="${s.color}"/>`);
    }
    const ly = MARGIN.top + 12 + i * 20;
    const lx = MARGIN.left + plotW + 14;
    parts.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 22}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    parts.push(`<text x="${lx + 28}" y="${ly}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function extent(values: number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  return [Math.min(...values), Math.max(...values)];
}

function padRange([lo, hi]: [number, number], fraction: number): [number, number] {
  if (hi === lo) return [lo - 0.5, hi + 0.5];
  const pad = (hi - lo) * fraction;
  return [lo - pad, hi + pad];
}

/** About five round-numbered ticks inside [lo, hi]. */
export function ticks(lo: number, hi: number): number[] {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  // The 1-2-5 step closest (in ratio) to a fifth of the span.
  const step = [1, 2, 5, 10].map((m) => m * mag).reduce((best, s) => (Math.abs(Math.log(s / raw)) < Math.abs(Math.log(best / raw)) ? s : best));
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + 1e-9; k++) {
    // toPrecision drops float noise (3 x 0.2 = 0.6000000000000001); + 0 turns -0 into 0.
    out.push(Number((k * step).toPrecision(12)) + 0);
  }
  return out;
}

function label(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

function n(v: number): string {
  return v.toFixed(1);
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
