/**
 * Runs a Python script with the first interpreter that has the needed modules (Debian's /usr/bin/python3 has
 * pandas, torch, torchvision and PIL; the pyenv `python3` on PATH may not). One process per call: no separate
 * import probe, because importing torch alone takes seconds.
 * Returns stdout. Throws when no interpreter has the modules: a comparison that cannot run is a failure, not a
 * pass (.ci/run installs every oracle).
 */
import { spawnSync } from 'child_process';

const INTERPRETERS = ['/usr/bin/python3', 'python3'];

export function runPython(script: string, args: string[], modules: string[]): string | undefined {
  for (const exe of INTERPRETERS) {
    const run = spawnSync(exe, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (run.error || /ModuleNotFoundError|No module named/.test(run.stderr)) continue;
    if (run.status !== 0) throw new Error(`${exe} failed:\n${run.stderr}`);
    return run.stdout;
  }
  throw new Error(`no Python interpreter with ${modules.join(', ')} found (tried ${INTERPRETERS.join(', ')}): ` +
    'the comparison cannot run (install them as .ci/run does)');
}
