/**
 * `npm run bench -- train [--epochs N] [--no-cpu] [--no-3d] [--no-torch]`
 * (`--model unet`: the U-Net plan instead, bench/train-unet.ts)
 *
 * Trains the reference CNN (see bench/train-models.ts) for whole epochs (64 samples, batch 16, BCE, Adam) and
 * prints the median ms per epoch after one warm-up epoch, on every available tfjs backend and on PyTorch in the
 * same run (1 and 2 threads), then a per-kernel profile of one wasm training step and the 3D variant.
 * On wasm with the native kernels built, they run on 1 thread for the RESULT line (PyTorch on 1 thread is the
 * baseline), and 2 threads and the pure wasm kernels are timed too, in the same interleaved rounds.
 * Last line: RESULT tfjs_ms=<the engine's default: node, or wasm (+native kernels when built), 2D>
 * torch_ms=<torch 1 thread, 2D> ratio=<tfjs/torch>.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../src/engine/backend';
import { KernelImplementation, kernelsInUse, useKernels } from '../src/engine/kernels';
import { setNativeThreads } from '../src/engine/native';
import { findTorchPython, TorchWorker } from '../src/engine/testing/torch';
import { trainModel, TrainOptions } from '../src/engine/train';
import { referenceCnn, SyntheticImages, TORCH_BENCH_WORKER } from './train-models';
import { median } from './lib/stats';

interface Variant {
  dims: 2 | 3;
  channels: number;
  spatial: number[];
  samples: number;
  batch: number;
}

const VARIANT_2D: Variant = { dims: 2, channels: 4, spatial: [128, 128], samples: 64, batch: 16 };
const VARIANT_3D: Variant = { dims: 3, channels: 1, spatial: [32, 64, 64], samples: 64, batch: 16 };

function options(v: Variant, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    loader: { batchSize: v.batch },
    epochs: 1,
    loss: 'BCELoss',
    optimizer: { name: 'Adam', lr: 1e-3 },
    seed: 1,
    ...extra,
  };
}

/** Channels-last sample shape for tfjs. */
function sampleShape(v: Variant): number[] {
  return [...v.spatial, v.channels];
}

interface EpochTimes {
  /** Per tfjs configuration (label), in TFJS_CONFIGS order. */
  tfjs: Record<string, number[]>;
  torch: Record<number, number[]>;
}

/** A way to run tfjs: the 1-thread default first (it gives the RESULT line), then alternatives measured alongside. */
interface TfjsConfig {
  label: string;
  kernels?: KernelImplementation;
  threads?: number;
}

function applyConfig(config: TfjsConfig): void {
  if (config.kernels) useKernels(config.kernels);
  if (config.kernels === 'native') setNativeThreads(config.threads ?? 1);
}

function tfjsConfigs(backend: string): TfjsConfig[] {
  if (backend !== 'wasm') return [{ label: `tfjs ${backend}` }];
  if (kernelsInUse() === 'native') {
    return [
      { label: 'tfjs wasm + native kernels', kernels: 'native', threads: 1 },
      { label: 'tfjs wasm + native, 2 threads', kernels: 'native', threads: 2 },
      { label: 'tfjs wasm (wasm kernels)', kernels: 'wasm' },
    ];
  }
  return [{ label: 'tfjs wasm', kernels: 'wasm' }];
}

/**
 * One warm-up epoch each, then `epochs` rounds of: one tfjs epoch, one PyTorch epoch per thread count. Interleaving
 * keeps both sides under the same (shared-machine) load.
 */
