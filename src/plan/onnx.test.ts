/**
 * ONNX export against the tfjs model it comes from: ONNX Runtime (onnxruntime-node) must give the tfjs outputs,
 * within 1e-4, on plans that together use every op the exporter emits, with non-trivial weights (batch-norm running
 * statistics moved away from 0 / 1 by a training-mode forward pass).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend';
import { definePlan } from './define';
import { exportPlanToOnnx, OnnxExportError, ONNX_OUTPUT } from './onnx';
import { PlanSpec } from './spec';
import {
  cnn2dPlan, cnn3dPlan, cnnTabularPlan, groupNormPlan, imageLayersGraphPlan, inception3dGraphPlan, mlpPlan, norms2dPlan, normsGraphPlan,
  resnetGraphPlan, severalHeadsGraphPlan, unetGraphPlan, upsample3dGraphPlan, convTranspose3dGraphPlan,
} from './testing/plans';
import { runOnnxOutOfProcess, type OnnxRun } from './testing/onnx-runner';
import { buildModel } from './tfjs-model';
import { exportWeights } from './weights';

jest.setTimeout(30_000);

/** Every op in a small plan the others lack: softmax and sigmoid layers, valid conv, avg pool 2d, dropout. */
function activationsPlan(): PlanSpec {
  return definePlan({
    name: 'OnnxActivations',
    inputs: { image: { modalities: ['FLAIR'], dims: 2, size: [7, 6] }, tabular: { columns: ['a', 'b'] } },
    target: { column: 'y' },
    model: {
      image: [
        { type: 'conv2d', outChannels: 3, kernelSize: 2, padding: 'valid' },
        { type: 'sigmoid' },
        { type: 'avg_pool2d', kernelSize: [2, 1], stride: [2, 2] },
        { type: 'softmax' },
        { type: 'flatten' },
      ],
      tabular: [{ type: 'dense', outFeatures: 3 }, { type: 'leaky_relu', negativeSlope: 0.2 }, { type: 'flatten' }],
      head: [{ type: 'dropout', rate: 0.5 }, { type: 'dense', outFeatures: 4 }, { type: 'softmax' }],
    },
    loss: { type: 'cross_entropy' },
    optimizer: { type: 'sgd', lr: 0.1 },
  });
}

interface Case {
  spec: PlanSpec;
  layout: 'NCHW' | 'NHWC';
  activation: 'none' | 'sigmoid' | 'softmax';
}

const CASES: Case[] = [
  { spec: cnn2dPlan(), layout: 'NHWC', activation: 'none' },
  { spec: cnnTabularPlan(), layout: 'NCHW', activation: 'sigmoid' },
  { spec: cnn3dPlan(), layout: 'NCHW', activation: 'softmax' },
  { spec: mlpPlan(), layout: 'NCHW', activation: 'none' },
  { spec: activationsPlan(), layout: 'NHWC', activation: 'none' },
  { spec: resnetGraphPlan(), layout: 'NHWC', activation: 'sigmoid' },
  { spec: inception3dGraphPlan(), layout: 'NCHW', activation: 'none' },
  { spec: normsGraphPlan(), layout: 'NHWC', activation: 'none' },
  { spec: norms2dPlan(), layout: 'NCHW', activation: 'softmax' },
  { spec: unetGraphPlan(), layout: 'NHWC', activation: 'sigmoid' },
  { spec: upsample3dGraphPlan(), layout: 'NCHW', activation: 'none' },
  { spec: groupNormPlan(), layout: 'NCHW', activation: 'sigmoid' },
  // ConvTranspose, Resize (nearest and linear), Unsqueeze + Expand
  { spec: imageLayersGraphPlan(), layout: 'NHWC', activation: 'none' },
  // ConvTranspose in 3-D
  { spec: convTranspose3dGraphPlan(), layout: 'NCHW', activation: 'none' },
];

/** Deterministic inputs: channels-last for tfjs, and the same values channels-first for an NCHW ONNX model. */
type Feeds = Record<string, { dims: number[]; data: Float32Array }>;

/**
 * ONNX Runtime's output against the TS model's: same shape, within 1e-4 everywhere, and spread over more than
 * `minSpread` (a degenerate model, all outputs equal, would pass any comparison).
 */
function expectSameOutput(got: OnnxRun['outputs'][string], want: tf.Tensor, minSpread: number): void {
  expect(got.dims).toEqual(want.shape);
  const values = want.dataSync();
  let maxDiff = 0;
  for (let i = 0; i < values.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got.data[i] - values[i]));
  expect(maxDiff).toBeLessThan(1e-4);
  expect(Math.max(...values) - Math.min(...values)).toBeGreaterThan(minSpread);
}

