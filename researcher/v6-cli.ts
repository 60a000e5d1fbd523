/**
 * `fedbiomed-ts researcher run-v6 EXPERIMENT`: the experiment file of `researcher run`, on a Fed-BioMed v6 network
 * (this process is the gRPC server nodes dial). FedAvg only; the options the v6 path does not have yet (other
 * aggregators and strategies, node lists, breakpoints, TensorBoard, resume, Python plans) are refused, not ignored.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import type { PlanSpec } from '../src/plan/spec';

/** Fed-BioMed v6's default port (src/transport/v6/grpc.ts, not imported here: the CLI loads gRPC only when used). */
const DEFAULT_V6_PORT = 50051;

interface RunV6Flags {
  host: string;
  port: string;
  dir: string;
  nodes: string;
  waitMs: string;
  weights?: string;
}

const print = (line: string) => process.stdout.write(`${line}\n`);

async function runV6(file: string, flags: RunV6Flags): Promise<void> {
  // Loaded on use: gRPC and TensorFlow.js are not needed by the other commands.
  const { loadExperimentFile } = await import('./config');
  const { isPlanSpec } = await import('./plan-source');
  const { encodeAggregatedParams } = await import('./weights-file');
  const { V6Federation, v6TrainingArgs } = await import('./v6-federation');
  const loaded = loadExperimentFile(file);
  const o = loaded.options;
  const unsupported = [
    o.aggregator !== undefined && o.aggregator !== 'fedavg' && (o.aggregator as { name?: string }).name !== 'fedavg'
      ? 'aggregator (FedAvg only)' : '',
    o.strategy !== undefined ? 'strategy' : '', o.nodes !== undefined ? 'nodes' : '',
    o.breakpointDir ? 'output.breakpoints' : '', o.tensorboard ? 'output.tensorboard' : '',
    !isPlanSpec(o.plan) ? 'a Python plan (v6 runs fedbiomed-ts plans)' : '',
  ].filter(Boolean);
  if (unsupported.length > 0) {
    throw new Error(`${file}: not available on a v6 network yet: ${unsupported.join(', ')}`);
  }
  const spec = o.plan as PlanSpec;
  const fed = await V6Federation.start({ dir: path.resolve(flags.dir), host: flags.host, port: Number(flags.port) });
  try {
    print(`researcher ${fed.researcherId} listening on ${flags.host}:${fed.server.port} (Fed-BioMed v6 gRPC)`);
    const nodes = await fed.waitForNodes(Number(flags.nodes), Number(flags.waitMs));
    print(`nodes: ${nodes.join(', ')}`);
    const datasets = await fed.search(o.tags);
    if (datasets.size === 0) throw new Error(`no node has a dataset tagged ${o.tags.join(', ')}`);
    const results = await fed.runFedAvg({ spec, datasets, rounds: o.roundLimit, experimentId: `exp_${Date.now()}`,
      seed: o.seed, validate: o.finalValidation ?? true, trainingArgs: v6TrainingArgs(o.trainingArgs ?? {}),
      onRound: (r) => print(`round ${r.round}: ` + [...r.replies].map(([n, x]) =>
        `${n} ${String(x.fields['sample_size'])} samples`).join(', ')) });
    const last = results[results.length - 1];
    const weightsOut = flags.weights ? path.resolve(flags.weights) : loaded.weightsOut;
    if (last && weightsOut) {
      fs.mkdirSync(path.dirname(weightsOut), { recursive: true });
      fs.writeFileSync(weightsOut, Buffer.concat(encodeAggregatedParams(fed.researcherId, last.weights)));
      print(`final weights: ${weightsOut}`);
    }
    print(`experiment finished after ${results.length} round(s)`);
  } finally {
    await fed.close();
  }
}

/** Adds `run-v6` under the `researcher` command. */
export function registerV6(researcher: Command): void {
  researcher
    .command('run-v6')
    .argument('<experiment>', 'experiment file (YAML or JSON, see schemas/experiment.schema.json)')
    .description('run a FedAvg experiment on a Fed-BioMed v6 network (this process is the gRPC server)')
    .option('--host <host>', 'host name nodes dial (written in the certificate)', 'localhost')
    .option('--port <port>', 'gRPC port', String(DEFAULT_V6_PORT))
    .option('--dir <dir>', 'researcher directory (id and certificate, kept across runs)', './fbm-researcher-ts')
    .option('--nodes <n>', 'wait for this many nodes before searching', '1')
    .option('--wait-ms <ms>', 'how long to wait for them', '20000')
    .option('--weights <file>', 'write the final global weights (.mpk) here')
    .action(async (file: string, flags: RunV6Flags) => {
      try {
        await runV6(file, flags);
      } catch (err) {
        process.stderr.write(`fedbiomed-ts: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
