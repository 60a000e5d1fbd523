/**
 * The researcher's evaluation library through the public API: statistics checked against hand computations and
 * independent definitions, then predict / local and pooled training / ONNX export on a real CSV plan trained here
 * (ONNX Runtime is the real onnxruntime-node, a dev dependency).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  aucConfidenceInterval, aucStandardError, definePlan, evaluateBinary, evaluateBySite, initBackend, normalQuantile,
  openPlanDataset, predict, trainLocally, trainPooled, writeParamsFile, type PlanDataset,
} from 'fedbiomed-ts';

/** AUC as the probability that a random positive scores above a random negative (ties count one half). */
function pairwiseAuc(truth: number[], scores: number[]): number {
  let wins = 0;
  let pairs = 0;
  truth.forEach((t, i) => truth.forEach((u, j) => {
    if (t !== 1 || u !== 0) return;
    pairs++;
    wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
  }));
  return wins / pairs;
}

describe('binary evaluation statistics', () => {
  test('normal quantiles match the tabulated values', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 6);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 12);
    expect(normalQuantile(0.005)).toBeCloseTo(-2.575829, 6);
    expect(normalQuantile(0.95)).toBeCloseTo(-normalQuantile(0.05), 9);
    expect(() => normalQuantile(1)).toThrow(RangeError);
  });

  test('the AUC interval is Hanley & McNeil: 0.8 on 50 + 50 cases has SE 0.0445', () => {
    // By hand: Q1 = 0.8/1.2, Q2 = 1.28/1.8; var = (0.16 + 49(Q1 - 0.64) + 49(Q2 - 0.64)) / 2500.
    const q1 = 0.8 / 1.2;
    const q2 = 1.28 / 1.8;
    const se = Math.sqrt((0.16 + 49 * (q1 - 0.64) + 49 * (q2 - 0.64)) / 2500);
    expect(aucStandardError(0.8, 50, 50)).toBeCloseTo(se, 12);
    expect(se).toBeCloseTo(0.0445, 4);
    const ci = aucConfidenceInterval(0.8, 50, 50, 0.95);
    expect(ci.low).toBeCloseTo(0.8 - 1.959964 * se, 5);
    expect(ci.high).toBeCloseTo(0.8 + 1.959964 * se, 5);
    expect(aucConfidenceInterval(0.99, 5, 5).high).toBe(1);
    expect(() => aucConfidenceInterval(0.8, 50, 50, 1.5)).toThrow(/confidence level/);
  });

  test('sensitivity, specificity and the confusion matrix follow the threshold', () => {
    const truth = Float32Array.from([1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    const scores = Float32Array.from([0.9, 0.7, 0.45, 0.3, 0.6, 0.4, 0.35, 0.2, 0.1, 0.05]);
    const at50 = evaluateBinary({ truth, scores });
    expect(at50.confusion).toEqual({ tp: 2, fn: 2, fp: 1, tn: 5 });
    expect([at50.sensitivity, at50.specificity, at50.accuracy]).toEqual([0.5, 5 / 6, 0.7]);
    const at40 = evaluateBinary({ truth, scores }, { threshold: 0.4 });
    expect(at40.confusion).toEqual({ tp: 3, fn: 1, fp: 2, tn: 4 });
    expect(at40.threshold).toBe(0.4);
    expect(at50.auc).toBeCloseTo(pairwiseAuc(Array.from(truth), Array.from(scores)), 12);
    expect(at50).toMatchObject({ samples: 10, positives: 4, negatives: 6 });
    expect(at50.aucInterval.low).toBeLessThan(at50.auc);
    expect(() => evaluateBinary({ truth: Float32Array.from([1, 1]), scores: Float32Array.from([0.2, 0.3]) })).toThrow(/both classes/);
  });

  test('the per-site breakdown evaluates each site and all of them pooled; a one-class site is named', () => {
    const a = { truth: Float32Array.from([1, 0, 1, 0]), scores: Float32Array.from([0.8, 0.3, 0.4, 0.6]) };
    const b = { truth: Float32Array.from([1, 0, 0]), scores: Float32Array.from([0.9, 0.2, 0.1]) };
    const bySite = evaluateBySite([{ site: 'caen', predictions: a }, { site: 'nice', predictions: b }]);
    expect(bySite.map((s) => s.site)).toEqual(['caen', 'nice', 'all']);
    expect(bySite[0].evaluation.auc).toBeCloseTo(pairwiseAuc([1, 0, 1, 0], [0.8, 0.3, 0.4, 0.6]), 12);
    expect(bySite[1].evaluation.auc).toBe(1);
    expect(bySite[2].evaluation.auc).toBeCloseTo(pairwiseAuc([1, 0, 1, 0, 1, 0, 0], [0.8, 0.3, 0.4, 0.6, 0.9, 0.2, 0.1]), 12);
    expect(bySite[2].evaluation.samples).toBe(7);
    const oneClass = { truth: Float32Array.from([0, 0]), scores: Float32Array.from([0.1, 0.2]) };
    expect(() => evaluateBySite([{ site: 'rouen', predictions: oneClass }])).toThrow(/site rouen: .*both classes/);
  });
});

