import {
  argmaxVoxel, axialSlices, boxMean, brightCentroid, smoothedArgmax, cropAround, minMax, quantile, resize2d, resizeVolume, stackChannels,
  toChannelsLast, tumourCentredInput, zScore,
} from './preprocess';
import { createVolume, Volume, voxelIndex, voxelToWorld } from './volume';

/** Value = x + 10 y + 100 z: every voxel tells where it came from. */
function coordinateVolume(dims: [number, number, number]): Volume {
  const v = createVolume(dims, { spacing: [2, 3, 4], origin: [10, 20, 30] });
  for (let z = 0; z < dims[2]; z++) for (let y = 0; y < dims[1]; y++) for (let x = 0; x < dims[0]; x++) {
    v.data[voxelIndex(dims, x, y, z)] = x + 10 * y + 100 * z;
  }
  return v;
}

describe('preprocessing', () => {
  test('cropAround keeps the voxels around the centre, pads outside, and keeps world positions', () => {
    const v = coordinateVolume([6, 6, 4]);
    const box = cropAround(v, [1, 4, 2], [4, 3, 2], -1);
    expect(box.dims).toEqual([4, 3, 2]);
    // start = centre - floor(size/2) = (-1, 3, 1)
    expect(box.data[voxelIndex(box.dims, 0, 0, 0)]).toBe(-1);
    expect(box.data[voxelIndex(box.dims, 1, 0, 0)]).toBe(0 + 30 + 100);
    expect(box.data[voxelIndex(box.dims, 3, 2, 1)]).toBe(2 + 50 + 200);
    expect(voxelToWorld(box, 1, 0, 0)).toEqual(voxelToWorld(v, 0, 3, 1));
  });

  test('resizeVolume: identity at the same size, linear data stays linear, field of view kept', () => {
    const v = coordinateVolume([4, 4, 2]);
    expect(Array.from(resizeVolume(v, [4, 4, 2]).data)).toEqual(Array.from(v.data));
    const up = resizeVolume(v, [8, 4, 2]);
    expect(up.spacing).toEqual([1, 3, 4]);
    // align_corners=False: output x=3 samples source x=(3.5*0.5-0.5)=1.25
    expect(up.data[voxelIndex(up.dims, 3, 1, 1)]).toBeCloseTo(1.25 + 10 + 100, 5);
    expect(up.data[voxelIndex(up.dims, 0, 0, 0)]).toBe(0); // clamped at the edge
    const down = resizeVolume(v, [2, 2, 1]);
    expect(down.data[0]).toBeCloseTo(0.5 + 5 + 50, 5);
    const corner = voxelToWorld(v, -0.5, -0.5, -0.5);
    const newCorner = voxelToWorld(down, -0.5, -0.5, -0.5);
    newCorner.forEach((c, i) => expect(c).toBeCloseTo(corner[i], 6));
  });

  test('resize2d matches the trilinear resize on one slice', () => {
    const v = coordinateVolume([5, 3, 1]);
    const r = resize2d(v.data, [3, 5], [6, 7]);
    expect(Array.from(r)).toEqual(Array.from(resizeVolume(v, [7, 6, 1]).data));
  });

  test('z-score: mean 0, std 1; nonzero ignores and keeps the background', () => {
    const data = Float32Array.from([0, 0, 2, 4, 6]);
    const all = zScore(data);
    expect(all.reduce((a, b) => a + b, 0)).toBeCloseTo(0, 5);
    const nz = zScore(data, { nonzero: true });
    expect(Array.from(nz).map((x) => Number(x.toFixed(4)))).toEqual([0, 0, -1.2247, 0, 1.2247]);
    expect(Array.from(zScore(Float32Array.from([3, 3])))).toEqual([0, 0]);
  });

  test('min-max to [0, 1], with optional quantile clipping', () => {
    expect(Array.from(minMax(Float32Array.from([2, 4, 6])))).toEqual([0, 0.5, 1]);
    const data = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 1000]);
    const clipped = minMax(data, { upperQuantile: 0.8 });
    expect(quantile(data, 0.8)).toBe(7);
    expect(clipped[9]).toBe(1);
    expect(clipped[7]).toBe(1);
    expect(clipped[3]).toBeCloseTo(3 / 7, 6);
  });

  test('slice selection around a centre and around the brightest region', () => {
    const v = coordinateVolume([3, 2, 5]);
    const s = axialSlices(v, 0, 3);
    expect(s.shape).toEqual([3, 2, 3]);
    expect([s.data[0], s.data[6], s.data[12]]).toEqual([0, 0, 100]); // slice -1 repeats slice 0
    const blob = createVolume([10, 10, 10]);
    for (const [x, y, z] of [[6, 2, 7], [7, 2, 7], [6, 3, 7], [7, 3, 7], [6, 2, 8], [7, 2, 8], [6, 3, 8], [7, 3, 8]]) {
      blob.data[voxelIndex(blob.dims, x, y, z)] = 5;
    }
    blob.data[voxelIndex(blob.dims, 7, 3, 8)] = 6;
    expect(argmaxVoxel(blob)).toEqual([7, 3, 8]);
    expect(brightCentroid(blob, 0.992)).toEqual([6.5, 2.5, 7.5]);
  });

  test('boxMean is avg_pool3d(3, stride 1, padding 1) with zero padding; smoothedArgmax finds the blob, not a spike', () => {
    const v = createVolume([5, 4, 3]);
    v.data.forEach((_, i) => { v.data[i] = (i * 7) % 11; });
    const smoothed = boxMean(v, 1);
    // Brute-force reference at every voxel.
    for (let z = 0; z < 3; z++) for (let y = 0; y < 4; y++) for (let x = 0; x < 5; x++) {
      let sum = 0;
      for (let dz = -1; dz <= 1; dz++) for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const [a, b, c] = [x + dx, y + dy, z + dz];
        if (a >= 0 && a < 5 && b >= 0 && b < 4 && c >= 0 && c < 3) sum += v.data[voxelIndex(v.dims, a, b, c)];
      }
      expect(smoothed.data[voxelIndex(v.dims, x, y, z)]).toBeCloseTo(sum / 27, 5);
    }
    const blob = createVolume([12, 12, 12]);
    blob.data[voxelIndex(blob.dims, 1, 1, 1)] = 100; // a lone spike
    for (let z = 6; z <= 8; z++) for (let y = 6; y <= 8; y++) for (let x = 6; x <= 8; x++) blob.data[voxelIndex(blob.dims, x, y, z)] = 20;
    expect(argmaxVoxel(blob)).toEqual([1, 1, 1]);
    expect(smoothedArgmax(blob, 1)).toEqual([7, 7, 7]);
  });

  test('stacking channels and the channels-last view', () => {
    const a = { data: Float32Array.from([1, 2, 3, 4]), shape: [1, 2, 2] as [number, number, number] };
    const b = { data: Float32Array.from([5, 6, 7, 8, 9, 10, 11, 12]), shape: [2, 2, 2] as [number, number, number] };
    const stacked = stackChannels([a, b]);
    expect(stacked.shape).toEqual([3, 2, 2]);
    expect(Array.from(toChannelsLast(stacked))).toEqual([1, 5, 9, 2, 6, 10, 3, 7, 11, 4, 8, 12]);
    expect(() => stackChannels([a, { data: new Float32Array(3), shape: [1, 1, 3] }])).toThrow(/does not match/);
  });

  test('tumourCentredInput: [C*S, H, W] centred on the bright region of the chosen channel', () => {
    const dims: [number, number, number] = [16, 16, 8];
    const flair = createVolume(dims);
    const t1 = coordinateVolume(dims);
    flair.data.fill(1);
    for (let z = 4; z <= 5; z++) for (let y = 10; y <= 11; y++) for (let x = 3; x <= 4; x++) {
      flair.data[voxelIndex(dims, x, y, z)] = 50;
    }
    const input = tumourCentredInput([t1, flair], { slices: 3, size: [4, 4], centreFrom: 1, normalisation: 'none', centreQuantile: 1 - 8 / 2048 });
    expect(input.centre).toEqual([3.5, 10.5, 4.5]);
    expect(input.shape).toEqual([6, 4, 4]);
    // centre rounds to (4, 11, 5): crop starts at x=2, y=9, z=4; first T1 value = 2 + 90 + 400.
    expect(input.data[0]).toBe(492);
    // FLAIR block: slice index 1 of FLAIR is channel 4; (x=3..4,y=10..11) -> crop (1..2, 1..2).
    expect(input.data[4 * 16 + 1 * 4 + 1]).toBe(50);
    const resized = tumourCentredInput([t1, flair], { slices: 1, size: [2, 2], crop: [4, 4], centre: [4, 11, 5], normalisation: 'zscore' });
    expect(resized.shape).toEqual([2, 2, 2]);
  });
});
