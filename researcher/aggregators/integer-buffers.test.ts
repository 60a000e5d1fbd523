/**
 * Integer buffers end to end: two TS nodes' BatchNorm models (num_batches_tracked int64, advanced by real training
 * forwards) → FedAvg → the aggregated_params file `researcher run --weights` writes → buildModel with those weights,
 * and the generated PyTorch plan loading the same file with load_state_dict(strict=True) in real PyTorch.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/engine/backend';
import { buildModel, exportWeights, generateTorchPlan, PlanSpec } from '../../src/plan';
import { cnn2dPlan } from '../../src/plan/testing/plans';
import { findTorchPython, runPython } from '../../src/plan/testing/python';
import { decodeParams, modelWeightsOf } from '../../src/serialize';
import { concatChunks, encodeAggregatedParams, fromModelWeights } from '../weights-file';
import { federatedAverage } from './fedavg';
import { WeightMap } from './tensors';

/** A node's reply after `batches` training forwards (each advances num_batches_tracked by one). */
function nodeWeights(spec: PlanSpec, seed: number, batches: number): WeightMap {
  const model = buildModel(spec, { seed });
  for (let b = 0; b < batches; b++) {
    const x = tf.randomNormal([4, 12, 10, 2], 0, 1, 'float32', seed * 100 + b);
    tf.dispose(model.forward({ image: x }, true));
    x.dispose();
  }
  const weights = fromModelWeights(exportWeights(model));
  model.dispose();
  return weights;
}

let work: string;
beforeAll(async () => {
  await initBackend(() => undefined); // the project's engine (native/wasm kernels), as nodes train
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-int-buffers-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test('a BatchNorm plan’s aggregated weights file keeps num_batches_tracked int64 and loads in buildModel and strict PyTorch', () => {
  const spec = cnn2dPlan();
  const replies = [
    { nodeId: 'a', weights: nodeWeights(spec, 1, 3), sampleSize: 30 },
    { nodeId: 'b', weights: nodeWeights(spec, 2, 5), sampleSize: 10 },
  ];
  const averaged = federatedAverage(replies);
  const file = path.join(work, 'global.mpk');
  fs.writeFileSync(file, concatChunks(encodeAggregatedParams('researcher_x', averaged)));

  const read = modelWeightsOf(decodeParams(fs.readFileSync(file)));
  const tracked = read['image.1.num_batches_tracked'];
  expect(tracked.dtype).toBe('int64');
  expect(tracked.shape).toEqual([]);
  expect(Array.from(tracked.data as BigInt64Array)).toEqual([4n]); // round((30·3 + 10·5) / 40) = round(3.5)
  expect(read['image.1.running_mean'].dtype).toBe('float32');

  // buildModel accepts the file's weights as they are (it checks every dtype) and holds the same values.
  const model = buildModel(spec, { weights: read });
  const back = exportWeights(model);
  model.dispose();
  for (const [name, t] of Object.entries(read)) {
    expect([name, back[name].dtype]).toEqual([name, t.dtype]);
    expect(Array.from(back[name].data as ArrayLike<number | bigint>)).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
  }

  const planDir = path.join(work, 'plans');
  fs.mkdirSync(planDir);
  fs.writeFileSync(path.join(planDir, 'bn_plan.py'), generateTorchPlan(spec));
  const result = path.join(work, 'strict.json');
  runPython(findTorchPython(), 'load_weights_strict.py', [planDir, 'bn_plan', spec.name, file, result], work);
  const r = JSON.parse(fs.readFileSync(result, 'utf8')) as { error?: string; loaded?: boolean; file_dtypes: object; model_dtypes: object };
  expect(r.error).toBeUndefined();
  expect(r.loaded).toBe(true);
  expect(r.file_dtypes).toEqual(r.model_dtypes);
}, 120000);