function inputsFor(spec: PlanSpec, n: number): { tfjs: Record<string, tf.Tensor>; onnx: (layout: Case['layout']) => Feeds } {
  const model = buildModel(spec, { seed: 1 });
  const tfjs: Record<string, tf.Tensor> = {};
  const feeds: Record<string, { nhwc: Float32Array; nchw: Float32Array; shapeLast: number[]; shapeFirst: number[] }> = {};
  const imageShape = (model.graph.imageInputShape ?? []);
  model.dispose();
  if (spec.inputs.image) {
    const [c, ...spatial] = imageShape;
    const per = imageShape.reduce((a, b) => a * b, 1);
    const nhwc = Float32Array.from({ length: n * per }, (_, i) => Math.sin(0.37 * i) + 0.3 * Math.cos(1.7 * i));
    const nchw = new Float32Array(nhwc.length);
    const sp = per / c;
    for (let b = 0; b < n; b++) for (let s = 0; s < sp; s++) for (let k = 0; k < c; k++) nchw[b * per + k * sp + s] = nhwc[b * per + s * c + k];
    tfjs['image'] = tf.tensor(nhwc, [n, ...spatial, c]);
    feeds['image'] = { nhwc, nchw, shapeLast: [n, ...spatial, c], shapeFirst: [n, c, ...spatial] };
  }
  if (spec.inputs.tabular) {
    const f = spec.inputs.tabular.columns.length;
    const values = Float32Array.from({ length: n * f }, (_, i) => Math.cos(0.9 * i) * 2);
    tfjs['tabular'] = tf.tensor2d(values, [n, f]);
    feeds['tabular'] = { nhwc: values, nchw: values, shapeLast: [n, f], shapeFirst: [n, f] };
  }
  return {
    tfjs,
    onnx: (layout) => Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k,
      layout === 'NHWC' ? { dims: v.shapeLast, data: v.nhwc } : { dims: v.shapeFirst, data: v.nchw }])),
  };
}

beforeAll(async () => {
  await initBackend(() => undefined);
});

describe('ONNX export of a plan', () => {
  const usedOps = new Set<string>();

  it.each(CASES.map((c) => [c.spec.name, c] as const))('%s: onnxruntime equals tfjs within 1e-4', (_name, c) => {
    const model = buildModel(c.spec, { seed: 7 });
    const n = 5;
    const { tfjs, onnx } = inputsFor(c.spec, n);
    // A training-mode pass moves batch-norm running statistics away from their initial 0 / 1.
    model.forward(tfjs, true).dispose();
    const weights = exportWeights(model);
    const expected = tf.tidy(() => {
      const y = model.forward(tfjs, false);
      if (c.activation === 'sigmoid') return tf.sigmoid(y);
      if (c.activation === 'softmax') return tf.softmax(y, -1);
      return y;
    });
    const exported = exportPlanToOnnx(c.spec, weights, { imageLayout: c.layout, outputActivation: c.activation });
    exported.opTypes.forEach((op) => usedOps.add(op));
    try {
      // onnxruntime runs in a child process: Jest's sandbox breaks its typed-array checks.
      const run = runOnnxOutOfProcess(exported.bytes, onnx(c.layout));
      expect([...run.inputNames].sort()).toEqual(Object.keys(tfjs).sort());
      expect(run.outputNames).toEqual([ONNX_OUTPUT]);
      expectSameOutput(run.outputs[ONNX_OUTPUT], expected, 1e-3);
    } finally {
      expected.dispose();
      Object.values(tfjs).forEach((t) => t.dispose());
      model.dispose();
    }
  });

  it('covers every op the exporter can emit', () => {
    for (const op of ['Conv', 'Pad', 'Relu', 'LeakyRelu', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'BatchNormalization',
      'Flatten', 'Gemm', 'Concat', 'Add', 'Sigmoid', 'Softmax', 'Transpose', 'GlobalMaxPool', 'InstanceNormalization', 'ReduceMean', 'Resize']) {
      expect(usedOps).toContain(op);
    }
  });

  it('several heads: one output per head, named after its node, each with its loss activation', () => {
    const spec = severalHeadsGraphPlan();
    const model = buildModel(spec, { seed: 3 });
    const { tfjs, onnx } = inputsFor(spec, 5);
    model.forward(tfjs, true).dispose();
    const weights = exportWeights(model);
    const exported = exportPlanToOnnx(spec, weights, { imageLayout: 'NCHW' });
    expect(exported.outputs.map((o) => [o.name, o.shape])).toEqual([['response', ['N', 1]], ['pfs', ['N', 1]], ['grade', ['N', 3]]]);
    // The TS model's heads side by side: response logit (BCE with logits → sigmoid in ONNX), pfs, grade logits.
    const side = model.forward(tfjs, false);
    const [response, pfs, grade] = tf.split(side, [1, 1, 3], 1);
    const expected: Record<string, tf.Tensor> = { response: tf.sigmoid(response), pfs, grade };
    try {
      const run = runOnnxOutOfProcess(exported.bytes, onnx('NCHW'));
      expect(run.outputNames).toEqual(['response', 'pfs', 'grade']);
      for (const [name, want] of Object.entries(expected)) expectSameOutput(run.outputs[name], want, 1e-4);
    } finally {
      tf.dispose([side, response, pfs, grade, ...Object.values(expected), ...Object.values(tfjs)]);
      model.dispose();
    }
  });

  it('names the missing or misshapen weights', () => {
    const spec = cnnTabularPlan();
    const model = buildModel(spec, { seed: 1 });
    const weights = exportWeights(model);
    model.dispose();
    const { ['head.1.weight']: dropped, ...rest } = weights;
    expect(dropped).toBeDefined();
    expect(() => exportPlanToOnnx(spec, rest)).toThrow(OnnxExportError);
    expect(() => exportPlanToOnnx(spec, rest)).toThrow(/missing 'head\.1\.weight'/);
    const wrong = { ...weights, 'image.0.weight': weights['tabular.0.weight'] };
    expect(() => exportPlanToOnnx(spec, wrong)).toThrow(/'image\.0\.weight' has shape \[4, 3\], expected \[4, 6, 3, 3\]/);
  });
});
