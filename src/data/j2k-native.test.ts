/**
 * The native JPEG 2000 helper (system OpenJPEG in a child process): the same pixels as the wasm OpenJPEG it replaces
 * (bit-identical to the uncompressed original on GDCM's lossless transcodes, identical to the wasm decoder on lossy
 * files), and a helper that dies, hangs or runs out of memory costs one frame's clear error, never the caller.
 * The wasm path stays tested here and in dicom-codecs.test.ts (nativeJpeg2000: false).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCorpus, Corpus, phantomVolume } from './dicom-corpus.test-helper';
import { parseDicomFile } from './dicom-file';
import { NativeJ2kDecoder, nativeJ2kHelper } from './j2k-native';
import { DecodeJob, decodeJobsSync, stopPixelDecoder } from './pixel-decoder';

const PYDICOM_FILES = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
let root: string;
let corpus: Corpus;
const volume = phantomVolume([40, 32, 4]);

function requireHelper(): string {
  const helper = nativeJ2kHelper();
  if (!helper) throw new Error('native JPEG 2000 helper not built: apt-get install libopenjp2-7-dev, then npm run build:native');
  return helper;
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'j2k-native-'));
  corpus = buildCorpus(root, volume, { only: ['j2k-lossless', 'j2k-lossy'] });
});
afterAll(() => {
  stopPixelDecoder();
  fs.rmSync(root, { recursive: true, force: true });
});

/** Every frame of a file as a decode job (encapsulated: one fragment per frame in these files). */
function job(file: string): DecodeJob {
  const { dataSet, layout } = parseDicomFile(file);
  const fragments = dataSet.elements.x7fe00010.fragments ?? [];
  const frames = fragments.map((f) => new Uint8Array(dataSet.byteArray.subarray(f.position, f.position + f.length)));
  return { encoding: 'jpeg-2000', frames, layout };
}

function decodedFrames(jobs: DecodeJob[], nativeJpeg2000: boolean): Buffer[] {
  return decodeJobsSync(jobs, { nativeJpeg2000 }).flatMap((outcome) => {
    if (!outcome.ok) throw outcome.error;
    return outcome.frames.map((f) => Buffer.from(f));
  });
}

test('the helper is built (npm run build:native)', () => {
  expect(fs.statSync(requireHelper()).isFile()).toBe(true);
});

test("GDCM's lossless transcodes decode bit-identically to the original, natively and through wasm", () => {
  const jobs = (corpus.series.get('j2k-lossless') ?? []).map(job);
  expect(jobs).toHaveLength(4);
  const native = decodedFrames(jobs, true);
  const wasm = decodedFrames(jobs, false);
  const plane = volume.dims[0] * volume.dims[1];
  native.forEach((frame, k) => {
    const original = Buffer.from(Uint16Array.from(volume.data.subarray(k * plane, (k + 1) * plane)).buffer);
    expect(frame.equals(original)).toBe(true);
    expect(frame.equals(wasm[k])).toBe(true);
  });
});

test("lossy files and pydicom's JPEG 2000 test files decode exactly as the wasm OpenJPEG decodes them", () => {
  const files = [...(corpus.series.get('j2k-lossy') ?? []),
    ...['MR_small_jp2klossless.dcm', 'JPEG2000.dcm', 'J2K_pixelrep_mismatch.dcm'].map((f) => path.join(PYDICOM_FILES, f))];
  const jobs = files.map(job);
  const native = decodedFrames(jobs, true);
  const wasm = decodedFrames(jobs, false);
  expect(native).toHaveLength(files.length);
  native.forEach((frame, k) => expect(frame.equals(wasm[k])).toBe(true));
});

describe('a failing helper costs one frame', () => {
  const options = { memoryMb: 256, frameTimeoutMs: 10_000 };
  const frame = () => job((corpus.series.get('j2k-lossless') ?? [])[0]).frames[0];

  test('killed while a frame is in flight: that frame fails clearly, the next decodes in a fresh helper', async () => {
    const decoder = new NativeJ2kDecoder(requireHelper(), options);
    try {
      const first = await decoder.decode(frame());
      const pid = decoder.pid;
      process.kill(pid ?? 0, 'SIGSTOP'); // so the frame is surely still in flight when the helper dies
      const inFlight = decoder.decode(frame());
      process.kill(pid ?? 0, 'SIGKILL');
      await expect(inFlight).rejects.toThrow('the native JPEG 2000 decoder was killed (SIGKILL) on this frame');
      const next = await decoder.decode(frame());
      expect(decoder.pid).not.toBe(pid);
      expect(Buffer.from(next.samples).equals(Buffer.from(first.samples))).toBe(true);
    } finally {
      decoder.stop();
    }
  });

  test('a codestream that claims 60000x60000 pixels fails within the memory limit; the same helper decodes on', async () => {
    const decoder = new NativeJ2kDecoder(requireHelper(), options);
    try {
      const hostile = Buffer.from(frame());
      const siz = hostile.indexOf(Buffer.from([0xff, 0x51]));
      hostile.writeUInt32BE(60000, siz + 6); // Xsiz
      hostile.writeUInt32BE(60000, siz + 10); // Ysiz
      await decoder.decode(frame());
      const pid = decoder.pid;
      await expect(decoder.decode(hostile)).rejects.toThrow(/^corrupt JPEG 2000 (header|data)/);
      expect(decoder.pid).toBe(pid);
      const next = await decoder.decode(frame());
      expect(next.width).toBe(40);
    } finally {
      decoder.stop();
    }
  });

  test('a frame past its deadline stops the helper with a clear error; the next decodes in a fresh helper', async () => {
    const decoder = new NativeJ2kDecoder(requireHelper(), { memoryMb: 256, frameTimeoutMs: 300 });
    try {
      await decoder.decode(frame());
      const pid = decoder.pid;
      process.kill(pid ?? 0, 'SIGSTOP'); // a helper that hangs: it cannot answer, whatever the machine's load
      await expect(decoder.decode(frame())).rejects.toThrow('the native JPEG 2000 decoder did not finish the frame within 300 ms (stopped)');
      expect(decoder.pid).toBeUndefined();
      expect((await decoder.decode(frame())).width).toBe(40);
      expect(decoder.pid).not.toBe(pid);
    } finally {
      decoder.stop();
    }
  });
});
