/**
 * Finds a Python interpreter that has torch (the pyenv `python3` on PATH may not; Debian's /usr/bin/python3 does)
 * and runs small scripts on it with JSON in and out. Used by tests as the PyTorch oracle and by bench/train.ts.
 */
import { spawnSync } from 'child_process';

const CANDIDATES = ['python3', '/usr/bin/python3', 'python'];

let cached: { python?: string; why: string } | undefined;

/** The first interpreter that can `import torch`, or undefined with the reason in `why`. */
export function findTorchPython(): { python?: string; why: string } {
  if (cached) return cached;
  const tried: string[] = [];
  for (const python of CANDIDATES) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60000 });
    if (r.status === 0) {
      cached = { python, why: `${python} has torch ${r.stdout.trim()}` };
      return cached;
    }
    tried.push(`${python}: ${r.error ? r.error.message : (r.stderr || '').trim().split('\n').pop()}`);
  }
  cached = { why: `no python with torch found (${tried.join('; ')})` };
  return cached;
}

/** Runs `script` with `input` as JSON on stdin; the script prints one JSON document on stdout. */
export function runTorchScript<T>(script: string, input: unknown, timeoutMs = 120000): T {
  const { python, why } = findTorchPython();
  if (!python) throw new Error(why);
  const r = spawnSync(python, ['-c', script], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`torch script failed (${python}): ${r.error?.message ?? ''}${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
