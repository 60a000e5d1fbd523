/**
 * The `fedbiomed-ts` command line. This file is the composition root: the one place that names every side
 * (network tools from src/, `node` from node-agent/, `researcher` from researcher/, `demo` from examples/), so
 * that the sides themselves never import each other. Command modules are loaded lazily, by name, so a quick
 * command such as `params inspect` does not pay for loading TensorFlow.js.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';

/** A module that contributes subcommands. */
export interface CommandModule {
  register(program: Command): void;
}

const ROOT = path.join(__dirname, '..', '..');

/** Command modules, relative to the package root (without extension). Missing ones are skipped. */
const COMMAND_MODULES = [
  'src/cli/network',
  'src/cli/params',
  'src/cli/plan',
  'node-agent/cli',
  'researcher/cli',
  'examples/cli',
];

function loadCommandModule(relative: string): CommandModule | undefined {
  const base = path.join(ROOT, relative);
  const exists = ['.ts', '.js'].some((ext) => fs.existsSync(base + ext));
  if (!exists) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require(base) as CommandModule;
}

/** Exit code of bad input (a plan or file the user gave), as `researcher` commands use it. */
const EXIT_USAGE = 2;
/** Errors that mean the user's input is wrong, by name (their classes live in the modules loaded lazily). */
const USAGE_ERRORS = new Set(['PlanLoadError', 'PlanValidationError', 'EmbeddedPlanError', 'PlanSourceError', 'ConfigError']);

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('fedbiomed-ts')
    .description('Fed-BioMed v4.5.0 compatible researcher SDK, hospital node agent and network tools')
    // Before the command (`fedbiomed-ts --verbose plan build …`); commands such as `researcher run` have their own.
    .option('--verbose', 'on errors, print the stack trace too')
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  for (const rel of COMMAND_MODULES) {
    try {
      loadCommandModule(rel)?.register(program);
    } catch (err) {
      // One broken side must not take every other command down: say which module failed, keep the rest.
      process.stderr.write(`fedbiomed-ts: commands from ${rel} are unavailable: ${(err as Error).message}\n`);
    }
  }
  return program;
}

/** How often a command started by npm checks that npm is still there. */
const PARENT_CHECK_MS = 500;

/**
 * Under `npx fedbiomed-ts …` (`npm exec`), npm and a shell stand between the user and this process, and a SIGTERM
 * or SIGINT sent to npx does not reach it: npm passes it to the shell, which exits and leaves this process running,
 * holding the network's or the node's ports. So when npm started us, its going away is a stop request, handled as
 * the SIGTERM it stands for (network and node stop cleanly on it). Started any other way (a terminal, systemd,
 * nohup), nothing changes.
 */
function stopWhenNpmGoesAway(): void {
  if (process.env.npm_command !== 'exec') return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, PARENT_CHECK_MS);
  timer.unref();
}

export async function main(argv: string[]): Promise<void> {
  stopWhenNpmGoesAway();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err: unknown) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      process.exitCode = e.exitCode ?? 1;
      return;
    }
    // One line for the user; the stack only when asked for (it is about our code, not their input).
    process.stderr.write(`fedbiomed-ts: ${e.message ?? String(err)}\n`);
    if (argv.includes('--verbose') && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    const usage = USAGE_ERRORS.has((err as Error)?.name ?? '');
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : usage ? EXIT_USAGE : 1;
  }
}
