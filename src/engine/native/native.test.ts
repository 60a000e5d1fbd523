/**
 * The native addon itself: it is built (CI runs `npm run build:native` first), loads, agrees with the float64
 * reference, and turns every malformed call into a JavaScript error instead of touching memory it was not given.
 * The results of the kernels inside tfjs are checked in ../kernels/conv2d.test.ts and conv3d.test.ts.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { nativeConvSelfCheck } from '../kernels/conv-native';
import { nativePoolSelfCheck } from '../kernels/pool-native';
import { nativeBatchNormSelfCheck } from '../kernels/batch-norm-native';
import { nativeGroupNormSelfCheck } from '../kernels/group-norm-native';
import * as os from 'os';
import { loadAddon, loadNativeKernels, NATIVE_ADDON_PATH, NATIVE_API_VERSION, NativeKernels, THREADS_ENV_VAR, threadsSetting } from './index';

function addon(): NativeKernels {
  const load = loadNativeKernels();
  if (!load.ok) throw new Error(`native kernels unavailable: ${load.detail}`);
  return load.kernels;
}

/** 1 sample, 4x5 image, 2 channels, 3x3 filter, 3 output channels, stride 1, no padding -> 2x3 output. */
const GEOMETRY = [1, 1, 4, 5, 2, 1, 2, 3, 3, 1, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0];
const X = 1 * 4 * 5 * 2;
const W = 3 * 3 * 2 * 3;
const Y = 2 * 3 * 3;

test('the addon is built, loads on this CPU and matches the float64 reference', () => {
  expect(fs.existsSync(NATIVE_ADDON_PATH)).toBe(true);
  expect(loadNativeKernels()).toMatchObject({ ok: true, detail: expect.stringContaining('AVX2+FMA') });
  expect(nativeConvSelfCheck(addon())).toBeUndefined();
  expect(nativePoolSelfCheck(addon())).toBeUndefined();
  expect(nativeBatchNormSelfCheck(addon())).toBeUndefined();
});

test('the start-up self-checks catch kernels that compute wrong values', () => {
  const real = addon();
  // Right forward, filter gradient off by a factor: the check must name the filter gradient.
  const wrongFilter: NativeKernels = {
    ...real,
    convBackpropFilter: (g, x, dy, dw) => {
      real.convBackpropFilter(g, x, dy, dw);
      dw[dw.length - 1] *= 1.01;
    },
  };
  expect(nativeConvSelfCheck(wrongFilter)).toMatch(/^filter gradient wrong at \d+ of problem 0$/);
  const zeroForward: NativeKernels = { ...real, convForward: (_g, _x, _w, y) => y.fill(0) };
  expect(nativeConvSelfCheck(zeroForward)).toMatch(/^forward wrong at \d+ of problem 0$/);
  // A pool gradient that sends dy to every tied maximum instead of the first.
  const noTieRule: NativeKernels = {
    ...real,
    maxPoolBackprop: (g, x, y, dy, dx) => {
      real.maxPoolBackprop(g, x, y, dy, dx);
      dx[dx.findIndex((v) => v === 0)] += 1;
    },
  };
  expect(nativePoolSelfCheck(noTieRule)).toMatch(/^max pool gradient wrong at \d+/);
  // Batch norm whose input gradient forgets the mean of dz (a plain scale of dy): the check names the input gradient.
  const noCentring: NativeKernels = {
    ...real,
    batchNormBackward: (dy, x, gamma, beta, mean, variance, eps, relu, dx, dgamma, dbeta) => {
      real.batchNormBackward(dy, x, gamma, beta, mean, variance, eps, relu, dx, dgamma, dbeta);
      dx[5] += 0.01;
    },
  };
  expect(nativeBatchNormSelfCheck(noCentring)).toMatch(/^batch norm input gradient wrong at 5$/);
  const wrongVariance: NativeKernels = {
    ...real,
    batchNormForward: (x, gamma, beta, eps, relu, y, mean, variance) => {
      real.batchNormForward(x, gamma, beta, eps, relu, y, mean, variance);
      variance[3] *= 1.001;
    },
  };
  expect(nativeBatchNormSelfCheck(wrongVariance)).toMatch(/^batch norm statistics wrong at channel 3$/);
  // Group norm whose input gradient is off at one element, and whose statistics come from one channel too few.
  const groupOff: NativeKernels = {
    ...real,
    groupNormBackward: (dy, x, gamma, beta, mean, variance, eps, relu, samples, groups, dx, dgamma, dbeta) => {
      real.groupNormBackward(dy, x, gamma, beta, mean, variance, eps, relu, samples, groups, dx, dgamma, dbeta);
      dx[7] += 0.01;
    },
  };
  expect(nativeGroupNormSelfCheck(groupOff)).toMatch(/^group norm input gradient wrong at 7$/);
  const groupStats: NativeKernels = {
    ...real,
    groupNormForward: (x, gamma, beta, eps, relu, samples, groups, y, mean, variance) => {
      real.groupNormForward(x, gamma, beta, eps, relu, samples, groups, y, mean, variance);
      mean[4] += 1e-3;
    },
  };
  expect(nativeGroupNormSelfCheck(groupStats)).toMatch(/^group norm statistics wrong at sample 1 group 1$/);
  expect(nativeGroupNormSelfCheck(real)).toBeUndefined();
});

