/**
 * Finding and running a Python interpreter that has PyTorch, for the plan conformance tests. Candidates, in order:
 * $FEDBIOMED_TS_PYTHON, `python3` on PATH, /usr/bin/python3 (Debian's python3-torch). No interpreter with torch
 * is a test failure with a message saying what to install, never a silent skip.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export const STANDIN_DIR = path.join(__dirname, 'python');

export interface TorchPython {
  executable: string;
  torchVersion: string;
  /** false when torchvision is absent: a stub is then put on PYTHONPATH for the default plan imports. */
  hasTorchvision: boolean;
}

function candidates(): string[] {
  const list = [process.env.FEDBIOMED_TS_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => !!c);
  return [...new Set(list)];
}

export function findTorchPython(): TorchPython {
  const tried: string[] = [];
  for (const exe of candidates()) {
    const probe = spawnSync(exe, ['-c', 'import torch, numpy, pandas; print(torch.__version__)'], { encoding: 'utf8', timeout: 60000 });
    if (probe.status === 0) {
      const tv = spawnSync(exe, ['-c', 'import torchvision'], { encoding: 'utf8', timeout: 60000 });
      return { executable: exe, torchVersion: probe.stdout.trim(), hasTorchvision: tv.status === 0 };
    }
    tried.push(`${exe} (${probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').pop()})`);
  }
  throw new Error(
    `no Python interpreter with torch, numpy and pandas was found (tried: ${tried.join('; ')}). ` +
      'Install Debian python3-torch python3-pandas, or set FEDBIOMED_TS_PYTHON to an interpreter that has them.',
  );
}

/** Writes an import-only `torchvision` stub (the default plan dependency line imports it; plans never use it). */
function torchvisionStub(dir: string): string {
  const root = path.join(dir, 'torchvision-stub');
  fs.mkdirSync(path.join(root, 'torchvision'), { recursive: true });
  fs.writeFileSync(path.join(root, 'torchvision', '__init__.py'), '# import-only stub for tests: torchvision is absent here\n');
  fs.writeFileSync(path.join(root, 'torchvision', 'datasets.py'), '');
  fs.writeFileSync(path.join(root, 'torchvision', 'transforms.py'), '');
  return root;
}

/** Runs a script of STANDIN_DIR with the stand-in fedbiomed package importable; throws with stderr on failure. */
export function runPython(python: TorchPython, script: string, args: string[], workDir: string): string {
  const paths = [STANDIN_DIR];
  if (!python.hasTorchvision) paths.push(torchvisionStub(workDir));
  const env = {
    ...process.env,
    PYTHONPATH: [...paths, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
    PYTHONDONTWRITEBYTECODE: '1',
    OMP_NUM_THREADS: '1',
  };
  const run = spawnSync(python.executable, [path.join(STANDIN_DIR, script), ...args], {
    encoding: 'utf8',
    env,
    cwd: workDir,
    timeout: 300000,
  });
  if (run.status !== 0) {
    throw new Error(`${python.executable} ${script} failed (status ${run.status}): ${run.error?.message ?? ''}\n${run.stderr}`);
  }
  return run.stdout;
}

/** Runs torch_conformance.py on `manifest` (written to workDir) and returns the result file it writes, parsed. */
export function runTorchConformance<R>(python: TorchPython, manifest: unknown, workDir: string): R {
  const manifestFile = path.join(workDir, 'manifest.json');
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  const resultFile = path.join(workDir, 'result.json');
  runPython(python, 'torch_conformance.py', [manifestFile, resultFile], workDir);
  return JSON.parse(fs.readFileSync(resultFile, 'utf8')) as R;
}

/** One case of a torch_conformance.py result table; a failure on the PyTorch side becomes the test's error. */
export function pythonSide<R extends { error?: string }>(table: Record<string, R>, name: string): R {
  const r = table[name];
  if (!r) throw new Error(`torch_conformance.py gave no result for ${name}`);
  if (r.error) throw new Error(`PyTorch side of ${name} failed:\n${r.error}`);
  return r;
}
