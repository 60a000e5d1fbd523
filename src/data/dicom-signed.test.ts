/**
 * Signed pixel data (PixelRepresentation 1) as CT stores it: stored values from -1024 (air) to 3071, written by our
 * writer, transcoded by DCMTK and GDCM into every lossless syntax, must decode bit-identically to the original, and
 * a header whose PixelRepresentation disagrees with the data is read as the header says, as pydicom does.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCorpus, Corpus, dcmodify, pydicomValues, SYNTAX_VARIANTS } from './dicom-corpus.test-helper';
import { decodePixels, parseDicomFile } from './dicom-file';
import { readDicomSeries } from './dicom-series';
import { stopPixelDecoder } from './pixel-decoder';
import { createVolume } from './volume';

let root: string;
let corpus: Corpus;
const volume = createVolume([24, 20, 3], { spacing: [0.7, 0.7, 2.5] });
volume.data.forEach((_, i) => { volume.data[i] = ((i * 7919) % 4096) - 1024; });

const LOSSLESS = SYNTAX_VARIANTS.filter((v) => v.lossless && v.source === undefined).map((v) => v.name);

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-signed-'));
  corpus = buildCorpus(root, volume, { only: LOSSLESS });
});
afterAll(() => {
  stopPixelDecoder();
  fs.rmSync(root, { recursive: true, force: true });
});

test.each(LOSSLESS)('%s: signed values bit-identical to the original', (name) => {
  const files = corpus.series.get(name) ?? [];
  expect(parseDicomFile(files[0]).layout.signed).toBe(true);
  const series = readDicomSeries(path.dirname(files[0]));
  expect(Buffer.from(series.volume.data.buffer).equals(Buffer.from(volume.data.buffer))).toBe(true);
});

test('PixelRepresentation set to 0 on signed data: read as unsigned, as pydicom reads it', () => {
  const dir = path.join(root, 'mismatch');
  fs.mkdirSync(dir);
  const file = path.join(dir, 'IM0001.dcm');
  fs.copyFileSync((corpus.series.get('explicit-le') ?? [])[0], file);
  dcmodify([file], ['(0028,0103)=0']);
  const ours = decodePixels(parseDicomFile(file));
  const [oracle] = pydicomValues([file], root);
  expect(Buffer.from(ours.buffer).equals(Buffer.from(oracle.buffer))).toBe(true);
  expect(Math.min(...ours)).toBeGreaterThanOrEqual(0);
  expect(Math.max(...ours)).toBeGreaterThan(32767); // negative values' two's complement read as large positives
});
