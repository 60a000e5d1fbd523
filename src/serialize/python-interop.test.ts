/**
 * The codec against the real thing: msgpack-python + numpy (+ torch when installed) driven by
 * python-reference.py, which applies Fed-BioMed v4.5.0's serializer rules. Covers what the recorded vectors do
 * not (they only hold float32 tensors): every dtype, numpy scalars, tuples, big ints, whole floats, int map keys.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  DenseArray,
  NdArray,
  NpGeneric,
  PyFloat,
  PyTuple,
  TorchTensor,
  bytesOf,
  decodeParams,
  encodeParams,
  float16ToFloat32,
  float32ToFloat16,
  tensorFromFloat32,
} from './index';

const SCRIPT = path.join(__dirname, 'python-reference.py');

/** First interpreter that has numpy and msgpack (the pyenv `python3` on PATH may not; Debian's does). */
function findPython(): string | undefined {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(candidate, ['-c', 'import numpy, msgpack'], { stdio: 'ignore' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

const PYTHON = findPython();
if (!PYTHON) {
  console.warn('python-interop: NO Python interpreter with numpy + msgpack found; these checks did NOT run');
}
// A comparison that cannot run is a failure, not a pass: .ci/run installs python3-numpy and python3-msgpack.
test('a Python interpreter with numpy and msgpack is available for the interop checks', () => {
  expect(PYTHON).toBeDefined();
});
const describeWithPython = PYTHON ? describe : describe.skip;

interface PythonReport {
  torch: boolean;
  description: unknown;
}

function runPython(args: string[]): PythonReport {
  const out = execFileSync(PYTHON as string, [SCRIPT, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(out) as PythonReport;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

function floatBits(value: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  return hex(new Uint8Array(view.buffer));
}

/** The same description python-reference.py gives, computed from our decoded values. */
function describeValue(value: unknown): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'bigint') return { int: String(value) };
  if (typeof value === 'number') return Number.isInteger(value) && !Object.is(value, -0) ? { int: String(value) } : { float: floatBits(value) };
  if (value instanceof PyFloat) return { float: floatBits(value.value) };
  if (value instanceof Uint8Array) return { bytes: hex(value) };
  if (value instanceof PyTuple) return { tuple: value.items.map(describeValue) };
  if (Array.isArray(value)) return value.map(describeValue);
  if (value instanceof DenseArray) {
    const tag = value instanceof TorchTensor ? 'torch.Tensor' : 'np.ndarray';
    return { tensor: tag, dtype: value.dtype, shape: value.shape, hex: hex(value.bytes()) };
  }
  if (value instanceof NpGeneric) return { generic: value.dtype, hex: hex(value.bytes()) };
  if (value instanceof Map) return { map: [...value.entries()].map(([k, v]) => [describeValue(k), describeValue(v)]) };
  if (typeof value === 'object') return { map: Object.entries(value).map(([k, v]) => [k, describeValue(v)]) };
  throw new Error(`cannot describe ${typeof value}`);
}

describeWithPython('interoperability with Python msgpack + numpy (Fed-BioMed serializer rules)', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-interop-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a Python-written file decodes to the same values and re-encodes to the same bytes', () => {
    const file = path.join(dir, 'python.mpk');
    const report = runPython(['write', file]);
    console.log(`python-interop: tensors written by ${report.torch ? 'real torch' : 'numpy (torch not installed)'}`);
    const bytes = fs.readFileSync(file);
    const decoded = decodeParams(bytes);
    expect(describeValue(decoded)).toEqual(report.description);
    expect(hex(encodeParams(decoded))).toBe(hex(bytes));

    // float16 helpers agree with numpy's float32 → float16 → float32 casts, bit for bit.
    const doc = decoded as Record<string, NdArray>;
    expect(Array.from(float32ToFloat16(doc.f16_source.data as Float32Array))).toEqual(Array.from(doc.f16.data as Uint16Array));
    expect(hex(bytesOf(float16ToFloat32(doc.f16.data as Uint16Array)))).toBe(hex(doc.f16_back.bytes()));
  });

  test('a TypeScript-written file decodes in Python to the same values and Python re-encodes the same bytes', () => {
    const doc = {
      researcher_id: 'researcher_ts',
      model_weights: {
        'fc.weight': tensorFromFloat32([2, 3], [0.5, -1, 2.25, 3e-8, -0, 1e30]),
        'bn.num_batches_tracked': new TorchTensor('int64', [], BigInt64Array.of(BigInt('9007199254740993'))),
        mask: new TorchTensor('bool', [3], Uint8Array.of(1, 0, 1)),
        half: new TorchTensor('float16', [2], float32ToFloat16([0.1, -65504])),
        big: tensorFromFloat32([40, 50], new Float32Array(2000).map((_, i) => i / 7)),
      },
      coef_: new NdArray('float64', [1, 2], Float64Array.of(0.25, -3)),
      counts: new NdArray('uint64', [2], BigUint64Array.of(BigInt(0), BigInt('18446744073709551615'))),
      scalars: [NpGeneric.of('float32', 1.5), NpGeneric.of('int64', BigInt(-7)), NpGeneric.of('bool', true)],
      tuple: new PyTuple([1, 'two', new PyTuple([new PyFloat(3), null])]),
      secagg: [BigInt(2) ** BigInt(64), BigInt(2) ** BigInt(130) + BigInt(1), BigInt(-5)],
      lr: new PyFloat(1),
      momentum: 0.9,
      epochs: 3,
      keys: new Map<unknown, unknown>([[3, 'three'], ['1', 'one as text'], ['name', true]]),
      raw: Uint8Array.of(0, 255),
    };
    const bytes = encodeParams(doc);
    const inFile = path.join(dir, 'ts.mpk');
    const outFile = path.join(dir, 'ts-python.mpk');
    fs.writeFileSync(inFile, bytes);
    const report = runPython(['roundtrip', inFile, outFile]);
    expect(report.description).toEqual(describeValue(doc));
    expect(hex(fs.readFileSync(outFile))).toBe(hex(bytes));
  });
});
