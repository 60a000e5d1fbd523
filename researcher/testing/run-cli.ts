/** Runs `fedbiomed-ts researcher …` in this process (commander, stdout/stderr captured, exit code read back). */
import { Command } from 'commander';
import { register } from '../cli';

export async function runResearcherCli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  process.exitCode = 0;
  const program = new Command().exitOverride();
  register(program);
  try {
    await program.parseAsync(['node', 'fedbiomed-ts', 'researcher', ...args]);
  } catch (error) {
    err += String((error as Error).message);
    if (!process.exitCode) process.exitCode = 2;
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, out, err };
}