/** 1 sample, 4x4 image, 2 channels, 2x2 windows with stride 2 -> 2x2 output. */
const POOL = [1, 1, 4, 4, 2, 1, 2, 2, 1, 2, 2, 1, 2, 2, 0, 0, 0];

test('max pool forward and gradient give the hand-computable answer', () => {
  // x[h, w, c] = (c ? -1 : 1) * (4h + w): channel 0's window max is its bottom-right tap, channel 1's its top-left.
  const x = Float32Array.from({ length: 32 }, (_, i) => (i % 2 ? -1 : 1) * Math.floor(i / 2));
  const y = new Float32Array(8);
  addon().maxPoolForward(Int32Array.from(POOL), x, y);
  expect(Array.from(y)).toEqual([5, -0, 7, -2, 13, -8, 15, -10]);
  const dx = new Float32Array(32).fill(9);
  addon().maxPoolBackprop(Int32Array.from(POOL), x, y, Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), dx);
  const expected = new Array(32).fill(0);
  [[5, 0, 1], [0, 1, 2], [7, 0, 3], [2, 1, 4], [13, 0, 5], [8, 1, 6], [15, 0, 7], [10, 1, 8]].forEach(([pixel, c, g]) => (expected[pixel * 2 + c] = g));
  expect(Array.from(dx)).toEqual(expected);
});

test('a simple forward conv gives the hand-computable answer', () => {
  // x = 1 everywhere, w = 1 everywhere: every output is the patch length, 3*3*2 = 18.
  const y = new Float32Array(Y).fill(-1);
  addon().convForward(Int32Array.from(GEOMETRY), new Float32Array(X).fill(1), new Float32Array(W).fill(1), y);
  expect(Array.from(y)).toEqual(new Array(Y).fill(18));
});

test('a column-block copy writes the block and nothing else', () => {
  const dst = new Float32Array(8).fill(-1);
  addon().copyColumns(Float32Array.from([1, 2, 3, 4, 5, 6]), 3, 1, dst, 4, 2, 2);
  expect(Array.from(dst)).toEqual([-1, -1, 2, 3, -1, -1, 5, 6]);
});

test('column sums of a small matrix', () => {
  const out = new Float32Array(3);
  addon().sumLeadingAxes(Float32Array.from([1, 2, 3, 10, 20, 30]), out);
  expect(Array.from(out)).toEqual([11, 22, 33]);
});

