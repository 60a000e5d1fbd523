/**
 * Every transfer syntax, decoded by our readers, against oracles no one here wrote: our synthetic series
 * transcoded by DCMTK / GDCM / OpenJPH must decode bit-identically to the uncompressed original when the syntax is
 * lossless, and like pydicom (GDCM's OpenJPEG and CharLS, Pillow's libjpeg) when it is lossy; pydicom's own test
 * files must give pydicom's values.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCorpus, Corpus, HTJ2K_VARIANT, phantomVolume, pydicomValues, SYNTAX_VARIANTS } from './dicom-corpus.test-helper';
import { decodePixels, parseDicomFile } from './dicom-file';
import { readDicomSeries } from './dicom-series';
import { readJpegFrameHeader } from './jpeg-header';
import { decodeJobsSync, stopPixelDecoder } from './pixel-decoder';

let root: string;
let corpus: Corpus;
const volume = phantomVolume([40, 32, 4]);

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-codecs-'));
  corpus = buildCorpus(root, volume, { htj2k: true });
});
afterAll(() => {
  stopPixelDecoder();
  fs.rmSync(root, { recursive: true, force: true });
});

function decodeAll(files: string[]): Float32Array[] {
  return files.map((f) => decodePixels(parseDicomFile(f)));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

const LOSSLESS = [...SYNTAX_VARIANTS.filter((v) => v.lossless && v.source === undefined).map((v) => v.name), HTJ2K_VARIANT.name];

describe('lossless syntaxes decode bit-identically to the uncompressed original', () => {
  test.each(LOSSLESS)('%s', (name) => {
    const files = corpus.series.get(name) ?? [];
    expect(parseDicomFile(files[0]).syntax.uid).toBe(
      [...SYNTAX_VARIANTS, HTJ2K_VARIANT].find((v) => v.name === name)?.uid);
    const ours = decodeAll(files);
    const plane = volume.dims[0] * volume.dims[1];
    ours.forEach((slice, k) => {
      expect(Buffer.from(slice.buffer).equals(Buffer.from(volume.data.slice(k * plane, (k + 1) * plane).buffer))).toBe(true);
    });
    // And the whole series assembles to the original volume.
    const series = readDicomSeries(path.dirname(files[0]));
    expect(Buffer.from(series.volume.data.buffer).equals(Buffer.from(volume.data.buffer))).toBe(true);
  });
});

/** The first fragment of a file's encapsulated pixel data (a codestream). */
function encapsulatedFrame(file: string): Uint8Array {
  const { dataSet } = parseDicomFile(file);
  const fragment = dataSet.elements.x7fe00010.fragments![0];
  return dataSet.byteArray.subarray(fragment.position, fragment.position + fragment.length);
}

