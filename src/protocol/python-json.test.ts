import { spawnSync } from 'child_process';

import { pythonFloatRepr } from './float-repr';
import { PyFloat } from './pyfloat';
import { parsePythonJson, PythonJsonSyntaxError } from './python-json-reader';
import { pythonJsonDumps, PythonJsonWriteError } from './python-json-writer';
import { xorshift32 } from '../testing/xorshift32';

/** Any Python 3 works as the oracle here: only the standard `json` module is used. */
function findPython(): string {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    if (spawnSync(candidate, ['-c', 'import json'], { encoding: 'utf8' }).status === 0) return candidate;
  }
  throw new Error('no python3 interpreter found: the Python oracle tests need one (the json module only)');
}

/** Runs a Python script reading JSON-lines on stdin and returns its stdout lines. */
function python(script: string, input: string[]): string[] {
  const run = spawnSync(findPython(), ['-c', script], { input: input.join('\n') + '\n', encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`python failed: ${run.stderr}`);
  return run.stdout.replace(/\n$/, '').split('\n');
}

describe('pythonFloatRepr', () => {
  it.each([
    [0, '0.0'],
    [-0, '-0.0'],
    [1, '1.0'],
    [0.25, '0.25'],
    [0.1, '0.1'],
    [1e-5, '1e-05'],
    [0.0001, '0.0001'],
    [1e16, '1e+16'],
    [1234567890123456.0, '1234567890123456.0'],
    [1.5e300, '1.5e+300'],
    [5e-324, '5e-324'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [-2.5e-7, '-2.5e-07'],
    [123456789012345680000, '1.2345678901234568e+20'],
    [NaN, 'NaN'],
    [Infinity, 'Infinity'],
    [-Infinity, '-Infinity'],
  ])('%p → %s', (value, expected) => {
    expect(pythonFloatRepr(value)).toBe(expected);
  });

  it('agrees with Python repr on 3000 random doubles (random bit patterns and random magnitudes)', () => {
    const next = xorshift32(20231109);
    const values: number[] = [];
    const view = new DataView(new ArrayBuffer(8));
    for (let i = 0; i < 1500; i++) {
      view.setUint32(0, next());
      view.setUint32(4, next());
      values.push(view.getFloat64(0));
    }
    for (let i = 0; i < 1500; i++) {
      const exponent = (next() % 50) - 25;
      values.push(((next() % 2000001) - 1000000) / 1000 * 10 ** exponent);
    }
    const hex = values.map((v) => {
      view.setFloat64(0, v);
      return view.getBigUint64(0).toString(16).padStart(16, '0');
    });
    const expected = python(
      'import sys, json, struct\nfor line in sys.stdin:\n    print(json.dumps(struct.unpack(">d", bytes.fromhex(line.strip()))[0]))',
      hex,
    );
    values.forEach((v, i) => expect(`${hex[i]} ${pythonJsonDumps(new PyFloat(v))}`).toBe(`${hex[i]} ${expected[i]}`));
  });
});

describe('pythonJsonDumps', () => {
  it('uses Python separators, keeps key order, writes ints and floats as Python does', () => {
    expect(pythonJsonDumps({ b: 1, a: [1, 2.5, new PyFloat(3)], c: {}, d: [], e: null, f: true, g: false })).toBe(
      '{"b": 1, "a": [1, 2.5, 3.0], "c": {}, "d": [], "e": null, "f": true, "g": false}',
    );
    expect(pythonJsonDumps(-0)).toBe('0');
    expect(pythonJsonDumps(1e21)).toBe('1000000000000000000000');
    expect(pythonJsonDumps(12345678901234567890123n)).toBe('12345678901234567890123');
    expect(pythonJsonDumps(NaN)).toBe('NaN');
    expect(pythonJsonDumps([Infinity, -Infinity])).toBe('[Infinity, -Infinity]');
  });

  it('escapes like ensure_ascii: control characters, DEL, non-ASCII, astral pairs and lone surrogates', () => {
    expect(pythonJsonDumps('a"b\\c/\n\r\t\b\f\u0000\u001f\u007f')).toBe('"a\\"b\\\\c/\\n\\r\\t\\b\\f\\u0000\\u001f\\u007f"');
    expect(pythonJsonDumps('é中😀')).toBe('"\\u00e9\\u4e2d\\ud83d\\ude00"');
    expect(pythonJsonDumps('\ud800x\udfff')).toBe('"\\ud800x\\udfff"');
    expect(pythonJsonDumps({ 'clé': 'ü' })).toBe('{"cl\\u00e9": "\\u00fc"}');
  });

  it('agrees with Python json.dumps on 500 random strings of random code units', () => {
    const next = xorshift32(7);
    const pools = [[0x00, 0x80], [0x20, 0x7f], [0x80, 0x800], [0xd800, 0xe000], [0xe000, 0x10000]];
    const strings: number[][] = [];
    for (let i = 0; i < 500; i++) {
      const units: number[] = [];
      const length = next() % 12;
      for (let j = 0; j < length; j++) {
        const [low, high] = pools[next() % pools.length];
        units.push(low + (next() % (high - low)));
      }
      strings.push(units);
    }
    const expected = python(
      'import sys, json\nfor line in sys.stdin:\n    units = json.loads(line)\n' +
        '    s = b"".join(u.to_bytes(2, "little") for u in units).decode("utf-16-le", "surrogatepass")\n    print(json.dumps(s))',
      strings.map((u) => JSON.stringify(u)),
    );
    strings.forEach((units, i) => expect(pythonJsonDumps(String.fromCharCode(...units))).toBe(expected[i]));
  });

  it('refuses values JSON cannot carry, naming where they are', () => {
    expect(() => pythonJsonDumps({ a: [1, undefined] })).toThrow(PythonJsonWriteError);
    expect(() => pythonJsonDumps({ a: [1, undefined] })).toThrow(/a\[1\]/);
    expect(() => pythonJsonDumps({ when: new Date(0) })).toThrow(/when.*Date is not a plain object/);
    expect(() => pythonJsonDumps({ f: () => 1 })).toThrow(/function has no JSON form/);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => pythonJsonDumps(loop)).toThrow(/circular/);
  });
});

describe('parsePythonJson', () => {
  it('refuses integers over 4300 digits, as Python 3.11+ does, quickly and without echoing them', () => {
    const huge = `{"round": ${'9'.repeat(4_000_000)}}`;
    const started = Date.now();
    expect(() => parsePythonJson(huge)).toThrow(/Exceeds the limit \(4300 digits\) for integer string conversion/);
    expect(Date.now() - started).toBeLessThan(500);
    expect(parsePythonJson(`[${'9'.repeat(4300)}]`)).toEqual([BigInt('9'.repeat(4300))]);
    let message = '';
    try {
      parsePythonJson(huge);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.length).toBeLessThan(1000);
  });

  it('accepts NaN, Infinity and -Infinity as Python writes them', () => {
    const value = parsePythonJson('{"metric": {"Loss": NaN}, "v": [Infinity, -Infinity]}') as {
      metric: { Loss: number };
      v: number[];
    };
    expect(value.metric.Loss).toBeNaN();
    expect(value.v).toEqual([Infinity, -Infinity]);
  });

  it('keeps ints, fractional floats, whole floats and big ints apart', () => {
    const value = parsePythonJson('[0, -0, 0.0, -0.0, 1.5, 1e2, 1E-2, 12345678901234567890, -9007199254740993]') as unknown[];
    expect(value[0]).toBe(0);
    expect(Object.is(value[1], 0)).toBe(true);
    expect(value[2]).toEqual(new PyFloat(0));
    expect(Object.is((value[3] as PyFloat).value, -0)).toBe(true);
    expect(value[4]).toBe(1.5);
    expect(value[5]).toEqual(new PyFloat(100));
    expect(value[6]).toBe(0.01);
    expect(value[7]).toBe(12345678901234567890n);
    expect(value[8]).toBe(-9007199254740993n);
  });

  it('keeps Python dict semantics: key order incl. integer-like keys, duplicates, "__proto__" as data', () => {
    const text = '{"b": 1, "10": 2, "2": 3, "a": {"1": true, "0": false}, "b": 4, "__proto__": {"x": 1}}';
    const value = parsePythonJson(text) as Record<string, unknown>;
    expect(value.b).toBe(4);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(value, '__proto__')).toBe(true);
    expect(pythonJsonDumps(value)).toBe('{"b": 4, "10": 2, "2": 3, "a": {"1": true, "0": false}, "__proto__": {"x": 1}}');
  });

  it('decodes escapes, including surrogate pairs and lone surrogates', () => {
    expect(parsePythonJson('"\\u00e9\\ud83d\\ude00\\ud800\\/\\"\\\\\\b\\f\\n\\r\\t"')).toBe('é😀\ud800/"\\\b\f\n\r\t');
  });

  it.each([
    ['', /Expecting value: line 1 column 1 \(char 0\)/],
    ['{"a": 1', /Expecting ',' delimiter: line 1 column 8 \(char 7\)/],
    ['{"a" 1}', /Expecting ':' delimiter/],
    ["{'a': 1}", /Expecting property name enclosed in double quotes/],
    ['[1, 2,]', /Expecting value/],
    ['{"a": 1,}', /Expecting property name enclosed in double quotes/],
    ['"a\u0001"', /Invalid control character/],
    ['"\\x"', /Invalid \\escape/],
    ['"\\u12"', /Invalid \\uXXXX escape/],
    ['"abc', /Unterminated string starting at: line 1 column 1 \(char 0\)/],
    ['01', /Extra data: line 1 column 2 \(char 1\)/],
    ['1.', /Extra data/],
    ['nan', /Expecting value/],
    ['{} {}', /Extra data/],
    ['[' .repeat(600) + ']'.repeat(600), /Nesting too deep/],
  ])('rejects %p', (text, message) => {
    expect(() => parsePythonJson(text)).toThrow(PythonJsonSyntaxError);
    expect(() => parsePythonJson(text)).toThrow(message);
  });

  it('round-trips documents exactly as Python json.loads + json.dumps does', () => {
    const documents = [
      '{"a": 1.0, "b": [1e16, 1e-05, 0.1, -0.0, 1e400, -1e400], "c": NaN}',
      '{"z": {"3": 1, "1": 2}, "big": 123456789012345678901234567890, "s": "\\u00e9\\ud83d\\ude00"}',
      '  [ 1 ,2.50 , {"k" :null} , true,false ]  ',
      '{"dup": 1, "other": 2, "dup": 3.0}',
      '"caf\u00e9 \ud83d\ude00"',
      '[0.30000000000000004, 2.5e-7, 100.0, 1E+2, 9007199254740993]',
    ];
    const expected = python('import sys, json\nfor line in sys.stdin:\n    print(json.dumps(json.loads(line)))', documents);
    documents.forEach((doc, i) => expect(pythonJsonDumps(parsePythonJson(doc))).toBe(expected[i]));
  });
});
