/** `researcher run-v6`: options the v6 path does not have are refused with the list, before anything listens. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { ownCommand } from '../src/package-root';

test('unsupported experiment options are refused, not ignored', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-v6-cli-'));
  try {
    const file = path.join(dir, 'exp.yaml');
    fs.writeFileSync(file, [
      'tags: [x]',
      `plan: ${path.join(__dirname, '..', 'tools', 'interop-v6', 'lin-plan.ts')}`,
      'trainingArgs: { loader_args: { batch_size: 4 }, epochs: 1 }',
      'roundLimit: 1',
      'aggregator: fedadam',
      'nodes: [a]',
    ].join('\n'));
    const run = spawnSync(process.execPath, [ownCommand(), 'researcher', 'run-v6',
      file, '--dir', path.join(dir, 'r')], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/not available on a v6 network yet: aggregator \(FedAvg only\), nodes/);
    expect(fs.existsSync(path.join(dir, 'r'))).toBe(false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
