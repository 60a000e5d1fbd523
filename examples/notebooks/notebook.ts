/**
 * Shared bits of the notebook-style scripts: numbered steps, the working folder (./notebook-output, or
 * $NOTEBOOK_OUT) with the cohort they share, and where the experiment's global weights are kept between scripts.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { CohortSummary } from '../glioblastoma/cohort';
import { generateDemoData } from '../glioblastoma/demo';

export const WORK_DIR = path.resolve(process.env.NOTEBOOK_OUT ?? 'notebook-output');
export const COHORT_DIR = path.join(WORK_DIR, 'cohort');
/** Written by 03-run-experiment.ts, read by 04-evaluate-export.ts. */
export const GLOBAL_WEIGHTS_FILE = path.join(WORK_DIR, 'global-weights.mpk');

let counter = 0;

/** Prints a numbered step heading, like a notebook cell. */
export function step(title: string): void {
  counter += 1;
  process.stdout.write(`\n[${counter}] ${title}\n${'-'.repeat(title.length + 4)}\n`);
}

export function show(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function table(rows: (string | number)[][]): void {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(3)) : c)));
  const widths = cells[0].map((_, j) => Math.max(...cells.map((r) => (r[j] ?? '').length)));
  for (const r of cells) show(`  ${r.map((c, j) => c.padEnd(widths[j])).join('  ')}`);
}

/** The notebooks' cohort: the quick demo's (same patients, lower resolution), generated once and reused. */
export function ensureCohort(): CohortSummary {
  const summaryFile = path.join(COHORT_DIR, 'cohort.json');
  if (fs.existsSync(summaryFile)) return JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as CohortSummary;
  fs.mkdirSync(WORK_DIR, { recursive: true });
  // Keeps the working folder out of git when it sits inside the checkout.
  fs.writeFileSync(path.join(WORK_DIR, '.gitignore'), '*\n');
  show(`  generating the cohort into ${COHORT_DIR} (once) …`);
  return generateDemoData(COHORT_DIR, { quick: true });
}

/** Runs a notebook's main, printing a clear error (and exit code 1) instead of a stack trace on failure. */
export function runNotebook(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`\nfailed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