describe('predict, baselines and ONNX on a trained CSV plan', () => {
  let dir: string;
  const plan = definePlan({
    name: 'EvalMlp',
    inputs: { tabular: { columns: ['x1', 'x2'] } },
    target: { column: 'y' },
    model: { tabular: [{ type: 'dense', outFeatures: 8 }, { type: 'relu' }], head: [{ type: 'dense', outFeatures: 1 }] },
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'adam', lr: 0.05 },
  });

  function csvDataset(name: string, rows: number, seed: number): PlanDataset {
    const lines = ['x1,x2,y'];
    for (let i = 0; i < rows; i++) {
      const x1 = (((i * 37 + seed * 11) % 97) / 48.5) - 1;
      const x2 = (((i * 53 + seed * 7) % 89) / 44.5) - 1;
      lines.push(`${x1.toFixed(4)},${x2.toFixed(4)},${x1 - 0.5 * x2 > 0.1 ? 1 : 0}`);
    }
    const file = path.join(dir, `${name}.csv`);
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    return openPlanDataset(plan, { dataType: 'csv', path: file, parameters: null });
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-eval-'));
    await initBackend(() => undefined);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a site trained alone and all sites pooled both learn; ONNX Runtime agrees with tfjs', async () => {
    const siteA = csvDataset('a', 40, 1);
    const siteB = csvDataset('b', 60, 2);
    const heldOut = csvDataset('held-out', 50, 3);
    const options = { epochs: 25, batchSize: 10, initSeed: 7, shuffleSeed: 7 };
    const alone = await trainLocally(plan, siteA.batchSource([...Array(siteA.size).keys()]), options);
    const pooled = await trainPooled(plan, [siteA, siteB], options);
    expect(alone.epochLosses).toHaveLength(25);
    expect(pooled.epochLosses[24]).toBeLessThan(pooled.epochLosses[0] / 2);
    expect(Object.keys(pooled.weights).sort()).toEqual(['head.0.bias', 'head.0.weight', 'tabular.0.bias', 'tabular.0.weight']);

    const untrained = await trainLocally(plan, siteA.batchSource([...Array(siteA.size).keys()]), { ...options, epochs: 0 });
    const predictions = predict(plan, pooled.weights, heldOut);
    expect(predictions.scores.every((s) => s >= 0 && s <= 1)).toBe(true); // a sigmoid is applied to the logits
    const evaluation = evaluateBinary(predictions);
    expect(evaluation.auc).toBeGreaterThan(0.9);
    expect(evaluation.auc).toBeGreaterThan(evaluateBinary(predict(plan, untrained.weights, heldOut)).auc);

    // ONNX Runtime checks typed arrays with instanceof, which fails across jest's sandbox: the check runs in a plain
    // Node process, through the public API as a user would call it.
    const weightsFile = path.join(dir, 'pooled.mpk');
    writeParamsFile(weightsFile, { model_weights: pooled.weights });
    const otherFile = path.join(dir, 'alone.mpk');
    writeParamsFile(otherFile, { model_weights: alone.weights });
    const script = `
      require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'cli', 'dev-register.js'))});
      const f = require('fedbiomed-ts');
      (async () => {
        await f.initBackend(() => undefined);
        const plan = ${JSON.stringify(plan)};
        const heldOut = f.openPlanDataset(plan, { dataType: 'csv', path: ${JSON.stringify(path.join(dir, 'held-out.csv'))}, parameters: null });
        const weights = (file) => f.modelWeightsOf(f.readParamsFile(file));
        const scores = f.predict(plan, weights(${JSON.stringify(weightsFile)}), heldOut).scores;
        const same = await f.exportAndCheckOnnx(plan, weights(${JSON.stringify(weightsFile)}), heldOut, scores, ${JSON.stringify(path.join(dir, 'model.onnx'))});
        const other = await f.exportAndCheckOnnx(plan, weights(${JSON.stringify(otherFile)}), heldOut, scores, ${JSON.stringify(path.join(dir, 'other.onnx'))});
        process.stdout.write(JSON.stringify({ same, other, scores: Array.from(scores) }));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, FEDBIOMED_TS_THREADS: '1' } }));
    expect(out.scores).toEqual(Array.from(predictions.scores, (v) => expect.closeTo(v, 5)));
    expect(out.same).toMatchObject({ passed: true, samples: 50 });
    expect(out.same.maxAbsDifference).toBeLessThan(1e-5);
    expect(out.same.opTypes).toContain('Sigmoid');
    // The check is not vacuous: other weights give other scores than the reference.
    expect(out.other.passed).toBe(false);
  });
});
