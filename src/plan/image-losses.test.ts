/**
 * Image losses against PyTorch 1.13: for each loss, the tfjs value and its gradient with respect to the prediction
 * equal those of the PyTorch expression (F.*, torch autograd) on the same tensors (channels first there), within
 * 1e-5. One Python process evaluates every case. Plus the image metrics (mask Dice, MAE) on known values.
 */
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs'; // the CPU backend and every gradient
import { imageLoss, ImageLossSpec, imageMae, maskDice, torchImageLoss } from './image-losses';
import { findTorchPython } from './testing/python';

const SHAPE = [2, 5, 4, 3]; // N, H, W, C (tfjs)
const CASES: [string, ImageLossSpec, 'probabilities' | 'logits'][] = [
  ['l1', { type: 'l1' }, 'logits'],
  ['mse', { type: 'mse' }, 'logits'],
  ['bce', { type: 'bce' }, 'probabilities'],
  ['bce_logits', { type: 'bce', fromLogits: true }, 'logits'],
  ['soft_dice_all', { type: 'soft_dice' }, 'probabilities'],
  ['soft_dice_channel_logits', { type: 'soft_dice', channel: 1, fromLogits: true, smooth: 0.5 }, 'logits'],
  ['weighted', { type: 'weighted', terms: [{ weight: 0.7, loss: { type: 'bce', fromLogits: true } }, { weight: 0.3, loss: { type: 'soft_dice', channel: 0, fromLogits: true } }] }, 'logits'],
];

const PYTHON = String.raw`
import json, sys
import numpy as np
import torch
import torch.nn.functional as F
cases = json.load(sys.stdin)
out = {}
for c in cases:
    nhwc = np.array(c['prediction'], dtype=np.float32).reshape(c['shape'])
    output = torch.tensor(nhwc.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    target = torch.tensor(np.array(c['target'], dtype=np.float32).reshape(c['shape']).transpose(0, 3, 1, 2).copy())
    loss = eval(c['expression'])
    loss.backward()
    out[c['name']] = {'value': float(loss), 'grad': output.grad.numpy().transpose(0, 2, 3, 1).reshape(-1).tolist()}
json.dump(out, sys.stdout)
`;

function values(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.fround(Math.sin(seed * 12.9898 + i * 78.233) * 1.7));
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

test('tfjs losses and gradients equal PyTorch\'s on the same tensors', () => {
  const size = SHAPE.reduce((a, b) => a * b, 1);
  const target = values(size, 2).map((v) => (v > 0.2 ? 1 : 0));
  const ours = CASES.map(([name, spec, kind], k) => {
    const raw = values(size, 5 + k);
    const prediction = kind === 'probabilities' ? raw.map((v) => Math.fround(1 / (1 + Math.exp(-v)))) : raw;
    const t = tf.tensor(target, SHAPE);
    const x = tf.tensor(prediction, SHAPE);
    const { value, grad } = tf.valueAndGrad((p: tf.Tensor) => imageLoss(spec)(p, t))(x);
    const result = { name, prediction, value: value.dataSync()[0], grad: Array.from(grad.dataSync()), expression: torchImageLoss(spec) };
    tf.dispose([t, x, value, grad]);
    return result;
  });
  const python = findTorchPython();
  const run = spawnSync(python.executable, ['-c', PYTHON], {
    input: JSON.stringify(ours.map((c) => ({ name: c.name, prediction: c.prediction, target, shape: SHAPE, expression: c.expression }))),
    encoding: 'utf8', timeout: 120000, env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  if (run.status !== 0) throw new Error(`python failed: ${run.stderr}`);
  const theirs = JSON.parse(run.stdout) as Record<string, { value: number; grad: number[] }>;
  for (const c of ours) {
    const r = theirs[c.name];
    if (Math.abs(r.value - c.value) > 1e-5 * (1 + Math.abs(r.value))) throw new Error(`${c.name}: loss ${c.value} vs PyTorch ${r.value}`);
    const worst = Math.max(...r.grad.map((g, i) => Math.abs(g - c.grad[i])));
    if (worst > 1e-5) throw new Error(`${c.name}: gradient differs from PyTorch by ${worst}`);
    expect(c.grad.some((g) => Math.abs(g) > 1e-4)).toBe(true);
  }
  expect(Object.keys(theirs)).toEqual(CASES.map(([name]) => name));
});

test('soft Dice is 0 for a perfect mask and grows with disagreement; bad inputs are refused', () => {
  const mask = tf.tensor([1, 1, 0, 0, 1, 0, 0, 0], [1, 2, 2, 2]);
  const loss = imageLoss({ type: 'soft_dice', smooth: 0 });
  expect(loss(mask, mask).dataSync()[0]).toBeCloseTo(0, 6);
  expect(loss(tf.sub(1, mask), mask).dataSync()[0]).toBeCloseTo(1, 6);
  expect(() => imageLoss({ type: 'soft_dice', channel: 2 })(mask, mask)).toThrow(/channel 2 is not one of the 2 output channels/);
  expect(() => imageLoss({ type: 'l1' })(mask, tf.zeros([1, 2, 2, 1]))).toThrow(/does not match prediction shape/);
  expect(() => imageLoss({ type: 'weighted', terms: [] })(mask, mask)).toThrow(/at least one term/);
});

test('image metrics: mask Dice and MAE', () => {
  expect(maskDice([0.9, 0.8, 0.1, 0.2], [1, 0, 0, 1])).toBeCloseTo(0.5);
  expect(maskDice([0, 0], [0, 0])).toBe(1);
  expect(imageMae([1, 2, 3], [1, 0, 4])).toBeCloseTo(1);
  expect(() => imageMae([1], [1, 2])).toThrow(/1 vs 2 values/);
});
