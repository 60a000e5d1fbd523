/**
 * Plain float64 convolution used as the independent reference in gradient checks: no im2col, no tfjs, written
 * straight from the definition y[n,o,co] = sum_{k,ci} x[n, o*stride + k*dilation - pad, ci] * w[k, ci, co]
 * over 3 spatial dims (2D problems use depth 1). Slow; test shapes only.
 */
import type { ConvGeometry } from './conv-geometry';

export interface RefConv {
  batch: number;
  inSize: [number, number, number];
  inChannels: number;
  filter: [number, number, number];
  outChannels: number;
  stride: [number, number, number];
  dilation: [number, number, number];
  /** Padding before each spatial dim (front, top, left). */
  padBefore: [number, number, number];
  outSize: [number, number, number];
}

/** The reference problem of a kernel geometry (tfjs's conv info, as the kernels see it). */
export function refConvOf(g: ConvGeometry): RefConv {
  return {
    batch: g.batch,
    inSize: [g.inDepth, g.inHeight, g.inWidth],
    inChannels: g.inChannels,
    filter: [g.filterDepth, g.filterHeight, g.filterWidth],
    outChannels: g.outChannels,
    stride: [g.strideDepth, g.strideHeight, g.strideWidth],
    dilation: [g.dilationDepth, g.dilationHeight, g.dilationWidth],
    padBefore: [g.padFront, g.padTop, g.padLeft],
    outSize: [g.outDepth, g.outHeight, g.outWidth],
  };
}

/**
 * Calls `visit(xi, wi, yi)` for every product x[xi] * w[wi + co] that adds to y[yi + co] (co = 0 .. CO-1): every
 * in-bounds tap of every output position, taps in (kd, kh, kw, ci) order.
 */
function forEachProduct(c: RefConv, visit: (xi: number, wi: number, yi: number) => void): void {
  const [D, H, W] = c.inSize;
  const [KD, KH, KW] = c.filter;
  const [OD, OH, OW] = c.outSize;
  const CI = c.inChannels;
  const CO = c.outChannels;
  for (let n = 0; n < c.batch; n++)
    for (let od = 0; od < OD; od++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const yi = (((n * OD + od) * OH + oh) * OW + ow) * CO;
          for (let kd = 0; kd < KD; kd++) {
            const id = od * c.stride[0] + kd * c.dilation[0] - c.padBefore[0];
            if (id < 0 || id >= D) continue;
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * c.stride[1] + kh * c.dilation[1] - c.padBefore[1];
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * c.stride[2] + kw * c.dilation[2] - c.padBefore[2];
                if (iw < 0 || iw >= W) continue;
                for (let ci = 0; ci < CI; ci++) {
                  visit((((n * D + id) * H + ih) * W + iw) * CI + ci, (((kd * KH + kh) * KW + kw) * CI + ci) * CO, yi);
                }
              }
            }
          }
        }
}

export function referenceConv(c: RefConv, x: ArrayLike<number>, w: ArrayLike<number>): Float64Array {
  const CO = c.outChannels;
  const y = new Float64Array(c.batch * c.outSize.reduce((a, b) => a * b, 1) * CO);
  forEachProduct(c, (xi, wi, yi) => {
    for (let co = 0; co < CO; co++) y[yi + co] += x[xi] * w[wi + co];
  });
  return y;
}

/**
 * The gradients of sum(conv(x, w) * cotangent), straight from the definition: every product x * w that makes an
 * output sends cotangent * w to dx and cotangent * x to dw. One pass, the cost of one reference conv (a finite
 * difference costs two per element).
 */
export function referenceGradients(
  c: RefConv,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  cotangent: ArrayLike<number>,
): { dx: Float64Array; dw: Float64Array } {
  const CO = c.outChannels;
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(w.length);
  forEachProduct(c, (xi, wi, yi) => {
    for (let co = 0; co < CO; co++) {
      dx[xi] += cotangent[yi + co] * w[wi + co];
      dw[wi + co] += cotangent[yi + co] * x[xi];
    }
  });
  return { dx, dw };
}

/** sum(conv(x, w) * cotangent): a scalar whose gradients are exactly the conv backprops of `cotangent`. */
export function referenceObjective(
  c: RefConv,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  cotangent: ArrayLike<number>,
): number {
  const y = referenceConv(c, x, w);
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * cotangent[i];
  return s;
}

/**
 * Central finite difference (objective(v + h) - objective(v - h)) / 2h w.r.t. element `i` of `values`, which is
 * changed in place for the two evaluations and then restored.
 */
export function centralDifference(values: Float64Array, i: number, h: number, objective: () => number): number {
  const keep = values[i];
  values[i] = keep + h;
  const plus = objective();
  values[i] = keep - h;
  const minus = objective();
  values[i] = keep;
  return (plus - minus) / (2 * h);
}

/** Central finite difference of the objective w.r.t. element `i` of `x` (which='x') or `w`. Exact up to
 *  rounding, since the objective is linear in each argument. */
export function finiteDifference(
  c: RefConv,
  x: Float64Array,
  w: Float64Array,
  cotangent: ArrayLike<number>,
  which: 'x' | 'w',
  i: number,
  h = 1e-2,
): number {
  return centralDifference(which === 'x' ? x : w, i, h, () => referenceObjective(c, x, w, cotangent));
}
