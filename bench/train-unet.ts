/**
 * `npm run bench -- train --model unet [--epochs N] [--size S]` (also `npm run bench -- train-unet`)
 *
 * One training epoch of a conditioned U-Net plan (src/plan/unet.ts: 6 input channels, an RT one-hot broadcast to
 * channels, base 16 channels, depth 2, transposed-convolution up path, 2 output masks, BCE with logits, Adam;
 * 64 samples of S × S, batch 16) on the engine's default tfjs backend, beside the same plan's generated PyTorch
 * module on 1 thread in the same run (epochs interleaved, so both see the same machine load). Median ms per epoch
 * after one warm-up epoch.
 * Last line: RESULT tfjs_ms=<engine default backend> torch_ms=<torch 1 thread> ratio=<tfjs/torch>.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend';
import { kernelsInUse } from '../src/engine/kernels';
import { setNativeThreads } from '../src/engine/native';
import { TorchWorker } from '../src/engine/testing/torch';
import { Batch, BatchSource, trainModel } from '../src/engine/train';
import { definePlan } from '../src/plan/define';
import { generateTorchPlan } from '../src/plan/pytorch';
import { PlanSpec } from '../src/plan/spec';
import { STANDIN_DIR } from '../src/plan/testing/python';
import { buildModel } from '../src/plan/tfjs-model';
import { unet } from '../src/plan/unet';
import { median } from './lib/stats';
import { torchEpochLoop } from './lib/torch-epochs';

const SAMPLES = 64;
const BATCH = 16;
const CHANNELS = 6;
const TECHNIQUES = 3;

export function benchPlan(size: number): PlanSpec {
  return definePlan({
    name: 'BenchUnet',
    inputs: { image: { modalities: ['T1ce', 'FLAIR', 'T2', 'T1', 'dose', 'seg'], dims: 2, size: [size, size] }, tabular: { columns: ['rt_conventional', 'rt_proton', 'rt_carbon'] } },
    target: { column: 'mask' },
    model: unet({ size: [size, size], baseChannels: 16, depth: 2, outChannels: 2, condition: 'tabular' }),
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'adam', lr: 1e-3 },
  });
}

/** Fixed random inputs, one-hot techniques and binary masks (the values do not change the cost). */
export class SyntheticEvolution implements BatchSource {
  readonly size = SAMPLES;
  private readonly image: Float32Array;
  private readonly tabular: Float32Array;
  private readonly target: Float32Array;

  constructor(private readonly side: number) {
    let s = 12345;
    const next = (): number => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    this.image = Float32Array.from({ length: SAMPLES * side * side * CHANNELS }, next);
    this.tabular = Float32Array.from({ length: SAMPLES * TECHNIQUES }, (_, i) => (i % TECHNIQUES === Math.floor(i / TECHNIQUES) % TECHNIQUES ? 1 : 0));
    this.target = Float32Array.from({ length: SAMPLES * side * side * 2 }, () => (next() < 0.3 ? 1 : 0));
  }

  batch(indices: number[]): Batch {
    const n = indices.length;
    const px = this.side * this.side;
    const take = (source: Float32Array, per: number): Float32Array => {
      const out = new Float32Array(n * per);
      indices.forEach((i, k) => out.set(source.subarray(i * per, (i + 1) * per), k * per));
      return out;
    };
    return {
      inputs: {
        image: tf.tensor4d(take(this.image, px * CHANNELS), [n, this.side, this.side, CHANNELS]),
        tabular: tf.tensor2d(take(this.tabular, TECHNIQUES), [n, TECHNIQUES]),
      },
      target: tf.tensor4d(take(this.target, px * 2), [n, this.side, this.side, 2]),
    };
  }
}

/** The generated plan's model, trained like the TS side (inputs channels first), one epoch per "epoch" line. */
const TORCH_UNET_WORKER = String.raw`
import importlib, json, sys, time, torch
cfg = json.loads(sys.stdin.readline())
torch.set_num_threads(cfg['threads'])
torch.manual_seed(0)
sys.path.insert(0, cfg['plan_dir'])
plan = getattr(importlib.import_module(cfg['module']), cfg['class_name'])()
plan.post_init(model_args={}, training_args={'optimizer_args': {}, 'random_seed': 0})
model = plan.model()
n, s = cfg['samples'], cfg['size']
x = torch.rand([n, cfg['channels'], s, s])
t = torch.nn.functional.one_hot(torch.arange(n) % 3, 3).float()
y = (torch.rand([n, 2, s, s]) < 0.3).float()
${torchEpochLoop({ lossFn: 'torch.nn.BCEWithLogitsLoss()', samples: 'n', batchLoss: 'loss_fn(model(x[i:i+bs], t[i:i+bs]), y[i:i+bs])' })}`;

export async function main(args: string[]): Promise<void> {
  const value = (flag: string, fallback: number): number => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : fallback);
  const epochs = value('--epochs', 3);
  const size = value('--size', 64);
  const choice = await initBackend((line) => console.log(line));
  // As the reference CNN bench: the native kernels on 1 thread, against PyTorch on 1 thread.
  if (kernelsInUse() === 'native') setNativeThreads(1);
  const spec = benchPlan(size);
  const planDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-unet-'));
  fs.writeFileSync(path.join(planDir, 'bench_unet_plan.py'), generateTorchPlan(spec));
  // The generated plan imports fedbiomed: the project's stand-in package plays it here.
  process.env.PYTHONPATH = [STANDIN_DIR, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  const worker = new TorchWorker(TORCH_UNET_WORKER, {
    plan_dir: planDir, module: 'bench_unet_plan', class_name: spec.name, samples: SAMPLES, size, channels: CHANNELS, batch: BATCH, threads: 1,
  });
  const model = buildModel(spec, { seed: 1 });
  const data = new SyntheticEvolution(size);
  const tfjsMs: number[] = [];
  const torchMs: number[] = [];
  try {
    const ready = await worker.ask<{ ready: string }>();
    console.log(`U-Net ${size}x${size}, ${SAMPLES} samples, batch ${BATCH}; tfjs ${choice.name} (${kernelsInUse()} kernels, 1 thread), PyTorch ${ready.ready} (1 thread)`);
    for (let e = 0; e <= epochs; e++) {
      const t0 = performance.now();
      await trainModel(model, data, {
        loader: { batchSize: BATCH }, epochs: 1, loss: 'BCEWithLogitsLoss', optimizer: { name: 'Adam', lr: 1e-3 }, seed: 1,
      });
      const ms = performance.now() - t0;
      const torch = (await worker.ask<{ ms: number }>('epoch')).ms;
      if (e > 0) { tfjsMs.push(ms); torchMs.push(torch); }
      console.log(`epoch ${e}${e === 0 ? ' (warm-up)' : ''}: tfjs ${ms.toFixed(0)} ms, torch ${torch.toFixed(0)} ms`);
    }
  } finally {
    model.dispose();
    worker.close();
    fs.rmSync(planDir, { recursive: true, force: true });
  }
  const t = median(tfjsMs);
  const p = median(torchMs);
  console.log(`RESULT tfjs_ms=${t.toFixed(0)} torch_ms=${p.toFixed(0)} ratio=${(t / p).toFixed(2)}`);
}

if (require.main === module) main(process.argv.slice(2)).catch((err) => { console.error(err); process.exitCode = 1; });
