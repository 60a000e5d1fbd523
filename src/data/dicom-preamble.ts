/**
 * Where a DICOM file's data set starts, for the files some PACS and older modalities export without the Part 10
 * wrapper, read the way pydicom reads them with `dcmread(force=True)` (filereader.py `read_preamble` and
 * `read_partial`):
 * - the 128-byte preamble and "DICM" present: a Part 10 file;
 * - no preamble, but the file meta information group (0002) at byte 0: the meta says the transfer syntax;
 * - neither (a raw data set, as `dcmconv --write-dataset` writes): the transfer syntax is guessed from the first
 *   element, as pydicom does: two letters that are a VR after the tag mean explicit VR, and a tag group that reads
 *   ≥ 1024 in little endian means big endian; otherwise implicit VR little endian.
 * Unlike `force=True`, which reads anything, a raw data set must start with an element of group 0008 (every image
 * has SOPClassUID (0008,0016) and elements are stored in ascending order, so none precedes group 0008 but the meta
 * and command groups), so a stray note or export manifest in a folder is still "not DICOM".
 */

/** pydicom's VRs (the keys of pydicom.values.converters). */
const VRS = new Set(('AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV').split(' '));

const IMPLICIT_LITTLE = '1.2.840.10008.1.2';
const EXPLICIT_LITTLE = '1.2.840.10008.1.2.1';
const EXPLICIT_BIG = '1.2.840.10008.1.2.2';

export type DataSetStart =
  /** A Part 10 file (as found, or with the preamble and "DICM" put back in front of a bare meta group). */
  | { kind: 'part10'; bytes: Uint8Array }
  /** A raw data set at byte 0 and the transfer syntax guessed for it. */
  | { kind: 'raw'; bytes: Uint8Array; transferSyntaxUid: string; guess: string }
  | { kind: 'not-dicom' };

const ascii = (bytes: Uint8Array, from: number, to: number): string => String.fromCharCode(...bytes.subarray(from, to));

export function locateDataSet(bytes: Uint8Array): DataSetStart {
  if (bytes.length >= 132 && ascii(bytes, 128, 132) === 'DICM') return { kind: 'part10', bytes };
  if (bytes.length < 8) return { kind: 'not-dicom' };
  const littleGroup = bytes[0] | (bytes[1] << 8);
  const vr = ascii(bytes, 4, 6);
  const explicit = VRS.has(vr);
  if (littleGroup === 0x0002 && explicit) {
    // The meta group is always explicit VR little endian: only the preamble and the marker are missing.
    const part10 = new Uint8Array(132 + bytes.length);
    part10.set([0x44, 0x49, 0x43, 0x4d], 128);
    part10.set(bytes, 132);
    return { kind: 'part10', bytes: part10 };
  }
  const bigEndian = explicit && littleGroup >= 1024;
  const group = bigEndian ? (bytes[0] << 8) | bytes[1] : littleGroup;
  if (group !== 0x0008) return { kind: 'not-dicom' };
  if (!explicit) {
    const length = (bytes[4] | (bytes[5] << 8) | (bytes[6] << 16)) + bytes[7] * 2 ** 24;
    if (length !== 0xffffffff && length > bytes.length - 8) return { kind: 'not-dicom' };
    return { kind: 'raw', bytes, transferSyntaxUid: IMPLICIT_LITTLE, guess: 'implicit VR little endian' };
  }
  return bigEndian
    ? { kind: 'raw', bytes, transferSyntaxUid: EXPLICIT_BIG, guess: 'explicit VR big endian' }
    : { kind: 'raw', bytes, transferSyntaxUid: EXPLICIT_LITTLE, guess: 'explicit VR little endian' };
}