describe('lossy syntaxes decode like pydicom (GDCM / Pillow) and within the codec tolerance of the source', () => {
  test('JPEG-LS near-lossless (NEAR=2): identical to pydicom+GDCM (CharLS), every pixel within 2 of the original', () => {
    const files = corpus.series.get('jpeg-ls-near') ?? [];
    const ours = decodeAll(files);
    const oracle = pydicomValues(files, root);
    const plane = volume.dims[0] * volume.dims[1];
    ours.forEach((slice, k) => {
      expect(maxAbsDiff(slice, oracle[k])).toBe(0);
      expect(maxAbsDiff(slice, volume.data.slice(k * plane, (k + 1) * plane))).toBeLessThanOrEqual(2);
    });
  });

  test('JPEG 2000 lossy: identical to pydicom+GDCM (both OpenJPEG)', () => {
    const files = corpus.series.get('j2k-lossy') ?? [];
    const ours = decodeAll(files);
    const oracle = pydicomValues(files, root);
    const plane = volume.dims[0] * volume.dims[1];
    ours.forEach((slice, k) => {
      expect(maxAbsDiff(slice, oracle[k])).toBe(0);
      // Really lossy: the encode changed pixels (so this is not the lossless path by accident).
      expect(maxAbsDiff(slice, volume.data.slice(k * plane, (k + 1) * plane))).toBeGreaterThan(0);
    });
  });

  test('JPEG baseline (8-bit): within 1 of pydicom+Pillow (libjpeg) everywhere', () => {
    const files = corpus.series.get('jpeg-baseline-8bit') ?? [];
    const ours = decodeAll(files);
    const oracle = pydicomValues(files, root);
    const source = decodeAll(corpus.sourceOf.get('jpeg-baseline-8bit') ?? []);
    ours.forEach((slice, k) => {
      expect(maxAbsDiff(slice, oracle[k])).toBeLessThanOrEqual(1);
      expect(maxAbsDiff(slice, source[k])).toBeLessThanOrEqual(16);
    });
  });

  test('JPEG extended with 8-bit samples (process 2): within 1 of pydicom (libjpeg) everywhere', () => {
    const files = corpus.series.get('jpeg-extended-8bit') ?? [];
    expect(readJpegFrameHeader(encapsulatedFrame(files[0])).bits).toBe(8);
    const ours = decodeAll(files);
    const oracle = pydicomValues(files, root);
    const source = decodeAll(corpus.sourceOf.get('jpeg-extended-8bit') ?? []);
    ours.forEach((slice, k) => {
      expect(maxAbsDiff(slice, oracle[k])).toBeLessThanOrEqual(1);
      expect(maxAbsDiff(slice, source[k])).toBeLessThanOrEqual(16);
    });
  });

  test('JPEG extended 12-bit (process 4): identical to pydicom+GDCM (IJG), within the codec tolerance of the source', () => {
    const files = corpus.series.get('jpeg-extended-12bit') ?? [];
    expect(readJpegFrameHeader(encapsulatedFrame(files[0])).bits).toBe(12);
    const ours = decodeAll(files);
    const oracle = pydicomValues(files, root);
    const source = decodeAll(corpus.sourceOf.get('jpeg-extended-12bit') ?? []);
    ours.forEach((slice, k) => {
      expect(maxAbsDiff(slice, oracle[k])).toBe(0);
      expect(maxAbsDiff(slice, source[k])).toBeLessThanOrEqual(64);
      expect(maxAbsDiff(slice, source[k])).toBeGreaterThan(0); // really lossy: not the lossless path by accident
    });
  });

  test('JPEG extended 12-bit without the native JPEG decoder: refused with the reason and the way out, naming the file', () => {
    const files = corpus.series.get('jpeg-extended-12bit') ?? [];
    expect(() => decodePixels(parseDicomFile(files[0]), { nativeJpeg: false })).toThrow(
      new RegExp(`^${files[0]}: JPEG Extended.*12-bit JPEG extended \\(process 4\\) needs the native JPEG decoder.*libdcmtk-dev.*dcmdjpeg`));
  });
});

const PYDICOM_FILES = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
const AGREEING = [
  'CT_small.dcm', // signed, rescale intercept
  'MR_small.dcm', 'MR_small_bigendian.dcm', 'MR_small_implicit.dcm', 'MR_small_expb.dcm', 'MR_small_RLE.dcm',
  'MR_small_jp2klossless.dcm', 'MR_small_jpeg_ls_lossless.dcm', 'MR_small_padded.dcm',
  'JPEG2000.dcm', 'J2K_pixelrep_mismatch.dcm', 'image_dfl.dcm',
  'rtdose.dcm', 'rtdose_1frame.dcm', 'rtdose_expb.dcm', 'rtdose_rle.dcm', 'rtdose_rle_1frame.dcm',
  'emri_small.dcm', 'emri_small_big_endian.dcm', 'emri_small_RLE.dcm', 'emri_small_jpeg_ls_lossless.dcm',
  'emri_small_jpeg_2k_lossless.dcm',
  'JPEG-lossy.dcm', 'JPGExtended.dcm', // 12-bit JPEG extended (process 4): the native DCMTK/IJG decoder = GDCM's IJG
];

describe("pydicom's own test files give pydicom's values", () => {
  const present = AGREEING.filter((f) => fs.existsSync(path.join(PYDICOM_FILES, f)));
  const oracle = new Map<string, Float32Array>();
  beforeAll(() => {
    // One Python run for every file (an interpreter start costs ~0.4 s).
    const values = pydicomValues(present.map((f) => path.join(PYDICOM_FILES, f)), root);
    present.forEach((name, i) => oracle.set(name, values[i]));
  });
  test('the Debian python3-pydicom test files are installed', () => {
    expect(present.length).toBeGreaterThanOrEqual(15);
  });
  test.each(present)('%s', (name) => {
    const file = path.join(PYDICOM_FILES, name);
    const slice = parseDicomFile(file);
    expect(maxAbsDiff(decodePixels(slice), oracle.get(name) as Float32Array)).toBe(0);
  });
});

