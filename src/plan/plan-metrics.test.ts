/**
 * Plan validation metrics on hand-checked cases (the PyTorch side of the same definitions is checked in
 * torch-conformance.test.ts), and the plans whose task cannot have a metric.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend';
import { checkPlan } from './validate';
import { planMetrics } from './metrics';
import { PlanSpec } from './spec';
import { inception3dGraphPlan, mlpPlan, regressionPlan, resnetGraphPlan } from './testing/plans';

beforeAll(async () => {
  await initBackend(() => undefined);
});

const binary = (metrics: PlanSpec['metrics']): PlanSpec => ({ ...resnetGraphPlan(), metrics });

test('binary metrics from logits: confusion TP 2, FN 1, FP 1, TN 2; AUC by ranks', () => {
  // logits → decisions at 0: 1 1 0 1 0 0
  const output = tf.tensor2d([2.0, 0.5, -0.2, 0.1, -1.0, -3.0], [6, 1]);
  const target = tf.tensor1d([1, 1, 1, 0, 0, 0]);
  const m = planMetrics(binary(['accuracy', 'recall', 'specificity', 'balanced_accuracy', 'precision', 'f1_score', 'dice', 'auc']), output, target);
  expect(m.ACCURACY).toBeCloseTo(4 / 6, 6);
  expect(m.RECALL).toBeCloseTo(2 / 3, 6);
  expect(m.SPECIFICITY).toBeCloseTo(2 / 3, 6);
  expect(m.BALANCED_ACCURACY).toBeCloseTo(2 / 3, 6);
  expect(m.PRECISION).toBeCloseTo(2 / 3, 6);
  expect(m.F1_SCORE).toBeCloseTo(2 / 3, 6);
  expect(m.DICE).toBeCloseTo(4 / 6, 6);
  // positives 2.0, 0.5, -0.2 vs negatives 0.1, -1, -3: 8 of 9 pairs ordered
  expect(m.AUC).toBeCloseTo(8 / 9, 6);
  tf.dispose([output, target]);
});

test('a model stuck at the class prior: accuracy looks fine, AUC 0.5 and balanced accuracy 0.5 do not', () => {
  const output = tf.fill([10, 1], -0.7);
  const target = tf.tensor1d([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  const m = planMetrics(binary(['accuracy', 'auc', 'balanced_accuracy', 'recall']), output, target);
  expect(m).toEqual({ ACCURACY: expect.closeTo(0.7, 6), AUC: 0.5, BALANCED_ACCURACY: 0.5, RECALL: 0 });
  tf.dispose([output, target]);
});

test('AUC is left out with a single class in the validation set (undefined there)', () => {
  const output = tf.tensor2d([0.3, -0.2], [2, 1]);
  const target = tf.tensor1d([0, 0]);
  expect(planMetrics(binary(['auc', 'specificity']), output, target)).toEqual({ SPECIFICITY: 0.5 });
  tf.dispose([output, target]);
});

test('multi-class: support-weighted recall, mean per-class recall', () => {
  const output = tf.tensor2d([[3, 0, 0], [0, 3, 0], [0, 3, 0], [0, 0, 3]], [4, 3]);
  const target = tf.tensor1d([0, 1, 2, 2]);
  const m = planMetrics({ ...inception3dGraphPlan(), metrics: ['recall', 'balanced_accuracy'] }, output, target);
  expect(m.RECALL).toBeCloseTo(3 / 4, 6); // (1·1 + 1·1 + 0.5·2) / 4
  expect(m.BALANCED_ACCURACY).toBeCloseTo((1 + 1 + 0.5) / 3, 6);
  tf.dispose([output, target]);
});

test('metrics that do not fit the task are refused at validation, with their path', () => {
  const issues = (spec: PlanSpec) => checkPlan(spec).issues.map((i) => `${i.path}: ${i.message}`);
  expect(issues({ ...regressionPlan(), metrics: ['mse', 'auc'] })).toEqual(['metrics[1]: auc needs a classification loss (bce or cross_entropy), the plan uses mse']);
  expect(issues({ ...inception3dGraphPlan(), metrics: ['specificity'] })[0]).toMatch(/^metrics\[0\]: specificity needs a binary task .* 3 classes/);
  expect(issues({ ...mlpPlan(), metrics: ['auc', 'dice'] })).toEqual([]);
});
