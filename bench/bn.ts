/**
 * `npm run bench -- bn [--epochs N] [--size DxHxW]`: what 3-D batch norm costs a training epoch. The reference
 * 3D CNN written as a plan (conv3d + ReLU + max pool ×2, conv3d + ReLU, global average pool, dense), once plain
 * and once with batch_norm after every conv (the plans' own model, as nodes train it), epochs interleaved; the
 * generated PyTorch plans' networks timed the same way on 1 thread in the same run.
 * Last line: `RESULT bn_ratio=X torch_bn_ratio=Y tfjs_bn_ms=… tfjs_plain_ms=… bn_cpu_ratio=Z` (ratio = epoch with BN / without;
 * the CPU ratio is the same with the process's CPU time per epoch, which a loaded machine disturbs less).
 * `--group-norm` adds the same network with group_norm (8 groups) after every conv, timed with the native group-norm
 * kernel and with the composed ops (that kernel unregistered, every other native kernel in use), and appends
 * `gn_ratio=` (group norm / plain) `gn_composed_ms= gn_native_ms= gn_speedup=` (composed / native) to the line.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { getKernel, unregisterKernel } from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend';
import { kernelsInUse, useKernels } from '../src/engine/kernels';
import { GROUP_NORM, GROUP_NORM_GRAD } from '../src/engine/kernels/group-norm-native';
import { trainModel } from '../src/engine/train';
import { buildModel, definePlan, generateTorchPlan, LayerSpec, PlanSpec, trainingSettings } from '../src/plan';
import { findTorchPython } from '../src/engine/testing/torch';
import { SyntheticImages } from './train-models';
import { median } from './lib/stats';

const SAMPLES = 32;
const BATCH = 8;

/** The normalisation after every conv: none, batch norm, or group norm with 8 groups. */
export type BenchNorm = 'none' | 'batch_norm' | 'group_norm';

export function benchPlan(norm: BenchNorm, size: number[]): PlanSpec {
  const normLayer: LayerSpec[] = norm === 'batch_norm' ? [{ type: 'batch_norm' }] : norm === 'group_norm' ? [{ type: 'group_norm', groups: 8 }] : [];
  const block = (outChannels: number, pool: boolean): LayerSpec[] => [
    { type: 'conv3d', outChannels, kernelSize: 3, bias: norm === 'none' },
    ...normLayer,
    { type: 'relu' },
    ...(pool ? [{ type: 'max_pool3d', kernelSize: 2 } as LayerSpec] : []),
  ];
  return definePlan({
    name: { none: 'Ref3d', batch_norm: 'Ref3dBn', group_norm: 'Ref3dGn' }[norm],
    inputs: { image: { modalities: ['T1'], dims: 3, size } },
    target: { column: 'y' },
    model: { image: [...block(16, true), ...block(32, true), ...block(64, false), { type: 'global_avg_pool' }], head: [{ type: 'dense', outFeatures: 1 }] },
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'sgd', lr: 0.01 },
  });
}

async function tfjsEpoch(spec: PlanSpec, data: SyntheticImages): Promise<{ ms: number; cpuMs: number }> {
  const model = buildModel(spec, { seed: 1 });
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await trainModel(model, data, { loader: { batchSize: BATCH, shuffle: false }, ...trainingSettings(spec), epochs: 1, seed: 0 });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const used = process.cpuUsage(cpu);
  model.dispose();
  return { ms, cpuMs: (used.user + used.system) / 1000 };
}

const TORCH_TIMER = String.raw`
import importlib, json, sys, time, torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
cfg = json.loads(sys.argv[2])
out = {}
x = torch.rand(cfg['samples'], 1, *cfg['size'])
y = (torch.rand(cfg['samples'], 1) < 0.5).float()
for name in ('plain', 'bn'):
    plan = getattr(importlib.import_module(name), cfg['classes'][name])
    net = plan.Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    times = []
    for epoch in range(cfg['epochs'] + 1):
        start = time.perf_counter()
        for b in range(0, cfg['samples'], cfg['batch']):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(image=x[b:b + cfg['batch']]), y[b:b + cfg['batch']])
            loss.backward()
            opt.step()
        times.append((time.perf_counter() - start) * 1000)
    out[name] = times[1:]
print(json.dumps(out))
`;

