/**
 * Test corpus: one of our synthetic MR series transcoded into every transfer syntax by tools no one here wrote
 * (DCMTK's dcmconv/dcmcrle/dcmcjpeg/dcmcjpls, GDCM's gdcmconv, OpenJPH's ojph_compress wrapped by pydicom), and
 * pydicom (with GDCM / Pillow) as the decoding oracle. Used by the codec tests and bench/dicom.ts.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseDicomFile } from './dicom-file';
import { deterministicUid, MrSeriesOptions, writeMrSeries } from './dicom-writer';
import type { DecodeJob } from './pixel-decoder';
import { runPython } from './python-oracle.test-helper';
import { createVolume, Volume } from './volume';

export interface SyntaxVariant {
  /** Folder name and label. */
  name: string;
  uid: string;
  lossless: boolean;
  /** Source series: 16-bit (default) or an 8-bit copy (JPEG baseline needs 8-bit samples). */
  source?: '8bit' | '12bit';
  /** Transcodes `input` to `output` (one file). */
  command: (input: string, output: string) => [string, string[]];
}

export const SYNTAX_VARIANTS: SyntaxVariant[] = [
  { name: 'explicit-le', uid: '1.2.840.10008.1.2.1', lossless: true, command: (i, o) => ['dcmconv', ['+te', i, o]] },
  { name: 'implicit-le', uid: '1.2.840.10008.1.2', lossless: true, command: (i, o) => ['dcmconv', ['+ti', i, o]] },
  { name: 'explicit-be', uid: '1.2.840.10008.1.2.2', lossless: true, command: (i, o) => ['dcmconv', ['+tb', i, o]] },
  { name: 'deflated', uid: '1.2.840.10008.1.2.1.99', lossless: true, command: (i, o) => ['dcmconv', ['+td', i, o]] },
  { name: 'rle', uid: '1.2.840.10008.1.2.5', lossless: true, command: (i, o) => ['dcmcrle', [i, o]] },
  { name: 'jpeg-lossless-p14', uid: '1.2.840.10008.1.2.4.57', lossless: true, command: (i, o) => ['dcmcjpeg', ['+el', '+sv', '6', i, o]] },
  { name: 'jpeg-lossless-sv1', uid: '1.2.840.10008.1.2.4.70', lossless: true, command: (i, o) => ['dcmcjpeg', ['+e1', i, o]] },
  { name: 'jpeg-ls-lossless', uid: '1.2.840.10008.1.2.4.80', lossless: true, command: (i, o) => ['dcmcjpls', ['+el', i, o]] },
  { name: 'jpeg-ls-near', uid: '1.2.840.10008.1.2.4.81', lossless: false, command: (i, o) => ['dcmcjpls', ['+en', '+md', '2', i, o]] },
  { name: 'j2k-lossless', uid: '1.2.840.10008.1.2.4.90', lossless: true, command: (i, o) => ['gdcmconv', ['--j2k', i, o]] },
  { name: 'j2k-lossy', uid: '1.2.840.10008.1.2.4.91', lossless: false, command: (i, o) => ['gdcmconv', ['--j2k', '--lossy', '-q', '40', i, o]] },
  { name: 'jpeg-baseline-8bit', uid: '1.2.840.10008.1.2.4.50', lossless: false, source: '8bit', command: (i, o) => ['dcmcjpeg', ['+eb', '+q', '90', i, o]] },
  { name: 'jpeg-extended-8bit', uid: '1.2.840.10008.1.2.4.51', lossless: false, source: '8bit', command: (i, o) => ['dcmcjpeg', ['+ee', '+q', '90', i, o]] },
  { name: 'jpeg-extended-12bit', uid: '1.2.840.10008.1.2.4.51', lossless: false, source: '12bit', command: (i, o) => ['dcmcjpeg', ['+ee', '+q', '90', i, o]] },
];

/** HTJ2K: OpenJPH encodes a PGM of each slice, pydicom wraps the codestream as encapsulated pixel data. */
export const HTJ2K_VARIANT = { name: 'htj2k-lossless', uid: '1.2.840.10008.1.2.4.201', lossless: true };

export function seriesOptions(description: string, patientId = 'P-001'): MrSeriesOptions {
  return {
    patient: { id: patientId, sex: 'F', age: 57 },
    study: { uid: deterministicUid('study', patientId), date: '20240315', time: '101500' },
    series: {
      uid: deterministicUid('series', patientId, description),
      number: 1,
      description,
      frameOfReferenceUid: deterministicUid('for', patientId),
      instanceUid: (k) => deterministicUid('sop', patientId, description, k),
    },
  };
}

