/**
 * The differential-privacy entry points of the native addon (dp.c): hand-computable per-sample conv gradients and
 * norms, agreement with the batch filter-gradient kernel run on each sample alone (the AVX-512 tiles where the CPU
 * has them, the AVX2 kernel otherwise) over 2D/3D shapes, strides, channel counts that are not whole vectors, and
 * padding; the same bits on any thread count; and malformed calls refused before any memory is touched.
 */
import { loadNativeKernels, NativeKernels, threadsSetting } from './index';

function addon(): NativeKernels {
  const load = loadNativeKernels();
  if (!load.ok) throw new Error(`native kernels unavailable: ${load.detail}`);
  return load.kernels;
}

afterAll(() => addon().setThreads(threadsSetting()));

/** A conv geometry (conv.h field order) for n samples, no dilation. */
function geometry(n: number, inSize: number[], inC: number, k: number[], outC: number, stride: number[], pad = [0, 0, 0]): Int32Array {
  const out = inSize.map((s, i) => Math.floor((s + 2 * pad[i] - k[i]) / stride[i]) + 1);
  return Int32Array.from([n, ...inSize, inC, ...out, outC, ...k, ...stride, 1, 1, 1, ...pad]);
}

function sizes(g: Int32Array) {
  const [n, d, h, w, c, od, oh, ow, co, kd, kh, kw] = Array.from(g);
  return { n, x: d * h * w * c, dy: od * oh * ow * co, k: kd * kh * kw * c * co, co };
}

const values = (length: number, seed: number) => Float32Array.from({ length }, (_, i) => Math.sin(0.37 * i + seed));

test('two samples of a 3x3 image, 2x2 filter: the hand-computed gradients and norms', () => {
  const g = geometry(2, [1, 3, 3], 1, [1, 2, 2], 1, [1, 1, 1]);
  // Sample 0: x = 1..9, dy = 1 everywhere: dw = the sum of each tap over the 4 windows, bias = 4.
  // Sample 1: x = 2 everywhere, dy = [1, 0, 0, 2]: dw = 2·1 + 2·2 = 6 for every tap, bias = 3.
  const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
  const dy = Float32Array.from([1, 1, 1, 1, 1, 0, 0, 2]);
  const dw = new Float32Array(8).fill(NaN);
  const db = new Float32Array(2).fill(NaN);
  const normSq = new Float32Array(2).fill(NaN);
  addon().dpConvPerSample(g, x, dy, dw, db, normSq);
  expect(Array.from(dw)).toEqual([12, 16, 24, 28, 6, 6, 6, 6]);
  expect(Array.from(db)).toEqual([4, 3]);
  expect(Array.from(normSq)).toEqual([144 + 256 + 576 + 784 + 16, 4 * 36 + 9]);
  // Without a bias the norm is the filter gradient's alone.
  addon().dpConvPerSample(g, x, dy, dw, null, normSq);
  expect(Array.from(normSq)).toEqual([144 + 256 + 576 + 784, 4 * 36]);
});

describe('equals the batch filter-gradient kernel run on each sample alone', () => {
  const cases: Array<[string, Int32Array]> = [
    ['2D, 7 channels (one masked vector)', geometry(3, [1, 9, 8], 5, [1, 3, 3], 7, [1, 1, 1])],
    ['2D, 64 channels (one whole panel, 5-row first tile)', geometry(2, [1, 8, 9], 3, [1, 3, 3], 64, [1, 1, 1])],
    ['2D strides, 17 channels', geometry(2, [1, 11, 12], 3, [1, 3, 2], 17, [1, 2, 3])],
    ['3D, 70 channels (a 64 panel and a masked one)', geometry(2, [5, 6, 7], 2, [2, 3, 2], 70, [2, 1, 2])],
    ['2D, 48 channels (three vectors), 9 patch entries (a partial tile)', geometry(2, [1, 6, 7], 1, [1, 3, 3], 48, [1, 1, 1])],
    ['2D with padding (the AVX2 path)', geometry(2, [1, 6, 5], 3, [1, 3, 3], 20, [1, 1, 1], [0, 1, 1])],
  ]; // prettier-ignore
  test.each(cases)('%s', (_name, g) => {
    const s = sizes(g);
    const x = values(s.n * s.x, 0);
    const dy = values(s.n * s.dy, 1);
    const dw = new Float32Array(s.n * s.k);
    const db = new Float32Array(s.n * s.co);
    const normSq = new Float32Array(s.n);
    addon().setThreads(1);
    addon().dpConvPerSample(g, x, dy, dw, db, normSq);
    const one = Int32Array.from(g);
    one[0] = 1;
    for (let i = 0; i < s.n; i++) {
      const want = new Float32Array(s.k);
      addon().convBackpropFilter(one, x.subarray(i * s.x, (i + 1) * s.x), dy.subarray(i * s.dy, (i + 1) * s.dy), want);
      const bias = new Float32Array(s.co);
      addon().sumLeadingAxes(dy.subarray(i * s.dy, (i + 1) * s.dy), bias);
      let norm = 0;
      for (let k = 0; k < s.k; k++) {
        expect(Math.abs(dw[i * s.k + k] - want[k])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[k])));
        norm += want[k] ** 2;
      }
      for (let c = 0; c < s.co; c++) norm += bias[c] ** 2;
      // Float sums along each output row, then float64 across rows: not the bits of the all-float64 column sums.
      for (let c = 0; c < s.co; c++) expect(Math.abs(db[i * s.co + c] - bias[c])).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(bias[c])));
      expect(Math.abs(normSq[i] - norm)).toBeLessThanOrEqual(1e-5 * norm);
    }
  });
});

