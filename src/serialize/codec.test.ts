import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decode as referenceDecode } from '@msgpack/msgpack';
import {
  DTYPES,
  DType,
  NdArray,
  NpGeneric,
  PyFloat,
  PyTuple,
  SerializationError,
  TorchTensor,
  TypedArray,
  aggregatedParamsFile,
  decodeParams,
  encodeParams,
  encodeParamsChunks,
  modelWeightsOf,
  nodeParamsFile,
  readParamsFile,
  tensorFromFloat32,
  tensorToFloat32,
  writeParamsFile,
} from './index';
import { VECTORS_DIR } from '../testing/vectors-dir';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const VECTORS = path.join(VECTORS_DIR, 'files');

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
function pseudoRandomBytes(seed: number, length: number): Uint8Array {
  let x = seed >>> 0 || 1;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Six elements of each dtype covering signs and extremes. */
function sampleData(dtype: DType): TypedArray {
  switch (dtype) {
    case 'float16':
      return Uint16Array.of(0x3c00, 0xbc00, 0x7bff, 0x0001, 0x7c00, 0x8000);
    case 'float32':
      return Float32Array.of(1.5, -2.25, 3.4028234663852886e38, 1e-45, -0, Infinity);
    case 'float64':
      return Float64Array.of(0.1, -1e308, 5e-324, NaN, -Infinity, 2 ** 60);
    case 'int8':
      return Int8Array.of(-128, 127, 0, -1, 5, 99);
    case 'int16':
      return Int16Array.of(-32768, 32767, 0, -1, 300, 7);
    case 'int32':
      return Int32Array.of(-2147483648, 2147483647, 0, -1, 70000, 8);
    case 'int64':
      return BigInt64Array.of(-(BigInt(2) ** BigInt(63)), BigInt(2) ** BigInt(63) - BigInt(1), BigInt(0), BigInt(-1), BigInt(2) ** BigInt(53) + BigInt(1), BigInt(42));
    case 'uint8':
      return Uint8Array.of(0, 255, 1, 128, 7, 9);
    case 'uint16':
      return Uint16Array.of(0, 65535, 1, 256, 7, 9);
    case 'uint32':
      return Uint32Array.of(0, 4294967295, 1, 65536, 7, 9);
    case 'uint64':
      return BigUint64Array.of(BigInt(0), BigInt(2) ** BigInt(64) - BigInt(1), BigInt(1), BigInt(2) ** BigInt(53) + BigInt(1), BigInt(7), BigInt(9));
    case 'bool':
      return Uint8Array.of(1, 0, 0, 1, 1, 0);
  }
}

function expectSerializationError(run: () => unknown, ...fragments: (string | RegExp)[]): SerializationError {
  let caught: unknown;
  try {
    run();
  } catch (err: unknown) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SerializationError);
  const message = (caught as Error).message;
  for (const fragment of fragments) expect(message).toMatch(fragment);
  return caught as SerializationError;
}

describe('byte-exact encoding (examples of the protocol reference §5.2)', () => {
  test('a 2-tensor aggregated_params file', () => {
    const file = aggregatedParamsFile('researcher_1', {
      'fc.weight': tensorFromFloat32([2, 2], [1, 2, 3, 4]),
      'fc.bias': tensorFromFloat32([2], [0.5, -0.5]),
    });
    const bytes = encodeParams(file);
    expect(bytes.byteLength).toBe(170);
    expect(hex(bytes)).toBe(
      '82ad726573656172636865725f6964ac726573656172636865725f31ad6d6f64656c5f7765696768747382a966632e77656967687482a85f5f747970655f5fac746f7263682e54656e736f72a576616c756593c4100000803f000000400000404000008040a7666c6f61743332920202a766632e6269617382a85f5f747970655f5fac746f7263682e54656e736f72a576616c756593c4080000003f000000bfa7666c6f617433329102',
    );
  });

  test('a 0-d int64 tensor and a big int', () => {
    const scalar = new TorchTensor('int64', [], BigInt64Array.of(BigInt(3)));
    expect(hex(encodeParams(scalar))).toBe(
      '82a85f5f747970655f5fac746f7263682e54656e736f72a576616c756593c4080300000000000000a5696e74363490',
    );
    const big = BigInt(2) ** BigInt(70) + BigInt(5);
    expect(hex(encodeParams(big))).toBe('82a85f5f747970655f5fa3696e74a576616c7565c409400000000000000005');
    expect(decodeParams(encodeParams(big))).toBe(big);
  });

  test.each([
    [0, '00'],
    [127, '7f'],
    [128, 'cc80'],
    [256, 'cd0100'],
    [65536, 'ce00010000'],
    [2 ** 32, 'cf0000000100000000'],
    [-1, 'ff'],
    [-32, 'e0'],
    [-33, 'd0df'],
    [-129, 'd1ff7f'],
    [-32769, 'd2ffff7fff'],
    [-(2 ** 31) - 1, 'd3ffffffff7fffffff'],
    [1.5, 'cb3ff8000000000000'],
    [-0, 'cb8000000000000000'],
    [new PyFloat(1), 'cb3ff0000000000000'],
    [BigInt(2) ** BigInt(64) - BigInt(1), 'cfffffffffffffffff'],
    [-(BigInt(2) ** BigInt(63)), 'd38000000000000000'],
    [BigInt(5), '05'],
    [BigInt(2) ** BigInt(64), '82a85f5f747970655f5fa3696e74a576616c7565c409010000000000000000'],
    [null, 'c0'],
    [true, 'c3'],
    ['x'.repeat(32), 'd920' + '78'.repeat(32)],
  ])('%p is written as Python msgpack writes it', (value, expected) => {
    expect(hex(encodeParams(value))).toBe(expected);
  });
});

