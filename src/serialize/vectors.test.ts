/**
 * Conformance with the weight files recorded on a real Fed-BioMed v4.5.0 network: each decodes to the values
 * of the `.decoded.json` beside it and re-encodes to the very same bytes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { DenseArray, PyFloat, TorchTensor, decodeParams, encodeParams, modelWeightsOf } from './index';
import { VECTORS_DIR } from '../testing/vectors-dir';

const FILES = path.join(VECTORS_DIR, 'files');
const MPK_FILES = fs.readdirSync(FILES).filter((f) => f.endsWith('.mpk')).sort();

interface RecordedTensor {
  __type__: string;
  dtype: string;
  shape: number[];
  nbytes: number;
  data: unknown;
  hex: string;
}

function isRecordedTensor(value: unknown): value is RecordedTensor {
  return typeof value === 'object' && value !== null && '__type__' in value && 'hex' in value;
}

/** Nested lists flattened in C order. */
function flatten(value: unknown): unknown[] {
  return Array.isArray(value) ? value.flatMap(flatten) : [value];
}

/** Asserts that `actual` (our decoding) holds what `expected` (the recorded JSON decoding) says, at `where`. */
function expectSameValue(actual: unknown, expected: unknown, where: string): void {
  if (isRecordedTensor(expected)) {
    expect({ where, tag: actual instanceof TorchTensor ? 'torch.Tensor' : typeof actual }).toEqual({
      where,
      tag: expected.__type__,
    });
    const tensor = actual as DenseArray;
    expect({ where, dtype: tensor.dtype, shape: tensor.shape, nbytes: tensor.bytes().byteLength }).toEqual({
      where,
      dtype: expected.dtype,
      shape: expected.shape,
      nbytes: expected.nbytes,
    });
    expect(Buffer.from(tensor.bytes()).toString('hex')).toBe(expected.hex);
    expect(Array.from(tensor.data as Float32Array)).toEqual(flatten(expected.data));
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual)).toBe(true);
    const list = actual as unknown[];
    expect(list.length).toBe(expected.length);
    expected.forEach((item, i) => expectSameValue(list[i], item, `${where}[${i}]`));
  } else if (typeof expected === 'object' && expected !== null) {
    expect(actual).toBeInstanceOf(Object);
    const map = actual as Record<string, unknown>;
    expect({ where, keys: Object.keys(map) }).toEqual({ where, keys: Object.keys(expected) }); // order too
    for (const [key, value] of Object.entries(expected)) expectSameValue(map[key], value, `${where}.${key}`);
  } else {
    expect({ where, value: actual instanceof PyFloat ? actual.value : actual }).toEqual({ where, value: expected });
  }
}

describe('recorded Fed-BioMed v4.5.0 weight files', () => {
  test('the vectors hold weight files', () => {
    expect(MPK_FILES.length).toBeGreaterThanOrEqual(11);
  });

  test.each(MPK_FILES)('%s decodes to its .decoded.json and re-encodes to the same bytes', (name) => {
    const bytes = fs.readFileSync(path.join(FILES, name));
    const expected = JSON.parse(fs.readFileSync(path.join(FILES, `${name}.decoded.json`), 'utf8')) as unknown;
    const decoded = decodeParams(bytes);
    expectSameValue(decoded, expected, '$');
    expect(Object.keys(modelWeightsOf(decoded)).length).toBeGreaterThan(0);
    const reencoded = encodeParams(decoded);
    expect(Buffer.from(reencoded).equals(bytes)).toBe(true);
  });

  test('the FedAverage recorded in the vectors is reproduced from the decoded tensors', () => {
    // README: aggregated_params_c45e… is the float32 mean of node_params_4cb8… and node_params_62ae…
    const load = (prefix: string) =>
      modelWeightsOf(decodeParams(fs.readFileSync(path.join(FILES, MPK_FILES.find((f) => f.startsWith(prefix))!))));
    const a = load('node_params_4cb8');
    const b = load('node_params_62ae');
    const mean = load('aggregated_params_c45e');
    for (const [name, tensor] of Object.entries(mean)) {
      const x = a[name].data as Float32Array;
      const y = b[name].data as Float32Array;
      const expected = Float32Array.from(x, (v, i) => 0.5 * v + 0.5 * y[i]);
      expect({ name, values: Array.from(tensor.data as Float32Array) }).toEqual({ name, values: Array.from(expected) });
    }
  });
});
