/**
 * `npm run bench -- round [--rounds N] [--nodes N] [--model-mb N]`
 *
 * 1. Wall time of one FedAvg round of a tiny MLP (4→8→2) over 2 TS node agents (node-agent/) on the embedded
 *    network, from the moment the train requests are sent to the moment the aggregated weights are ready (before
 *    they are uploaded for the next round). Round 0 includes warm-up (first plan download, tfjs kernels); the figure
 *    is the median of the following rounds.
 * 2. Peak researcher memory while aggregating N nodes (default 20) × a model of M MB (default 50 MB float32):
 *    streamed downloads, FedAvg, result encoding and upload, measured in a child process as
 *    peak RSS − RSS before aggregating. All nodes serve the same bytes (the work is the same as with distinct files).
 *    The RESULT figure is for a layered model (4 MiB matrices) with the default float64 accumulator; the one-tensor
 *    worst case and the float32 accumulator are printed too. Part of the peak is garbage V8 has not collected yet
 *    (it lets up to ~64 MB of freed buffers wait for the next GC).
 * Last line: RESULT round_ms=<n> agg_peak_mb=<n>. Aims: round ≤ 200 ms, peak ≤ 3 × model size.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { fork } from 'child_process';
import { startEmbeddedNetwork } from '../src/transport/embedded';
import { mlpPlan } from '../src/plan/testing/plans';
import { defaultConfig, writeConfig } from '../node-agent/config';
import { openNodeStores } from '../node-agent/stores';
import { NodeAgent } from '../node-agent/agent';
import { Experiment } from '../researcher/experiment';
import { encodeParamsChunks, nodeParamsFile } from '../src/serialize';
import { toModelWeights } from '../researcher/weights-file';
import type { WeightMap } from '../researcher/aggregators/tensors';
import { median } from './lib/stats';

const MB = 1024 * 1024;

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

function writeCsv(file: string, rows: number, shift: number): void {
  const lines = ['f0,f1,f2,f3,label'];
  for (let i = 0; i < rows; i++) {
    const label = (i + shift) % 2;
    lines.push([i * 0.05 + shift, label + 0.3 * Math.sin(i), 1 - label, (i % 7) / 7, label].map(String).join(','));
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

async function roundTime(rounds: number): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-bench-round-'));
  const network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(dir, 'repo') });
  const agents: NodeAgent[] = [];
  try {
    for (const [i, nodeId] of ['node_bench_a', 'node_bench_b'].entries()) {
      const nodeDir = path.join(dir, nodeId);
      writeConfig(nodeDir, defaultConfig({ nodeId, broker: network.mqttUrl, uploadsUrl: network.uploadsUrl, approval: false }));
      const csv = path.join(dir, `${nodeId}.csv`);
      writeCsv(csv, 48, i);
      await openNodeStores(nodeDir, {}).datasets.add({ name: nodeId, dataType: 'csv', tags: ['bench'], path: csv });
      agents.push(await NodeAgent.start({ dir: nodeDir, env: {}, localLog: () => undefined }));
    }
    const exp = new Experiment({
      tags: ['bench'],
      nodes: ['node_bench_a', 'node_bench_b'],
      plan: mlpPlan(),
      trainingArgs: { loader_args: { batch_size: 8 }, optimizer_args: { lr: 0.05 }, num_updates: 3, test_ratio: 0.25 },
      roundLimit: rounds,
      roundTimeoutMs: 60_000,
      network: { brokerUrl: network.mqttUrl, uploadsUrl: network.uploadsUrl },
    });
    const result = await exp.run();
    const times = result.summaries.filter((s) => s.training).map((s) => s.aggregationReadyMs as number);
    const full = result.summaries.filter((s) => s.training).map((s) => s.durationMs);
    process.stdout.write(`tiny MLP, 2 TS nodes (node-agent), ${rounds} rounds\n`);
    process.stdout.write(`  request sent → aggregated weights ready (ms): ${times.join(', ')}\n`);
    process.stdout.write(`  … + new weights uploaded (ms):                ${full.join(', ')}\n`);
    const warm = times.slice(1);
    const m = median(warm.length > 0 ? warm : times);
    process.stdout.write(`  median after warm-up: ${m} ms (aim ≤ 200 ms)\n`);
    return m;
  } finally {
    for (const a of agents) await a.stop();
    await network.close();
  }
}

/**
 * A modelMb float32 model. `layers`: 1024×1024 weight matrices (4 MiB each) with biases, plus one matrix for the
 * remainder — a typical layout. `single`: one tensor holding everything — the worst case for streaming, since the
 * float32 result of a tensor is built while its float64 sum is still alive.
 */
