import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs';
import { TorchTensor } from '../serialize';
import { initialWeights } from './init';
import { cnn2dPlan, cnn3dPlan, cnnTabularPlan, mlpPlan } from './testing/plans';
import { buildModel } from './tfjs-model';
import { exportWeights, importWeights, WeightsMismatchError } from './weights';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function imageBatch(n: number, shape: number[]): tf.Tensor {
  // plan shapes are channels first; the model takes channels last
  return tf.randomNormal([n, ...shape.slice(1), shape[0]], 0, 1, 'float32', 3);
}

describe('round-0 weights', () => {
  test('are seeded, PyTorch-like and in PyTorch layout', () => {
    const a = initialWeights(cnn2dPlan(), 7);
    const b = initialWeights(cnn2dPlan(), 7);
    const c = initialWeights(cnn2dPlan(), 8);
    expect(Object.keys(a)).toEqual(Object.keys(b));
    for (const key of Object.keys(a)) expect(a[key].data).toEqual(b[key].data);
    expect(a['image.0.weight'].data).not.toEqual(c['image.0.weight'].data);
    // conv 2→4, 3x2: fan_in 12, kaiming_uniform(a=√5) and bias bound 1/√12
    const w = a['image.0.weight'];
    expect(w.shape).toEqual([4, 2, 3, 2]);
    const bound = 1 / Math.sqrt(12);
    const values = Array.from(w.data as Float32Array);
    expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(0.8 * bound);
    expect(Array.from(a['image.1.weight'].data as Float32Array)).toEqual([1, 1, 1, 1]);
    expect(Array.from(a['image.1.running_var'].data as Float32Array)).toEqual([1, 1, 1, 1]);
    expect(Array.from(a['image.1.running_mean'].data as Float32Array)).toEqual([0, 0, 0, 0]);
    expect(a['image.1.num_batches_tracked'].dtype).toBe('int64');
    expect(a['image.1.num_batches_tracked'].shape).toEqual([]);
    expect(a['head.0.weight'].shape).toEqual([5, 12]); // linear [out, in]
  });
});

describe('weights at the boundary', () => {
  test('export then import round-trips exactly, and layouts are converted', () => {
    const spec = cnn3dPlan();
    const weights = initialWeights(spec, 3);
    const model = buildModel(spec, { weights });
    const exported = exportWeights(model);
    for (const [k, t] of Object.entries(weights)) {
      expect(exported[k].shape).toEqual(t.shape);
      expect(exported[k].data).toEqual(t.data);
    }
    // conv3d weight [O, I, kd, kh, kw] in torch is [kd, kh, kw, I, O] in tfjs
    const torchW = weights['image.0.weight'];
    const tfW = model.parameter('image.0.weight')!.variable;
    expect(tfW.shape).toEqual([3, 3, 3, 1, 3]);
    const [o, i, d, h, w] = [2, 0, 1, 2, 0];
    const torchIndex = (((o * 1 + i) * 3 + d) * 3 + h) * 3 + w;
    const tfIndex = (((d * 3 + h) * 3 + w) * 1 + i) * 3 + o;
    expect(tfW.dataSync()[tfIndex]).toBe((torchW.data as Float32Array)[torchIndex]);
    model.dispose();
  });

  test('a missing key, an extra key, a wrong shape and a wrong dtype are all named, nothing is changed', () => {
    const spec = cnn2dPlan();
    const model = buildModel(spec, { seed: 1 });
    const before = exportWeights(model);
    const bad: Record<string, TorchTensor> = { ...initialWeights(spec, 2) };
    delete bad['head.2.bias'];
    bad['head.9.weight'] = TorchTensor.zeros('float32', [1]);
    bad['image.0.weight'] = TorchTensor.zeros('float32', [4, 2, 3, 3]);
    bad['image.1.num_batches_tracked'] = TorchTensor.zeros('float32', []);
    let error: WeightsMismatchError | undefined;
    try {
      importWeights(model, bad);
    } catch (e) {
      error = e as WeightsMismatchError;
    }
    expect(error).toBeInstanceOf(WeightsMismatchError);
    expect(error!.problems).toEqual([
      "'image.0.weight' has shape [4, 2, 3, 3], expected [4, 2, 3, 2]",
      "'image.1.num_batches_tracked' has dtype float32, expected int64",
      "missing key 'head.2.bias' (float32 [1])",
      "unexpected key 'head.9.weight'",
    ]);
    const after = exportWeights(model);
    for (const k of Object.keys(before)) expect(after[k].data).toEqual(before[k].data);
    model.dispose();
  });
});

describe('forward pass', () => {
  test('checks its inputs against the plan', () => {
    const model = buildModel(cnnTabularPlan(), { seed: 1 });
    const tabular = tf.zeros([2, 3]);
    expect(() => model.forward({ tabular }, false)).toThrow(/missing input 'image' \(expected \[N, 8, 8, 6\]\)/);
    expect(() => model.forward({ image: tf.zeros([2, 6, 8, 8]), tabular }, false)).toThrow(/has shape \[2, 6, 8, 8\], expected \[N, 8, 8, 6\]/);
    model.dispose();
    expect(() => model.forward({}, false)).toThrow(/disposed/);
  });

  test('training updates batch-norm buffers like PyTorch bookkeeping, eval does not; no tensor leaks', () => {
    const spec = cnn2dPlan();
    const model = buildModel(spec, { seed: 1 });
    const x = imageBatch(4, model.graph.imageInputShape!);
    const start = tf.memory().numTensors;
    tf.dispose(model.forward({ image: x }, false));
    expect(exportWeights(model)['image.1.num_batches_tracked'].data[0]).toBe(0n);
    tf.dispose(model.forward({ image: x }, true));
    tf.dispose(model.forward({ image: x }, true));
    const w = exportWeights(model);
    expect(w['image.1.num_batches_tracked'].data[0]).toBe(2n);
    expect(Array.from(w['image.1.running_mean'].data as Float32Array).some((v) => v !== 0)).toBe(true);
    expect(tf.memory().numTensors).toBe(start);
    expect(() => model.forward({ image: imageBatch(1, model.graph.imageInputShape!) }, true)).not.toThrow();
    model.dispose();
  });

  test('batch norm refuses to train on one value per channel, like PyTorch (the 4x4 image map of one sample is fine)', () => {
    const model = buildModel(cnnTabularPlan(), { seed: 1 });
    const image = imageBatch(1, model.graph.imageInputShape!);
    expect(() => model.forward({ image, tabular: tf.zeros([1, 3]) }, true)).toThrow(/model\.tabular\[1\] \(batch_norm\): training needs more than 1 value per channel, got input \[1, 4\]/);
    model.dispose();
  });

  test('dropout masks follow the seed', () => {
    const spec = cnnTabularPlan();
    const run = (seed: number): number[] => {
      const model = buildModel(spec, { seed });
      const image = imageBatch(4, model.graph.imageInputShape!);
      const out = model.forward({ image, tabular: tf.ones([4, 3]) }, true);
      const values = Array.from(out.dataSync());
      model.dispose();
      return values;
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
  });

  test('two models of one plan coexist (tfjs variable names are global)', () => {
    const a = buildModel(mlpPlan(), { seed: 1 });
    const b = buildModel(mlpPlan(), { seed: 1 });
    expect(a.parameters().map((p) => p.name)).toEqual(b.parameters().map((p) => p.name));
    a.dispose();
    b.dispose();
  });
});