test('the AVX2 tiles (FEDBIOMED_TS_NATIVE_AVX512=0) give the same bits as the default ones', () => {
  // 2 samples of 5x9x7, 3x3 filter to 17 channels (a 16-wide panel + 1), stride 1, padded, then stride 2 unpadded:
  // the gathered, in-place and stride-1 input-gradient paths, in tiles of 12 rows and tails.
  const script = String.raw`
    const a = require(process.argv[1]);
    const out = [];
    for (const g of [[2, 1, 5, 9, 7, 1, 5, 9, 17, 1, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1, 1], [2, 1, 5, 9, 7, 1, 2, 4, 17, 1, 3, 3, 1, 2, 2, 1, 1, 1, 0, 0, 0]]) {
      const size = (d, h, w, c) => g[0] * d * h * w * c;
      const fill = (n, k) => Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + k));
      const x = fill(size(g[1], g[2], g[3], g[4]), 0), w = fill(9 * g[4] * g[8], 1), dy = fill(size(g[5], g[6], g[7], g[8]), 2);
      const y = new Float32Array(dy.length), dw = new Float32Array(w.length), dx = new Float32Array(x.length);
      a.convForward(Int32Array.from(g), x, w, y);
      a.convBackpropFilter(Int32Array.from(g), x, dy, dw);
      a.convBackpropInput(Int32Array.from(g), dy, w, dx);
      for (const t of [y, dw, dx]) out.push(Buffer.from(t.buffer).toString('base64'));
    }
    console.log(JSON.stringify({ avx512: a.avx512, out }));`;
  const run = (setting: string | undefined) => {
    const env = { ...process.env };
    if (setting === undefined) delete env.FEDBIOMED_TS_NATIVE_AVX512;
    else env.FEDBIOMED_TS_NATIVE_AVX512 = setting;
    const child = spawnSync(process.execPath, ['-e', script, NATIVE_ADDON_PATH], { env, encoding: 'utf8' });
    expect(child.stderr).toBe('');
    return JSON.parse(child.stdout) as { avx512: boolean; out: string[] };
  };
  const avx2 = run('0');
  expect(avx2.avx512).toBe(false);
  const preferred = run(undefined);
  expect(preferred.out).toEqual(avx2.out);
  expect(preferred.out.every((b64) => Buffer.from(b64, 'base64').some((byte) => byte !== 0))).toBe(true);
});

describe('threads', () => {
  // 4 samples of 9x8x5, 3x3 filter to 7 channels, stride 1 with 1 pixel of padding: gathered and padded paths.
  const g = Int32Array.from([4, 1, 9, 8, 5, 1, 9, 8, 7, 1, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1, 1]);
  const values = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + k));
  const x = values(4 * 9 * 8 * 5, 0);
  const w = values(3 * 3 * 5 * 7, 1);
  const dy = values(4 * 9 * 8 * 7, 2);
  const run = (threads: number) => {
    addon().setThreads(threads, 1); // split even this small problem
    const y = new Float32Array(dy.length);
    const dw = new Float32Array(w.length);
    const dx = new Float32Array(x.length);
    addon().convForward(g, x, w, y);
    addon().convBackpropFilter(g, x, dy, dw);
    addon().convBackpropInput(g, dy, w, dx);
    return { y, dw, dx };
  };
  afterAll(() => addon().setThreads(threadsSetting()));

  test('split by sample over 2 and 3 threads, every result has the same bits as on 1 thread', () => {
    const one = run(1);
    for (const threads of [2, 3]) {
      const many = run(threads);
      expect(addon().threads()).toBe(threads);
      expect(Buffer.from(many.y.buffer)).toEqual(Buffer.from(one.y.buffer));
      expect(Buffer.from(many.dx.buffer)).toEqual(Buffer.from(one.dx.buffer));
      // Per-sample partial filter gradients, added in sample order whatever the split.
      expect(Buffer.from(many.dw.buffer)).toEqual(Buffer.from(one.dw.buffer));
    }
  });

  test('bias sums over more rows than one chunk have the same bits on 1 and 3 threads', () => {
    const rows = 3 * 4096 + 17;
    const data = values(rows * 5, 3);
    const sums = (threads: number) => {
      addon().setThreads(threads, 1);
      const out = new Float32Array(5);
      addon().sumLeadingAxes(data, out);
      return out;
    };
    expect(Buffer.from(sums(3).buffer)).toEqual(Buffer.from(sums(1).buffer));
  });

  test.each(['0', '65', '1.5', 'two'])(`${THREADS_ENV_VAR}=%s is refused with a clear error`, (value) => {
    const previous = process.env[THREADS_ENV_VAR];
    process.env[THREADS_ENV_VAR] = value;
    try {
      expect(() => threadsSetting()).toThrow(`${THREADS_ENV_VAR}=${value} is not an integer from 1 to 64`);
    } finally {
      if (previous === undefined) delete process.env[THREADS_ENV_VAR];
      else process.env[THREADS_ENV_VAR] = previous;
    }
  });

  test('setThreads refuses what is not an integer from 1 to 64', () => {
    expect(() => addon().setThreads(0)).toThrow('setThreads: 0 is not an integer from 1 to 64');
    expect(() => addon().setThreads(2.5)).toThrow('setThreads: 2.5 is not an integer from 1 to 64');
    expect(() => (addon().setThreads as unknown as (v: unknown) => void)('2')).toThrow('setThreads expects a number');
    expect(() => addon().setThreads(2, 0)).toThrow('setThreads: workPerThread must be an integer >= 1');
    expect(() => addon().setThreads(2, 0.5)).toThrow('setThreads: workPerThread must be an integer >= 1');
  });
});

