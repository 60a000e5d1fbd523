/**
 * `node queue list|clear` and the resource line of `node plan show`, through the real command line program
 * (in-process, on a real node directory).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { defaultConfig, writeConfig, nodePaths } from './config';
import { openNodeStores } from './stores';
import { generateTorchPlan } from '../src/plan/pytorch';
import { mlpPlan } from '../src/plan/testing/plans';
import { readPlanSource } from './plan-source';
import { runNodeCli as run } from './testing/run-cli';

describe('node queue and plan review commands', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-cliq-'));
  writeConfig(dir, defaultConfig({ nodeId: 'node_cli' }));

  it('lists the queued train requests (the interrupted one marked) and clears them', async () => {
    fs.writeFileSync(nodePaths(dir).queue, JSON.stringify([
      { id: 4, receivedAt: '2026-12-05T10:00:00.000Z', startedAt: '2026-12-05T10:00:01.000Z',
        task: { researcher_id: 'r1', job_id: 'job_big', round: 2 } },
      { id: 5, receivedAt: '2026-12-05T10:01:00.000Z', task: { researcher_id: 'r1', job_id: 'job_next', round: 3 } },
    ]));
    const listed = await run('node', 'queue', 'list', '--dir', dir);
    expect(listed).toMatch(/^4 +2026-12-05T10:00:00.000Z +started 2026-12-05T10:00:01.000Z +r1 +job_big +2$/m);
    expect(listed).toMatch(/^5 +2026-12-05T10:01:00.000Z +waiting +r1 +job_next +3$/m);
    expect(await run('node', 'queue', 'clear', '--dir', dir)).toBe('2 train request(s) dropped\n');
    expect(JSON.parse(fs.readFileSync(nodePaths(dir).queue, 'utf8'))).toEqual([]);
    expect(await run('node', 'queue', 'list', '--dir', dir)).toBe('no train request queued\n');
  });

  it('shows a plan\'s parameters and training memory on review', async () => {
    const source = generateTorchPlan(mlpPlan());
    const reading = readPlanSource(source);
    if (!reading.ok) throw new Error(reading.reason);
    const { entry } = openNodeStores(dir, {}).plans.registerRequested({ hash: reading.hash, source, description: 'd',
      researcherId: 'r1' });
    const shown = await run('node', 'plan', 'show', entry.training_plan_id, '--dir', dir);
    // tabular dense 4→8 (40) + head dense 8→2 (18)
    expect(shown).toMatch(/resources: +58 parameters; training memory about 1 MB \+ 0\.00 MB per sample of a batch/);
  });
});