/** A brain-like test volume: smooth structures plus noise, integers in 0..4000 (12 bits), oblique-free axial. */
export function phantomVolume(dims: [number, number, number], seed = 1): Volume {
  const v = createVolume(dims, { spacing: [0.9, 0.9, 1.2], origin: [-100, -110, -40] });
  let state = seed >>> 0;
  const random = () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const [nx, ny, nz] = dims;
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) {
        const dx = (x - nx / 2) / (nx / 2.4);
        const dy = (y - ny / 2) / (ny / 2.2);
        const dz = (z - nz / 2) / (nz / 1.6);
        const r = Math.sqrt(dx * dx + dy * dy + dz * dz);
        const tissue = r < 1 ? 1800 + 900 * Math.cos(6 * r) + 300 * Math.sin(x / 5 + z / 3) : 40;
        v.data[x + nx * (y + ny * z)] = Math.max(0, Math.min(4000, Math.round(tissue + 60 * random())));
      }
    }
  }
  return v;
}

function run(command: string, args: string[]): void {
  const done = spawnSync(command, args, { encoding: 'utf8' });
  if (done.error || done.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed: ${done.error?.message ?? done.stderr}`);
  }
}

const DERIVE_SOURCES = `
import sys, pydicom, numpy as np
kind, out_dir, files = sys.argv[1], sys.argv[2], sys.argv[3:]
for f in files:
    ds = pydicom.dcmread(f)
    a = ds.pixel_array.astype(np.uint32)
    if kind == '8bit':
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = (a >> 4).astype(np.uint8).tobytes()
        ds['PixelData'].VR = 'OB'
    else:
        ds.BitsStored, ds.HighBit = 12, 11
    ds.save_as(out_dir + '/' + f.split('/')[-1])
`;

const WRAP_HTJ2K = `
import sys, pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import UID
uid, rest = sys.argv[1], sys.argv[2:]
# pydicom 2.3 predates the HTJ2K UIDs: declare it a (compressed) transfer syntax so it can write the file.
from pydicom._uid_dict import UID_dictionary
UID_dictionary[uid] = ('HTJ2K Lossless', 'Transfer Syntax', '', '', 'HTJ2KLossless')
for src, codestream, out in zip(rest[0::3], rest[1::3], rest[2::3]):
    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = UID(uid)
    ds.PixelData = encapsulate([open(codestream, 'rb').read()])
    ds['PixelData'].VR = 'OB'
    ds['PixelData'].is_undefined_length = True
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(out, write_like_original=False)
`;

export interface Corpus {
  original: string[];
  /** Variant name -> its files (same order as the original). */
  series: Map<string, string[]>;
  /** Variant name -> the source its lossless decoding must equal (original, 8-bit or 12-bit copy). */
  sourceOf: Map<string, string[]>;
}

/**
 * Writes `volume` as a series under `root/original` and transcodes it into every variant (plus HTJ2K when
 * `htj2k`), one folder each. Throws when a tool is missing: the comparison cannot run without it.
 */
export function buildCorpus(root: string, volume: Volume, options: { htj2k?: boolean; only?: string[] } = {}): Corpus {
  const original = writeMrSeries(path.join(root, 'original'), volume, seriesOptions('T1 phantom'));
  const sources: Record<string, string[]> = { '16bit': original };
  for (const kind of ['8bit', '12bit'] as const) {
    const dir = path.join(root, `source-${kind}`);
    fs.mkdirSync(dir, { recursive: true });
    runPython(DERIVE_SOURCES, [kind, dir, ...original], ['pydicom']);
    sources[kind] = original.map((f) => path.join(dir, path.basename(f)));
  }
  const series = new Map<string, string[]>();
  const sourceOf = new Map<string, string[]>();
  for (const variant of SYNTAX_VARIANTS) {
    if (options.only && !options.only.includes(variant.name)) continue;
    const dir = path.join(root, variant.name);
    fs.mkdirSync(dir, { recursive: true });
    const input = sources[variant.source ?? '16bit'];
    series.set(variant.name, input.map((file) => {
      const out = path.join(dir, path.basename(file));
      const [command, args] = variant.command(file, out);
      run(command, args);
      return out;
    }));
    sourceOf.set(variant.name, input);
  }
  if (options.htj2k && (!options.only || options.only.includes(HTJ2K_VARIANT.name))) {
    const dir = path.join(root, HTJ2K_VARIANT.name);
    fs.mkdirSync(dir, { recursive: true });
    const [nx, ny] = volume.dims;
    const triples: string[] = [];
    const outputs = original.map((file, k) => {
      const pgm = path.join(dir, `slice${k}.pgm`);
      const header = Buffer.from(`P5\n${nx} ${ny}\n65535\n`, 'latin1');
      const body = Buffer.alloc(nx * ny * 2);
      for (let i = 0; i < nx * ny; i++) body.writeUInt16BE(volume.data[k * nx * ny + i], i * 2);
      fs.writeFileSync(pgm, Buffer.concat([header, body]));
      const j2c = path.join(dir, `slice${k}.j2c`);
      run('ojph_compress', ['-i', pgm, '-o', j2c, '-reversible', 'true']);
      fs.rmSync(pgm);
      const out = path.join(dir, path.basename(file));
      triples.push(file, j2c, out);
      return out;
    });
    runPython(WRAP_HTJ2K, [HTJ2K_VARIANT.uid, ...triples], ['pydicom']);
    for (let k = 0; k < triples.length; k += 3) fs.rmSync(triples[k + 1]);
    series.set(HTJ2K_VARIANT.name, outputs);
    sourceOf.set(HTJ2K_VARIANT.name, original);
  }
  return { original, series, sourceOf };
}

const ORACLE = `
import sys, numpy as np, pydicom
from pydicom.pixel_data_handlers.util import apply_modality_lut
out_dir, files = sys.argv[1], sys.argv[2:]
for i, f in enumerate(files):
    ds = pydicom.dcmread(f)
    v = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    if 'DoseGridScaling' in ds:
        v = v * float(ds.DoseGridScaling)
    v.astype(np.float32).tofile(out_dir + '/' + str(i) + '.f32')
`;

/** pydicom's modality values (pixel_array through apply_modality_lut, times DoseGridScaling) of each file. */
export function pydicomValues(files: string[], scratch: string): Float32Array[] {
  const dir = fs.mkdtempSync(path.join(scratch, 'oracle-'));
  runPython(ORACLE, [dir, ...files], ['pydicom', 'numpy']);
  const values = files.map((_, i) => {
    const bytes = fs.readFileSync(path.join(dir, `${i}.f32`));
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
  });
  fs.rmSync(dir, { recursive: true, force: true });
  return values;
}

/** A file's compressed frames as one decode job (encapsulated pixel data with one fragment per frame, as in ours). */
export function encapsulatedJob(file: string): DecodeJob {
  const { dataSet, layout, syntax } = parseDicomFile(file);
  const fragments = dataSet.elements.x7fe00010.fragments ?? [];
  const frames = fragments.map((f) => new Uint8Array(dataSet.byteArray.subarray(f.position, f.position + f.length)));
  return { encoding: syntax.encoding, frames, layout };
}

/** DCMTK's dcmodify on `files` in place: each edit is "(gggg,eeee)=value" (sequence paths allowed). */
export function dcmodify(files: string[], edits: string[]): void {
  const run = spawnSync('dcmodify', ['-nb', ...edits.flatMap((e) => ['-i', e]), ...files], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`dcmodify failed: ${run.stderr}`);
}

/**
 * The PET tags of an 18F-FDG acquisition set by DCMTK: Bq/mL, decay-corrected to the series start, 70 kg, 370 MBq
 * injected at 10:00:00 (series at 11:00:00), half-life 6586.2 s. A uniform 5000 Bq/mL is 1.38168 SUVbw.
 */
const FDG_PET_EDITS = ['(0008,0060)=PT', '(0054,1001)=BQML', '(0054,1102)=START', '(0010,1030)=70', '(0008,0021)=20240315',
  '(0008,0031)=110000', '(0054,0016)[0].(0018,1074)=370000000', '(0054,0016)[0].(0018,1075)=6586.2',
  '(0054,0016)[0].(0018,1072)=100000'];

/**
 * A PET/CT study in `patientDir` (sub-folders ct/ and pt/): our writer's series turned into CT (HU through the
 * rescale intercept) and 18F-FDG PET (uniform 5000 Bq/mL) by dcmodify. Returns the CT and PET files.
 */
export function writePetCtStudy(patientDir: string, patientId: string, ct: Volume, pet: Volume, petEdits: string[] = []): { ct: string[]; pet: string[] } {
  const ctFiles = writeMrSeries(path.join(patientDir, 'ct'), ct, seriesOptions('CT WB', patientId));
  dcmodify(ctFiles, ['(0008,0060)=CT', '(0028,1052)=-1024']);
  const uniform = { ...pet, data: new Float32Array(pet.data.length).fill(5000) };
  const petFiles = writeMrSeries(path.join(patientDir, 'pt'), uniform, seriesOptions('PET WB AC', patientId));
  dcmodify(petFiles, [...FDG_PET_EDITS, ...petEdits]);
  return { ct: ctFiles, pet: petFiles };
}
