/**
 * DICOM decoding throughput per transfer syntax, beside pydicom on the same files in the same run.
 *
 *   npm run bench -- dicom [--cols 256] [--rows 256] [--slices 160] [--runs 3] [--workers N] [--corpus DIR]
 *
 * --corpus DIR keeps the transcoded series in DIR (built once, ~5 min on 2 cores) and reuses them on later runs;
 * --workers sets the decoding workers (default: the cores, at most 4; pydicom decodes on one).
 *
 * A 256x256x160 MR phantom series (src/data/dicom-corpus.test-helper.ts) is transcoded by DCMTK / GDCM / OpenJPH
 * into every syntax. Ours: readDicomSeries on the folder (parse, decode in the workers and their native helpers,
 * rescale to float32, sort and assemble the volume). pydicom 2.3 (+ GDCM for JPEG lossless / JPEG-LS / JPEG 2000 /
 * 12-bit JPEG, Pillow for 8-bit JPEG): dcmread + pixel_array + apply_modality_lut per file, timed inside Python
 * (interpreter start and a first file not counted, as our warm-up is not). Syntax by syntax, our runs and pydicom's
 * alternate, so both see about the same load on a shared machine; each side's fastest of --runs counts (the run least
 * disturbed by other work). MB/s of decoded pixels (rows x cols x slices x bytes per stored sample). Syntaxes pydicom
 * cannot decode here (HTJ2K) or we refuse (12-bit JPEG extended without the native JPEG helper) are shown, not
 * ranked.
 * The cpu ratio column is pydicom's CPU time over ours (ours: every thread of this process plus the decoding helper
 * processes) for the same series, summed over the runs: what each side costs, whatever the machine's load, where the
 * wall-time ratio also shows our parallel decoding and how the scheduler treated each side.
 * The last line is `RESULT min_ratio_vs_pydicom=X min_cpu_ratio_vs_pydicom=Y` (our MB/s over pydicom's, and the cpu
 * ratio, on the worst syntax for each).
 * On a loaded machine with autogroup scheduling (Debian's default), a session's processes share one CPU share, so
 * the decoding workers' parallelism buys little there and the ratio tracks CPU time per file.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCorpus, phantomVolume } from '../src/data/dicom-corpus.test-helper';
import { parseDicomFile } from '../src/data/dicom-file';
import { readDicomSeries } from '../src/data/dicom-series';
import { NATIVE_J2K, NATIVE_JPEG, nativeHelper } from '../src/data/native-decoder';
import { defaultDecodeWorkers, stopPixelDecoder } from '../src/data/pixel-decoder';
import { runPython } from '../src/data/python-oracle.test-helper';

interface Options {
  cols: number;
  rows: number;
  slices: number;
  runs: number;
  workers: number;
}

function parseOptions(args: string[]): Options & { corpus?: string } {
  const options: Options & { corpus?: string } = { cols: 256, rows: 256, slices: 160, runs: 3, workers: 0 };
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === '--corpus') {
      options.corpus = args[i + 1];
      continue;
    }
    const key = args[i].replace(/^--/, '') as keyof Options;
    const value = Number(args[i + 1]);
    if (!(key in options) || !Number.isInteger(value) || value <= 0) {
      throw new Error(`usage: dicom [--cols N] [--rows N] [--slices N] [--runs N] [--workers N] [--corpus DIR] (bad ${args[i]} ${args[i + 1] ?? ''})`);
    }
    options[key] = value;
  }
  return options;
}

/**
 * One timed pass of pydicom over a folder (after an untimed file, so its handlers are imported as ours are loaded):
 * its wall time and CPU time in seconds.
 */
const PYDICOM_TIMER = `
import sys, time, json, os, pydicom
from pydicom.pixel_data_handlers.util import apply_modality_lut
name, folder = sys.argv[1].split('=', 1)
files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
try:
    ds = pydicom.dcmread(files[0])
    apply_modality_lut(ds.pixel_array, ds)
    cpu = time.process_time()
    t = time.perf_counter()
    for f in files:
        ds = pydicom.dcmread(f)
        apply_modality_lut(ds.pixel_array, ds)
    print(json.dumps({name: [time.perf_counter() - t, time.process_time() - cpu]}))
except Exception as e:
    print(json.dumps({name: str(e).splitlines()[0][:80]}))
`;

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/**
 * CPU seconds used so far by this process's child processes that are still running: the decoding helpers, which
 * process.cpuUsage() does not count (they are separate programs). Linux /proc, in clock ticks of 1/100 s.
 */
function helperCpuSeconds(): number {
  let ticks = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid) ticks += Number(fields[11]) + Number(fields[12]); // ppid, utime, stime
    } catch {
      // exited meanwhile
    }
  }
  return ticks / 100;
}

