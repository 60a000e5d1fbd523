/**
 * DICOM files without the 128-byte preamble and "DICM", as some PACS exports write them: the file meta group at
 * byte 0, or a raw data set written by DCMTK (`dcmconv --write-dataset`) in implicit VR little endian, explicit VR
 * little endian and explicit VR big endian. Each reads as the Part 10 original does, and as pydicom reads it with
 * `dcmread(force=True)`: the same transfer syntax guess (pydicom's is_implicit_VR / is_little_endian) and the same
 * modality values.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { phantomVolume, seriesOptions } from './dicom-corpus.test-helper';
import { parseDicomFile } from './dicom-file';
import { locateDataSet } from './dicom-preamble';
import { readDicomSeries } from './dicom-series';
import { writeMrSeries } from './dicom-writer';
import { runPython } from './python-oracle.test-helper';

const PYDICOM_FORCE = String.raw`
import json, sys, numpy as np, pydicom
from pydicom.pixel_data_handlers.util import apply_modality_lut
from pydicom.uid import ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian
out = []
for f in sys.argv[1:]:
    ds = pydicom.dcmread(f, force=True)
    meta = 'TransferSyntaxUID' in ds.file_meta
    if not meta:  # pydicom guessed the encoding from the first element; tell its pixel handler what it guessed
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if ds.is_implicit_VR else (ExplicitVRLittleEndian if ds.is_little_endian else ExplicitVRBigEndian)
    v = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    out.append({'implicit': bool(ds.is_implicit_VR), 'little': bool(ds.is_little_endian), 'meta': meta,
                'ipp': [float(x) for x in ds.ImagePositionPatient], 'values': v.ravel().tolist()})
print(json.dumps(out))
`;

let dir: string;
let originals: string[];
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dicom-preamble-'));
  const volume = phantomVolume([9, 7, 4], 3);
  volume.data.forEach((v, i) => { volume.data[i] = v - 300 + (i % 5); }); // negative values: signed storage
  originals = writeMrSeries(path.join(dir, 'part10'), volume, seriesOptions('T2 raw export'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function variant(name: string, make: (source: string, target: string) => void): string[] {
  fs.mkdirSync(path.join(dir, name));
  return originals.map((source) => {
    const target = path.join(dir, name, path.basename(source));
    make(source, target);
    return target;
  });
}

const dcmconv = (flags: string[]) => (source: string, target: string): void => {
  const run = spawnSync('dcmconv', [...flags, source, target], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`dcmconv ${flags.join(' ')} failed: ${run.stderr}`);
};

const VARIANTS: { name: string; make: (s: string, t: string) => void; guess: { implicit: boolean; little: boolean } | 'meta' }[] = [
  { name: 'meta-without-preamble', make: (s, t) => fs.writeFileSync(t, fs.readFileSync(s).subarray(132)), guess: 'meta' },
  { name: 'raw-implicit-little', make: dcmconv(['+ti', '-F']), guess: { implicit: true, little: true } },
  { name: 'raw-explicit-little', make: dcmconv(['+te', '-F']), guess: { implicit: false, little: true } },
  { name: 'raw-explicit-big', make: dcmconv(['+tb', '-F']), guess: { implicit: false, little: false } },
];

test.each(VARIANTS.map((v) => v.name))('%s: read as the Part 10 original, and as pydicom force=True reads it', (name) => {
  const v = VARIANTS.find((x) => x.name === name)!;
  const files = variant(name, v.make);
  for (const file of files) {
    const head = fs.readFileSync(file).subarray(0, 132);
    expect(head.length < 132 || head.toString('latin1', 128, 132) !== 'DICM').toBe(true);
  }
  const start = locateDataSet(new Uint8Array(fs.readFileSync(files[0])));
  if (v.guess === 'meta') expect(start.kind).toBe('part10');
  else expect(start.kind === 'raw' && start.guess).toBe(`${v.guess.implicit ? 'implicit' : 'explicit'} VR ${v.guess.little ? 'little' : 'big'} endian`);

  const ours = readDicomSeries(path.join(dir, name));
  const reference = readDicomSeries(path.join(dir, 'part10'));
  expect(Array.from(ours.volume.data)).toEqual(Array.from(reference.volume.data));
  expect(ours.volume.origin).toEqual(reference.volume.origin);
  expect(ours.seriesDescription).toBe('T2 raw export');

  const py = JSON.parse(runPython(PYDICOM_FORCE, files, ['pydicom', 'numpy'])!) as { implicit: boolean; little: boolean; meta: boolean; ipp: number[]; values: number[] }[];
  py.forEach((r, i) => {
    if (v.guess === 'meta') expect(r.meta).toBe(true);
    else expect({ implicit: r.implicit, little: r.little, meta: r.meta }).toEqual({ ...v.guess, meta: false });
    // our slice i in the series: the one at pydicom's position
    const k = ours.files.indexOf(files[i]);
    const plane = 9 * 7;
    expect(Array.from(ours.volume.data.subarray(k * plane, (k + 1) * plane))).toEqual(r.values);
  });
});

test('a stray file is still "not DICOM": text, a PNG, and a data set that does not start at group 0008', () => {
  const cases: [string, Buffer][] = [
    ['notes.txt', Buffer.from('exported by the PACS on 2024-03-15\n'.repeat(10))],
    ['thumb.png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])],
    // (0010,0010) PN "DOE^J" explicit little: DICOM-like, but an image data set cannot start there
    ['group10.dcm', Buffer.from([0x10, 0x00, 0x10, 0x00, 0x50, 0x4e, 0x06, 0x00, ...Buffer.from('DOE^J ')])],
    ['short.dcm', Buffer.from([0x08, 0x00])],
  ];
  for (const [name, bytes] of cases) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    expect(() => parseDicomFile(file)).toThrow(`${file}: not a DICOM file`);
  }
  // an implicit-VR element whose length runs past the end of the file
  const lying = path.join(dir, 'lying.dcm');
  fs.writeFileSync(lying, Buffer.from([0x08, 0x00, 0x16, 0x00, 0xff, 0xff, 0x00, 0x00, 0x31, 0x2e]));
  expect(() => parseDicomFile(lying)).toThrow(`${lying}: not a DICOM file`);
});

test('an element running past the end of a raw data set is a clear error (found by the fuzz test)', () => {
  const element = (tag: [number, number], length: number, value: string): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt16LE(tag[0], 0);
    head.writeUInt16LE(tag[1], 2);
    head.writeUInt32LE(length, 4);
    return Buffer.concat([head, Buffer.from(value, 'latin1')]);
  };
  const file = path.join(dir, 'overrun.dcm');
  // implicit VR: SOPClassUID, then Modality claiming 100 bytes where 2 are left
  fs.writeFileSync(file, Buffer.concat([element([0x0008, 0x0016], 4, '1.2\0'), element([0x0008, 0x0060], 100, 'MR')]));
  expect(() => parseDicomFile(file)).toThrow(`${file}: corrupt DICOM file (truncated: an element runs past the end of the file)`);
});
