/**
 * `fedbiomed-ts plan …`: training plans as data.
 *   plan build PLAN.ts [--out plan.json]        compile a TS plan module to its JSON (prints the plan hash)
 *   plan export PLAN --python OUT.py [--class-name N]   write the Fed-BioMed v4.5 PyTorch plan embedding it
 *   plan hash PLAN                              print the SHA-256 of the canonical JSON (approval identity)
 *   plan weights PLAN --out W.mpk [--seed S]    round-0 weights in PyTorch layout, as a Fed-BioMed weight file
 * PLAN may be a .ts/.js module (default or `plan` export), a .json document or a generated .py plan.
 */
import * as fs from 'fs';
import { Command, Option } from 'commander';
import type { PlanSpec } from '../plan/spec';

// Loaded when a command runs (validation pulls in ajv): `fedbiomed-ts --help` stays fast.
const loadPlanFile = async (file: string): Promise<PlanSpec> => (await import('../plan/load')).loadPlanFile(file);
const planHash = async (spec: PlanSpec): Promise<string> => (await import('../plan/canonical')).planHash(spec);

function writeOut(file: string, text: string | Uint8Array): void {
  fs.writeFileSync(file, text);
}

export function register(program: Command): void {
  const plan = program.command('plan').description('declarative training plans: build, hash, export to PyTorch');

  plan
    .command('build')
    .description('compile a plan module (.ts/.js) or document to plan JSON')
    .argument('<plan>', 'plan file (.ts, .js, .json or generated .py)')
    .option('--out <file>', 'write the JSON here (default: stdout)')
    .action(async (file: string, options: { out?: string }) => {
      const spec = await loadPlanFile(file);
      const json = `${JSON.stringify(spec, null, 2)}\n`;
      if (options.out) {
        writeOut(options.out, json);
        process.stdout.write(`${options.out}: plan ${spec.name} sha256 ${await planHash(spec)}\n`);
      } else {
        process.stdout.write(json);
      }
    });

  plan
    .command('export')
    .description('write the Fed-BioMed v4.5 TorchTrainingPlan (Python) generated from a plan')
    .argument('<plan>', 'plan file (.ts, .js, .json or generated .py)')
    .requiredOption('--python <file>', 'output .py file')
    .option('--class-name <name>', 'Python class name (default: the plan name)')
    .addOption(new Option('--fedbiomed <release>', 'Fed-BioMed release of the Python nodes').choices(['v4.5', 'v6'])
      .default('v4.5'))
    .action(async (file: string, options: { python: string; className?: string; fedbiomed: 'v4.5' | 'v6' }) => {
      const spec = await loadPlanFile(file);
      const { generateTorchPlan } = await import('../plan/pytorch');
      writeOut(options.python, generateTorchPlan(spec, { className: options.className, fedbiomed: options.fedbiomed }));
      process.stdout.write(`${options.python}: class ${options.className ?? spec.name}, plan sha256 ${await planHash(spec)}
`);
    });

  plan
    .command('hash')
    .description('print the plan identity: SHA-256 of its canonical JSON')
    .argument('<plan>', 'plan file (.ts, .js, .json or generated .py)')
    .action(async (file: string) => {
      process.stdout.write(`${await planHash(await loadPlanFile(file))}\n`);
    });

  plan
    .command('weights')
    .description('write seeded round-0 weights (PyTorch names and layout) as a Fed-BioMed weight file')
    .argument('<plan>', 'plan file (.ts, .js, .json or generated .py)')
    .requiredOption('--out <file>', 'output .mpk file')
    .option('--seed <n>', 'seed of the initialisation', '0')
    .action(async (file: string, options: { out: string; seed: string }) => {
      const seed = Number(options.seed);
      if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${options.seed}`);
      const spec = await loadPlanFile(file);
      // Loaded lazily: only this subcommand needs the codec and the initialiser.
      const { initialWeights } = await import('../plan/init');
      const { encodeParams } = await import('../serialize');
      writeOut(options.out, encodeParams({ model_weights: initialWeights(spec, seed) }));
      process.stdout.write(`${options.out}: round-0 weights of plan ${spec.name} (seed ${seed})\n`);
    });
  // A bad plan file gets one line (exit code 2); --verbose adds the stack trace (src/cli/main.ts prints it).
  for (const command of plan.commands) command.option('--verbose', 'on errors, print the stack trace too');
}
