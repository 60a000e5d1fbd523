/**
 * The float64 reference conv's gradients from the definition (used by the native kernels' start-up self-check)
 * agree with central finite differences of the reference conv itself, element by element, on padded, strided,
 * dilated 2D and 3D problems.
 */
import { finiteDifference, RefConv, referenceGradients } from './reference-conv';

const PROBLEMS: RefConv[] = [
  { batch: 2, inSize: [1, 6, 5], inChannels: 2, filter: [1, 3, 2], outChannels: 3, stride: [1, 2, 1],
    dilation: [1, 1, 2], padBefore: [0, 1, 1], outSize: [1, 3, 4] },
  { batch: 1, inSize: [4, 4, 3], inChannels: 2, filter: [2, 2, 2], outChannels: 2, stride: [2, 1, 1],
    dilation: [1, 1, 1], padBefore: [1, 0, 0], outSize: [3, 3, 2] },
]; // prettier-ignore

test.each(PROBLEMS.map((p, i) => [i, p] as const))('problem %d: gradients from the definition = finite differences', (_i, p) => {
  const fill = (n: number, k: number) => Float64Array.from({ length: n }, (_, i) => Math.cos(0.7 * i + k));
  const x = fill(p.batch * p.inSize.reduce((a, b) => a * b) * p.inChannels, 0);
  const w = fill(p.filter.reduce((a, b) => a * b) * p.inChannels * p.outChannels, 1);
  const dy = fill(p.batch * p.outSize.reduce((a, b) => a * b) * p.outChannels, 2);
  const { dx, dw } = referenceGradients(p, x, w, dy);
  let nonZero = 0;
  for (let i = 0; i < w.length; i++) expect(dw[i]).toBeCloseTo(finiteDifference(p, x, w, dy, 'w', i), 9);
  for (let i = 0; i < x.length; i++) {
    const fd = finiteDifference(p, x, w, dy, 'x', i);
    expect(dx[i]).toBeCloseTo(fd, 9);
    if (fd !== 0) nonZero++;
  }
  expect(nonZero).toBeGreaterThan(x.length / 2);
});
