/**
 * The native decoding helpers (child processes):
 * - JPEG 2000 (system OpenJPEG): the same pixels as the wasm OpenJPEG it replaces (bit-identical to the uncompressed
 *   original on GDCM's lossless transcodes, identical to the wasm decoder on lossy files);
 * - JPEG lossless and 12-bit extended (DCMTK's IJG): bit-identical to the original on DCMTK's lossless transcodes
 *   (SV1 and every process-14 predictor, 8/12/16-bit streams, signed data) and to jpeg-lossless-decoder-js; on
 *   12-bit JPEG extended, identical to DCMTK's own dcmdjpeg (our series and pydicom's test files);
 * and a helper that dies, hangs or runs out of memory costs at most one frame's clear error, never the caller (a
 * helper killed from outside costs nothing: the frame is decoded again).
 * The JavaScript/wasm paths stay tested here and in dicom-codecs.test.ts (nativeJpeg2000 / nativeJpeg: false).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildCorpus, Corpus, encapsulatedJob, phantomVolume } from './dicom-corpus.test-helper';
import { parseDicomFile } from './dicom-file';
import { readJpegFrameHeader } from './jpeg-header';
import { NATIVE_J2K, NATIVE_JPEG, NativeCodec, NativeFrameDecoder, nativeHelper } from './native-decoder';
import { DecodeJob, decodeJobsSync, PixelDecoderLimits, stopPixelDecoder } from './pixel-decoder';

const PYDICOM_FILES = '/usr/lib/python3/dist-packages/pydicom/data/test_files';
let root: string;
let corpus: Corpus;
const volume = phantomVolume([40, 32, 4]);

function requireHelper(codec: NativeCodec): string {
  const helper = nativeHelper(codec);
  if (!helper) throw new Error(`${codec.label} not built: apt-get install libopenjp2-7-dev g++ libdcmtk-dev, then npm run build:native`);
  return helper;
}

function run(command: string, args: string[]): void {
  const done = spawnSync(command, args, { encoding: 'utf8' });
  if (done.error || done.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${done.error?.message ?? done.stderr}`);
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'native-decoder-'));
  corpus = buildCorpus(root, volume, { only: ['j2k-lossless', 'j2k-lossy', 'jpeg-extended-8bit', 'jpeg-extended-12bit'] });
});
afterAll(() => {
  stopPixelDecoder();
  fs.rmSync(root, { recursive: true, force: true });
});

/** The stored (uncompressed) pixel bytes of a file. */
function storedPixels(file: string): Buffer {
  const { dataSet } = parseDicomFile(file);
  const element = dataSet.elements.x7fe00010;
  return Buffer.from(dataSet.byteArray.subarray(element.dataOffset, (element.dataOffset ?? 0) + element.length));
}

function decodedFrames(jobs: DecodeJob[], limits: PixelDecoderLimits): Buffer[] {
  return decodeJobsSync(jobs, limits).flatMap((outcome) => {
    if (!outcome.ok) throw outcome.error;
    return outcome.frames.map((f) => Buffer.from(f));
  });
}

test('the helpers are built (npm run build:native)', () => {
  expect(fs.statSync(requireHelper(NATIVE_J2K)).isFile()).toBe(true);
  expect(fs.statSync(requireHelper(NATIVE_JPEG)).isFile()).toBe(true);
});

describe('JPEG 2000 (OpenJPEG)', () => {
  test("GDCM's lossless transcodes decode bit-identically to the original, natively and through wasm", () => {
    const jobs = (corpus.series.get('j2k-lossless') ?? []).map(encapsulatedJob);
    expect(jobs).toHaveLength(4);
    const native = decodedFrames(jobs, { nativeJpeg2000: true });
    const wasm = decodedFrames(jobs, { nativeJpeg2000: false });
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
    const jobs = files.map(encapsulatedJob);
    const native = decodedFrames(jobs, { nativeJpeg2000: true });
    const wasm = decodedFrames(jobs, { nativeJpeg2000: false });
    expect(native).toHaveLength(files.length);
    native.forEach((frame, k) => expect(frame.equals(wasm[k])).toBe(true));
  });
});