describe('no file can take the reader down', () => {
  test("pydicom's corrupt JPEG 2000 (the file that exhausted daikon's heap) is one clear error, at once", () => {
    const file = path.join(PYDICOM_FILES, 'JPEG2000-embedded-sequence-delimiter.dcm');
    const started = Date.now();
    expect(() => decodePixels(parseDicomFile(file))).toThrow(
      new RegExp(`^${file}: JPEG 2000: JPEG 2000 codestream is \\d+x1024, the DICOM header says 256x1024$`));
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('a codestream claiming another size than its header is refused before decoding', () => {
    const [file] = corpus.series.get('j2k-lossless') ?? [];
    const bytes = fs.readFileSync(file);
    const siz = bytes.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51]));
    bytes.writeUInt32BE(60000, siz + 8); // Xsiz
    const bad = path.join(root, 'huge-siz.dcm');
    fs.writeFileSync(bad, bytes);
    expect(() => decodePixels(parseDicomFile(bad))).toThrow(`${bad}: JPEG 2000 Lossless: JPEG 2000 codestream is 60000x32, the DICOM header says 40x32`);
  });

  test('a decode past its deadline stops the worker with a clear error; the next file decodes in a fresh worker', () => {
    const files = corpus.series.get('j2k-lossless') ?? [];
    stopPixelDecoder(); // the deadline includes starting the worker, which takes longer than 1 ms
    expect(() => decodePixels(parseDicomFile(files[0]), { timeoutMs: 1 })).toThrow(
      `${files[0]}: JPEG 2000 Lossless: decoding did not finish within 1 ms (the decoder was stopped`);
    const plane = volume.dims[0] * volume.dims[1];
    expect(Array.from(decodePixels(parseDicomFile(files[1])))).toEqual(Array.from(volume.data.slice(plane, 2 * plane)));
  });

  test('a deflated data set that inflates past the file-size cap is refused, not inflated whole', () => {
    const [file] = corpus.series.get('deflated') ?? [];
    const size = fs.statSync(file).size;
    expect(() => parseDicomFile(file, { maxFileBytes: size + 100 })).toThrow(
      new RegExp(`^${file}: corrupt DICOM file \\(deflated data set cannot be inflated .*`));
    expect(parseDicomFile(file, { maxFileBytes: 10 * size }).syntax.deflated).toBe(true);
  });

  test('pixel counts over the cap and pixel data shorter than claimed are refused before allocation', () => {
    const [file] = corpus.series.get('explicit-le') ?? [];
    expect(() => parseDicomFile(file, { maxPixels: 100 })).toThrow(`${file}: 40x32x1 = 1280 pixels is more than the 100-pixel limit`);
    expect(() => parseDicomFile(file, { maxFileBytes: 1000 })).toThrow(/is larger than the 1000-byte limit/);
    const bytes = fs.readFileSync(file);
    const short = path.join(root, 'short.dcm');
    fs.writeFileSync(short, bytes.subarray(0, bytes.length - 100));
    expect(() => decodePixels(parseDicomFile(short))).toThrow(/pixel data truncated|corrupt DICOM file/);
  });
});

test('files decode in parallel on the worker pool; a corrupt one fails alone, in its place', () => {
  const files = corpus.series.get('j2k-lossless') ?? [];
  const slices = files.map((f) => parseDicomFile(f));
  const frames = (i: number) => {
    const element = slices[i].dataSet.elements.x7fe00010;
    const fragment = element.fragments?.[0];
    return [new Uint8Array(slices[i].dataSet.byteArray.subarray(fragment?.position, (fragment?.position ?? 0) + (fragment?.length ?? 0)))];
  };
  const corrupt = frames(1)[0].slice();
  corrupt.fill(0xff, 0, 4);
  const jobs = [frames(0), [corrupt], frames(2), frames(3)].map((f) => ({ encoding: 'jpeg-2000' as const, frames: f, layout: slices[0].layout }));
  const outcomes = decodeJobsSync(jobs, { decodeWorkers: 2 });
  expect(outcomes.map((o) => o.ok)).toEqual([true, false, true, true]);
  expect(outcomes[1].ok ? '' : outcomes[1].error.message).toBe('not a JPEG 2000 codestream (no SOC and SIZ markers)');
  const plane = volume.dims[0] * volume.dims[1];
  const third = outcomes[2].ok ? outcomes[2].frames[0] : new Uint8Array();
  expect(Array.from(new Uint16Array(third.buffer, third.byteOffset, plane))).toEqual(Array.from(volume.data.slice(2 * plane, 3 * plane)));
});
