import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TaskQueue } from './task-queue';

describe('TaskQueue', () => {
  it('runs tasks one at a time in order and keeps an unfinished task for the next start', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-q-')), 'queue.json');
    const seen: string[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    const q = new TaskQueue<string>(file, async (t) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await new Promise((r) => setTimeout(r, 5));
      seen.push(t);
      concurrent--;
    }, () => undefined);
    q.push('a');
    q.push('b');
    q.push('c');
    await q.idle();
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(maxConcurrent).toBe(1);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual([]);

    // A "node" that stops while a task is queued: the task stays on disk and runs after the restart.
    const stopped = new TaskQueue<string>(file, async () => new Promise(() => undefined), () => undefined);
    stopped.stop();
    stopped.push('left-over');
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).map((t: { task: string }) => t.task)).toEqual(['left-over']);
    const rerun: string[] = [];
    const restarted = new TaskQueue<string>(file, async (t) => { rerun.push(t); }, () => undefined);
    restarted.start();
    await restarted.idle();
    expect(rerun).toEqual(['left-over']);
  });

  it('reports a failing task and goes on with the next one', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-q-')), 'queue.json');
    const errors: string[] = [];
    const done: number[] = [];
    const q = new TaskQueue<number>(file, async (n) => {
      if (n === 1) throw new Error('bad task');
      done.push(n);
    }, (err) => errors.push((err as Error).message));
    q.push(1);
    q.push(2);
    await q.idle();
    expect(errors).toEqual(['bad task']);
    expect(done).toEqual([2]);
  });

  it('moves a damaged queue file aside instead of crashing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-q-'));
    const file = path.join(dir, 'queue.json');
    fs.writeFileSync(file, '[{"id": 1,');
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const q = new TaskQueue<number>(file, async () => undefined, () => undefined);
    spy.mockRestore();
    expect(q.pending).toBe(0);
    expect(fs.readdirSync(dir).some((f) => f.startsWith('queue.json.damaged-'))).toBe(true);
  });
});
