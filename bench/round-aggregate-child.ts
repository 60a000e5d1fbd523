/**
 * Child process of `bench/round.ts` (not a benchmark on its own): aggregates N node files served by the parent,
 * exactly as a researcher round does (streamed download → FedAvg → float32 result → encode → upload), and reports
 * its own memory: the resident set before aggregating and the process's peak resident set (getrusage maxRSS).
 * Running in its own process keeps the parent's file server and test data out of the figure.
 */
import { StreamingFedAvg } from '../researcher/aggregators/fedavg';
import { foldReply } from '../researcher/fold-reply';
import { RepositoryClient } from '../src/transport/repository';
import { encodeAggregatedParams } from '../researcher/weights-file';
import { compactWeights } from '../researcher/aggregators/tensors';

interface Job {
  precision: 'float64' | 'float32';
  uploadsUrl: string;
  urls: string[];
  sampleSizes: number[];
}

async function run(job: Job): Promise<void> {
  const repo = new RepositoryClient({ uploadsUrl: job.uploadsUrl });
  const baselineRss = process.memoryUsage().rss;
  const started = Date.now();
  const fedavg = new StreamingFedAvg(job.precision);
  const stages: Record<string, number> = {};
  const mark = (name: string) => (stages[name] = Math.round((process.resourceUsage().maxRSS * 1024 - baselineRss) / 2 ** 20));
  for (let i = 0; i < job.urls.length; i++) {
    await foldReply(fedavg, `node_${i}`, job.urls[i], job.sampleSizes[i], repo);
    if (i === 0 || i === job.urls.length - 1) mark(`after node ${i}`);
  }
  const averaged = fedavg.finalize();
  mark('after finalize');
  const aggregatedMs = Date.now() - started;
  await repo.upload(encodeAggregatedParams('researcher_bench', averaged), 'aggregated_params_bench.mpk');
  const totalMs = Date.now() - started;
  mark('after upload');
  compactWeights(averaged); // what the experiment does next: keep the new global weights compact
  mark('after compaction');
  if (process.env.FBTS_BENCH_STAGES) process.stderr.write(`peak increase by stage (MB): ${JSON.stringify(stages)}\n`);
  const peakRss = process.resourceUsage().maxRSS * 1024;
  process.send?.({ baselineRss, peakRss, aggregatedMs, totalMs, endRss: process.memoryUsage().rss });
}

process.once('message', (job: Job) => {
  run(job).catch((err: unknown) => {
    process.send?.({ error: (err as Error).stack ?? String(err) });
  });
});
