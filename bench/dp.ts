/**
 * `npm run bench -- dp [--epochs N] [--no-torch]`
 *
 * The reference CNN (bench/train-models.ts: 4x128x128 input, three conv+ReLU, max pools, global average pool,
 * dense + sigmoid, BCE, Adam), written as a plan so that the DP engine can tap its layers, trained for whole
 * epochs of 64 samples at batch size 16:
 *   - ours without DP (shuffled batches of 16),
 *   - ours with local DP (Poisson batches at rate 1/4, per-sample clipping, noise: sigma 1, clip 1),
 *   - PyTorch DP-SGD with functorch per-sample gradients (vmap of grad, the same clipping, noise and Poisson
 *     batches; Debian torch 1.13) and PyTorch without DP for reference,
 * interleaved epoch by epoch so all see the same machine load, 1 thread each. Median ms per epoch after a warm-up.
 * Last line: RESULT dp_overhead=<our DP epoch / our non-DP epoch> torch_ratio=<our DP epoch / PyTorch per-sample DP epoch>.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend';
import { kernelsInUse } from '../src/engine/kernels';
import { setNativeThreads } from '../src/engine/native';
import { findTorchPython, TorchWorker } from '../src/engine/testing/torch';
import { trainModel, TrainOptions } from '../src/engine/train';
import { definePlan } from '../src/plan/define';
import { buildModel } from '../src/plan/tfjs-model';
import { SyntheticImages } from './train-models';
import { median } from './lib/stats';

const SAMPLES = 64;
const BATCH = 16;
const SIZE = [128, 128];
const CHANNELS = 4;

const referencePlan = () => definePlan({
  name: 'ReferenceCnn',
  inputs: { image: { modalities: ['T1', 'T1ce', 'T2', 'FLAIR'], dims: 2, size: SIZE } },
  target: { column: 'y' },
  model: {
    image: [
      { type: 'conv2d', outChannels: 16, kernelSize: 3 }, { type: 'relu' }, { type: 'max_pool2d', kernelSize: 2 },
      { type: 'conv2d', outChannels: 32, kernelSize: 3 }, { type: 'relu' }, { type: 'max_pool2d', kernelSize: 2 },
      { type: 'conv2d', outChannels: 64, kernelSize: 3 }, { type: 'relu' }, { type: 'global_avg_pool' },
    ],
    head: [{ type: 'dense', outFeatures: 1 }, { type: 'sigmoid' }],
  },
  loss: { type: 'bce' },
  optimizer: { type: 'adam', lr: 1e-3 },
  metrics: ['accuracy'],
});

const TORCH_DP_WORKER = String.raw`
import json, sys, time, torch
from functorch import grad, make_functional, vmap
cfg = json.loads(sys.stdin.readline())
torch.set_num_threads(1)
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(cfg['channels'], 16, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(16, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    torch.nn.Linear(64, 1), torch.nn.Sigmoid())
n, bs = cfg['samples'], cfg['batch']
x = torch.rand([n, cfg['channels']] + cfg['size'])
y = (torch.rand(n, 1) < 0.5).float()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.functional.binary_cross_entropy
fmodel, _ = make_functional(model)
def sample_loss(params, xi, yi):
    return loss_fn(fmodel(params, xi.unsqueeze(0)), yi.unsqueeze(0))
per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
steps = n // bs
q = 1 / steps
expected = int(n * q)
print(json.dumps({'ready': torch.__version__}), flush=True)
for line in sys.stdin:
    mode = line.strip()
    if mode not in ('dp', 'plain'):
        break
    t0 = time.perf_counter()
    for s in range(steps):
        opt.zero_grad()
        if mode == 'plain':
            loss_fn(model(x[s*bs:(s+1)*bs]), y[s*bs:(s+1)*bs]).backward()
        else:
            idx = (torch.rand(n) < q).nonzero().view(-1)
            params = tuple(model.parameters())
            if len(idx) > 0:
                g = per_sample(tuple(p.detach() for p in params), x[idx], y[idx])
                norms = torch.cat([gi.reshape(len(idx), -1) for gi in g], 1).norm(dim=1)
                f = (cfg['clip'] / (norms + 1e-6)).clamp(max=1.0)
                sums = [torch.einsum('i,i...->...', f, gi) for gi in g]
            else:
                sums = [torch.zeros_like(p) for p in params]
            for p, s_ in zip(params, sums):
                p.grad = (s_ + torch.normal(0.0, cfg['sigma'] * cfg['clip'], size=p.shape)) / expected
        opt.step()
    print(json.dumps({'ms': (time.perf_counter() - t0) * 1000}), flush=True)
`;

export async function main(args: string[]): Promise<void> {
  const epochsArg = args.indexOf('--epochs');
  const epochs = epochsArg >= 0 ? Number(args[epochsArg + 1]) : 5;
  const choice = await initBackend((line) => console.log(line));
  if (choice.tfjsName === 'wasm' && kernelsInUse() === 'native') setNativeThreads(1);
  const torch = args.includes('--no-torch') ? { why: 'skipped (--no-torch)' } : findTorchPython();
  console.log(`PyTorch: ${torch.python ? torch.why : `ABSENT - ${torch.why}`}`);
  const sigma = 1;
  const clip = 1;
  const base: TrainOptions = { loader: { batchSize: BATCH, shuffle: true }, epochs: 1, loss: 'BCELoss',
    optimizer: { name: 'Adam', lr: 1e-3 }, seed: 1 };
  const model = buildModel(referencePlan(), { seed: 1 });
  const data = new SyntheticImages(SAMPLES, [...SIZE, CHANNELS]);
  const worker = torch.python
    ? new TorchWorker(TORCH_DP_WORKER, { samples: SAMPLES, batch: BATCH, channels: CHANNELS, size: SIZE, sigma, clip })
    : undefined;
  const times: Record<string, number[]> = { plain: [], dp: [], torchDp: [], torchPlain: [] };
  let dpSamples = 0;
  try {
    if (worker) await worker.ask<{ ready: string }>();
    for (let e = 0; e <= epochs; e++) {
      let t0 = performance.now();
      await trainModel(model, data, base);
      if (e > 0) times.plain.push(performance.now() - t0);
      t0 = performance.now();
      const r = await trainModel(model, data, { ...base, dp: { noiseMultiplier: sigma, maxGradNorm: clip } });
      if (e > 0) {
        times.dp.push(performance.now() - t0);
        dpSamples += r.samplesSeen;
      }
      if (worker) {
        const d = await worker.ask<{ ms: number }>('dp');
        const p = await worker.ask<{ ms: number }>('plain');
        if (e > 0) {
          times.torchDp.push(d.ms);
          times.torchPlain.push(p.ms);
        }
      }
    }
  } finally {
    model.dispose();
    worker?.close();
  }
  const line = (label: string, t: number[]) =>
    console.log(`${label.padEnd(48)}${median(t).toFixed(0).padStart(8)}   min ${Math.min(...t).toFixed(0).padStart(6)}   runs: ${t.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`\nreference CNN ${CHANNELS}x${SIZE.join('x')}, ${SAMPLES} samples/epoch, batch ${BATCH} (DP: Poisson rate 1/4, ` +
    `sigma ${sigma}, clip ${clip}; ${(dpSamples / epochs).toFixed(1)} samples/epoch seen on average); ms/epoch, median of ${epochs}`);
  line(`ours, no DP (${choice.tfjsName}${kernelsInUse() === 'native' ? ' + native, 1 thread' : ''})`, times.plain);
  line('ours, DP-SGD (per-sample clipping + noise)', times.dp);
  if (worker) {
    line('PyTorch DP-SGD, functorch per-sample (1 thread)', times.torchDp);
    line('PyTorch, no DP (1 thread)', times.torchPlain);
  }
  const overhead = median(times.dp) / median(times.plain);
  const torchRatio = worker ? (median(times.dp) / median(times.torchDp)).toFixed(2) : 'NA';
  console.log(`\nRESULT dp_overhead=${overhead.toFixed(2)} torch_ratio=${torchRatio}`);
  await tf.ready();
}