describe('round trips', () => {
  test.each(DTYPES.map((d) => [d]))('%s tensors, arrays, 0-d tensors and numpy scalars', (dtype) => {
    const data = sampleData(dtype);
    const one = data.slice(0, 1) as TypedArray;
    const doc = {
      tensor: new TorchTensor(dtype, [2, 3], data),
      array: new NdArray(dtype, [3, 2], data),
      scalar: new TorchTensor(dtype, [], one),
      empty: new NdArray(dtype, [0, 4], data.slice(0, 0)),
      generic: new NpGeneric(dtype, one),
    };
    const bytes = encodeParams(doc);
    const back = decodeParams(bytes) as typeof doc;
    expect(back.tensor).toBeInstanceOf(TorchTensor);
    expect(back.array).toBeInstanceOf(NdArray);
    expect(back.generic).toBeInstanceOf(NpGeneric);
    for (const key of ['tensor', 'array', 'scalar', 'empty'] as const) {
      expect({ key, dtype: back[key].dtype, shape: back[key].shape }).toEqual({ key, dtype, shape: doc[key].shape });
      expect(back[key].data.constructor).toBe(data.constructor);
      expect(hex(back[key].bytes())).toBe(hex(doc[key].bytes()));
    }
    expect(back.generic.dtype).toBe(dtype);
    expect(back.generic.value).toEqual(doc.generic.value);
    expect(hex(encodeParams(back))).toBe(hex(bytes));
  });

  test('int64 values beyond 2^53 survive exactly as bigint', () => {
    const values = BigInt64Array.of(BigInt('9007199254740993'), BigInt('-9223372036854775808'));
    const back = decodeParams(encodeParams(new TorchTensor('int64', [2], values))) as TorchTensor<'int64'>;
    expect(back.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(back.data)).toEqual(Array.from(values));
  });

  test('tuples (nested), big ints, whole floats and None keep their Python types', () => {
    const doc = {
      tuple: new PyTuple([1, 'a', new PyTuple([new PyFloat(2), null])]),
      big: [BigInt(2) ** BigInt(64), BigInt(2) ** BigInt(200) - BigInt(1)],
      lr: new PyFloat(1),
      zero: new PyFloat(0),
      fraction: 0.01,
      none: null,
      u64: BigInt(2) ** BigInt(64) - BigInt(1),
      i64: -(BigInt(2) ** BigInt(63)),
      safe: 2 ** 40,
    };
    const bytes = encodeParams(doc);
    const back = decodeParams(bytes) as Record<string, unknown>;
    expect(back.tuple).toEqual(doc.tuple);
    expect((back.tuple as PyTuple).items[2]).toBeInstanceOf(PyTuple);
    expect(back.big).toEqual(doc.big);
    expect(back.lr).toBeInstanceOf(PyFloat);
    expect((back.lr as PyFloat).value).toBe(1);
    expect(back.zero).toBeInstanceOf(PyFloat);
    expect(back.fraction).toBe(0.01);
    expect(back.none).toBeNull();
    expect(back.u64).toBe(doc.u64);
    expect(back.i64).toBe(doc.i64);
    expect(back.safe).toBe(2 ** 40);
    expect(hex(encodeParams(back))).toBe(hex(bytes));
  });

  test('map key order and non-string keys are preserved (array-index-like keys come back as a Map)', () => {
    const doc = {
      ordered: { zeta: 1, alpha: 2, 'conv.0.weight': 3 },
      numericText: new Map<unknown, unknown>([['10', 'a'], ['2', 'b'], ['x', 'c']]),
      intKeys: new Map<unknown, unknown>([[2, 'two'], [1, 'one'], [-5, null]]),
      proto: new Map<unknown, unknown>([['__proto__', { polluted: true }]]),
    };
    const bytes = encodeParams(doc);
    const back = decodeParams(bytes) as Record<string, unknown>;
    expect(Object.keys(back.ordered as object)).toEqual(['zeta', 'alpha', 'conv.0.weight']);
    expect(back.numericText).toBeInstanceOf(Map);
    expect([...(back.numericText as Map<unknown, unknown>).keys()]).toEqual(['10', '2', 'x']);
    expect([...(back.intKeys as Map<unknown, unknown>).entries()]).toEqual([[2, 'two'], [1, 'one'], [-5, null]]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(hex(encodeParams(back))).toBe(hex(bytes));
  });

  test('unknown tags (e.g. declearn Vector) stay plain maps and round-trip', () => {
    const doc = { __type__: 'Vector', value: { w: tensorFromFloat32([2], [1, 2]) } };
    const bytes = encodeParams(doc);
    const back = decodeParams(bytes) as typeof doc;
    expect(back.__type__).toBe('Vector');
    expect(back.value.w).toBeInstanceOf(TorchTensor);
    expect(hex(encodeParams(back))).toBe(hex(bytes));
  });

  test('maps/arrays beyond 15 entries and long strings/bins use the 16/32-bit forms', () => {
    const doc = {
      map: Object.fromEntries(Array.from({ length: 70000 }, (_, i) => [`k${i}`, i])),
      list: Array.from({ length: 300 }, (_, i) => i),
      text: 'é'.repeat(40000),
      bin: new Uint8Array(70000).fill(7),
    };
    const bytes = encodeParams(doc);
    const back = decodeParams(bytes) as typeof doc;
    expect(Object.keys(back.map).length).toBe(70000);
    expect(back.map.k69999).toBe(69999);
    expect(back.list).toEqual(doc.list);
    expect(back.text).toBe(doc.text);
    expect(hex(back.bin)).toBe(hex(doc.bin));
    expect(hex(encodeParams(back))).toBe(hex(bytes));
  });

  test('our output is standard msgpack: an independent decoder (@msgpack/msgpack) reads the same structure', () => {
    const doc = aggregatedParamsFile('r', { w: tensorFromFloat32([2], [1, -1]) });
    const generic = referenceDecode(encodeParams(doc)) as {
      researcher_id: string;
      model_weights: { w: { __type__: string; value: [Uint8Array, string, number[]] } };
    };
    expect(generic.researcher_id).toBe('r');
    expect(generic.model_weights.w.__type__).toBe('torch.Tensor');
    expect(generic.model_weights.w.value[1]).toBe('float32');
    expect(generic.model_weights.w.value[2]).toEqual([2]);
    expect(hex(generic.model_weights.w.value[0])).toBe('0000803f000080bf');
  });
});

describe('memory: no copies where avoidable', () => {
  const tensor = tensorFromFloat32([4], [1, 2, 3, 4]);
  const encoded = encodeParams({ w: tensor });
  const payloadAt = Buffer.from(encoded).indexOf(Buffer.from(tensor.bytes()));

  test.each([0, 1, 2, 3])('decoding at buffer offset %d: a view when aligned, an equal copy otherwise', (shift) => {
    const backing = new ArrayBuffer(encoded.byteLength + 8);
    const input = new Uint8Array(backing, shift, encoded.byteLength);
    input.set(encoded);
    const w = (decodeParams(input) as { w: TorchTensor<'float32'> }).w;
    expect(Array.from(w.data)).toEqual([1, 2, 3, 4]);
    const aligned = (shift + payloadAt) % 4 === 0;
    expect(w.data.buffer === backing).toBe(aligned);
    if (aligned) expect(w.data.byteOffset).toBe(shift + payloadAt);
  });

  test('large payloads are referenced by the encoder, not copied, and the chunks join to the file', () => {
    const big = tensorFromFloat32([1000, 10], new Float32Array(10000).map((_, i) => i));
    const doc = { a: big, b: tensorFromFloat32([1], [5]) };
    const chunks = encodeParamsChunks(doc);
    expect(chunks.some((chunk) => chunk.buffer === big.data.buffer && chunk.byteLength === 40000)).toBe(true);
    expect(hex(Buffer.concat(chunks))).toBe(hex(encodeParams(doc)));
  });
});

describe('bad input gives a SerializationError that says what and where', () => {
  const vectorFile = fs.readdirSync(VECTORS).find((f) => f.startsWith('node_params_') && f.endsWith('.mpk'))!;
  const good = new Uint8Array(fs.readFileSync(path.join(VECTORS, vectorFile)));

  test('empty input', () => {
    expectSerializationError(() => decodeParams(new Uint8Array(0)), /empty input/);
  });

  test('every truncation of a real file', () => {
    for (let length = 1; length < good.byteLength; length++) {
      expectSerializationError(() => decodeParams(good.subarray(0, length)), /truncated input/, /at offset \d+/);
    }
  });

  test('a truncated tensor names its path', () => {
    expectSerializationError(() => decodeParams(good.subarray(0, 0xe0)), /\$\.model_weights\["fc1\.weight"\]\.value\[0\]/);
  });

  test('random bytes and text never crash with anything but a SerializationError', () => {
    for (let seed = 1; seed <= 300; seed++) {
      try {
        decodeParams(pseudoRandomBytes(seed, 16 + (seed % 200)));
      } catch (err: unknown) {
        expect(err).toBeInstanceOf(SerializationError);
      }
    }
    const text = new Uint8Array(Buffer.from('import torch\nclass MyTrainingPlan(TorchTrainingPlan):\n    pass\n'));
    expectSerializationError(() => decodeParams(text), /unexpected byte\(s\) after the msgpack value/);
  });

  test('trailing garbage, reserved byte, ext types, invalid UTF-8, absurd counts, deep nesting', () => {
    const withTail = new Uint8Array([...good, 0x00]);
    expectSerializationError(() => decodeParams(withTail), /1 unexpected byte/);
    expectSerializationError(() => decodeParams(fromHex('c1')), /0xc1/, /not a msgpack file/);
    expectSerializationError(() => decodeParams(fromHex('d6ff00000000')), /extension type/);
    expectSerializationError(() => decodeParams(fromHex('81a161a2c328')), /not valid UTF-8/, /\$\.a/);
    expectSerializationError(() => decodeParams(fromHex('ddffffffff00')), /truncated input/, /array of 4294967295/);
    expectSerializationError(() => decodeParams(new Uint8Array(2000).fill(0x91)), /nested deeper than 512/);
  });

  function tagged(value: unknown): Uint8Array {
    return encodeParams({ model_weights: { 'fc1.weight': { __type__: 'torch.Tensor', value } } });
  }
  const where = /\$\.model_weights\["fc1\.weight"\]/;

  test('a tensor whose bytes do not match its shape', () => {
    expectSerializationError(
      () => decodeParams(tagged([new Uint8Array(32), 'float32', [3, 3]])),
      where,
      /float32 shape \[3, 3\] needs 36 bytes, payload has 32/,
    );
  });

  test('a tensor with an unknown dtype', () => {
    expectSerializationError(
      () => decodeParams(tagged([new Uint8Array(8), 'complex64', [1]])),
      where,
      /unsupported dtype "complex64"/,
    );
  });

  test('malformed tag payloads', () => {
    expectSerializationError(() => decodeParams(tagged([new Uint8Array(4), 'float32'])), where, /must be a list \[bytes, dtype, shape\]/);
    expectSerializationError(() => decodeParams(tagged(['abcd', 'float32', [1]])), where, /raw data must be bytes, got "abcd"/);
    expectSerializationError(() => decodeParams(tagged([new Uint8Array(4), 'float32', [-1]])), where, /shape must be a list of non-negative/);
    expectSerializationError(() => decodeParams(tagged(null)), where, /got null/);
    expectSerializationError(
      () => decodeParams(encodeParams({ s: { __type__: 'np.generic', value: [new Uint8Array(3), 'int32'] } })),
      /\$\.s/,
      /int32 scalar is 4 bytes, payload has 3/,
    );
    expectSerializationError(() => decodeParams(encodeParams({ __type__: 'tuple', value: 5 })), /"tuple" value must be a list/);
    expectSerializationError(() => decodeParams(encodeParams({ __type__: 'int', value: 'x' })), /"int" value must be bytes/);
  });

  test('values that have no Fed-BioMed form are refused when encoding, with their path', () => {
    expectSerializationError(() => encodeParams({ w: new Float32Array(2) }), /\$\.w/, /wrap it in a TorchTensor/);
    expectSerializationError(() => encodeParams({ when: new Date(0) }), /\$\.when/, /Date values cannot be written/);
    expectSerializationError(() => encodeParams({ f: () => 1 }), /function/);
    expectSerializationError(() => encodeParams(['\ud800']), /\$\[0\]/, /lone UTF-16 surrogate/);
    expectSerializationError(() => encodeParams(-(BigInt(2) ** BigInt(63)) - BigInt(1)), /below -2\^63/);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expectSerializationError(() => encodeParams(cycle), /nested deeper than 512/);
  });

  test('constructors refuse inconsistent tensors', () => {
    expectSerializationError(() => new TorchTensor('float32', [2, 2], new Float32Array(3)), /needs 4 elements, data has 3/);
    expectSerializationError(() => new TorchTensor('int64', [1], new Float64Array(1) as never), /int64 data must be a BigInt64Array/);
    expectSerializationError(() => new NdArray('complex64' as DType, [1], new Float32Array(1)), /unsupported dtype/);
    expectSerializationError(() => tensorFromFloat32([3], [1, 2]), /needs 3 values, got 2/);
  });
});

describe('weight-file helpers', () => {
  test('tensorToFloat32 converts every dtype and returns float32 data itself', () => {
    const f32 = tensorFromFloat32([2], [1.5, -2]);
    expect(tensorToFloat32(f32)).toBe(f32.data);
    expect(Array.from(tensorToFloat32(new TorchTensor('int64', [2], BigInt64Array.of(BigInt(3), BigInt(-4)))))).toEqual([3, -4]);
    expect(Array.from(tensorToFloat32(new TorchTensor('float16', [2], Uint16Array.of(0x3c00, 0xc000))))).toEqual([1, -2]);
    expect(Array.from(tensorToFloat32(new TorchTensor('bool', [2], Uint8Array.of(1, 0))))).toEqual([1, 0]);
    expect(Array.from(tensorToFloat32(new NdArray('float64', [1], Float64Array.of(0.25))))).toEqual([0.25]);
  });

  test('nodeParamsFile writes keys in the order Python nodes do', () => {
    const file = nodeParamsFile({
      node_id: 'node_1',
      model_weights: { w: tensorFromFloat32([1], [1]) },
      optimizer_args: { lr: 0.01 },
      researcher_id: 'r',
      job_id: 'j',
      state_id: 's',
      encrypted: false,
      optim_aux_var: {},
    });
    expect(Object.keys(file)).toEqual([
      'optim_aux_var',
      'encrypted',
      'researcher_id',
      'job_id',
      'state_id',
      'model_weights',
      'node_id',
      'optimizer_args',
    ]);
  });

  test('modelWeightsOf checks the model_weights map', () => {
    expect(Object.keys(modelWeightsOf({ model_weights: { w: tensorFromFloat32([1], [1]) } }))).toEqual(['w']);
    expectSerializationError(() => modelWeightsOf({ researcher_id: 'r' }), /no "model_weights" key/);
    expectSerializationError(() => modelWeightsOf({ model_weights: { w: 3 } }), /model_weights\["w"\] is not a tensor/);
    expectSerializationError(() => modelWeightsOf([1]), /map with string keys/);
  });

  test('writeParamsFile / readParamsFile round-trip through a real file; read errors name the file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-params-'));
    try {
      const file = path.join(dir, 'aggregated_params_x.mpk');
      const doc = aggregatedParamsFile('r', { big: tensorFromFloat32([5000], new Float32Array(5000).fill(0.5)) });
      writeParamsFile(file, doc);
      expect(hex(fs.readFileSync(file))).toBe(hex(encodeParams(doc)));
      const back = modelWeightsOf(readParamsFile(file));
      expect(Array.from(back.big.data as Float32Array).every((v) => v === 0.5)).toBe(true);
      fs.writeFileSync(file, Buffer.from([0x82, 0xa1]));
      expectSerializationError(() => readParamsFile(file), file, /truncated/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
