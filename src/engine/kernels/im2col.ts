/**
 * Patch extraction (im2col) for convolution filter gradients: it turns them into one large matrix product that the
 * wasm backend's XNNPACK GEMM runs fast.
 *
 * Patch row r = ((kd * KH + kh) * KW + kw) * CI + ci matches the flattened DHWIO / HWIO filter layout, and output
 * position p = ((n * OD + od) * OH + oh) * OW + ow matches the flattened NDHWC / NHWC output layout. Taps that fall
 * into the padding read as zero.
 */
import { ConvGeometry } from './conv-geometry';

/** First and one-past-last output index whose input coordinate `o*stride + tapOffset` lies in [0, size). */
function validRange(outSize: number, stride: number, tapOffset: number, size: number): [number, number] {
  const lo = tapOffset >= 0 ? 0 : Math.ceil(-tapOffset / stride);
  const hi = Math.min(outSize, Math.floor((size - 1 - tapOffset) / stride) + 1);
  return [Math.min(lo, outSize), Math.max(hi, Math.min(lo, outSize))];
}

/**
 * Writes the transposed patch matrix colsT[r][p] (patchLength rows), reading a channels-first copy of x
 * (C, N, D, H, W) that lives in the same heap as the output: each run of output widths is then one contiguous
 * memmove when the width stride is 1.
 *
 * Only output rows q in [firstRow, endRow) are written, q = (n * OD + od) * OH + oh (so P = rows * OW): the filter
 * gradient builds the matrix in small row blocks that stay in cache for the GEMM that consumes them.
 */
export function im2colTransposedFromChannelsFirst(
  g: ConvGeometry,
  heap: Float32Array,
  xcfOffset: number,
  colsOffset: number,
  firstRow = 0,
  endRow = g.batch * g.outDepth * g.outHeight,
): void {
  const { inDepth: D, inHeight: H, inWidth: W, inChannels: CI, outDepth: OD, outHeight: OH, outWidth: OW } = g;
  const P = (endRow - firstRow) * OW;
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
          let oh = firstRow % OH;
          let od = Math.floor(firstRow / OH) % OD;
          let n = Math.floor(firstRow / (OH * OD));
          for (let q = firstRow; q < endRow; q++, o += OW) {
            const id = od * g.strideDepth + dOff;
            const ih = oh * g.strideHeight + hOff;
            if (id < 0 || id >= D || ih < 0 || ih >= H) {
              heap.fill(0, o, o + OW);
            } else {
              const src = xcfOffset + (((ci * N + n) * D + id) * H + ih) * W + owLo * SW + wOff;
              if (owLo > 0) heap.fill(0, o, o + owLo);
              if (SW === 1) {
                heap.copyWithin(o + owLo, src, src + span);
              } else {
                for (let j = 0; j < span; j++) heap[o + owLo + j] = heap[src + j * SW];
              }
              if (owHi < OW) heap.fill(0, o + owHi, o + OW);
            }
            if (++oh === OH) {
              oh = 0;
              if (++od === OD) {
                od = 0;
                n++;
              }
            }
          }
        }
      }
    }
  }
}