export async function main(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const root = options.corpus ?? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-dicom-'));
  const decode = options.workers > 0 ? { decodeWorkers: options.workers } : {};
  try {
    const started = Date.now();
    let series: Map<string, string[]>;
    if (options.corpus && fs.existsSync(path.join(root, 'done'))) {
      series = new Map(fs.readFileSync(path.join(root, 'done'), 'utf8').trim().split('\n')
        .map((name) => [name, fs.readdirSync(path.join(root, name)).sort().map((f) => path.join(root, name, f))]));
      process.stdout.write(`corpus: reusing ${root}\n`);
    } else {
      series = buildCorpus(root, phantomVolume([options.cols, options.rows, options.slices]), { htj2k: true }).series;
      if (options.corpus) fs.writeFileSync(path.join(root, 'done'), [...series.keys()].join('\n'));
      process.stdout.write(`corpus: ${options.cols}x${options.rows}x${options.slices} MR series in ${series.size} syntaxes, `
        + `built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
    const corpus = { series };
    const [first] = series.values();
    const header = parseDicomFile(first[0]);
    const pixels = header.layout.rows * header.layout.cols * first.length;

    const bytesPerSample = (name: string) => (name.endsWith('-8bit') ? 1 : 2);
    const rows: string[] = [];
    let minRatio = Infinity;
    let worst = '';
    let minCpuRatio = Infinity;
    rows.push(`${'syntax'.padEnd(22)} ${'ours MB/s'.padStart(10)} ${'pydicom MB/s'.padStart(13)} ${'ratio'.padStart(7)} ${'cpu ratio'.padStart(10)}`);
    for (const [name, files] of corpus.series) {
      const dir = path.dirname(files[0]);
      const mb = (pixels * bytesPerSample(name)) / 1e6;
      // Ours and pydicom's alternate run by run on the same files, so both see about the same load on a shared
      // machine; each side's fastest run counts (the run least disturbed by other work: the other runs measure the
      // machine's load more than the decoder).
      const ourTimes: number[] = [];
      const theirTimes: number[] = [];
      const ourCpu: number[] = [];
      const theirCpu: number[] = [];
      let ourError: string | undefined;
      let theirError: string | undefined;
      try {
        readDicomSeries(dir, decode); // warm-up: codec loaded, JIT warm, decoding helpers started
      } catch (error) {
        ourError = (error as Error).message.replace(/^.*?: /, '').slice(0, 60);
      }
      for (let r = 0; r < options.runs; r++) {
        if (ourError === undefined) {
          const helpers = helperCpuSeconds();
          const cpu = process.cpuUsage();
          const t = process.hrtime.bigint();
          readDicomSeries(dir, decode);
          ourTimes.push(Number(process.hrtime.bigint() - t) / 1e9);
          const used = process.cpuUsage(cpu);
          ourCpu.push((used.user + used.system) / 1e6 + helperCpuSeconds() - helpers);
        }
        if (theirError === undefined) {
          const timed = JSON.parse(runPython(PYDICOM_TIMER, [`${name}=${dir}`], ['pydicom']) ?? '{}') as Record<string, [number, number] | string>;
          const result = timed[name];
          if (Array.isArray(result)) {
            theirTimes.push(result[0]);
            theirCpu.push(result[1]);
          } else {
            theirError = String(result);
          }
        }
      }
      const ours = ourError ?? mb / Math.min(...ourTimes);
      const theirs = theirError ?? mb / Math.min(...theirTimes);
      const ratio = typeof ours === 'number' && typeof theirs === 'number' ? ours / theirs : NaN;
      const cpuRatio = Number.isFinite(ratio) ? sum(theirCpu) / sum(ourCpu) : NaN;
      if (Number.isFinite(ratio) && ratio < minRatio) {
        minRatio = ratio;
        worst = name;
      }
      if (Number.isFinite(cpuRatio)) minCpuRatio = Math.min(minCpuRatio, cpuRatio);
      const cell = (v: number | string, width: number) => (typeof v === 'number' ? v.toFixed(1) : 'n/a').padStart(width);
      const fixed = (v: number, width: number) => (Number.isFinite(v) ? v.toFixed(2) : '-').padStart(width);
      rows.push(`${name.padEnd(22)} ${cell(ours, 10)} ${cell(theirs, 13)} ${fixed(ratio, 7)} ${fixed(cpuRatio, 10)}`
        + (typeof ours === 'string' ? `  ours: ${ours}` : '') + (typeof theirs === 'string' ? `  pydicom: ${theirs}` : ''));
    }
    // The ratio depends on the cores the decoding workers get (pydicom decodes on one): say what this run had.
    const workers = options.workers > 0 ? options.workers : defaultDecodeWorkers();
    process.stdout.write(`${rows.join('\n')}\nworst syntax: ${worst}\n`);
    process.stdout.write(`decoding workers: ${workers}, cores: ${os.availableParallelism()}, load average: ${os.loadavg()[0].toFixed(1)}\n`);
    const j2k = nativeHelper(NATIVE_J2K) ? 'native OpenJPEG helper (libopenjp2)' : 'wasm OpenJPEG (native helper not built: npm run build:native)';
    const jpeg = nativeHelper(NATIVE_JPEG) ? 'native DCMTK IJG helper (libijg8/12/16)' : 'jpeg-lossless-decoder-js, 12-bit extended refused (native helper not built: npm run build:native)';
    process.stdout.write(`JPEG 2000 decoder: ${j2k}\nJPEG lossless / 12-bit extended decoder: ${jpeg}\n`);
    process.stdout.write(`RESULT min_ratio_vs_pydicom=${minRatio.toFixed(3)} min_cpu_ratio_vs_pydicom=${minCpuRatio.toFixed(3)}\n`);
  } finally {
    stopPixelDecoder();
    if (!options.corpus) fs.rmSync(root, { recursive: true, force: true });
  }
}
