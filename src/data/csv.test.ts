import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { numericColumn, parseCsv, readCsv, rowOf, rowRecord } from './csv';
import { DataReadError } from './errors';
import { runPython } from './python-oracle.test-helper';
import { VECTORS_DIR } from '../testing/vectors-dir';

const VECTORS = path.join(VECTORS_DIR, 'examples');
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'csv-test-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

describe('readCsv', () => {
  test('shape and dtypes equal those a real Fed-BioMed v4.5 node recorded for the same file', () => {
    const db = JSON.parse(fs.readFileSync(path.join(VECTORS, 'db_node_peer1.json'), 'utf8'));
    const entry = db.Datasets['1'];
    const table = readCsv(path.join(VECTORS, 'dataset-peer1-tabular.csv'));
    expect(table.shape).toEqual(entry.shape);
    expect(table.dtypes).toEqual(entry.dtypes);
    expect(table.header).toEqual(['f0', 'f1', 'f2', 'f3', 'label']);
    expect(numericColumn(table, 'f0')[0]).toBeCloseTo(0.3456, 6);
  });

  test('quoted fields keep delimiters, doubled quotes and newlines; CRLF and BOM are handled', () => {
    const file = write('quoted.csv', '\ufeffid,name,note\r\n1,"Doe, John","said ""hi"""\r\n2,"multi\nline",plain\r\n');
    const table = readCsv(file);
    expect(table.header).toEqual(['id', 'name', 'note']);
    expect(table.rows).toEqual([['1', 'Doe, John', 'said "hi"'], ['2', 'multi\nline', 'plain']]);
    expect(table.dtypes).toEqual(['int64', 'object', 'object']);
    expect(table.shape).toEqual([2, 3]);
  });

  test('semicolon and tab delimiters are sniffed from the first line', () => {
    expect(readCsv(write('semi.csv', 'a;b\n1,5;2\n')).rows).toEqual([['1,5', '2']]);
    expect(readCsv(write('tab.tsv', 'a\tb\n1\t2\n')).header).toEqual(['a', 'b']);
  });

  test('a file whose first row is data gets numbered columns, like pandas with header=None', () => {
    const table = readCsv(write('noheader.csv', '1,2.5\n3,4.5\n5,6.5\n'));
    expect(table.hasHeader).toBe(false);
    expect(table.header).toEqual(['0', '1']);
    expect(table.shape).toEqual([3, 2]);
    expect(table.dtypes).toEqual(['int64', 'float64']);
  });

  test('missing values turn an integer column into float64 and a bool column into object', () => {
    // Every column changes type from row to row, so the sniffer cannot tell: say there is a header.
    const table = readCsv(write('missing.csv', 'n,flag,ok,t\n1,True,True,x\n,False,,y\n3,True,False,NA\n'), { header: true });
    expect(table.dtypes).toEqual(['float64', 'bool', 'object', 'object']);
    expect(Array.from(numericColumn(table, 'n'))).toEqual([1, NaN, 3]);
    expect(rowRecord(table, 1)).toEqual({ n: null, flag: false, ok: null, t: 'y' });
    expect(table.numericColumns).toEqual(['n', 'flag']);
  });

  test('a short row is padded with missing values, as pandas does', () => {
    const table = readCsv(write('short.csv', 'a,b,c\n1,2,3\n4,5\n'));
    expect(table.rows[1]).toEqual(['4', '5', '']);
    expect(table.dtypes).toEqual(['int64', 'int64', 'float64']);
  });

  test('index column by name or position is taken out of the columns', () => {
    const file = write('indexed.csv', 'patient_id,age,sex\nP1,61,M\nP2,54,F\n');
    for (const indexColumn of ['patient_id', 0]) {
      const table = readCsv(file, { indexColumn });
      expect(table.index).toEqual(['P1', 'P2']);
      expect(table.header).toEqual(['age', 'sex']);
      expect(table.shape).toEqual([2, 2]);
      expect(rowRecord(table, rowOf(table, 'P2'))).toEqual({ age: 54, sex: 'F' });
    }
  });

  test.each([
    ['ragged.csv', 'a,b\n1,2,3\n', /record 2 has 3 fields, expected 2/],
    ['unterminated.csv', 'a,b\n1,"open\n', /unterminated quoted field starting on line 2/],
    ['binary.csv', 'a,b\n\u0000\u0001\n', /NUL bytes/],
    ['empty.csv', '', /CSV file is empty/],
  ])('malformed %s is refused with an error naming the file', (name, text, why) => {
    const file = write(name, text);
    expect(() => readCsv(file)).toThrow(DataReadError);
    expect(() => readCsv(file)).toThrow(file);
    expect(() => readCsv(file)).toThrow(why);
  });

  test('a missing file or an unknown index column names the path', () => {
    const missing = path.join(dir, 'nope.csv');
    expect(() => readCsv(missing)).toThrow(`${missing}: cannot read CSV file`);
    const file = write('ok.csv', 'a,b\n1,2\n');
    expect(() => readCsv(file, { indexColumn: 'id' })).toThrow(`${file}: no column "id"`);
    expect(() => numericColumn(parseCsv('a\nx\n', 'mem.csv', { header: true }), 'a')).toThrow('mem.csv: column "a" is not numeric');
  });
});

/**
 * Same shape/dtypes as Fed-BioMed's DatasetManager.read_csv (csv.Sniffer + pandas) on edge cases, when a Python
 * with pandas is available (Debian's /usr/bin/python3 has pandas 1.5.3, the version the vectors were recorded with).
 */
describe('agreement with pandas (Fed-BioMed DatasetManager.read_csv)', () => {
  // (A file with a short row is left out: Fed-BioMed's sniffer itself fails on it, "Could not determine delimiter".)
  const cases: Record<string, string> = {
    'plain.csv': 'a,b,c\n1,2.5,x\n2,3.5,y\n3,,z\n',
    'noheader.csv': '1,2.5\n3,4.5\n5,6.5\n',
    'bools.csv': 'x,flag\n1,True\n2,False\n',
    'semi.csv': 'a;b;c\n1;2;3\n4;5;6\n',
    'quoted.csv': 'id,name\n1,"Doe, John"\n2,"x ""y"""\n',
    'missing-int.csv': 'k,v\n1,NA\n2,4\n3,5\n',
    'ambiguous.csv': 'n,flag,ok,t\n1,True,True,x\n,False,,y\n3,True,False,NA\n',
    'crlf.csv': 'name,score\r\nanna,1.5\r\nbob,2\r\n',
  };
  test('shape and dtypes match pandas on every case', () => {
    const files = Object.entries(cases).map(([name, text]) => write(name, text));
    const script = [
      'import csv, json, sys, pandas as pd',
      'out = []',
      'for f in sys.argv[1:]:',
      '    s = csv.Sniffer()',
      '    with open(f) as fh:',
      '        d = s.sniff(fh.readline()).delimiter; fh.seek(0); h = 0 if s.has_header(fh.read()) else None',
      '    df = pd.read_csv(f, sep=d, header=h)',
      '    out.append({"shape": list(df.shape), "dtypes": [str(t) for t in df.dtypes]})',
      'print(json.dumps(out))',
    ].join('\n');
    const run = runPython(script, files, ['pandas']);
    if (!run) return;
    const expected = JSON.parse(run) as { shape: number[]; dtypes: string[] }[];
    const ours = files.map((f) => {
      const t = readCsv(f);
      return { shape: t.shape, dtypes: t.dtypes };
    });
    expect(ours).toEqual(expected);
  });
});
