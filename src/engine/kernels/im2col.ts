/**
 * Patch extraction (im2col) and its adjoint (col2im) on flat channels-last buffers. They turn convolution
 * gradients into one large matrix product that the wasm backend's XNNPACK GEMM runs fast.
 *
 * Patch row r = ((kd * KH + kh) * KW + kw) * CI + ci matches the flattened DHWIO / HWIO filter layout, and output
 * position p = ((n * OD + od) * OH + oh) * OW + ow matches the flattened NDHWC / NHWC output layout. Taps that fall
 * into the padding read as zero.
 */
import { ConvGeometry, outputPositions, patchLength } from './conv-geometry';

/** First and one-past-last output index whose input coordinate `o*stride + tapOffset` lies in [0, size). */
function validRange(outSize: number, stride: number, tapOffset: number, size: number): [number, number] {
  const lo = tapOffset >= 0 ? 0 : Math.ceil(-tapOffset / stride);
  const hi = Math.min(outSize, Math.floor((size - 1 - tapOffset) / stride) + 1);
  return [Math.min(lo, outSize), Math.max(hi, Math.min(lo, outSize))];
}

/** Writes the transposed patch matrix colsT[r][p] (patchLength rows of outputPositions values). */
export function im2colTransposed(g: ConvGeometry, x: Float32Array, colsT: Float32Array): void {
  const P = outputPositions(g);
  const { inDepth: D, inHeight: H, inWidth: W, inChannels: CI, outDepth: OD, outHeight: OH, outWidth: OW } = g;
  let row = 0;
  for (let kd = 0; kd < g.filterDepth; kd++) {
    const dOff = kd * g.dilationDepth - g.padFront;
    for (let kh = 0; kh < g.filterHeight; kh++) {
      const hOff = kh * g.dilationHeight - g.padTop;
      for (let kw = 0; kw < g.filterWidth; kw++) {
        const wOff = kw * g.dilationWidth - g.padLeft;
        const [owLo, owHi] = validRange(OW, g.strideWidth, wOff, W);
        for (let ci = 0; ci < CI; ci++, row++) {
          let o = row * P;
          for (let n = 0; n < g.batch; n++) {
            for (let od = 0; od < OD; od++) {
              const id = od * g.strideDepth + dOff;
              for (let oh = 0; oh < OH; oh++) {
                const ih = oh * g.strideHeight + hOff;
                if (id < 0 || id >= D || ih < 0 || ih >= H) {
                  colsT.fill(0, o, o + OW);
                  o += OW;
                  continue;
                }
                const base = ((n * D + id) * H + ih) * W * CI + ci;
                if (owLo > 0) colsT.fill(0, o, o + owLo);
                const step = g.strideWidth * CI;
                let src = base + (owLo * g.strideWidth + wOff) * CI;
                for (let ow = owLo; ow < owHi; ow++, src += step) colsT[o + ow] = x[src];
                if (owHi < OW) colsT.fill(0, o + owHi, o + OW);
                o += OW;
              }
            }
          }
        }
      }
    }
  }
  if (row * P !== patchLength(g) * P) throw new Error('im2colTransposed: geometry mismatch');
}

/**
 * Same result as im2colTransposed, read from a channels-first copy of x (C, N, D, H, W) that lives in the same
 * heap as the output: each run of output widths is then one contiguous memmove when the width stride is 1.
 */