describe('JPEG lossless and 12-bit extended (DCMTK IJG)', () => {
  /** DCMTK's lossless encodings: SV1 (1.2.840.10008.1.2.4.70) and process 14 with each predictor (.57). */
  const LOSSLESS = [['SV1', ['+e1']], ...[1, 2, 3, 4, 5, 6, 7].map((k) => [`predictor ${k}`, ['+el', '+sv', String(k)]])] as [string, string[]][];
  /**
   * Sources by stream precision: 8 and 16 bits as stored (true lossless: the original is the oracle). DCMTK writes
   * 12-bit lossless streams only in its pseudo-lossless mode (+pl +bt), which first subtracts the image's minimum,
   * so there dcmdjpeg's decoding is the oracle (as it is for every case).
   */
  const PRECISIONS = [[8, 'jpeg-extended-8bit', [], true], [12, 'jpeg-extended-12bit', ['+pl', '+bt'], false], [16, undefined, [], true]] as const;
  const cases = PRECISIONS.flatMap(([bits, source, extra, trueLossless]) =>
    LOSSLESS.map(([name, options]) => ({ bits, source, name, options: [...options, ...extra], trueLossless })));

  test.each(cases)('$bits-bit $name: bit-identical to dcmdjpeg, to jpeg-lossless-decoder-js and (true lossless) to the original',
    ({ bits, source, name, options, trueLossless }) => {
      const sources = (source ? corpus.sourceOf.get(source) : corpus.original) ?? [];
      const dir = path.join(root, `lossless-${bits}-${name.replace(' ', '')}`);
      fs.mkdirSync(dir);
      const files = sources.slice(0, 2).map((input) => {
        const output = path.join(dir, path.basename(input));
        run('dcmcjpeg', [...options, input, output]);
        run('dcmdjpeg', [output, `${output}.dcmdjpeg`]);
        return output;
      });
      const jobs = files.map(encapsulatedJob);
      expect(jobs[0].encoding).toBe('jpeg-lossless');
      expect(readJpegFrameHeader(jobs[0].frames[0]).bits).toBe(bits);
      const native = decodedFrames(jobs, { nativeJpeg: true });
      const javascript = decodedFrames(jobs, { nativeJpeg: false });
      native.forEach((frame, k) => {
        expect(frame.equals(storedPixels(`${files[k]}.dcmdjpeg`))).toBe(true);
        expect(frame.equals(javascript[k])).toBe(true);
        if (trueLossless) expect(frame.equals(storedPixels(sources[k]))).toBe(true);
      });
    });

  test("pydicom's signed CT slice (16-bit, PixelRepresentation 1): SV1 and predictor 7 give the stored values", () => {
    const ct = path.join(PYDICOM_FILES, 'CT_small.dcm');
    const files = [['+e1'], ['+el', '+sv', '7']].map((options, k) => {
      const output = path.join(root, `ct-signed-${k}.dcm`);
      run('dcmcjpeg', [...options, ct, output]);
      return output;
    });
    const native = decodedFrames(files.map(encapsulatedJob), { nativeJpeg: true });
    native.forEach((frame) => expect(frame.equals(storedPixels(ct))).toBe(true));
  });

  test("12-bit extended (process 4): identical to DCMTK's dcmdjpeg on our series and pydicom's test files", () => {
    const files = [...(corpus.series.get('jpeg-extended-12bit') ?? []),
      ...['JPEG-lossy.dcm', 'JPGExtended.dcm'].map((f) => path.join(PYDICOM_FILES, f))];
    const jobs = files.map(encapsulatedJob);
    jobs.forEach((j) => expect(readJpegFrameHeader(j.frames[0]).bits).toBe(12));
    const native = decodedFrames(jobs, { nativeJpeg: true });
    native.forEach((frame, k) => {
      const reference = path.join(root, `dcmdjpeg-${k}.dcm`);
      run('dcmdjpeg', [files[k], reference]);
      expect(frame.equals(storedPixels(reference))).toBe(true);
    });
  });
});