function bigModel(modelMb: number, layout: 'layers' | 'single'): WeightMap {
  const floats = Math.round((modelMb * MB) / 4);
  const w: WeightMap = new Map();
  const add = (name: string, shape: number[]): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sin(i + w.size) * 0.01;
    w.set(name, { dtype: 'float32', shape, data });
  };
  if (layout === 'single') {
    add('fc.weight', [floats]);
    return w;
  }
  let left = floats;
  for (let i = 0; left >= 1024 * 1024 + 1024; i++) {
    add(`layers.${i}.weight`, [1024, 1024]);
    add(`layers.${i}.bias`, [1024]);
    left -= 1024 * 1024 + 1024;
  }
  if (left > 0) add('head.weight', [left]);
  return w;
}

async function aggregationPeak(
  nodes: number,
  modelMb: number,
  layout: 'layers' | 'single',
  precision: 'float64' | 'float32',
): Promise<{ peakMb: number; modelBytes: number }> {
  const weights = bigModel(modelMb, layout);
  const chunks = encodeParamsChunks(
    nodeParamsFile({ optim_aux_var: {}, encrypted: false, researcher_id: 'researcher_bench', job_id: 'job_bench', state_id: 's', node_id: 'n', optimizer_args: {}, model_weights: toModelWeights(weights) }),
  );
  const file = Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
  const modelBytes = [...weights.values()].reduce((s, t) => s + (t.data as Float32Array).byteLength, 0);
  // A bare file server in this (parent) process: GET /media/node_<i>.mpk streams the file, POST /upload/ discards.
  const server = http.createServer((req, res) => {
    if (req.method === 'POST') {
      let size = 0;
      req.on('data', (c: Buffer) => (size += c.length));
      req.on('end', () => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ file: `http://127.0.0.1:${(server.address() as { port: number }).port}/media/out.mpk`, size }));
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': file.length });
    const step = 1 << 20;
    let off = 0;
    const pump = (): void => {
      while (off < file.length) {
        const ok = res.write(file.subarray(off, off + step));
        off += step;
        if (!ok) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const child = fork(path.join(__dirname, 'round-aggregate-child.ts'), [], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const report = await new Promise<{ baselineRss: number; peakRss: number; aggregatedMs: number; totalMs: number; error?: string }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as never));
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`aggregation child exited with code ${code}`)));
      child.send({
        precision,
        uploadsUrl: `http://127.0.0.1:${port}/upload/`,
        urls: Array.from({ length: nodes }, (_, i) => `http://127.0.0.1:${port}/media/node_params_${i}.mpk`),
        sampleSizes: Array.from({ length: nodes }, (_, i) => 100 + i),
      });
    });
    child.kill();
    if (report.error) throw new Error(report.error);
    const peakMb = (report.peakRss - report.baselineRss) / MB;
    process.stdout.write(
      `aggregation: ${nodes} nodes × ${(modelBytes / MB).toFixed(1)} MB float32 model, ${weights.size} tensors` +
        `${layout === 'single' ? ' (one tensor: worst case)' : ''}, ${precision} accumulator\n`,
    );
    process.stdout.write(`  streamed FedAvg of all nodes: ${report.aggregatedMs} ms; + encode and upload: ${report.totalMs} ms\n`);
    process.stdout.write(
      `  researcher RSS before: ${(report.baselineRss / MB).toFixed(0)} MB, peak: ${(report.peakRss / MB).toFixed(0)} MB, ` +
        `increase: ${peakMb.toFixed(0)} MB = ${(peakMb / (modelBytes / MB)).toFixed(2)} × model (aim ≤ 3 ×)\n`,
    );
    return { peakMb, modelBytes };
  } finally {
    server.close();
  }
}

export async function main(args: string[]): Promise<void> {
  const rounds = Math.max(2, Math.round(arg(args, 'rounds', 6)));
  const nodes = Math.round(arg(args, 'nodes', 20));
  const modelMb = arg(args, 'model-mb', 50);
  const roundMs = await roundTime(rounds);
  const { peakMb } = await aggregationPeak(nodes, modelMb, 'layers', 'float64');
  await aggregationPeak(nodes, modelMb, 'single', 'float64');
  await aggregationPeak(nodes, modelMb, 'layers', 'float32');
  process.stdout.write(`RESULT round_ms=${Math.round(roundMs)} agg_peak_mb=${Math.round(peakMb)}\n`);
}
