/**
 * `npm run bench -- profile --model bn|plain|unet [--steps N] [--threads T] [--shapes]`: where a training step's time
 * goes, per tfjs kernel (tf.profile over N steps after one warm-up; kernel time as the backend measures it, summed by
 * kernel name, or by name and input shapes with --shapes). With --cpu: each kernel's process CPU time instead (the
 * wasm kernels wrapped in the registry for the run), which a loaded machine disturbs less than wall time.
 * A diagnostic for the speed work on the native kernels, not a benchmark: no RESULT line.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend';
import { kernelsInUse } from '../src/engine/kernels';
import { setNativeThreads } from '../src/engine/native';
import { trainModel } from '../src/engine/train';
import { buildModel, trainingSettings } from '../src/plan';
import { benchPlan as bnPlan } from './bn';
import { benchPlan as unetPlan, SyntheticEvolution } from './train-unet';
import { SyntheticImages } from './train-models';

const shapesOf = (inputs: ({ shape: number[] } | undefined)[]): string => inputs.map((t) => (t ? `[${t.shape.join(',')}]` : '-')).join(' ');

/** Wraps every wasm kernel to add up its CPU time by name (kernels called from inside others are counted in both). */
function cpuTimes(withShapes: boolean): Map<string, { ms: number; calls: number }> {
  const totals = new Map<string, { ms: number; calls: number }>();
  for (const config of tf.getKernelsForBackend('wasm')) {
    const inner = config.kernelFunc;
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel({
      ...config,
      kernelFunc: (args) => {
        const start = process.cpuUsage();
        try {
          return inner(args);
        } finally {
          const used = process.cpuUsage(start);
          const key = withShapes ? `${config.kernelName} ${shapesOf(Object.values(args.inputs))}` : config.kernelName;
          const entry = totals.get(key) ?? { ms: 0, calls: 0 };
          entry.ms += (used.user + used.system) / 1000;
          entry.calls++;
          totals.set(key, entry);
        }
      },
    });
  }
  return totals;
}

export async function main(args: string[]): Promise<void> {
  const value = (flag: string, fallback: string): string => (args.includes(flag) ? args[args.indexOf(flag) + 1] : fallback);
  const which = value('--model', 'bn');
  const steps = Number(value('--steps', '2'));
  await initBackend(() => undefined);
  if (kernelsInUse() === 'native') setNativeThreads(Number(value('--threads', '1')));
  const size = [24, 48, 48];
  const spec = which === 'unet' ? unetPlan(64) : bnPlan(which === 'bn' ? 'batch_norm' : 'none', size);
  const data = which === 'unet' ? new SyntheticEvolution(64) : new SyntheticImages(32, [...size, 1]);
  const batch = which === 'unet' ? 16 : 8;
  const model = buildModel(spec, { seed: 1 });
  const settings = { loader: { batchSize: batch, shuffle: false }, ...trainingSettings(spec), epochs: null, seed: 0, numUpdates: 1 };
  await trainModel(model, data, settings);
  if (args.includes('--cpu')) {
    const totals = cpuTimes(args.includes('--shapes'));
    for (let s = 0; s < steps; s++) await trainModel(model, data, settings);
    const sum = [...totals.values()].reduce((a, b) => a + b.ms, 0);
    console.log(`${which}: ${steps} step(s), ${(sum / steps).toFixed(1)} ms of kernel CPU time per step`);
    for (const [name, { ms, calls }] of [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, args.includes('--shapes') ? 60 : 25)) {
      console.log(`${name.padEnd(args.includes('--shapes') ? 64 : 32)} ${(ms / steps).toFixed(2).padStart(8)} ms/step ${String(calls / steps).padStart(5)} calls/step`);
    }
    model.dispose();
    return;
  }
  const info = await tf.profile(async () => {
    for (let s = 0; s < steps; s++) await trainModel(model, data, settings);
  });
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const key = args.includes('--shapes') ? `${k.name} ${shapesOf(k.inputShapes.map((shape) => ({ shape })))}` : k.name;
    const entry = byName.get(key) ?? { ms: 0, calls: 0 };
    entry.ms += (await k.kernelTimeMs) as number;
    entry.calls++;
    byName.set(key, entry);
  }
  const total = [...byName.values()].reduce((a, b) => a + b.ms, 0);
  console.log(`${which}: ${steps} step(s), ${(total / steps).toFixed(1)} ms of kernels per step`);
  for (const [name, { ms, calls }] of [...byName.entries()].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(`${name.padEnd(args.includes('--shapes') ? 64 : 32)} ${(ms / steps).toFixed(2).padStart(8)} ms/step ${String(calls / steps).padStart(5)} calls/step`);
  }
  model.dispose();
}