/** A first Adam step's constants (see NativeKernels.adamUpdate). */
const ADAM_STEP = Float64Array.from([0.9, 0.1, 0.999, 0.001, Math.sqrt(0.001), 1e-8, 1e-3 / 0.1, 0, 1, 0, 1]);

describe('malformed calls are errors that name the problem', () => {
  const f = (n: number) => new Float32Array(n);
  const x = new Float32Array(X);
  const w = new Float32Array(W);
  const y = new Float32Array(Y);
  const cases: Array<[string, () => void, RegExp]> = [
    ['too few arguments', () => (addon().convForward as unknown as (...a: unknown[]) => void)(Int32Array.from(GEOMETRY), x, w), /expected \(geometry, input, input, output\)/],
    ['geometry not an Int32Array', () => addon().convForward(Float32Array.from(GEOMETRY) as unknown as Int32Array, x, w, y), /Int32Array of 21 fields/],
    ['geometry too short', () => addon().convForward(Int32Array.from(GEOMETRY.slice(1)), x, w, y), /Int32Array of 21 fields/],
    ['a zero size', () => addon().convForward(Int32Array.from([0, ...GEOMETRY.slice(1)]), x, w, y), /geometry field 0 is 0, must be in \[1, 1048576\]/],
    ['an absurd padding', () => addon().convForward(Int32Array.from([...GEOMETRY.slice(0, 20), -(1 << 21)]), x, w, y), /geometry field 20 is -2097152, must be in \[-1048576, 1048576\]/],
    ['an absurd size', () => addon().convForward(Int32Array.from([1, 1, 4, 1 << 30, ...GEOMETRY.slice(4)]), x, w, y), /geometry field 3 is 1073741824/],
    ['a Float64Array input', () => addon().convForward(Int32Array.from(GEOMETRY), new Float64Array(X) as unknown as Float32Array, w, y), /convForward: argument 2 must be a Float32Array/],
    ['an output one float short', () => addon().convForward(Int32Array.from(GEOMETRY), x, w, new Float32Array(Y - 1)), /convForward: argument 4 has 17 floats, the geometry needs 18/],
    ['a filter gradient of the wrong size', () => addon().convBackpropFilter(Int32Array.from(GEOMETRY), x, new Float32Array(Y), new Float32Array(W + 1)), /convBackpropFilter: argument 4 has 55 floats, the geometry needs 54/],
    ['dy of the wrong size', () => addon().convBackpropInput(Int32Array.from(GEOMETRY), new Float32Array(Y * 2), w, new Float32Array(X)), /convBackpropInput: argument 2 has 36 floats, the geometry needs 18/],
    ['a pool call with conv arity', () => (addon().maxPoolForward as unknown as (...a: unknown[]) => void)(Int32Array.from(POOL), new Float32Array(32), new Float32Array(8), new Float32Array(8)), /expected \(geometry, x, y\)/],
    ['a pool geometry of conv length', () => addon().maxPoolForward(Int32Array.from(GEOMETRY), new Float32Array(32), new Float32Array(8)), /Int32Array of 17 fields/],
    ['a pool dx of the wrong size', () => addon().maxPoolBackprop(Int32Array.from(POOL), new Float32Array(32), new Float32Array(8), new Float32Array(8), new Float32Array(31)), /maxPoolBackprop: argument 5 has 31 floats, the geometry needs 32/],
    ['a pool dy of the wrong size', () => addon().maxPoolBackprop(Int32Array.from(POOL), new Float32Array(32), new Float32Array(8), new Float32Array(9), new Float32Array(32)), /maxPoolBackprop: argument 4 has 9 floats, the geometry needs 8/],
    ['a bias ReLU over partial rows', () => addon().biasReluForward(new Float32Array(10), new Float32Array(3), new Float32Array(10)), /biasReluForward: 10 values are not whole rows of 3 channels/],
    ['a bias ReLU output of the wrong size', () => addon().biasReluForward(new Float32Array(12), new Float32Array(3), new Float32Array(9)), /biasReluForward: argument 3 has 9 floats, argument 1 has 12/],
    ['a bias ReLU gradient with y of the wrong size', () => addon().biasReluBackward(new Float32Array(12), new Float32Array(6), new Float32Array(12), new Float32Array(3)), /biasReluBackward: argument 2 has 6 floats, argument 1 has 12/],
    ['a bias ReLU gradient with three arguments', () => (addon().biasReluBackward as unknown as (...a: unknown[]) => void)(new Float32Array(3), new Float32Array(3), new Float32Array(3)), /biasReluBackward expects 4 Float32Arrays/],
    ['a sum whose input is not whole rows', () => addon().sumLeadingAxes(new Float32Array(10), new Float32Array(3)), /sumLeadingAxes: x has 10 floats, not a whole number of rows of 3/],
    ['a sum into nothing', () => addon().sumLeadingAxes(new Float32Array(10), new Float32Array(0)), /not a whole number of rows of 0/],
    ['a sum of a plain array', () => addon().sumLeadingAxes([1, 2] as unknown as Float32Array, new Float32Array(1)), /must be Float32Arrays/],
    ['a batch norm with seven arguments', () => (addon().batchNormForward as unknown as (...a: unknown[]) => void)(f(12), f(3), f(3), 1e-5, true, f(12), f(3)), /batchNormForward expects 8 arguments/],
    ['a batch norm over partial rows', () => addon().batchNormForward(f(10), f(3), f(3), 1e-5, false, f(10), f(3), f(3)), /batchNormForward: 10 values are not whole rows of 3 channels/],
    ['a batch norm without channels', () => addon().batchNormForward(f(12), f(0), f(0), 1e-5, false, f(12), f(0), f(0)), /not whole rows of 0 channels/],
    ['a batch norm with beta of the wrong size', () => addon().batchNormForward(f(12), f(3), f(4), 1e-5, false, f(12), f(3), f(3)), /batchNormForward: argument 3 has 4 floats, expected 3/],
    ['a batch norm output of the wrong size', () => addon().batchNormForward(f(12), f(3), f(3), 1e-5, false, f(11), f(3), f(3)), /batchNormForward: argument 6 has 11 floats, expected 12/],
    ['a batch norm variance of the wrong size', () => addon().batchNormForward(f(12), f(3), f(3), 1e-5, false, f(12), f(3), f(2)), /batchNormForward: argument 8 has 2 floats, expected 3/],
    ['a negative eps', () => addon().batchNormForward(f(12), f(3), f(3), -1, false, f(12), f(3), f(3)), /batchNormForward: eps \(argument 4\) must be a finite number >= 0/],
    ['a NaN eps', () => addon().batchNormForward(f(12), f(3), f(3), NaN, false, f(12), f(3), f(3)), /eps \(argument 4\) must be a finite number >= 0/],
    ['relu not a boolean', () => addon().batchNormForward(f(12), f(3), f(3), 1e-5, 1 as unknown as boolean, f(12), f(3), f(3)), /batchNormForward: relu \(argument 5\) must be a boolean/],
    ['a batch norm of a Float64Array', () => addon().batchNormForward(new Float64Array(12) as unknown as Float32Array, f(3), f(3), 1e-5, false, f(12), f(3), f(3)), /batchNormForward: argument 1 must be a Float32Array/],
    ['a batch norm gradient with x of the wrong size', () => addon().batchNormBackward(f(12), f(9), f(3), f(3), f(3), f(3), 1e-5, true, f(12), f(3), f(3)), /batchNormBackward: argument 2 has 9 floats, expected 12/],
    ['a batch norm gradient with dgamma of the wrong size', () => addon().batchNormBackward(f(12), f(12), f(3), f(3), f(3), f(3), 1e-5, true, f(12), f(1), f(3)), /batchNormBackward: argument 10 has 1 floats, expected 3/],
    ['a batch norm gradient with mean of the wrong size', () => addon().batchNormBackward(f(12), f(12), f(3), f(3), f(6), f(3), 1e-5, true, f(12), f(3), f(3)), /batchNormBackward: argument 5 has 6 floats, expected 3/],
    ['a batch norm gradient with eps in the wrong place', () => (addon().batchNormBackward as unknown as (...a: unknown[]) => void)(f(12), f(12), f(3), f(3), f(3), 1e-5, f(3), true, f(12), f(3), f(3)), /batchNormBackward: eps \(argument 7\) must be a finite number >= 0/],
    ['a group norm with nine arguments', () => (addon().groupNormForward as unknown as (...a: unknown[]) => void)(f(24), f(4), f(4), 1e-5, false, 2, 2, f(24), f(4)), /groupNormForward expects 10 arguments/],
    ['a group norm whose groups do not divide the channels', () => addon().groupNormForward(f(24), f(4), f(4), 1e-5, false, 2, 3, f(24), f(6), f(6)), /groupNormForward: 3 groups do not divide 4 channels/],
    ['a group norm over partial samples', () => addon().groupNormForward(f(20), f(4), f(4), 1e-5, false, 3, 2, f(20), f(6), f(6)), /groupNormForward: 20 values are not 3 samples of whole rows of 4 channels/],
    ['a group norm of nothing', () => addon().groupNormForward(f(0), f(4), f(4), 1e-5, false, 1, 2, f(0), f(2), f(2)), /0 values are not 1 samples/],
    ['a group norm with zero groups', () => addon().groupNormForward(f(24), f(4), f(4), 1e-5, false, 2, 0, f(24), f(4), f(4)), /groupNormForward: groups \(argument 7\) must be an integer >= 1/],
    ['a group norm with fractional samples', () => addon().groupNormForward(f(24), f(4), f(4), 1e-5, false, 1.5, 2, f(24), f(4), f(4)), /groupNormForward: samples \(argument 6\) must be an integer >= 1/],
    ['a group norm with relu not a boolean', () => addon().groupNormForward(f(24), f(4), f(4), 1e-5, 0 as unknown as boolean, 2, 2, f(24), f(4), f(4)), /groupNormForward: relu \(argument 5\) must be a boolean/],
    ['a group norm with a negative eps', () => addon().groupNormForward(f(24), f(4), f(4), -1, false, 2, 2, f(24), f(4), f(4)), /groupNormForward: eps \(argument 4\) must be a finite number >= 0/],
    ['a group norm mean of the wrong size', () => addon().groupNormForward(f(24), f(4), f(4), 1e-5, false, 2, 2, f(24), f(2), f(4)), /groupNormForward: argument 9 has 2 floats, expected 4/],
    ['a group norm output of the wrong size', () => addon().groupNormForward(f(24), f(4), f(4), 1e-5, false, 2, 2, f(23), f(4), f(4)), /groupNormForward: argument 8 has 23 floats, expected 24/],
    ['a group norm of a Float64Array', () => addon().groupNormForward(new Float64Array(24) as unknown as Float32Array, f(4), f(4), 1e-5, false, 2, 2, f(24), f(4), f(4)), /groupNormForward: argument 1 must be a Float32Array/],
    ['a group norm gradient with x of the wrong size', () => addon().groupNormBackward(f(24), f(16), f(4), f(4), f(4), f(4), 1e-5, true, 2, 2, f(24), f(4), f(4)), /groupNormBackward: argument 2 has 16 floats, expected 24/],
    ['a group norm gradient with variance of the wrong size', () => addon().groupNormBackward(f(24), f(24), f(4), f(4), f(4), f(5), 1e-5, true, 2, 2, f(24), f(4), f(4)), /groupNormBackward: argument 6 has 5 floats, expected 4/],
    ['a group norm gradient with dbeta of the wrong size', () => addon().groupNormBackward(f(24), f(24), f(4), f(4), f(4), f(4), 1e-5, true, 2, 2, f(24), f(4), f(3)), /groupNormBackward: argument 13 has 3 floats, expected 4/],
    ['a copy with six arguments', () => (addon().copyColumns as unknown as (...a: unknown[]) => void)(f(6), 3, 0, f(4), 2, 0), /copyColumns expects \(src, srcCols, srcOffset, dst, dstCols, dstOffset, width\)/],
    ['a copy from a plain array', () => addon().copyColumns([1, 2] as unknown as Float32Array, 2, 0, f(2), 2, 0, 2), /copyColumns: argument 1 must be a Float32Array/],
    ['a copy with a fractional width', () => addon().copyColumns(f(6), 3, 0, f(4), 2, 0, 1.5), /copyColumns: argument 7 must be an integer >= 0/],
    ['a copy with a negative offset', () => addon().copyColumns(f(6), 3, -1, f(4), 2, 0, 1), /copyColumns: argument 3 must be an integer >= 0/],
    ['a copy over partial rows', () => addon().copyColumns(f(7), 3, 0, f(4), 2, 0, 1), /each array must be whole rows of its column count/],
    ['a copy between different row counts', () => addon().copyColumns(f(6), 3, 0, f(6), 2, 0, 1), /copyColumns: src has 2 rows, dst 3/],
    ['a copy that leaves the source rows', () => addon().copyColumns(f(6), 3, 2, f(4), 2, 0, 2), /the block leaves the rows/],
    ['a copy that leaves the destination rows', () => addon().copyColumns(f(6), 3, 0, f(4), 2, 1, 2), /the block leaves the rows/],
    ['an Adam step with seven arguments', () => (addon().adamUpdate as unknown as (...a: unknown[]) => void)(ADAM_STEP, f(4), f(4), null, null, f(4), f(4)), /adamUpdate expects \(step, p, g, m, v, pOut, mOut, vOut\)/],
    ['an Adam step with a short step array', () => addon().adamUpdate(ADAM_STEP.subarray(1), f(4), f(4), null, null, f(4), f(4), f(4)), /step must be a Float64Array of 11 fields/],
    ['an Adam step with a NaN constant', () => addon().adamUpdate(Float64Array.from([NaN, ...ADAM_STEP.subarray(1)]), f(4), f(4), null, null, f(4), f(4), f(4)), /step fields must be finite numbers/],
    ['an Adam step with an unknown decay mode', () => addon().adamUpdate(Float64Array.from([...ADAM_STEP.subarray(0, 9), 3, 1]), f(4), f(4), null, null, f(4), f(4), f(4)), /mode must be 0, 1 or 2 and first 0 or 1/],
    ['a later Adam step without moments', () => addon().adamUpdate(Float64Array.from([...ADAM_STEP.subarray(0, 10), 0]), f(4), f(4), null, null, f(4), f(4), f(4)), /adamUpdate: argument 4 must be a Float32Array$/],
    ['an Adam step with a gradient of the wrong size', () => addon().adamUpdate(ADAM_STEP, f(4), f(5), null, null, f(4), f(4), f(4)), /adamUpdate: argument 3 has 5 floats, p has 4/],
    ['an Adam step with an output of the wrong size', () => addon().adamUpdate(ADAM_STEP, f(4), f(4), null, null, f(4), f(4), f(3)), /adamUpdate: argument 8 has 3 floats, p has 4/],
  ]; // prettier-ignore
  test.each(cases)('%s', (_name, call, message) => {
    expect(call).toThrow(message);
  });

  test('the output is left untouched by a refused call', () => {
    const out = new Float32Array(Y).fill(7);
    expect(() => addon().convForward(Int32Array.from(GEOMETRY), x, new Float32Array(W - 1), out)).toThrow(/argument 3/);
    expect(Array.from(out)).toEqual(new Array(Y).fill(7));
  });
});

