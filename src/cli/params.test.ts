/**
 * `fedbiomed-ts params inspect`, run as a real process through the package's bin, against the recorded
 * Fed-BioMed v4.5.0 weight files: its JSON must agree with files/INDEX.json and each file's .decoded.json.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PyTuple, tensorFromFloat32 } from '../serialize';
import { ParamsSummary, summarizeParams } from './params';
import { VECTORS_DIR } from '../testing/vectors-dir';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'fedbiomed-ts.js');
const VECTORS = VECTORS_DIR;

interface IndexEntry {
  file: string;
  bytes: number;
  top_level_keys?: string[];
  tensors?: Record<string, { dtype: string; shape: number[] }>;
}

const INDEX = (JSON.parse(fs.readFileSync(path.join(VECTORS, 'files', 'INDEX.json'), 'utf8')) as IndexEntry[]).filter(
  (entry) => entry.file.endsWith('.mpk'),
);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('fedbiomed-ts params inspect (spawned)', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-inspect-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the vectors list weight files', () => {
    expect(INDEX.length).toBeGreaterThanOrEqual(11);
  });

  test('--json agrees with INDEX.json and .decoded.json for every recorded .mpk', async () => {
    const files = INDEX.map((entry) => path.join(VECTORS, entry.file));
    const run = await runCli(['params', 'inspect', '--json', ...files]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.length).toBe(INDEX.length);
    INDEX.forEach((entry, i) => {
      const summary = JSON.parse(lines[i]) as ParamsSummary;
      const decoded = JSON.parse(fs.readFileSync(path.join(VECTORS, `${entry.file}.decoded.json`), 'utf8')) as Record<
        string,
        unknown
      >;
      expect({ file: entry.file, keys: summary.keys }).toEqual({ file: entry.file, keys: entry.top_level_keys });
      expect({ file: entry.file, tensors: summary.tensors }).toEqual({ file: entry.file, tensors: entry.tensors });
      // Tensor order as in the file, too.
      expect(Object.keys(summary.tensors)).toEqual(Object.keys(decoded.model_weights as object));
      const { model_weights: _weights, ...scalars } = decoded;
      expect({ file: entry.file, values: summary.values }).toEqual({ file: entry.file, values: scalars });
    });
  });

  test('the human form lists keys and each tensor with dtype and shape', async () => {
    const entry = INDEX.find((e) => e.file.includes('node_params_'))!;
    const run = await runCli(['params', 'inspect', path.join(VECTORS, entry.file)]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`keys: ${entry.top_level_keys!.join(', ')}`);
    for (const [name, tensor] of Object.entries(entry.tensors!)) {
      expect(run.stdout).toMatch(new RegExp(`^  ${name.replace('.', '\\.')} +${tensor.dtype} +\\[${tensor.shape.join(', ')}\\]$`, 'm'));
    }
  });

  test('a truncated file, a non-msgpack file and a missing file: one clear line each on stderr, exit code 1', async () => {
    const good = fs.readFileSync(path.join(VECTORS, INDEX[0].file));
    const truncated = path.join(dir, 'truncated.mpk');
    fs.writeFileSync(truncated, good.subarray(0, good.byteLength - 10));
    const text = path.join(VECTORS, 'README.md');
    const missing = path.join(dir, 'missing.mpk');
    const run = await runCli(['params', 'inspect', '--json', truncated, text, missing]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^fedbiomed-ts params inspect: .*truncated\.mpk: truncated input: .* at offset \d+/);
    expect(lines[1]).toMatch(/README\.md: .*not a weight file/);
    expect(lines[2]).toMatch(/missing\.mpk: no such file$/);
  });
});

describe('summarizeParams', () => {
  test('scalars, big ints, tuples, bytes and nested tensors in "values"; top-level tensors when there is no model_weights', () => {
    const decodedLike = {
      'fc.weight': tensorFromFloat32([1, 2], [1, 2]),
      step: BigInt(2) ** BigInt(70),
      pair: new PyTuple([1, 'a']),
      raw: Uint8Array.of(1, 2, 3),
      nested: { m: tensorFromFloat32([3], [0, 0, 0]) },
      ratio: NaN,
    };
    const summary = summarizeParams(decodedLike);
    expect(summary.tensors).toEqual({ 'fc.weight': { dtype: 'float32', shape: [1, 2] } });
    expect(summary.values).toEqual({
      step: '1180591620717411303424',
      pair: [1, 'a'],
      raw: { __type__: 'bytes', length: 3 },
      nested: { m: { __type__: 'torch.Tensor', dtype: 'float32', shape: [3] } },
      ratio: 'NaN',
    });
    expect(() => summarizeParams([1, 2])).toThrow(/holds a list, not a map/);
  });
});
