/**
 * Runs the node CLI's commands in this process (commander with exitOverride, the real `register`) and returns what
 * they printed: the tests see the command line a hospital operator types, without a child process per command.
 */
import { Command } from 'commander';
import { register } from '../cli';

export async function runNodeCli(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  register(program);
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(['node', 'fedbiomed-ts', ...args]);
  } finally {
    spy.mockRestore();
  }
  return out;
}
