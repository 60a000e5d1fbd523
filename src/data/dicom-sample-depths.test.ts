/**
 * Sample depths and signs beyond the unsigned 16-bit MR of the codec tests, transcoded by tools no one here wrote:
 * - signed pixel data (PixelRepresentation 1) as CT stores it, stored values from -1024 (air) to 3071, through every
 *   lossless syntax (DCMTK, GDCM): bit-identical to the original;
 * - a header whose PixelRepresentation disagrees with the data: read as the header says, as pydicom does;
 * - 8-bit and 32-bit samples (RT dose) RLE-compressed by DCMTK's dcmcrle: pydicom's values of the uncompressed file.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCorpus, Corpus, dcmodify, pydicomValues, SYNTAX_VARIANTS } from './dicom-corpus.test-helper';
import { decodePixels, parseDicomFile } from './dicom-file';
import { readDicomSeries } from './dicom-series';
import { stopPixelDecoder } from './pixel-decoder';
import { runPython } from './python-oracle.test-helper';
import { spawnSync } from 'child_process';
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

const DEPTHS = String.raw`
import sys, pydicom, numpy as np
source, out = sys.argv[1], sys.argv[2]
stored = pydicom.dcmread(source).pixel_array.astype(np.int64)
for bits, values in ((8, (stored % 256).astype(np.uint8)), (32, (stored * 1000003 % 4000000000).astype(np.uint32))):
    ds = pydicom.dcmread(source)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = values.tobytes()
    ds.save_as('%s/u%d.dcm' % (out, bits))
`;

test('8-bit and 32-bit samples RLE-compressed by DCMTK: the values pydicom reads from the uncompressed files', () => {
  const dir = path.join(root, 'depths');
  fs.mkdirSync(dir);
  runPython(DEPTHS, [(corpus.series.get('explicit-le') ?? [])[0], dir], ['pydicom', 'numpy']);
  for (const bits of [8, 32]) {
    const source = path.join(dir, `u${bits}.dcm`);
    const rle = path.join(dir, `rle${bits}.dcm`);
    const run = spawnSync('dcmcrle', [source, rle], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const slice = parseDicomFile(rle);
    expect([slice.syntax.encoding, slice.layout.bitsAllocated]).toEqual(['rle', bits]);
    const [oracle] = pydicomValues([source], root);
    expect(Buffer.from(decodePixels(slice).buffer).equals(Buffer.from(oracle.buffer))).toBe(true);
    if (bits === 32) expect(Math.max(...oracle)).toBeGreaterThan(2 ** 24); // beyond 16 bits: all four byte segments used
  }
});
