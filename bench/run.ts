/**
 * `npm run bench -- <name> [args…]` runs bench/<name>.ts; without a name it lists the benchmarks.
 * Benchmarks print figures and end with a `RESULT key=value …` line; they are never part of `npm test`.
 */
import * as fs from 'fs';
import * as path from 'path';

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  const available = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
    .map((f) => f.replace(/\.ts$/, ''));
  if (!name || !available.includes(name)) {
    process.stderr.write(`usage: npm run bench -- <${available.join('|')}> [args…]\n`);
    process.exitCode = name ? 2 : 0;
    return;
  }
  process.argv = [process.argv[0], path.join(__dirname, `${name}.ts`), ...rest];
  const mod = require(`./${name}`) as { main?: (args: string[]) => Promise<void> };
  if (typeof mod.main === 'function') await mod.main(rest);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
