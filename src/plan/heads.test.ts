/**
 * Several heads on a TS node, end to end without a network: a CSV dataset read through the plan (one target
 * column per head), trained by the engine's loop with the plan's weighted loss, validated with per-head metrics as
 * the node reports them; and the weighted sum itself against a hand computation. PyTorch agreement of the same
 * loss, training and metrics: torch-conformance.test.ts (case several_heads).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend';
import { makeLoss } from '../engine/losses';
import { SeededRandom } from '../engine/prng';
import { trainModel } from '../engine/train';
import { openPlanDataset } from '../data/plan-dataset';
import { definePlan } from './define';
import { modelGraph } from './graph-builder';
import { weightedSumLoss } from './heads';
import { planMetrics } from './metrics';
import { PlanSpec } from './spec';
import { buildModel } from './tfjs-model';
import { trainingSettings } from './training';

beforeAll(async () => {
  await initBackend(() => undefined); // the backend and gradients nodes train with
});

test('the weighted sum reads each head its columns and target column', () => {
  const mse = makeLoss('MSELoss');
  const ce = makeLoss('CrossEntropyLoss');
  const loss = weightedSumLoss([
    { loss: mse, weight: 0.5, start: 0, width: 1, targetColumn: 0, integerTarget: false },
    { loss: ce, weight: 2, start: 1, width: 2, targetColumn: 1, integerTarget: true },
  ]);
  const prediction = tf.tensor2d([[1, 0, Math.log(3)], [3, 0, 0]]);
  const target = tf.tensor2d([[0, 1], [1, 0]]);
  // mse: ((1 − 0)² + (3 − 1)²) / 2 = 2.5; cross-entropy: (−log(3/4) − log(1/2)) / 2
  const expected = 0.5 * 2.5 + 2 * ((-Math.log(3 / 4) - Math.log(1 / 2)) / 2);
  expect(loss(prediction, target).dataSync()[0]).toBeCloseTo(expected, 5);
  tf.dispose([prediction, target]);
});

function twoHeadPlan(): PlanSpec {
  return definePlan({
    name: 'ResponseAndSurvival',
    inputs: { tabular: { columns: ['suv', 'age'] } },
    target: { column: 'responder' },
    model: modelGraph((g) => {
      const trunk = g.chain('trunk', 'tabular', [{ type: 'dense', outFeatures: 8 }, { type: 'relu' }]);
      g.layer('months', { type: 'dense', outFeatures: 1 }, trunk);
      return g.layer('response', { type: 'dense', outFeatures: 1 }, trunk);
    }),
    loss: { type: 'bce', fromLogits: true },
    heads: [{ output: 'months', target: { column: 'pfs' }, loss: { type: 'mse', weight: 0.2 }, metrics: ['mae'] }],
    optimizer: { type: 'adam', lr: 0.03 },
    metrics: ['loss', 'auc'],
  });
}

test('a node trains both heads from their own columns and reports metrics per head', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-heads-'));
  try {
    // responders have a high SUV; survival months grow with age
    const rng = new SeededRandom(4);
    const lines = ['suv,age,responder,pfs'];
    for (let i = 0; i < 48; i++) {
      const responder = i % 2;
      const age = rng.next() * 2 - 1;
      lines.push(`${(responder ? 1 : -1) + 0.3 * rng.next()},${age},${responder},${3 * age + 0.1 * rng.next()}`);
    }
    const file = path.join(dir, 'cohort.csv');
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const spec = twoHeadPlan();
    const data = openPlanDataset(spec, { dataType: 'csv', path: file, parameters: null });
    const model = buildModel(spec, { seed: 2 });
    const all = Array.from({ length: data.size }, (_, i) => i);
    const evaluate = (): Record<string, number> => {
      const batch = data.batchSync(all);
      const metrics = tf.tidy(() => planMetrics(spec, model.forward(batch.inputs, false), batch.target));
      tf.dispose([batch.target, ...Object.values(batch.inputs)]);
      return metrics;
    };
    const before = evaluate();
    const settings = trainingSettings(spec);
    await trainModel(model, data.batchSource(all), { loader: { batchSize: 16, shuffle: true }, ...settings, epochs: 30, seed: 1 });
    const after = evaluate();
    model.dispose();
    expect(Object.keys(after).sort()).toEqual(['LOSS', 'months_MAE', 'response_AUC', 'response_LOSS']);
    expect(after.LOSS).toBeLessThan(0.5 * before.LOSS);
    expect(after.response_AUC).toBeGreaterThan(0.95);
    expect(after.months_MAE).toBeLessThan(0.5 * before.months_MAE);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