test('split by sample over 1, 2 and 3 threads: the same bits', () => {
  const g = geometry(5, [1, 10, 9], 3, [1, 3, 3], 20, [1, 1, 1]);
  const s = sizes(g);
  const x = values(s.n * s.x, 2);
  const dy = values(s.n * s.dy, 3);
  const m = values(s.n * 300, 4);
  const factors = Float32Array.from([0.5, 1, 0.25, 0.9, 0.1]);
  const run = (threads: number) => {
    addon().setThreads(threads, 1); // split even this small problem
    const out = { dw: new Float32Array(s.n * s.k), db: new Float32Array(s.n * s.co), normSq: new Float32Array(s.n), sum: new Float32Array(300) };
    addon().dpConvPerSample(g, x, dy, out.dw, out.db, out.normSq);
    addon().dpWeightedRowSum(m, factors, out.sum);
    return out;
  };
  const one = run(1);
  for (const threads of [2, 3]) {
    const many = run(threads);
    for (const key of ['dw', 'db', 'normSq', 'sum'] as const) expect(Buffer.from(many[key].buffer)).toEqual(Buffer.from(one[key].buffer));
  }
});

test('weighted row sum: the hand-computed clip-weighted sum, over whole vectors and a remainder', () => {
  const out = new Float32Array(3);
  addon().dpWeightedRowSum(Float32Array.from([1, 2, 3, 10, 20, 30]), Float32Array.from([0.5, 2]), out);
  expect(Array.from(out)).toEqual([20.5, 41, 61.5]);
  // 2 rows of 4100 columns (two column chunks, 16-wide vectors and a scalar tail): row 0 = k, row 1 = 1.
  const cols = 4100;
  const m = new Float32Array(2 * cols);
  for (let k = 0; k < cols; k++) {
    m[k] = k;
    m[cols + k] = 1;
  }
  const wide = new Float32Array(cols);
  addon().dpWeightedRowSum(m, Float32Array.from([0.25, -3]), wide);
  expect(Array.from(wide)).toEqual(Array.from({ length: cols }, (_, k) => 0.25 * k - 3));
});

describe('malformed calls are errors that name the problem, and leave the outputs untouched', () => {
  const g = geometry(2, [1, 3, 3], 1, [1, 2, 2], 1, [1, 1, 1]);
  const f = (n: number) => new Float32Array(n);
  // Called with arguments of any type, as JavaScript could.
  const perSample = (...a: unknown[]) => (addon().dpConvPerSample as unknown as (...b: unknown[]) => void)(...a);
  const cases: Array<[string, () => void, RegExp]> = [
    ['five arguments', () => perSample(g, f(18), f(8), f(8), f(2)), /expected \(geometry, x, dy, filterGrads, biasGrads or null, normSq\)/],
    ['a short geometry', () => perSample(g.subarray(1), f(18), f(8), f(8), f(2), f(2)), /Int32Array of 21 fields/],
    ['x one float short', () => perSample(g, f(17), f(8), f(8), f(2), f(2)), /dpConvPerSample: argument 2 has 17 floats, the geometry needs 18/],
    ['filter gradients for one sample only', () => perSample(g, f(18), f(8), f(4), f(2), f(2)), /dpConvPerSample: argument 4 has 4 floats, the geometry needs 8/],
    ['bias gradients of the wrong size', () => perSample(g, f(18), f(8), f(8), f(3), f(2)), /dpConvPerSample: argument 5 has 3 floats, the geometry needs 2/],
    ['bias gradients undefined instead of null', () => perSample(g, f(18), f(8), f(8), undefined, f(2)), /dpConvPerSample: argument 5 must be a Float32Array/],
    ['norms of the wrong size', () => perSample(g, f(18), f(8), f(8), f(2), f(1)), /dpConvPerSample: argument 6 has 1 floats, the geometry needs 2/],
    ['a Float64Array dy', () => perSample(g, f(18), new Float64Array(8), f(8), f(2), f(2)), /dpConvPerSample: argument 3 must be a Float32Array/],
    ['a weighted sum whose matrix is not rows x columns', () => addon().dpWeightedRowSum(f(7), f(2), f(3)), /dpWeightedRowSum: m has 7 floats, not 2 rows \(factors\) of 3 \(out\)/],
    ['a weighted sum without factors', () => addon().dpWeightedRowSum(f(0), f(0), f(3)), /not 0 rows/],
    ['a weighted sum of a plain array', () => addon().dpWeightedRowSum([1, 2] as unknown as Float32Array, f(1), f(2)), /must be Float32Arrays/],
  ]; // prettier-ignore
  test.each(cases)('%s', (_name, call, message) => {
    expect(call).toThrow(message);
  });

  test('a refused call writes nothing', () => {
    const dw = f(8).fill(7);
    const normSq = f(2).fill(7);
    expect(() => perSample(g, f(18), f(8), dw, f(3), normSq)).toThrow(/argument 5/);
    expect([...dw, ...normSq]).toEqual(new Array(10).fill(7));
  });
});