async function interleavedEpochs(
  backend: string,
  configs: TfjsConfig[],
  v: Variant,
  epochs: number,
  torchThreads: number[],
): Promise<EpochTimes> {
  await tf.setBackend(backend);
  const model = referenceCnn(v.dims, v.channels);
  const data = new SyntheticImages(v.samples, sampleShape(v));
  const workers = torchThreads.map((threads) => new TorchWorker(TORCH_BENCH_WORKER, { ...v, threads }));
  const out: EpochTimes = {
    tfjs: Object.fromEntries(configs.map((c) => [c.label, [] as number[]])),
    torch: Object.fromEntries(torchThreads.map((t) => [t, [] as number[]])),
  };
  try {
    for (const w of workers) await w.ask<{ ready: string }>();
    for (let e = 0; e <= epochs; e++) {
      for (const config of configs) {
        applyConfig(config);
        const t0 = performance.now();
        await trainModel(model, data, options(v));
        const ms = performance.now() - t0;
        if (e > 0) out.tfjs[config.label].push(ms);
      }
      applyConfig(configs[0]);
      for (let i = 0; i < workers.length; i++) {
        const r = await workers[i].ask<{ ms: number }>('epoch');
        if (e > 0) out.torch[torchThreads[i]].push(r.ms);
      }
    }
  } finally {
    model.dispose();
    workers.forEach((w) => w.close());
  }
  return out;
}

/** One batch of `batch` samples on a slow backend, extrapolated to an epoch. */
async function timeOneBatchExtrapolated(backend: string, v: Variant, batch: number): Promise<number> {
  await tf.setBackend(backend);
  const model = referenceCnn(v.dims, v.channels);
  const data = new SyntheticImages(batch, sampleShape(v));
  try {
    const t0 = performance.now();
    await trainModel(model, data, { ...options(v), loader: { batchSize: batch }, numUpdates: 1, epochs: null });
    return ((performance.now() - t0) * v.samples) / batch;
  } finally {
    model.dispose();
  }
}

interface KernelRow {
  name: string;
  calls: number;
  ms: number;
}

async function profileStep(backend: string, v: Variant): Promise<{ rows: KernelRow[]; wallMs: number }> {
  await tf.setBackend(backend);
  const model = referenceCnn(v.dims, v.channels);
  const data = new SyntheticImages(v.batch, sampleShape(v));
  try {
    await trainModel(model, data, options(v, { numUpdates: 1, epochs: null })); // warm-up
    const t0 = performance.now();
    const info = await tf.profile(async () => {
      await trainModel(model, data, options(v, { numUpdates: 1, epochs: null }));
    });
    const wallMs = performance.now() - t0;
    const byName = new Map<string, KernelRow>();
    for (const k of info.kernels) {
      // "<op>__op" entries are tfjs op scopes wrapping kernels already listed; counting them would double count.
      if (k.name.endsWith('__op')) continue;
      const row = byName.get(k.name) ?? { name: k.name, calls: 0, ms: 0 };
      row.calls += 1;
      row.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      byName.set(k.name, row);
    }
    return { rows: [...byName.values()].sort((a, b) => b.ms - a.ms), wallMs };
  } finally {
    model.dispose();
  }
}

const fmt = (ms: number) => ms.toFixed(0).padStart(8);

