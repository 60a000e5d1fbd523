/**
 * `fedbiomed-ts demo …`: the end-to-end glioblastoma demo and its data generator.
 *
 *   fedbiomed-ts demo [--quick] [--task responder|evolution] [--protocol v4.5|v6] [--out DIR] [--seed S] [--rounds N] [--dp local|central --sigma S --clip C [--dp-sweep S1,S2]]
 *   fedbiomed-ts demo data --out DIR [--seed S] [--quick]
 */
import type { Command } from 'commander';

function integer(name: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new Error(`${name} must be a non-negative integer, got "${value}"`);
    return n;
  };
}

interface DemoFlags {
  dp?: string;
  sigma?: string;
  clip?: string;
  dpSweep?: string;
  quick?: boolean;
  out?: string;
  seed?: number;
  rounds?: number;
  task?: string;
  protocol?: string;
}

export function register(program: Command): void {
  const demo = program
    .command('demo')
    .description('run the glioblastoma federated demo end to end: cohort, 3 hospital nodes, FedAvg, evaluation, ONNX, report')
    .option('--quick', 'small and fast configuration (under 2 minutes)')
    .option('--out <dir>', 'output folder (created; a previous demo output is replaced) (default: "demo-output")')
    .option('--seed <n>', 'seed of the cohort and of training', integer('--seed'))
    .option('--rounds <n>', 'number of FedAvg rounds', integer('--rounds'))
    .option('--dp <type>', 'train with differential privacy: local (DP-SGD) or central (Fed-BioMed dp_args)')
    .option('--sigma <x>', 'DP noise multiplier (with --dp)')
    .option('--clip <x>', 'DP per-sample clipping norm (with --dp)')
    .option('--dp-sweep <list>', 'extra noise multipliers, e.g. 0.5,2: one more federated run each, for the epsilon vs AUC table')
    .option('--protocol <version>', 'Fed-BioMed network: v4.5 (MQTT + file repository, default) or v6 (gRPC)')
    .option('--task <task>', "only 'responder' (response classification) or only 'evolution' (post-treatment tumour under each RT technique); default both, the evolution part in its quick configuration")
    .action(async (opts: DemoFlags) => {
      if (opts.protocol !== undefined && opts.protocol !== 'v4.5' && opts.protocol !== 'v6') throw new Error(`demo: unknown --protocol '${opts.protocol}' (v4.5 or v6)`);
      if (opts.task === 'evolution') {
        if (opts.protocol === 'v6') throw new Error('demo: --protocol v6 is available for the responder task only');
        const { runEvolutionDemo } = await import('./glioblastoma/evolution-demo');
        await runEvolutionDemo({ outDir: opts.out ?? 'demo-output-evolution', quick: opts.quick, seed: opts.seed });
        return;
      }
      if (opts.task !== undefined && opts.task !== 'responder') throw new Error(`demo: unknown --task '${opts.task}' (responder or evolution)`);
      const { runDemo, DEFAULT_OUT_DIR } = await import('./glioblastoma/demo');
      const { demoDp } = await import('./glioblastoma/dp');
      await runDemo({ outDir: opts.out ?? DEFAULT_OUT_DIR, quick: opts.quick, seed: opts.seed, rounds: opts.rounds,
        dp: demoDp(opts), protocol: opts.protocol, evolution: opts.task === undefined });
    });
  demo
    .command('data')
    .description('only generate the synthetic glioblastoma cohort (DICOM + NIfTI medical folder, clinical CSVs, held-out set)')
    .option('--out <dir>', 'output folder (must be new or empty; required)')
    .option('--seed <n>', 'seed', integer('--seed'))
    .option('--quick', 'the quick demo cohort (lower resolution, DICOM only)')
    .action(async (own: DemoFlags) => {
      // `demo` declares the same flags, and commander hands flags written after `data` to the parent: merge both.
      const opts = { ...demo.opts<DemoFlags>(), ...own };
      if (!opts.out) throw new Error('demo data: --out <dir> is required');
      const { generateDemoData } = await import('./glioblastoma/demo');
      const summary = generateDemoData(opts.out, { seed: opts.seed, quick: opts.quick });
      for (const s of [...summary.sites, summary.heldOut]) {
        process.stdout.write(`${s.name.padEnd(8)} ${String(s.patients).padStart(3)} patients, ${s.responders} responders: ${s.dicomDir}\n`);
      }
      process.stdout.write(`cohort written to ${opts.out} (summary in cohort.json)\n`);
    });
}