export function im2colTransposedFromChannelsFirst(
  g: ConvGeometry,
  heap: Float32Array,
  xcfOffset: number,
  colsOffset: number,
  firstSample = 0,
  endSample = g.batch,
): void {
  // Rows cover samples [firstSample, endSample) only, so large batches can be processed in bounded chunks.
  const P = (endSample - firstSample) * g.outDepth * g.outHeight * g.outWidth;
  const { inDepth: D, inHeight: H, inWidth: W, inChannels: CI, outDepth: OD, outHeight: OH, outWidth: OW } = g;
  const N = g.batch;
  const SW = g.strideWidth;
  let row = 0;
  for (let kd = 0; kd < g.filterDepth; kd++) {
    const dOff = kd * g.dilationDepth - g.padFront;
    for (let kh = 0; kh < g.filterHeight; kh++) {
      const hOff = kh * g.dilationHeight - g.padTop;
      for (let kw = 0; kw < g.filterWidth; kw++) {
        const wOff = kw * g.dilationWidth - g.padLeft;
        const [owLo, owHi] = validRange(OW, SW, wOff, W);
        const span = owHi - owLo;
        for (let ci = 0; ci < CI; ci++, row++) {
          let o = colsOffset + row * P;
          for (let n = firstSample; n < endSample; n++) {
            for (let od = 0; od < OD; od++) {
              const id = od * g.strideDepth + dOff;
              for (let oh = 0; oh < OH; oh++, o += OW) {
                const ih = oh * g.strideHeight + hOff;
                if (id < 0 || id >= D || ih < 0 || ih >= H) {
                  heap.fill(0, o, o + OW);
                  continue;
                }
                const src = xcfOffset + (((ci * N + n) * D + id) * H + ih) * W + owLo * SW + wOff;
                if (owLo > 0) heap.fill(0, o, o + owLo);
                if (SW === 1) {
                  heap.copyWithin(o + owLo, src, src + span);
                } else {
                  for (let j = 0; j < span; j++) heap[o + owLo + j] = heap[src + j * SW];
                }
                if (owHi < OW) heap.fill(0, o + owHi, o + OW);
              }
            }
          }
        }
      }
    }
  }
}

/** Writes the patch matrix cols[p][r] (outputPositions rows of patchLength values). */
export function im2col(g: ConvGeometry, x: Float32Array, cols: Float32Array): void {
  const R = patchLength(g);
  const { inDepth: D, inHeight: H, inWidth: W, inChannels: CI, outDepth: OD, outHeight: OH, outWidth: OW } = g;
  let o = 0;
  for (let n = 0; n < g.batch; n++) {
    for (let od = 0; od < OD; od++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          for (let kd = 0; kd < g.filterDepth; kd++) {
            const id = od * g.strideDepth + kd * g.dilationDepth - g.padFront;
            for (let kh = 0; kh < g.filterHeight; kh++) {
              const ih = oh * g.strideHeight + kh * g.dilationHeight - g.padTop;
              for (let kw = 0; kw < g.filterWidth; kw++, o += CI) {
                const iw = ow * g.strideWidth + kw * g.dilationWidth - g.padLeft;
                if (id < 0 || id >= D || ih < 0 || ih >= H || iw < 0 || iw >= W) {
                  cols.fill(0, o, o + CI);
                } else {
                  const src = (((n * D + id) * H + ih) * W + iw) * CI;
                  cols.set(x.subarray(src, src + CI), o);
                }
              }
            }
          }
        }
      }
    }
  }
  if (o !== outputPositions(g) * R) throw new Error('im2col: geometry mismatch');
}

/** Adjoint of im2col: dx (zeroed here) accumulates every patch value back to the input element it came from. */
export function col2im(g: ConvGeometry, cols: Float32Array, dx: Float32Array): void {
  dx.fill(0);
  const { inDepth: D, inHeight: H, inWidth: W, inChannels: CI, outDepth: OD, outHeight: OH, outWidth: OW } = g;
  let o = 0;
  for (let n = 0; n < g.batch; n++) {
    for (let od = 0; od < OD; od++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          for (let kd = 0; kd < g.filterDepth; kd++) {
            const id = od * g.strideDepth + kd * g.dilationDepth - g.padFront;
            for (let kh = 0; kh < g.filterHeight; kh++) {
              const ih = oh * g.strideHeight + kh * g.dilationHeight - g.padTop;
              for (let kw = 0; kw < g.filterWidth; kw++, o += CI) {
                const iw = ow * g.strideWidth + kw * g.dilationWidth - g.padLeft;
                if (id < 0 || id >= D || ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const dst = (((n * D + id) * H + ih) * W + iw) * CI;
                for (let ci = 0; ci < CI; ci++) dx[dst + ci] += cols[o + ci];
              }
            }
          }
        }
      }
    }
  }
}