export async function main(args: string[]): Promise<void> {
  const at = (flag: string) => args.indexOf(flag);
  const epochs = at('--epochs') >= 0 ? Number(args[at('--epochs') + 1]) : 4;
  const size = at('--size') >= 0 ? args[at('--size') + 1].split('x').map(Number) : [24, 48, 48];
  const choice = await initBackend((line) => console.log(line));
  console.log(`3D input 1x${size.join('x')}, ${SAMPLES} samples/epoch, batch ${BATCH}, ${epochs} timed epochs after 1 warm-up`);
  const plain = benchPlan('none', size);
  const bn = benchPlan('batch_norm', size);
  const data = new SyntheticImages(SAMPLES, [...size, 1]);
  const times = { plain: [] as number[], bn: [] as number[] };
  const cpu = { plain: [] as number[], bn: [] as number[] };
  await tfjsEpoch(plain, data);
  await tfjsEpoch(bn, data);
  for (let e = 0; e < epochs; e++) {
    for (const [which, spec] of [['plain', plain], ['bn', bn]] as const) {
      const t = await tfjsEpoch(spec, data);
      times[which].push(t.ms);
      cpu[which].push(t.cpuMs);
    }
  }
  const tfjsPlain = median(times.plain);
  const tfjsBn = median(times.bn);
  console.log(`tfjs ${choice.name} plain     ${tfjsPlain.toFixed(0)} ms/epoch   runs ${times.plain.map((t) => t.toFixed(0)).join(' ')}`);
  console.log(`tfjs ${choice.name} batch norm ${tfjsBn.toFixed(0)} ms/epoch   runs ${times.bn.map((t) => t.toFixed(0)).join(' ')}`);

  let torchRatio = 'NA';
  const torch = findTorchPython();
  if (torch.python) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-bench-bn-'));
    try {
      // The generated plans' Net classes (the Fed-BioMed imports are not needed to time the network alone).
      const netOnly = (spec: PlanSpec) => generateTorchPlan(spec).replace(/^from fedbiomed.*$/gm, '').replace(/\(TorchTrainingPlan\)/, '');
      fs.writeFileSync(path.join(dir, 'plain.py'), netOnly(plain));
      fs.writeFileSync(path.join(dir, 'bn.py'), netOnly(bn));
      const cfg = { samples: SAMPLES, batch: BATCH, size, epochs, classes: { plain: plain.name, bn: bn.name } };
      const run = spawnSync(torch.python, ['-c', TORCH_TIMER, dir, JSON.stringify(cfg)], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' }, timeout: 600000 });
      if (run.status !== 0) throw new Error(run.stderr);
      const t = JSON.parse(run.stdout) as { plain: number[]; bn: number[] };
      console.log(`torch 1 thread plain      ${median(t.plain).toFixed(0)} ms/epoch`);
      console.log(`torch 1 thread batch norm ${median(t.bn).toFixed(0)} ms/epoch`);
      torchRatio = (median(t.bn) / median(t.plain)).toFixed(2);
      console.log(`tfjs/torch: plain ${(tfjsPlain / median(t.plain)).toFixed(2)}, batch norm ${(tfjsBn / median(t.bn)).toFixed(2)}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else {
    console.log(`PyTorch ABSENT (${torch.why})`);
  }
  const cpuRatio = median(cpu.bn) / median(cpu.plain);
  console.log(`tfjs CPU time per epoch: plain ${median(cpu.plain).toFixed(0)} ms, batch norm ${median(cpu.bn).toFixed(0)} ms`);
  const groupNorm = args.includes('--group-norm') ? await groupNormEpochs(size, data, epochs, tfjsPlain) : '';
  console.log(`\nRESULT bn_ratio=${(tfjsBn / tfjsPlain).toFixed(2)} torch_bn_ratio=${torchRatio} tfjs_bn_ms=${tfjsBn.toFixed(0)} tfjs_plain_ms=${tfjsPlain.toFixed(0)} bn_cpu_ratio=${cpuRatio.toFixed(2)}${groupNorm}`);
}

/** Group-norm epochs on the native kernel and on the composed ops, interleaved; the RESULT fields they add. */
async function groupNormEpochs(size: number[], data: SyntheticImages, epochs: number, plainMs: number): Promise<string> {
  if (kernelsInUse() !== 'native') return ' gn_ratio=NA (no native kernels)';
  const spec = benchPlan('group_norm', size);
  const composed = async () => {
    for (const name of [GROUP_NORM, GROUP_NORM_GRAD]) if (getKernel(name, 'wasm')) unregisterKernel(name, 'wasm');
    try {
      return await tfjsEpoch(spec, data);
    } finally {
      useKernels('native');
    }
  };
  await tfjsEpoch(spec, data);
  await composed();
  const times = { native: [] as number[], composed: [] as number[] };
  for (let e = 0; e < epochs; e++) {
    times.native.push((await tfjsEpoch(spec, data)).ms);
    times.composed.push((await composed()).ms);
  }
  const native = median(times.native);
  const slow = median(times.composed);
  console.log(`tfjs group norm, native kernel ${native.toFixed(0)} ms/epoch   runs ${times.native.map((t) => t.toFixed(0)).join(' ')}`);
  console.log(`tfjs group norm, composed ops  ${slow.toFixed(0)} ms/epoch   runs ${times.composed.map((t) => t.toFixed(0)).join(' ')}`);
  return ` gn_ratio=${(native / plainMs).toFixed(2)} gn_composed_ms=${slow.toFixed(0)} gn_native_ms=${native.toFixed(0)} gn_speedup=${(slow / native).toFixed(2)}`;
}
