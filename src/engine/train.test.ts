/**
 * The training loop on the wasm backend: Fed-BioMed iteration semantics, determinism, memory, progress reports,
 * and losses / optimizers / FedProx against PyTorch (torch.optim + torch.nn losses, run in a subprocess).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend';
import { ArraySource, linearModel, weightsOf } from './testing/models';
import { findTorchPython, runTorchScript } from './testing/torch';
import { ProgressReport, trainModel, TrainOptions } from './train';

const X = Array.from({ length: 10 }, (_, i) => [Math.sin(i), Math.cos(1.7 * i), (i % 3) - 1]);
const Y_BIN = X.map((r) => (r[0] + 0.5 * r[1] > 0 ? 1 : 0));
const Y_REG = X.map((r) => 2 * r[0] - r[1] + 0.3 * r[2]);
const Y_CLS = X.map((r) => (r[0] > 0.3 ? 2 : r[1] > 0 ? 1 : 0));
const W1 = [[0.1], [-0.2], [0.05]];
const W3 = [
  [0.1, -0.3, 0.2],
  [0.0, 0.25, -0.1],
  [-0.2, 0.1, 0.15],
];

beforeAll(async () => {
  await initBackend(() => undefined);
});

function baseOptions(extra: Partial<TrainOptions>): TrainOptions {
  return {
    loader: { batchSize: 4 },
    epochs: 2,
    loss: 'MSELoss',
    optimizer: { name: 'SGD', lr: 0.1 },
    seed: 7,
    ...extra,
  };
}

describe('iteration semantics', () => {
  test('epochs + batch_maxnum: updates, samples and requested indices (no shuffle)', async () => {
    const model = linearModel(W1, [0]);
    const data = new ArraySource(X, Y_REG);
    const r = await trainModel(model, data, baseOptions({ epochs: 2, batchMaxnum: 2 }));
    expect(r.updates).toBe(4);
    expect(r.samplesSeen).toBe(16);
    expect(data.requested).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    model.dispose();
  });

  test('num_updates runs exactly that many steps across epochs; dry_run stops after one', async () => {
    const model = linearModel(W1, [0]);
    const data = new ArraySource(X, Y_REG);
    const r = await trainModel(model, data, baseOptions({ epochs: 1, numUpdates: 5 }));
    expect(r.updates).toBe(5);
    expect(r.samplesSeen).toBe(4 + 4 + 2 + 4 + 4);
    const dry = await trainModel(model, new ArraySource(X, Y_REG), baseOptions({ epochs: 3, dryRun: true }));
    expect(dry.updates).toBe(1);
    expect(dry.samplesSeen).toBe(4);
    model.dispose();
  });

  test('progress reports carry Fed-BioMed history-monitor values', async () => {
    const model = linearModel(W1, [0]);
    const reports: ProgressReport[] = [];
    await trainModel(model, new ArraySource(X, Y_REG), baseOptions({ epochs: 1, onProgress: (p) => reports.push(p) }));
    expect(reports.map((p) => [p.epoch, p.iteration, p.iterationMax, p.samplesSeen, p.samplesMax])).toEqual([
      [1, 1, 3, 4, 12],
      [1, 3, 3, 10, 10],
    ]);
    const updates: ProgressReport[] = [];
    await trainModel(
      model,
      new ArraySource(X, Y_REG),
      baseOptions({ numUpdates: 4, logInterval: 2, onProgress: (p) => updates.push(p) }),
    );
    expect(updates.map((p) => [p.epoch, p.iteration, p.iterationMax, p.samplesSeen, p.samplesMax])).toEqual([
      [null, 1, 4, 4, 16],
      [null, 2, 4, 8, 16],
      [null, 3, 4, 10, 16],
      [null, 4, 4, 14, 16],
    ]);
    expect(reports.every((p) => Number.isFinite(p.loss))).toBe(true);
    model.dispose();
  });

  test('bad arguments are clear errors', async () => {
    const model = linearModel(W1, [0]);
    const data = new ArraySource(X, Y_REG);
    await expect(trainModel(model, data, baseOptions({ loader: { batchSize: 0 } }))).rejects.toThrow(/batch_size/);
    await expect(trainModel(model, data, baseOptions({ loss: 'HingeLoss' }))).rejects.toThrow(/unknown loss 'HingeLoss'/);
    await expect(trainModel(model, data, baseOptions({ optimizer: { name: 'LBFGS', lr: 1 } }))).rejects.toThrow(
      /unknown optimizer 'LBFGS'/,
    );
    await expect(trainModel(model, data, baseOptions({ epochs: undefined }))).rejects.toThrow(/num_updates or epochs/);
    model.dispose();
  });
});

describe('determinism and memory', () => {
  test('same seed gives identical weights with shuffling; another seed differs', async () => {
    const run = async (seed: number) => {
      const model = linearModel(W1, [0]);
      const data = new ArraySource(X, Y_REG);
      await trainModel(model, data, baseOptions({ loader: { batchSize: 3, shuffle: true }, seed, epochs: 3 }));
      const w = weightsOf(model);
      model.dispose();
      return { w, order: data.requested };
    };
    const a = await run(11);
    const b = await run(11);
    const c = await run(12);
    expect(b.w).toEqual(a.w);
    expect(b.order).toEqual(a.order);
    expect(c.order).not.toEqual(a.order);
    // Each epoch is a permutation of all samples, reshuffled between epochs.
    expect([...a.order.slice(0, 4).flat()].sort((p, q) => p - q)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(a.order.slice(0, 4)).not.toEqual(a.order.slice(4, 8));
  });

  test('no tensor survives a round (Adam state, FedProx anchors, batches)', async () => {
    const model = linearModel(W3, [0, 0, 0]);
    const opts = baseOptions({ loss: 'CrossEntropyLoss', optimizer: { name: 'Adam', lr: 0.01 }, fedproxMu: 0.1 });
    await trainModel(model, new ArraySource(X, Y_CLS, 'int32'), opts);
    const before = tf.memory().numTensors;
    for (let round = 0; round < 3; round++) {
      await trainModel(model, new ArraySource(X, Y_CLS, 'int32'), opts);
      expect(tf.memory().numTensors).toBe(before);
    }
    model.dispose();
  });
});

const TORCH_SCRIPT = String.raw`
import json, sys, torch
torch.set_default_dtype(torch.float64)
def run(cfg):
    f = lambda v: torch.tensor(v, dtype=torch.float64)
    x = f(cfg['x']); W = f(cfg['w']).requires_grad_(); b = f(cfg['b']).requires_grad_()
    W0 = W.detach().clone(); b0 = b.detach().clone()
    o = cfg['opt']
    if o['name'] == 'SGD':
        opt = torch.optim.SGD([W, b], lr=o['lr'], momentum=o.get('momentum', 0), weight_decay=o.get('weightDecay', 0), nesterov=o.get('nesterov', False))
    elif o['name'] == 'Adam':
        opt = torch.optim.Adam([W, b], lr=o['lr'], weight_decay=o.get('weightDecay', 0))
    else:
        opt = torch.optim.AdamW([W, b], lr=o['lr'], weight_decay=o.get('weightDecay', 0))
    losses = []
    n = x.shape[0]; bs = cfg['batch']
    for epoch in range(cfg['epochs']):
        for s in range(0, n, bs):
            xb = x[s:s+bs]; yb = cfg['y'][s:s+bs]
            z = xb @ W + b
            name = cfg['loss']
            if name == 'BCELoss':
                loss = torch.nn.BCELoss()(torch.sigmoid(z).reshape(-1), f(yb))
            elif name == 'BCEWithLogitsLoss':
                loss = torch.nn.BCEWithLogitsLoss()(z.reshape(-1), f(yb))
            elif name == 'CrossEntropyLoss':
                loss = torch.nn.CrossEntropyLoss()(z, torch.tensor(yb, dtype=torch.long))
            else:
                loss = torch.nn.MSELoss()(z.reshape(-1), f(yb))
            losses.append(loss.item())
            total = loss
            if cfg['mu']:
                total = total + cfg['mu'] / 2 * (torch.linalg.norm(W - W0) ** 2 + torch.linalg.norm(b - b0) ** 2)
            opt.zero_grad(); total.backward(); opt.step()
    return {'w': W.detach().tolist(), 'b': b.detach().tolist(), 'losses': losses}
print(json.dumps([run(c) for c in json.load(sys.stdin)]))
`;

interface TorchCase {
  name: string;
  loss: string;
  y: number[];
  w: number[][];
  bias: number[];
  sigmoid: boolean;
  opt: TrainOptions['optimizer'];
  mu?: number;
}

const TORCH_CASES: TorchCase[] = [
  { name: 'MSE + SGD momentum + weight decay', loss: 'MSELoss', y: Y_REG, w: W1, bias: [0.1], sigmoid: false, opt: { name: 'SGD', lr: 0.05, momentum: 0.9, weightDecay: 0.01 } },
  { name: 'MSE + SGD nesterov', loss: 'MSELoss', y: Y_REG, w: W1, bias: [0], sigmoid: false, opt: { name: 'SGD', lr: 0.05, momentum: 0.8, nesterov: true } },
  { name: 'BCE(sigmoid) + Adam + weight decay', loss: 'BCELoss', y: Y_BIN, w: W1, bias: [0], sigmoid: true, opt: { name: 'Adam', lr: 0.05, weightDecay: 0.1 } },
  { name: 'BCEWithLogits + AdamW', loss: 'BCEWithLogitsLoss', y: Y_BIN, w: W1, bias: [0.2], sigmoid: false, opt: { name: 'AdamW', lr: 0.05, weightDecay: 0.1 } },
  { name: 'CrossEntropy (int targets) + Adam', loss: 'CrossEntropyLoss', y: Y_CLS, w: W3, bias: [0, 0.1, -0.1], sigmoid: false, opt: { name: 'Adam', lr: 0.02 } },
  { name: 'MSE + SGD + FedProx mu=0.5', loss: 'MSELoss', y: Y_REG, w: W1, bias: [0], sigmoid: false, opt: { name: 'SGD', lr: 0.1 }, mu: 0.5 },
];

describe('matches PyTorch (torch.optim, torch.nn losses)', () => {
  const torch = findTorchPython();
  test('a python with torch is available for the oracle', () => {
    // Stated plainly rather than skipped: without torch these comparisons cannot run.
    if (!torch.python) process.stderr.write(`PyTorch oracle unavailable: ${torch.why}\n`);
    expect(torch.python).toBeDefined();
  });

  let expected: Array<{ w: number[][]; b: number[]; losses: number[] }> = [];
  beforeAll(() => {
    if (!torch.python) return;
    expected = runTorchScript(
      TORCH_SCRIPT,
      TORCH_CASES.map((c) => ({ x: X, y: c.y, w: c.w, b: c.bias, loss: c.loss, opt: c.opt, batch: 4, epochs: 2, mu: c.mu ?? 0 })),
    );
  });

  test.each(TORCH_CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_n, c, i) => {
    if (!torch.python) throw new Error(torch.why);
    const want = expected[i];
    const model = linearModel(c.w, c.bias, c.sigmoid ? 'sigmoid' : 'none');
    const losses: number[] = [];
    const cls = c.loss === 'CrossEntropyLoss';
    await trainModel(model, new ArraySource(X, c.y, cls ? 'int32' : 'float32'), {
      loader: { batchSize: 4 },
      epochs: 2,
      loss: c.loss,
      optimizer: c.opt,
      fedproxMu: c.mu,
      logInterval: 1,
      onProgress: (p) => losses.push(p.loss),
    });
    const got = weightsOf(model);
    model.dispose();
    expect(losses.length).toBe(want.losses.length);
    losses.forEach((l, i) => expect(l).toBeCloseTo(want.losses[i], 5));
    got['fc.weight'].forEach((v, i) => expect(v).toBeCloseTo(want.w.flat()[i], 5));
    got['fc.bias'].forEach((v, i) => expect(v).toBeCloseTo(want.b[i], 5));
  });
});
