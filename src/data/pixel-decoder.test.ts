/**
 * The decoding worker pool with its native helpers: a helper process killed while it holds a series' frames (by an
 * operator or the kernel's OOM killer) costs no file: its frames are decoded again by a fresh helper; the pool keeps
 * serving the next requests, and no helper process is left behind. (A frame on which the helper dies twice fails
 * with a clear error: native-decoder.test.ts; a file whose frames fail, alone in its place: dicom-codecs.test.ts.)
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCorpus, Corpus, encapsulatedJob, phantomVolume } from './dicom-corpus.test-helper';
import { NATIVE_JPEG, nativeHelper } from './native-decoder';
import { decodeJobsSync, stopPixelDecoder } from './pixel-decoder';

let root: string;
let corpus: Corpus;
const volume = phantomVolume([48, 40, 10]);

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'pixel-decoder-'));
  corpus = buildCorpus(root, volume, { only: ['jpeg-lossless-sv1'] });
});
afterAll(() => {
  stopPixelDecoder();
  fs.rmSync(root, { recursive: true, force: true });
});

function originalSlice(k: number): Buffer {
  const plane = volume.dims[0] * volume.dims[1];
  return Buffer.from(Uint16Array.from(volume.data.subarray(k * plane, (k + 1) * plane)).buffer);
}

/**
 * Helpers an earlier test file of this Jest worker process left exiting (a stopped pool's helpers end when their
 * input closes, a moment later): not this test's.
 */
let earlier = new Set<number>();

/** This process's child processes running `program` (the pool's workers are threads, so helpers are our children). */
function helperProcesses(program: string): { pid: number; state: string }[] {
  return fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name)).flatMap((name) => {
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const command = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')[0];
      const ours = Number(ppid) === process.pid && path.basename(command) === program && !earlier.has(Number(name));
      return ours ? [{ pid: Number(name), state }] : [];
    } catch {
      return []; // exited meanwhile
    }
  });
}

/**
 * Waits (in its own process: the test's thread is blocked in decodeJobsSync) until bytes are queued on the first
 * helper's input, which can only happen once the pool has handed that helper frames of the series, then kills that
 * helper and lets the others go on. The helper's stdin is a socket (libuv's stdio pipes are socket pairs): the killer
 * takes a copy of it with pidfd_getfd (Linux 5.6+; ptrace rights over a sibling process: root, as on this project's
 * machines and CI, or Yama ptrace_scope 0) and asks FIONREAD, so the moment is certain, not a guess.
 */
const KILLER = `
import array, ctypes, fcntl, os, signal, sys, termios, time
victim, others = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
SYS_pidfd_getfd = 438
fd = ctypes.CDLL(None, use_errno=True).syscall(SYS_pidfd_getfd, os.pidfd_open(victim), 0, 0)
if fd < 0:
    sys.exit('pidfd_getfd: ' + os.strerror(ctypes.get_errno()))
queued, deadline = array.array('i', [0]), time.time() + 30
while time.time() < deadline:
    fcntl.ioctl(fd, termios.FIONREAD, queued)
    if queued[0] > 0:
        break
    time.sleep(0.005)
os.kill(victim, signal.SIGKILL)
for pid in others:
    os.kill(pid, signal.SIGCONT)
print('queued' if queued[0] > 0 else 'timeout')
`;

test('a native helper killed mid-series: its frames decode in a fresh helper, the pool serves on, no process leaks', async () => {
  expect(nativeHelper(NATIVE_JPEG)).toBeDefined();
  const files = corpus.series.get('jpeg-lossless-sv1') ?? [];
  const jobs = files.map(encapsulatedJob);
  expect(jobs).toHaveLength(10);
  const limits = { decodeWorkers: 2 };
  earlier = new Set(helperProcesses(NATIVE_JPEG.program).map((h) => h.pid));

  // Warm: each of the two workers has started its JPEG helper.
  expect(decodeJobsSync(jobs, limits).every((o) => o.ok)).toBe(true);
  const helpers = helperProcesses(NATIVE_JPEG.program);
  expect(helpers).toHaveLength(2);
  // Stopped, the helpers hold whatever frames they are given; the killer then kills one of them with frames queued.
  for (const { pid } of helpers) process.kill(pid, 'SIGSTOP');
  const [victim, ...others] = helpers.map((h) => h.pid);
  const killer = spawn('/usr/bin/python3', ['-c', KILLER, String(victim), ...others.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let said = '';
  killer.stdout.on('data', (chunk: Buffer) => (said += chunk.toString()));
  const killed = new Promise<number | null>((resolve) => killer.on('exit', resolve));

  const outcomes = decodeJobsSync(jobs, limits);
  expect(await killed).toBe(0);
  expect(said.trim()).toBe('queued'); // the victim died holding frames of this series, unanswered
  outcomes.forEach((o, k) => expect(o.ok && Buffer.from(o.frames[0]).equals(originalSlice(k))).toBe(true));
  const after = helperProcesses(NATIVE_JPEG.program).map((h) => h.pid);
  expect(after).toHaveLength(2);
  expect(after).not.toContain(victim);
  expect(after).toContain(others[0]);

  // The pool serves the next request whole.
  const again = decodeJobsSync(jobs, limits);
  again.forEach((o, k) => expect(o.ok && Buffer.from(o.frames[0]).equals(originalSlice(k))).toBe(true));
  expect(helperProcesses(NATIVE_JPEG.program).map((h) => h.pid)).toEqual(after);

  // Stopping the pool ends every helper (their input closes): none left running, none left as a zombie.
  stopPixelDecoder();
  const deadline = Date.now() + 10_000;
  while (helperProcesses(NATIVE_JPEG.program).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(helperProcesses(NATIVE_JPEG.program)).toEqual([]);
});