export async function main(args: string[]): Promise<void> {
  const modelArg = args.indexOf('--model');
  const modelName = modelArg >= 0 ? args[modelArg + 1] : 'cnn';
  if (modelName === 'unet') return (await import('./train-unet')).main(args);
  if (modelName !== 'cnn') throw new Error(`train: unknown --model '${modelName}' (cnn or unet)`);
  const flag = (f: string) => args.includes(f);
  const epochsArg = args.indexOf('--epochs');
  const epochs = epochsArg >= 0 ? Number(args[epochsArg + 1]) : 5;
  const choice = await initBackend((line) => console.log(line));
  const fast = choice.tfjsName;
  if (choice.name !== 'node') console.log('tfjs-node: not available here, so not measured (see the backend line above)');
  const torch = flag('--no-torch') ? { why: 'skipped (--no-torch)' } : findTorchPython();
  console.log(`PyTorch: ${torch.python ? torch.why : `ABSENT - ${torch.why}`}`);

  const results: Record<string, number> = {};
  for (const v of flag('--no-3d') ? [VARIANT_2D] : [VARIANT_2D, VARIANT_3D]) {
    const label = `${v.dims}D input ${v.channels}x${v.spatial.join('x')}, ${v.samples} samples/epoch, batch ${v.batch}`;
    console.log(`\n== ${label}`);
    console.log('backend                        ms/epoch (median after 1 warm-up epoch; epochs interleaved tfjs/torch)');
    const runs = v.dims === 2 ? epochs : Math.max(2, Math.ceil(epochs / 2));
    let times: EpochTimes | undefined;
    const configs = tfjsConfigs(fast);
    try {
      times = await interleavedEpochs(fast, configs, v, runs, torch.python ? [1, 2] : []);
      for (const [i, config] of configs.entries()) {
        const t = times.tfjs[config.label];
        if (i === 0) results[`tfjs${v.dims}`] = median(t);
        else results[`${config.label} ${v.dims}`] = median(t);
        console.log(`${config.label.padEnd(31)}${fmt(median(t))}   min ${fmt(Math.min(...t))}   runs: ${t.map((x) => x.toFixed(0)).join(' ')}`);
      }
    } catch (e) {
      console.log(`tfjs ${fast.padEnd(26)}  FAILED: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      applyConfig(configs[0]);
    }
    if (!flag('--no-cpu') && fast !== 'cpu' && v.dims === 2) {
      const batch = 2;
      const ms = await timeOneBatchExtrapolated('cpu', v, batch);
      console.log(`tfjs cpu (1 batch of ${batch}, x${v.samples / batch})${fmt(ms).padStart(9)}   extrapolated from a single timed step`);
    }
    if (torch.python && times) {
      for (const threads of [1, 2]) {
        const t = times.torch[threads];
        if (threads === 1) results[`torch${v.dims}`] = median(t);
        const label = `torch ${threads} thread${threads > 1 ? 's' : ''}`;
        console.log(`${label.padEnd(31)}${fmt(median(t))}   min ${fmt(Math.min(...t))}   runs: ${t.map((x) => x.toFixed(0)).join(' ')}`);
      }
    } else if (!torch.python) {
      console.log(`torch                          ABSENT (${torch.why})`);
    }
    if (results[`tfjs${v.dims}`] && times && torch.python) {
      for (const [i, config] of configs.entries()) {
        const ms = i === 0 ? results[`tfjs${v.dims}`] : results[`${config.label} ${v.dims}`];
        // Same thread count on both sides: multi-threaded native runs against multi-threaded PyTorch.
        const threads = config.threads ?? 1;
        const torchMs = times.torch[threads] ? median(times.torch[threads]) : undefined;
        if (ms && torchMs) {
          console.log(`ratio ${config.label}/torch(${threads} thread${threads > 1 ? 's' : ''}): ${(ms / torchMs).toFixed(2)}`);
        }
      }
    }
    if (fast === 'wasm' && !(v.dims === 3 && results.tfjs3 === undefined)) {
      const { rows, wallMs } = await profileStep(fast, v);
      const total = rows.reduce((a, r) => a + r.ms, 0);
      console.log(`\nper-kernel profile, one training step (batch ${v.batch}) on ${fast}${kernelsInUse() === 'native' ? ' + native kernels' : ''}: kernels ${total.toFixed(1)} ms, wall ${wallMs.toFixed(1)} ms (profiling overhead included)`);
      console.log('kernel                          calls       ms      %');
      for (const r of rows.slice(0, 18)) {
        console.log(`${r.name.padEnd(30)}${String(r.calls).padStart(7)}${r.ms.toFixed(1).padStart(9)}${((100 * r.ms) / total).toFixed(1).padStart(7)}`);
      }
    }
  }
  await tf.setBackend(fast);
  const tfjsMs = results.tfjs2;
  const torchMs = results.torch2;
  const ratio = tfjsMs && torchMs ? (tfjsMs / torchMs).toFixed(2) : 'NA';
  console.log(`\nRESULT tfjs_ms=${tfjsMs ? tfjsMs.toFixed(0) : 'NA'} torch_ms=${torchMs ? torchMs.toFixed(0) : 'NA'} ratio=${ratio}`);
}
