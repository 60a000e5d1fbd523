import { Aggregator, StreamingFedAvg, federatedAverage, normaliseAggregator, WeightMap, AggregationError } from './index';
import { AdaptiveServerOptimizer } from './server-optimizer';
import { decodedWeights, recordedHex, weightsHex } from '../testing/vectors';

function randomWeights(seed: number, shapes: Record<string, number[]>): WeightMap {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648 - 0.5;
  };
  const out: WeightMap = new Map();
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = rand() * 4;
    out.set(name, { dtype: 'float32', shape, data });
  }
  return out;
}

describe('StreamingFedAvg', () => {
  it('reproduces the recorded Python FedAverage bytes (aggregated_params_c45e = mean of node_params_4cb8, 62ae)', () => {
    const agg = new StreamingFedAvg();
    agg.add('node_peer1', decodedWeights('node_params_4cb80715-b55b-4038-a37a-7ed730549c93.mpk'), 36);
    agg.add('node_peer2', decodedWeights('node_params_62aefac0-4368-40a5-b3ab-d3819e34f9b3.mpk'), 36);
    expect(weightsHex(agg.finalize())).toEqual(recordedHex('aggregated_params_c45e660c-97e8-4d8e-82d0-de0a3d1effe8.mpk'));
  });

  it('the float32 accumulator (Python arithmetic) reproduces the recorded bytes too, and weights by sample_size', () => {
    const avg = federatedAverage(
      [
        { nodeId: 'node_peer1', weights: decodedWeights('node_params_4cb80715-b55b-4038-a37a-7ed730549c93.mpk'), sampleSize: 36 },
        { nodeId: 'node_peer2', weights: decodedWeights('node_params_62aefac0-4368-40a5-b3ab-d3819e34f9b3.mpk'), sampleSize: 36 },
      ],
      'float32',
    );
    expect(weightsHex(avg)).toEqual(recordedHex('aggregated_params_c45e660c-97e8-4d8e-82d0-de0a3d1effe8.mpk'));
    const a = randomWeights(5, { w: [64] });
    const b = randomWeights(6, { w: [64] });
    const f32 = federatedAverage([{ nodeId: 'a', weights: a, sampleSize: 0 }, { nodeId: 'a2', weights: a, sampleSize: 10 }, { nodeId: 'b', weights: b, sampleSize: 30 }], 'float32');
    for (let i = 0; i < 64; i++) {
      const ref = 0.25 * (a.get('w')!.data[i] as number) + 0.75 * (b.get('w')!.data[i] as number);
      expect(Math.abs((f32.get('w')!.data[i] as number) - ref)).toBeLessThan(1e-6);
    }
    expect(() => new Aggregator({ name: 'fedavg', accumulator: 'float16' as never })).toThrow(/accumulator must be/);
    expect(new Aggregator({ name: 'fedavg', accumulator: 'float32' }).beginRound().precision).toBe('float32');
  });

  it('reproduces the second recorded round too (aggregated_params_8c6d from node_params_77a7, a0e5)', () => {
    const avg = federatedAverage([
      { nodeId: 'node_peer1', weights: decodedWeights('node_params_77a7b64e-11a4-4e9e-818c-ad7292d372ca.mpk'), sampleSize: 36 },
      { nodeId: 'node_peer2', weights: decodedWeights('node_params_a0e52fa4-c0c1-464b-8932-119d36c35fad.mpk'), sampleSize: 36 },
    ]);
    expect(weightsHex(avg)).toEqual(recordedHex('aggregated_params_8c6d816a-9f70-4655-a40e-b5d6aab007e8.mpk'));
  });

  it('weights by sample_size: matches a float64 reference average within float32 rounding', () => {
    const shapes = { 'fc1.weight': [8, 4], 'fc1.bias': [8], 'bn.num_batches_tracked': [] };
    const nodes = [3, 50, 17].map((size, i) => ({ nodeId: `n${i}`, weights: randomWeights(i + 1, shapes), sampleSize: size }));
    // int64 buffer in one reply, as PyTorch sends num_batches_tracked
    nodes[1].weights.set('bn.num_batches_tracked', { dtype: 'int64', shape: [], data: new BigInt64Array([7n]) });
    nodes[0].weights.set('bn.num_batches_tracked', { dtype: 'int64', shape: [], data: new BigInt64Array([3n]) });
    nodes[2].weights.set('bn.num_batches_tracked', { dtype: 'int64', shape: [], data: new BigInt64Array([5n]) });
    const avg = federatedAverage(nodes);
    const total = 3 + 50 + 17;
    for (const [name, t] of avg) {
      if (name === 'bn.num_batches_tracked') continue;
      expect(t.dtype).toBe('float32');
      for (let i = 0; i < t.data.length; i++) {
        let ref = 0;
        for (const n of nodes) ref += (n.sampleSize / total) * Number(n.weights.get(name)!.data[i]);
        expect(Math.abs(Number(t.data[i]) - ref)).toBeLessThanOrEqual(4e-7 * Math.max(1, Math.abs(ref)));
      }
    }
    // Integer buffers stay integer: the weighted mean 6.34 rounded, as int64.
    const tracked = avg.get('bn.num_batches_tracked')!;
    expect(tracked.dtype).toBe('int64');
    expect(tracked.shape).toEqual([]);
    expect(Array.from(tracked.data as BigInt64Array)).toEqual([BigInt(Math.round((3 * 3 + 7 * 50 + 5 * 17) / total))]);
    const f32 = federatedAverage(nodes, 'float32').get('bn.num_batches_tracked')!;
    expect([f32.dtype, Array.from(f32.data as BigInt64Array)]).toEqual(['int64', [6n]]);
  });

  it('rejects a reply with a missing key or a wrong shape without corrupting the average', () => {
    const a = randomWeights(1, { w: [2, 2], b: [2] });
    const b = randomWeights(2, { w: [2, 2], b: [2] });
    const agg = new StreamingFedAvg();
    agg.add('a', a, 10);
    expect(() => agg.add('bad1', randomWeights(3, { w: [2, 2] }), 10)).toThrow(/bad1: parameter b is missing/);
    expect(() => agg.add('bad2', randomWeights(3, { w: [4], b: [2] }), 10)).toThrow(/bad2: parameter w has shape \[4\], expected \[2, 2\]/);
    expect(() => agg.add('a', b, 10)).toThrow(/already aggregated/);
    agg.add('b', b, 30);
    const out = agg.finalize();
    expect(agg.contributors.map((c) => c.nodeId)).toEqual(['a', 'b']);
    const expected = Math.fround(0.25 * (a.get('w')!.data[0] as number) + 0.75 * (b.get('w')!.data[0] as number));
    expect(out.get('w')!.data[0]).toBeCloseTo(expected, 6);
  });

  it('ignores zero-sample nodes and fails clearly when every node has zero samples', () => {
    const a = randomWeights(1, { w: [3] });
    const b = randomWeights(2, { w: [3] });
    const agg = new StreamingFedAvg();
    agg.add('empty', a, 0);
    agg.add('b', b, 5);
    expect(Array.from(agg.finalize().get("w")!.data as Float32Array)).toEqual(Array.from(b.get("w")!.data as Float32Array));
    const none = new StreamingFedAvg();
    none.add('x', a, 0);
    expect(() => none.finalize()).toThrow(AggregationError);
    expect(() => new StreamingFedAvg().finalize()).toThrow(/no node weights/);
  });
});

