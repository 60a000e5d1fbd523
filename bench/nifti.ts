/**
 * NIfTI .nii.gz reading: time and peak memory of our streamed reader (src/data/nifti-stream.ts: header first, only
 * the wanted volume inflated and decoded as it streams) beside the whole-file way it replaced (read the compressed
 * file, gunzip it whole, decode) and nibabel (`get_fdata(dtype=float32)` / one volume of `dataobj`), on the same files.
 *
 *   npm run bench -- nifti [--runs 3]
 *
 * Files (written by nibabel, int16, smooth phantom + noise): a 256x256x160 3-D image, and a 96x96x60x80 4-D series
 * of which one volume (the 40th) is read. Each reader runs in a fresh process (node, or python3 for nibabel) so its
 * peak resident memory (getrusage maxrss) is its own: reported as the growth over the process's resident size just
 * before reading. Times are the median of the runs, measured inside the process. The last line is
 * `RESULT peak_mb_ratio_4d=X peak_mb_ratio_3d=Y time_ratio_vs_nibabel_3d=Z` (streamed over whole-file peak growth;
 * our time over nibabel's).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { decodeNifti, readNifti } from '../src/data/nifti';
import { runPython } from '../src/data/python-oracle.test-helper';
import { median } from './lib/stats';

const WRITE = String.raw`
import sys, numpy as np, nibabel as nib
out = sys.argv[1]
rng = np.random.default_rng(3)
def phantom(shape):
    axes = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape[:3]], indexing='ij')
    r = np.sqrt(sum(a * a for a in axes))
    base = np.where(r < 0.8, 1800 + 900 * np.cos(6 * r), 40)
    return base
a = phantom((256, 256, 160)) + rng.normal(0, 30, (256, 256, 160))
nib.save(nib.Nifti1Image(a.astype(np.int16), np.diag([0.9, 0.9, 1.2, 1])), out + '/mr3d.nii.gz')
b = phantom((96, 96, 60))[..., None] * (1 + 0.01 * np.arange(80)) + rng.normal(0, 30, (96, 96, 60, 80))
nib.save(nib.Nifti1Image(b.astype(np.int16), np.diag([2.5, 2.5, 2.5, 1])), out + '/fmri4d.nii.gz')
`;

const NIBABEL = String.raw`
import sys, time, resource, json, numpy as np, nibabel as nib
file, volume, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(runs):
    t = time.perf_counter()
    img = nib.load(file)
    data = np.asarray(img.dataobj[..., volume], dtype=np.float32) if volume >= 0 else img.get_fdata(dtype=np.float32)
    times.append((time.perf_counter() - t) * 1000)
    checksum = float(data.sum(dtype=np.float64))
    del data, img
print(json.dumps({'ms': sorted(times)[len(times) // 2], 'peakMb': (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, 'checksum': checksum}))
`;

type Method = 'streamed' | 'whole-file';

/** The reader a child process runs: ours streamed, or the whole-file way (read, gunzip whole, decode). */
function readWith(method: Method, file: string, volume: number): Float32Array {
  const options = volume >= 0 ? { volume } : {};
  if (method === 'streamed') return readNifti(file, options).volume.data;
  return decodeNifti(zlib.gunzipSync(fs.readFileSync(file)), file, options).volume.data;
}

function child(method: Method, file: string, volume: number, runs: number): void {
  // Garbage of a run is collected before the next, so the peak is one read's (the child runs with --expose-gc).
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  gc();
  const base = process.memoryUsage().rss;
  const times: number[] = [];
  let checksum = 0;
  for (let r = 0; r < runs; r++) {
    gc();
    const started = process.hrtime.bigint();
    const data = readWith(method, file, volume);
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    checksum = data.reduce((a, b) => a + b, 0);
  }
  const peakMb = (process.resourceUsage().maxRSS * 1024 - base) / 1024 ** 2;
  process.stdout.write(`${JSON.stringify({ ms: median(times), peakMb, checksum })}\n`);
}

interface Measure { ms: number; peakMb: number; checksum: number }

function measure(method: Method | 'nibabel', file: string, volume: number, runs: number): Measure {
  if (method === 'nibabel') return JSON.parse(runPython(NIBABEL, [file, String(volume), String(runs)], ['nibabel', 'numpy']) ?? '{}') as Measure;
  const run = spawnSync(process.execPath, ['--expose-gc', '-r', 'ts-node/register/transpile-only', __filename, '--child', method, file, String(volume), String(runs)],
    { encoding: 'utf8', cwd: path.join(__dirname, '..') });
  if (run.status !== 0) throw new Error(`${method} child failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}') as Measure;
}

export async function main(args: string[]): Promise<void> {
  const runs = Number(args[args.indexOf('--runs') + 1] || 3) || 3;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nifti-'));
  try {
    runPython(WRITE, [dir], ['nibabel', 'numpy']);
    const cases = [
      { key: '3d', file: path.join(dir, 'mr3d.nii.gz'), volume: -1, label: '256x256x160 int16, whole image' },
      { key: '4d', file: path.join(dir, 'fmri4d.nii.gz'), volume: 40, label: '96x96x60x80 int16, volume 40' },
    ];
    const result: Record<string, number> = {};
    for (const c of cases) {
      const mb = fs.statSync(c.file).size / 1024 ** 2;
      process.stdout.write(`${c.label} (${mb.toFixed(1)} MB compressed)\n`);
      const got = Object.fromEntries((['streamed', 'whole-file', 'nibabel'] as const).map((m) => [m, measure(m, c.file, c.volume, runs)]));
      for (const [m, g] of Object.entries(got)) {
        process.stdout.write(`  ${m.padEnd(10)} ${g.ms.toFixed(0).padStart(6)} ms   peak +${g.peakMb.toFixed(0).padStart(4)} MB   checksum ${g.checksum}\n`);
      }
      if (Math.abs(got.streamed.checksum - got.nibabel.checksum) > 1e-6 * Math.abs(got.nibabel.checksum)) {
        throw new Error(`${c.label}: our voxels differ from nibabel's (checksum ${got.streamed.checksum} vs ${got.nibabel.checksum})`);
      }
      result[`peak_mb_ratio_${c.key}`] = got.streamed.peakMb / got['whole-file'].peakMb;
      result[`time_ratio_vs_nibabel_${c.key}`] = got.streamed.ms / got.nibabel.ms;
    }
    process.stdout.write(`RESULT peak_mb_ratio_4d=${result.peak_mb_ratio_4d.toFixed(3)} peak_mb_ratio_3d=${result.peak_mb_ratio_3d.toFixed(3)} `
      + `time_ratio_vs_nibabel_3d=${result.time_ratio_vs_nibabel_3d.toFixed(2)} time_ratio_vs_nibabel_4d=${result.time_ratio_vs_nibabel_4d.toFixed(2)}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') child(process.argv[3] as Method, process.argv[4], Number(process.argv[5]), Number(process.argv[6]));