describe('an addon that is missing, stale or broken is refused with the reason, never half used', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-addon-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const standIn = (name: string, source: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, source);
    return file;
  };

  test('the real one carries the API version these sources expect', () => {
    expect((require(NATIVE_ADDON_PATH) as { apiVersion: number }).apiVersion).toBe(NATIVE_API_VERSION);
  });

  test('missing', () => {
    expect(loadAddon(path.join(dir, 'none.node'))).toEqual({ ok: false, detail: expect.stringContaining('not built') });
  });

  test('built from older sources (e.g. a git pull without npm ci)', () => {
    const file = standIn('old.js', `module.exports = { apiVersion: ${NATIVE_API_VERSION - 1}, supported: true };`);
    expect(loadAddon(file)).toEqual({
      ok: false,
      detail: `native kernels out of date (built for API ${NATIVE_API_VERSION - 1}, these sources need ${NATIVE_API_VERSION}); rebuild with npm run build:native`,
    });
  });

  test('failing to load', () => {
    const file = standIn('broken.js', 'throw new Error("undefined symbol: napi_something");');
    expect(loadAddon(file)).toEqual({
      ok: false,
      detail: 'native kernels failed to load (undefined symbol: napi_something); rebuild with npm run build:native',
    });
  });

  test('on a CPU without AVX2/FMA', () => {
    const file = standIn('old-cpu.js', `module.exports = { apiVersion: ${NATIVE_API_VERSION}, supported: false };`);
    expect(loadAddon(file)).toEqual({ ok: false, detail: 'native kernels need AVX2 and FMA, which this CPU lacks' });
  });
});

describe('build.js', () => {
  const script = path.join(__dirname, 'build.js');

  test('without a compiler it explains the fallback, exits 0, and keeps the existing addon', () => {
    const before = fs.statSync(NATIVE_ADDON_PATH).mtimeMs;
    const run = spawnSync(process.execPath, [script], { env: { ...process.env, CC: '/nonexistent/cc' }, encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stderr).toMatch(/native kernels not built: \/nonexistent\/cc could not run .*falls back to the wasm kernels/s);
    expect(fs.statSync(NATIVE_ADDON_PATH).mtimeMs).toBe(before);
  });

  test('with --require the same failure exits 1 (CI must not fall back silently)', () => {
    const run = spawnSync(process.execPath, [script, '--require'], { env: { ...process.env, CC: '/nonexistent/cc' }, encoding: 'utf8' });
    expect(run.status).toBe(1);
  });
});