describe('server optimizers', () => {
  it('FedAdam follows the Reddi et al. update, computed independently in float64', () => {
    const opt = new AdaptiveServerOptimizer({ name: 'adam', lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
    const global: WeightMap = new Map([['w', { dtype: 'float32', shape: [2], data: new Float32Array([1, -1]) }]]);
    let x = [1, -1];
    let m = [0, 0];
    let v = [1e-6, 1e-6];
    let g = global;
    for (const avgVals of [[1.5, -0.5], [1.2, -0.8], [2, 0]]) {
      const avg: WeightMap = new Map([['w', { dtype: 'float32', shape: [2], data: new Float32Array(avgVals) }]]);
      g = opt.step(g, avg);
      const fx = avgVals.map((a, i) => Math.fround(a) - x[i]);
      m = m.map((mi, i) => 0.9 * mi + 0.1 * fx[i]);
      v = v.map((vi, i) => 0.99 * vi + 0.01 * fx[i] * fx[i]);
      x = x.map((xi, i) => xi + (0.1 * m[i]) / (Math.sqrt(v[i]) + 1e-3));
      const got = Array.from(g.get('w')!.data as Float32Array);
      got.forEach((val, i) => expect(val).toBeCloseTo(x[i], 5));
      x = got; // continue from the float32 values the optimizer really holds
    }
    expect(opt.stepCount).toBe(3);
  });

  it('FedYogi moves v additively and keeps keys absent from the global model as plain averages', () => {
    const opt = new AdaptiveServerOptimizer({ name: 'yogi', lr: 0.5, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
    const global: WeightMap = new Map([['w', { dtype: 'float32', shape: [1], data: new Float32Array([0]) }]]);
    const avg: WeightMap = new Map([
      ['w', { dtype: 'float32', shape: [1], data: new Float32Array([2]) }],
      ['bn.running_mean', { dtype: 'float32', shape: [1], data: new Float32Array([0.25]) }],
    ]);
    const out = opt.step(global, avg);
    // v0 = τ², Δ² = 4 > v0 so v = v0 + 0.01·4; m = 0.2
    const v = 1e-6 + 0.01 * 4;
    expect(out.get('w')!.data[0]).toBeCloseTo((0.5 * 0.2) / (Math.sqrt(v) + 1e-3), 5);
    expect(out.get('bn.running_mean')!.data[0]).toBe(0.25);
  });

  it('state round-trips: a reloaded optimizer continues identically', () => {
    const mk = () => new Aggregator({ name: 'fedadam', lr: 0.2 });
    const a = mk();
    const g: WeightMap = new Map([['w', { dtype: 'float32', shape: [2], data: new Float32Array([0, 1]) }]]);
    const step = (agg: Aggregator, vals: number[], glob: WeightMap) =>
      agg.completeRound(glob, new Map([['w', { dtype: 'float32', shape: [2], data: new Float32Array(vals) }]]));
    const g1 = step(a, [1, 2], g);
    const b = mk();
    b.load(a.state());
    const fromA = step(a, [3, 1], g1);
    const fromB = step(b, [3, 1], g1);
    expect(Array.from(fromB.get("w")!.data as Float32Array)).toEqual(Array.from(fromA.get("w")!.data as Float32Array));
  });
});

describe('normaliseAggregator', () => {
  it('accepts shorthands, fills defaults and rejects bad options by name', () => {
    expect(normaliseAggregator('fedavg')).toEqual({ name: 'fedavg' });
    expect(normaliseAggregator({ name: 'fedyogi' })).toMatchObject({ name: 'fedyogi', lr: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3 });
    expect(new Aggregator({ name: 'fedprox', mu: 0.01 }).fedproxMu).toBe(0.01);
    expect(() => normaliseAggregator('fedprox')).toThrow(/mu is required/);
    expect(() => normaliseAggregator({ name: 'fedavg', lr: 1 } as never)).toThrow(/unknown option "lr"/);
    expect(() => normaliseAggregator('scaffold' as never)).toThrow(/name must be one of/);
    expect(() => normaliseAggregator({ name: 'fedadam', beta1: 'x' } as never)).toThrow(/beta1 must be a number/);
  });
});
