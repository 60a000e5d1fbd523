/**
 * `npm run bench -- dp [--epochs N (9)] [--one-thread] [--no-torch]`
 *
 * The reference CNN (bench/train-models.ts: 4x128x128 input, three conv+ReLU, max pools, global average pool,
 * dense + sigmoid, BCE, Adam), written as a plan so that the DP engine can tap its layers, trained for whole
 * epochs of 64 samples at batch size 16:
 *   - ours without DP (shuffled batches of 16),
 *   - ours with local DP (Poisson batches at rate 1/4, per-sample clipping, noise: sigma 1, clip 1),
 *   - PyTorch DP-SGD with functorch per-sample gradients (vmap of grad, the same clipping, noise and Poisson
 *     batches; Debian torch 1.13) and PyTorch without DP for reference,
 * interleaved epoch by epoch so all see the same machine load. Median ms per epoch after a warm-up, and the CPU
 * time each used (process CPU for ours, time.process_time for PyTorch: less sensitive to a loaded machine).
 * Twice: like for like on 1 thread each (our native kernels, PyTorch's intra-op pool), then with each side's default
 * thread count (ours: every core this process may use, or FEDBIOMED_TS_THREADS; PyTorch: its default, one per core);
 * `--one-thread` skips the second run.
 * Last line: RESULT dp_overhead=<our DP epoch / our non-DP epoch> torch_ratio=<our DP epoch / PyTorch per-sample DP
 * epoch>, both on 1 thread each, torch_cpu_ratio=<the same in CPU time>, then torch_ratio_default_threads=<the wall
 * ratio at both defaults>.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend';
import { kernelsInUse } from '../src/engine/kernels';
import { setNativeThreads, threadsSetting } from '../src/engine/native';
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
default_threads = torch.get_num_threads()
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
print(json.dumps({'ready': torch.__version__, 'default_threads': default_threads}), flush=True)
for line in sys.stdin:
    mode = line.strip()
    if mode.startswith('threads '):
        torch.set_num_threads(int(mode.split()[1]))
        print(json.dumps({'threads': torch.get_num_threads()}), flush=True)
        continue
    if mode not in ('dp', 'plain'):
        break
    t0 = time.perf_counter()
    c0 = time.process_time()
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
    print(json.dumps({'ms': (time.perf_counter() - t0) * 1000, 'cpu_ms': (time.process_time() - c0) * 1000}), flush=True)
`;

interface Series {
  wall: number[];
  cpu: number[];
}

interface Run {
  ourThreads: number;
  torchThreads: number;
  plain: Series;
  dp: Series;
  torchDp: Series;
  torchPlain: Series;
  dpSamples: number;
}

const series = (): Series => ({ wall: [], cpu: [] });

/** Wall and process CPU milliseconds of `work`. */
async function timed<T>(work: () => Promise<T>): Promise<{ wall: number; cpu: number; result: T }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await work();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000, result };
}

export async function main(args: string[]): Promise<void> {
  const epochsArg = args.indexOf('--epochs');
  const epochs = epochsArg >= 0 ? Number(args[epochsArg + 1]) : 9;
  const choice = await initBackend((line) => console.log(line));
  const native = choice.tfjsName === 'wasm' && kernelsInUse() === 'native';
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
  const runs: Run[] = [];
  try {
    const torchDefault = worker ? (await worker.ask<{ ready: string; default_threads: number }>()).default_threads : 1;
    const configs = [{ ours: 1, torch: 1 }];
    if (!args.includes('--one-thread') && native) configs.push({ ours: threadsSetting(), torch: torchDefault });
    for (const config of configs) {
      if (native) setNativeThreads(config.ours);
      if (worker) await worker.ask(`threads ${config.torch}`);
      const run: Run = { ourThreads: native ? config.ours : 1, torchThreads: config.torch, plain: series(), dp: series(),
        torchDp: series(), torchPlain: series(), dpSamples: 0 };
      const add = (s: Series, t: { wall: number; cpu: number }) => {
        s.wall.push(t.wall);
        s.cpu.push(t.cpu);
      };
      for (let e = 0; e <= epochs; e++) {
        const plain = await timed(() => trainModel(model, data, base));
        const dp = await timed(() => trainModel(model, data, { ...base, dp: { noiseMultiplier: sigma, maxGradNorm: clip } }));
        const d = worker ? await worker.ask<{ ms: number; cpu_ms: number }>('dp') : undefined;
        const p = worker ? await worker.ask<{ ms: number; cpu_ms: number }>('plain') : undefined;
        if (e === 0) continue; // warm-up
        add(run.plain, plain);
        add(run.dp, dp);
        run.dpSamples += dp.result.samplesSeen;
        if (d && p) {
          add(run.torchDp, { wall: d.ms, cpu: d.cpu_ms });
          add(run.torchPlain, { wall: p.ms, cpu: p.cpu_ms });
        }
      }
      runs.push(run);
    }
  } finally {
    model.dispose();
    worker?.close();
  }
  const line = (label: string, s: Series) =>
    console.log(`${label.padEnd(52)}${median(s.wall).toFixed(0).padStart(6)}   min ${Math.min(...s.wall).toFixed(0).padStart(5)}   ` +
      `cpu ${median(s.cpu).toFixed(0).padStart(5)}   runs: ${s.wall.map((x) => x.toFixed(0)).join(' ')}`);
  const threads = (n: number) => `${n} thread${n > 1 ? 's' : ''}`;
  const ratios = runs.map((run) => {
    console.log(`\nreference CNN ${CHANNELS}x${SIZE.join('x')}, ${SAMPLES} samples/epoch, batch ${BATCH} (DP: Poisson rate 1/4, ` +
      `sigma ${sigma}, clip ${clip}; ${(run.dpSamples / epochs).toFixed(1)} samples/epoch seen on average); ` +
      `ms/epoch, median of ${epochs}; ours on ${threads(run.ourThreads)}, PyTorch on ${threads(run.torchThreads)}`);
    line(`ours, no DP (${choice.tfjsName}${native ? ' + native' : ''})`, run.plain);
    line('ours, DP-SGD (per-sample clipping + noise)', run.dp);
    if (worker) {
      line('PyTorch DP-SGD, functorch per-sample', run.torchDp);
      line('PyTorch, no DP', run.torchPlain);
    }
    const torchRatio = worker ? median(run.dp.wall) / median(run.torchDp.wall) : NaN;
    const cpuRatio = worker ? median(run.dp.cpu) / median(run.torchDp.cpu) : NaN;
    if (worker) console.log(`our DP epoch / PyTorch's: ${torchRatio.toFixed(2)} wall, ${cpuRatio.toFixed(2)} CPU time`);
    return { overhead: median(run.dp.wall) / median(run.plain.wall), torchRatio, cpuRatio };
  });
  const fmt = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? 'NA' : v.toFixed(2));
  console.log(`\ndp_overhead and torch_ratio below: 1 thread each (like for like); torch_ratio_default_threads: ` +
    `ours ${threads(runs[runs.length - 1].ourThreads)}, PyTorch ${threads(runs[runs.length - 1].torchThreads)}`);
  console.log(`RESULT dp_overhead=${fmt(ratios[0].overhead)} torch_ratio=${fmt(ratios[0].torchRatio)} torch_cpu_ratio=${fmt(ratios[0].cpuRatio)}` +
    (runs.length > 1 ? ` torch_ratio_default_threads=${fmt(ratios[1].torchRatio)}` : ''));
  await tf.ready();
}
