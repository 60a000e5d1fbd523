/**
 * Finds a Python interpreter that has torch (the pyenv `python3` on PATH may not; Debian's /usr/bin/python3 does)
 * and runs small scripts on it with JSON in and out. Used by tests as the PyTorch oracle and by bench/train.ts.
 */
import { ChildProcessWithoutNullStreams, spawn, spawnSync } from 'child_process';
import * as readline from 'readline';

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

/** A long-lived python process answering one JSON line per request line (used to interleave benchmarks). */
export class TorchWorker {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderr = '';

  /**
   * `config.threads`, when given, also caps the BLAS and OpenMP pools: `torch.set_num_threads(1)` alone left Debian's
   * OpenBLAS running GEMMs on a second thread (measured on the U-Net bench: PyTorch's process used 1.9x its wall
   * time in CPU; with OPENBLAS_NUM_THREADS=1 CPU = wall and the wall time is unchanged, 324 vs 331 ms).
   */
  constructor(script: string, config: { threads?: number } & Record<string, unknown>) {
    const { python, why } = findTorchPython();
    if (!python) throw new Error(why);
    const env = { ...process.env };
    if (config.threads !== undefined) {
      for (const name of ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS']) env[name] = String(config.threads);
    }
    this.child = spawn(python, ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
    this.child.stdin.write(`${JSON.stringify(config)}\n`);
  }

  /** Sends `request` (or nothing, to read a greeting) and returns the next JSON line. */
  async ask<T>(request?: string): Promise<T> {
    if (request !== undefined) this.child.stdin.write(`${request}\n`);
    const next = await this.lines.next();
    if (next.done) throw new Error(`torch worker exited: ${this.stderr.trim().split('\n').pop() ?? ''}`);
    return JSON.parse(next.value) as T;
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}