/** One frame per helper, and a copy of it whose header claims a size no memory limit allows. */
const FRAMES: { codec: NativeCodec; frame: () => Uint8Array; hostile: () => Uint8Array; refusal: RegExp }[] = [
  {
    codec: NATIVE_J2K,
    frame: () => encapsulatedJob((corpus.series.get('j2k-lossless') ?? [])[0]).frames[0],
    hostile: () => {
      const bytes = Buffer.from(encapsulatedJob((corpus.series.get('j2k-lossless') ?? [])[0]).frames[0]);
      const siz = bytes.indexOf(Buffer.from([0xff, 0x51]));
      bytes.writeUInt32BE(60000, siz + 6); // Xsiz
      bytes.writeUInt32BE(60000, siz + 10); // Ysiz
      return bytes;
    },
    refusal: /^corrupt JPEG 2000 (header|data)/,
  },
  {
    codec: NATIVE_JPEG,
    frame: () => encapsulatedJob((corpus.series.get('jpeg-extended-12bit') ?? [])[0]).frames[0],
    hostile: () => {
      const bytes = Buffer.from(encapsulatedJob((corpus.series.get('jpeg-extended-12bit') ?? [])[0]).frames[0]);
      const sof = bytes.indexOf(Buffer.from([0xff, 0xc1]));
      bytes.writeUInt16BE(30000, sof + 5); // height
      bytes.writeUInt16BE(30000, sof + 7); // width: 30000 x 30000 x 2 bytes = 1.8 GB
      return bytes;
    },
    refusal: /^not enough memory for the decoded frame$/,
  },
];

describe.each(FRAMES)('a failing $codec.label costs one frame', ({ codec, frame, hostile, refusal }) => {
  const options = { memoryMb: 256, frameTimeoutMs: 10_000 };

  test('killed while a frame is in flight: the frame is decoded again in a fresh helper', async () => {
    const decoder = new NativeFrameDecoder(codec, requireHelper(codec), options);
    try {
      const first = await decoder.decode(frame());
      const pid = decoder.pid;
      process.kill(pid ?? 0, 'SIGSTOP'); // so the frame is surely still in flight when the helper dies
      const inFlight = decoder.decode(frame());
      process.kill(pid ?? 0, 'SIGKILL');
      const again = await inFlight;
      expect(decoder.pid).not.toBe(pid);
      expect(Buffer.from(again.samples).equals(Buffer.from(first.samples))).toBe(true);
    } finally {
      decoder.stop();
    }
  });

  test('a frame its helper dies on twice fails clearly; the next frame decodes in a fresh helper', async () => {
    // 80 MB of input cannot be held under a 64 MiB address-space limit: the helper exits (code 2) on it, each time.
    const decoder = new NativeFrameDecoder(codec, requireHelper(codec), { memoryMb: 64, frameTimeoutMs: 10_000 });
    try {
      await expect(decoder.decode(new Uint8Array(80 << 20))).rejects.toThrow(
        `the ${codec.label} exited (code 2) on this frame (a second time: it was retried once in a fresh helper)`);
      expect((await decoder.decode(frame())).width).toBe(40);
    } finally {
      decoder.stop();
    }
  });

  test('a codestream that claims gigabytes of pixels fails within the memory limit; the same helper decodes on', async () => {
    const decoder = new NativeFrameDecoder(codec, requireHelper(codec), options);
    try {
      await decoder.decode(frame());
      const pid = decoder.pid;
      await expect(decoder.decode(hostile())).rejects.toThrow(refusal);
      expect(decoder.pid).toBe(pid);
      const next = await decoder.decode(frame());
      expect(next.width).toBe(40);
    } finally {
      decoder.stop();
    }
  });

  test('a frame past its deadline stops the helper with a clear error; the next decodes in a fresh helper', async () => {
    const decoder = new NativeFrameDecoder(codec, requireHelper(codec), { memoryMb: 256, frameTimeoutMs: 300 });
    try {
      await decoder.decode(frame());
      const pid = decoder.pid;
      process.kill(pid ?? 0, 'SIGSTOP'); // a helper that hangs: it cannot answer, whatever the machine's load
      await expect(decoder.decode(frame())).rejects.toThrow(`the ${codec.label} did not finish the frame within 300 ms (stopped)`);
      expect(decoder.pid).toBeUndefined();
      expect((await decoder.decode(frame())).width).toBe(40);
      expect(decoder.pid).not.toBe(pid);
    } finally {
      decoder.stop();
    }
  });
});
