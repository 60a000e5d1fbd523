/**
 * NIfTI-1 and NIfTI-2 single-file images (`.nii`, and `.nii.gz` streamed): header parsing and validation, voxel
 * decoding into a Volume (LPS geometry, see volume.ts), and writing (NIfTI-1).
 *
 * 3-D images, and 4-D images one volume at a time (`volume` option) or all volumes (readNiftiVolumes, e.g. as
 * channels). scl_slope/scl_inter and qform/sform follow nibabel (sform when sform_code > 0, else qform when
 * qform_code > 0, else voxel sizes); src/data/nifti-nibabel.test.ts checks voxel order and affine against
 * nibabel's as_closest_canonical on nibabel's own test files.
 *
 * Files are streamed (nifti-stream.ts): the header is read and validated first, then only the wanted volumes'
 * voxels, decoded as they are inflated (native zlib, in a worker); a .nii.gz is never copied whole, and never
 * inflated more than about 1 MiB past the bytes the reader needs (a gzip bomb stops there).
 */
import * as fs from 'fs';
import * as zlib from 'zlib';
import { DataReadError } from './errors';
import { NiftiByteStream, withNiftiStream } from './nifti-stream';
import { Orientation, Vec3, Volume, voxelCount } from './volume';

export const NIFTI1_HEADER_SIZE = 348;
export const NIFTI2_HEADER_SIZE = 540;
/** Header plus the 4-byte extension flag: where voxels start in a file we write. */
export const NIFTI1_DATA_OFFSET = 352;

export type NiftiDatatypeName = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

/** NIfTI-1 datatype codes and their byte sizes. */
const DATATYPES: Record<number, { name: NiftiDatatypeName; bytes: number }> = {
  2: { name: 'uint8', bytes: 1 },
  4: { name: 'int16', bytes: 2 },
  8: { name: 'int32', bytes: 4 },
  16: { name: 'float32', bytes: 4 },
  64: { name: 'float64', bytes: 8 },
  256: { name: 'int8', bytes: 1 },
  512: { name: 'uint16', bytes: 2 },
  768: { name: 'uint32', bytes: 4 },
};
const DATATYPE_CODES = Object.fromEntries(
  Object.entries(DATATYPES).map(([code, t]) => [t.name, Number(code)]),
) as Record<NiftiDatatypeName, number>;

export interface NiftiHeader {
  littleEndian: boolean;
  sizeofHdr: number;
  dim: number[];
  datatype: number;
  bitpix: number;
  pixdim: number[];
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  xyztUnits: number;
  descrip: string;
  qformCode: number;
  sformCode: number;
  quatern: [number, number, number];
  qoffset: Vec3;
  srow: [number[], number[], number[]];
  magic: string;
  /** 1 or 2. */
  version: 1 | 2;
}

export interface NiftiReadOptions {
  /** Which volume of a 4-D image to read (0-based). Required when the image has more than one. */
  volume?: number;
  /** Largest voxel count read at once (default 2^28, 1 GiB as float32, as DICOM's pixel cap). */
  maxVoxels?: number;
}

export const DEFAULT_MAX_VOXELS = 2 ** 28;

export interface NiftiImage {
  header: NiftiHeader;
  volume: Volume;
}

export interface NiftiWriteOptions {
  /** Voxel type on disk (default float32). Integer types round and must fit. */
  datatype?: NiftiDatatypeName;
  /** Stored value = (value - sclInter) / sclSlope; readers apply the inverse. Defaults 1 and 0. */
  sclSlope?: number;
  sclInter?: number;
  description?: string;
}

/** The header at the start of `stream` (348 bytes, or 540 for NIfTI-2), parsed and validated. */
function streamHeader(stream: NiftiByteStream): NiftiHeader {
  let bytes = Buffer.from(stream.read(NIFTI1_HEADER_SIZE));
  if (bytes.length >= 4 && (bytes.readInt32LE(0) === NIFTI2_HEADER_SIZE || bytes.readInt32BE(0) === NIFTI2_HEADER_SIZE)) {
    bytes = Buffer.concat([bytes, stream.read(NIFTI2_HEADER_SIZE - NIFTI1_HEADER_SIZE)]);
  }
  const header = parseNiftiHeader(bytes, stream.path);
  throwIfInvalid(header, undefined, stream.path);
  return header;
}

/** Bytes the whole file should hold according to its (valid) header. */
function announcedBytes(header: NiftiHeader): number {
  return header.voxOffset + voxelCount(header.dim.slice(1, 1 + header.dim[0])) * DATATYPES[header.datatype].bytes;
}

function truncated(stream: NiftiByteStream, header: NiftiHeader): DataReadError {
  return new DataReadError(stream.path, `invalid NIfTI-${header.version} image: truncated: ${stream.position} bytes, `
    + `header announces ${announcedBytes(header)}`);
}

/** Voxels decoded per read: bounds the raw bytes held at once (a few MiB) whatever the image size. */
const VOXEL_RUN = 1 << 20;

/**
 * Volumes `first` .. `first + count - 1` from the stream just past the header: the file is read no further. Before
 * anything is allocated, the voxels must be within the cap and the file able to hold them.
 */
function streamVolumes(stream: NiftiByteStream, header: NiftiHeader, first: number, count: number, maxVoxels = DEFAULT_MAX_VOXELS): Float32Array[] {
  const voxels = voxelCount(spatialDims(header));
  const bytesPer = DATATYPES[header.datatype].bytes;
  if (voxels * count > maxVoxels) {
    throw new DataReadError(stream.path, `${spatialDims(header).join('x')}${count > 1 ? `x${count}` : ''} = ${voxels * count} voxels `
      + `is more than the ${maxVoxels}-voxel limit`);
  }
  const needed = header.voxOffset + (first + count) * voxels * bytesPer;
  if (needed > stream.maxBytes) {
    throw new DataReadError(stream.path, `invalid NIfTI-${header.version} image: truncated: `
      + (stream.gzip ? `the header announces ${announcedBytes(header)} bytes, a gzip file of ${stream.fileSize} bytes cannot hold them`
        : `${stream.fileSize} bytes, header announces ${announcedBytes(header)}`));
  }
  const skip = header.voxOffset - stream.position + first * voxels * bytesPer;
  if (stream.skip(skip) < skip) throw truncated(stream, header);
  return Array.from({ length: count }, () => {
    const out = new Float32Array(voxels);
    for (let done = 0; done < voxels; done += VOXEL_RUN) {
      const run = Math.min(VOXEL_RUN, voxels - done);
      const bytes = stream.read(run * bytesPer);
      if (bytes.length < run * bytesPer) throw truncated(stream, header);
      decodeVoxelRun(bytes, header, out, done);
    }
    return out;
  });
}

/** The volume index `options` choose (0 for a 3-D image); throws when a 4-D image needs a choice. */
function chosenVolume(header: NiftiHeader, path: string, options: NiftiReadOptions): number {
  const volumes = volumeCount(header);
  const index = options.volume ?? 0;
  if (options.volume === undefined && volumes > 1) {
    throw new DataReadError(path, `4-D image with ${volumes} volumes: choose one (volume option) or read them all `
      + '(readNiftiVolumes, e.g. as channels)');
  }
  if (!Number.isInteger(index) || index < 0 || index >= volumes) {
    throw new DataReadError(path, `volume ${index} requested, the image has ${volumes}`);
  }
  return index;
}

/**
 * Reads the header, then only the chosen volume's voxels, streamed (a .nii.gz is inflated as it is read, never
 * copied whole); throws DataReadError naming `path` if the file is not a valid NIfTI image, or when it is 4-D with
 * several volumes and `options.volume` does not choose one.
 */
export function readNifti(path: string, options: NiftiReadOptions = {}): NiftiImage {
  return withNiftiStream(path, (stream) => {
    const header = streamHeader(stream);
    const [data] = streamVolumes(stream, header, chosenVolume(header, path, options), 1, options.maxVoxels);
    return { header, volume: { data, ...geometryOf(header) } };
  });
}

/** Every volume of a 3-D or 4-D image (one for 3-D), e.g. to use them as channels. */
export function readNiftiVolumes(path: string, options: Pick<NiftiReadOptions, 'maxVoxels'> = {}): { header: NiftiHeader; volumes: Volume[] } {
  return withNiftiStream(path, (stream) => {
    const header = streamHeader(stream);
    const geometry = geometryOf(header);
    return { header, volumes: streamVolumes(stream, header, 0, volumeCount(header), options.maxVoxels).map((data) => ({ data, ...geometry })) };
  });
}

/** Reads and validates only the header (a .nii.gz is inflated only as far as the header). */
export function readNiftiHeader(path: string): NiftiHeader {
  return withNiftiStream(path, streamHeader);
}

/** Bytes past the voxels inflated by checkNiftiFile, so a stream that ends there has its end (CRC, length) checked. */
const TRAILING_BYTES_CHECKED = 1 << 20;

/**
 * Checks a file without keeping its voxels: a valid header, and as many bytes as the voxels it announces (a .nii.gz
 * is inflated as it is read, to find truncated or corrupt streams). Throws DataReadError naming it.
 */
export function checkNiftiFile(path: string): NiftiHeader {
  return withNiftiStream(path, (stream) => {
    const header = streamHeader(stream);
    const rest = announcedBytes(header) - stream.position;
    if (stream.skip(rest) < rest) throw truncated(stream, header);
    stream.skip(TRAILING_BYTES_CHECKED);
    return header;
  });
}

/** Number of 3-D volumes (product of dims 4..7). */
export function volumeCount(header: NiftiHeader): number {
  return voxelCount(header.dim.slice(4, 1 + Math.max(3, header.dim[0])));
}

/** An in-memory .nii (uncompressed bytes): header and the chosen volume, as readNifti. */
export function decodeNifti(bytes: Buffer, path: string, options: NiftiReadOptions = {}): NiftiImage {
  const header = parseNiftiHeader(bytes, path);
  throwIfInvalid(header, bytes.length, path);
  const index = chosenVolume(header, path, options);
  const voxels = voxelCount(spatialDims(header));
  const bytesPer = DATATYPES[header.datatype].bytes;
  const start = header.voxOffset + index * voxels * bytesPer;
  const data = new Float32Array(voxels);
  decodeVoxelRun(bytes.subarray(start, start + voxels * bytesPer), header, data, 0);
  return { header, volume: { data, ...geometryOf(header) } };
}

export function parseNiftiHeader(bytes: Buffer, path: string): NiftiHeader {
  if (bytes.length < NIFTI1_HEADER_SIZE) {
    throw new DataReadError(path, `file too short for a NIfTI header (${bytes.length} < 348 bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const littleEndian of [true, false]) {
    const size = view.getInt32(0, littleEndian);
    if (size === NIFTI1_HEADER_SIZE) return parseNifti1(bytes, view, littleEndian);
    if (size === NIFTI2_HEADER_SIZE) {
      if (bytes.length < NIFTI2_HEADER_SIZE) throw new DataReadError(path, `file too short for a NIfTI-2 header (${bytes.length} < 540 bytes)`);
      return parseNifti2(bytes, view, littleEndian, path);
    }
  }
  throw new DataReadError(path, `not a NIfTI file: sizeof_hdr is ${view.getInt32(0, true)}, expected 348 (NIfTI-1) or 540 (NIfTI-2)`);
}

function text(bytes: Buffer, at: number, length: number): string {
  return bytes.subarray(at, at + length).toString('latin1').replace(/\0.*$/s, '');
}

function parseNifti1(bytes: Buffer, view: DataView, littleEndian: boolean): NiftiHeader {
  const i16 = (at: number): number => view.getInt16(at, littleEndian);
  const f32 = (at: number): number => view.getFloat32(at, littleEndian);
  return {
    littleEndian,
    version: 1,
    sizeofHdr: NIFTI1_HEADER_SIZE,
    dim: Array.from({ length: 8 }, (_, i) => i16(40 + 2 * i)),
    datatype: i16(70),
    bitpix: i16(72),
    pixdim: Array.from({ length: 8 }, (_, i) => f32(76 + 4 * i)),
    voxOffset: f32(108),
    sclSlope: f32(112),
    sclInter: f32(116),
    xyztUnits: bytes[123],
    descrip: text(bytes, 148, 80),
    qformCode: i16(252),
    sformCode: i16(254),
    quatern: [f32(256), f32(260), f32(264)],
    qoffset: [f32(268), f32(272), f32(276)],
    srow: [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => f32(280 + 16 * r + 4 * c))) as NiftiHeader['srow'],
    magic: bytes.subarray(344, 348).toString('latin1'),
  };
}

/** NIfTI-2: the same fields, 64-bit dims/offsets and doubles, another layout (nifti2.h). */
function parseNifti2(bytes: Buffer, view: DataView, littleEndian: boolean, path: string): NiftiHeader {
  const i16 = (at: number): number => view.getInt16(at, littleEndian);
  const i32 = (at: number): number => view.getInt32(at, littleEndian);
  const f64 = (at: number): number => view.getFloat64(at, littleEndian);
  const i64 = (at: number): number => {
    const v = view.getBigInt64(at, littleEndian);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new DataReadError(path, `invalid NIfTI-2 image: 64-bit field at byte ${at} is out of range (${v})`);
    }
    return Number(v);
  };
  return {
    littleEndian,
    version: 2,
    sizeofHdr: NIFTI2_HEADER_SIZE,
    dim: Array.from({ length: 8 }, (_, i) => i64(16 + 8 * i)),
    datatype: i16(12),
    bitpix: i16(14),
    pixdim: Array.from({ length: 8 }, (_, i) => f64(104 + 8 * i)),
    voxOffset: i64(168),
    sclSlope: f64(176),
    sclInter: f64(184),
    xyztUnits: i32(500),
    descrip: text(bytes, 240, 80),
    qformCode: i32(344),
    sformCode: i32(348),
    quatern: [f64(352), f64(360), f64(368)],
    qoffset: [f64(376), f64(384), f64(392)],
    srow: [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => f64(400 + 32 * r + 8 * c))) as NiftiHeader['srow'],
    magic: bytes.subarray(4, 12).toString('latin1'),
  };
}

/**
 * Everything that would make the image unreadable or misread; an empty list means valid.
 * `fileLength` (uncompressed) enables the truncation check.
 */
export function validateNiftiHeader(header: NiftiHeader, fileLength?: number): string[] {
  const problems: string[] = [];
  const v2 = header.version === 2;
  if (header.sizeofHdr !== (v2 ? NIFTI2_HEADER_SIZE : NIFTI1_HEADER_SIZE)) problems.push(`sizeof_hdr ${header.sizeofHdr} != 348 or 540`);
  if (header.magic === 'ni1\0' || header.magic.startsWith('ni2\0')) {
    problems.push(`two-file NIfTI (.hdr/.img) is not supported, expected magic "n+${header.version}"`);
  } else if (header.magic !== (v2 ? 'n+2\0\r\n\x1a\n' : 'n+1\0')) {
    problems.push(`bad magic ${JSON.stringify(header.magic)}, expected "n+${header.version}"`);
  }
  const rank = header.dim[0];
  if (!(rank >= 1 && rank <= 7)) {
    problems.push(`dim[0] = ${rank} is not in 1..7`);
  } else {
    for (let i = 1; i <= rank; i++) {
      if (header.dim[i] < 1) problems.push(`dim[${i}] = ${header.dim[i]} must be >= 1`);
    }
    for (let i = 5; i <= rank; i++) {
      if (header.dim[i] > 1) problems.push(`only 3-D and 4-D images are supported, dim[${i}] = ${header.dim[i]}`);
    }
    for (let i = 1; i <= Math.min(rank, 3); i++) {
      const p = header.pixdim[i];
      if (!Number.isFinite(p) || p === 0) problems.push(`pixdim[${i}] = ${p} must be a non-zero voxel size`);
    }
  }
  const type = DATATYPES[header.datatype];
  if (!type) problems.push(`unsupported datatype ${header.datatype}`);
  else if (header.bitpix !== type.bytes * 8) {
    problems.push(`bitpix ${header.bitpix} does not match datatype ${type.name} (${type.bytes * 8})`);
  }
  const minOffset = v2 ? NIFTI2_HEADER_SIZE : NIFTI1_HEADER_SIZE;
  if (!Number.isFinite(header.voxOffset) || header.voxOffset < minOffset || !Number.isInteger(header.voxOffset)) {
    problems.push(`vox_offset ${header.voxOffset} must be an integer >= ${minOffset}`);
  }
  if (Number.isFinite(header.sclSlope) && header.sclSlope !== 0 && !Number.isFinite(header.sclInter)) {
    problems.push(`scl_inter ${header.sclInter} is not finite`);
  }
  if (problems.length === 0 && fileLength !== undefined && type) {
    const needed = header.voxOffset + voxelCount(spatialDims(header)) * volumeCount(header) * type.bytes;
    if (fileLength < needed) problems.push(`truncated: ${fileLength} bytes, header announces ${needed}`);
  }
  return problems;
}

function throwIfInvalid(header: NiftiHeader, fileLength: number | undefined, path: string): void {
  const problems = validateNiftiHeader(header, fileLength);
  if (problems.length > 0) throw new DataReadError(path, `invalid NIfTI-${header.version} image: ${problems.join('; ')}`);
}

function spatialDims(header: NiftiHeader): Vec3 {
  const rank = header.dim[0];
  return [header.dim[1], rank >= 2 ? header.dim[2] : 1, rank >= 3 ? header.dim[3] : 1];
}

/** The scaling readers must apply: none when scl_slope is 0 or not finite (NIfTI-1 rule). */
function scaling(header: NiftiHeader): { slope: number; inter: number } {
  const usable = Number.isFinite(header.sclSlope) && header.sclSlope !== 0;
  return usable ? { slope: header.sclSlope, inter: header.sclInter } : { slope: 1, inter: 0 };
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Typed-array views of each datatype, for bytes in the host's byte order. */
const VIEWS = {
  uint8: Uint8Array, int8: Int8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
  float32: Float32Array, float64: Float64Array,
} as const;

/** Decodes the voxels in `bytes` (a whole number of them) into `out` from `at`, scl_slope/scl_inter applied. */
function decodeVoxelRun(bytes: Uint8Array, header: NiftiHeader, out: Float32Array, at: number): void {
  const type = DATATYPES[header.datatype];
  const count = bytes.length / type.bytes;
  const { slope, inter } = scaling(header);
  if (header.littleEndian === HOST_LITTLE_ENDIAN || type.bytes === 1) {
    // Same byte order as the host: a typed view (of a copy when misaligned), no per-voxel DataView call.
    const aligned = bytes.byteOffset % type.bytes === 0 ? bytes : bytes.slice();
    const values = new VIEWS[type.name](aligned.buffer as ArrayBuffer, aligned.byteOffset, count);
    if (slope === 1 && inter === 0) out.set(values, at);
    else for (let i = 0; i < count; i++) out[at + i] = values[i] * slope + inter;
    return;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = header.littleEndian;
  const read: (offset: number) => number = {
    uint8: (offset: number) => view.getUint8(offset),
    int8: (offset: number) => view.getInt8(offset),
    int16: (offset: number) => view.getInt16(offset, le),
    uint16: (offset: number) => view.getUint16(offset, le),
    int32: (offset: number) => view.getInt32(offset, le),
    uint32: (offset: number) => view.getUint32(offset, le),
    float32: (offset: number) => view.getFloat32(offset, le),
    float64: (offset: number) => view.getFloat64(offset, le),
  }[type.name];
  for (let i = 0; i < count; i++) out[at + i] = read(i * type.bytes) * slope + inter;
}

/** Geometry in LPS from sform (preferred when set), else qform, else bare voxel sizes. */
function geometryOf(header: NiftiHeader): Omit<Volume, 'data'> {
  const dims = spatialDims(header);
  let columns: Vec3[];
  let originRas: Vec3;
  if (header.sformCode > 0) {
    columns = [0, 1, 2].map((c) => [header.srow[0][c], header.srow[1][c], header.srow[2][c]] as Vec3);
    originRas = [header.srow[0][3], header.srow[1][3], header.srow[2][3]];
  } else if (header.qformCode > 0) {
    const rotation = quaternionToMatrix(header.quatern);
    const qfac = header.pixdim[0] < 0 ? -1 : 1;
    columns = [0, 1, 2].map((c) => {
      const size = Math.abs(header.pixdim[c + 1] || 1) * (c === 2 ? qfac : 1);
      return [rotation[0][c] * size, rotation[1][c] * size, rotation[2][c] * size] as Vec3;
    });
    originRas = [...header.qoffset];
  } else {
    columns = [0, 1, 2].map((c) => {
      const v: Vec3 = [0, 0, 0];
      v[c] = Math.abs(header.pixdim[c + 1] || 1);
      return v;
    });
    originRas = [0, 0, 0];
  }
  const spacing = columns.map((v) => Math.hypot(v[0], v[1], v[2]) || 1) as Vec3;
  // RAS -> LPS: negate the first two coordinates of directions and origin.
  const orientation = columns.flatMap((v, c) => [-v[0] / spacing[c], -v[1] / spacing[c], v[2] / spacing[c]]);
  return {
    dims,
    spacing,
    orientation: orientation as Orientation,
    origin: [-originRas[0], -originRas[1], originRas[2]],
  };
}

/** nifti1_io's quatern_to_mat44 rotation part (rows x columns). */
function quaternionToMatrix([b0, c0, d0]: [number, number, number]): number[][] {
  let b = b0;
  let c = c0;
  let d = d0;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    a = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= a;
    c *= a;
    d *= a;
    a = 0;
  } else {
    a = Math.sqrt(a);
  }
  return [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
  ];
}

/** nifti1_io's mat44_to_quatern for an orthonormal rotation (columns = axes); returns [b, c, d] and qfac. */
function matrixToQuaternion(m: number[][]): { quatern: [number, number, number]; qfac: number } {
  const r = m.map((row) => [...row]);
  const det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
    - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
    + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
  let qfac = 1;
  if (det < 0) {
    qfac = -1;
    for (let i = 0; i < 3; i++) r[i][2] = -r[i][2];
  }
  let a = r[0][0] + r[1][1] + r[2][2] + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r[2][1] - r[1][2])) / a;
    c = (0.25 * (r[0][2] - r[2][0])) / a;
    d = (0.25 * (r[1][0] - r[0][1])) / a;
  } else {
    const xd = 1 + r[0][0] - (r[1][1] + r[2][2]);
    const yd = 1 + r[1][1] - (r[0][0] + r[2][2]);
    const zd = 1 + r[2][2] - (r[0][0] + r[1][1]);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r[0][1] + r[1][0])) / b;
      d = (0.25 * (r[0][2] + r[2][0])) / b;
      a = (0.25 * (r[2][1] - r[1][2])) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r[0][1] + r[1][0])) / c;
      d = (0.25 * (r[1][2] + r[2][1])) / c;
      a = (0.25 * (r[0][2] - r[2][0])) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r[0][2] + r[2][0])) / d;
      c = (0.25 * (r[1][2] + r[2][1])) / d;
      a = (0.25 * (r[1][0] - r[0][1])) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { quatern: [b, c, d], qfac };
}

/** The .nii bytes of a volume (uncompressed). */
export function encodeNifti(volume: Volume, options: NiftiWriteOptions = {}): Buffer {
  const datatype = options.datatype ?? 'float32';
  const code = DATATYPE_CODES[datatype];
  const bytesPer = DATATYPES[code].bytes;
  const slope = options.sclSlope ?? 1;
  const inter = options.sclInter ?? 0;
  if (!Number.isFinite(slope) || slope === 0 || !Number.isFinite(inter)) {
    throw new Error(`encodeNifti: scl_slope must be finite and non-zero, scl_inter finite (got ${slope}, ${inter})`);
  }
  const count = voxelCount(volume.dims);
  if (volume.data.length !== count) {
    throw new Error(`encodeNifti: ${volume.data.length} values for dims ${volume.dims.join('x')}`);
  }
  const out = Buffer.alloc(NIFTI1_DATA_OFFSET + count * bytesPer);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setInt32(0, NIFTI1_HEADER_SIZE, true);
  out[39] = 0; // dim_info
  const dim = [3, volume.dims[0], volume.dims[1], volume.dims[2], 1, 1, 1, 1];
  dim.forEach((v, i) => view.setInt16(40 + 2 * i, v, true));
  view.setInt16(70, code, true);
  view.setInt16(72, bytesPer * 8, true);

  // Axes in RAS: flip x and y of the LPS directions.
  const axesRas = [0, 1, 2].map((a) => [
    -volume.orientation[a * 3], -volume.orientation[a * 3 + 1], volume.orientation[a * 3 + 2],
  ]);
  const rotation = [0, 1, 2].map((row) => [0, 1, 2].map((col) => axesRas[col][row]));
  const { quatern, qfac } = matrixToQuaternion(rotation);
  const pixdim = [qfac, volume.spacing[0], volume.spacing[1], volume.spacing[2], 0, 0, 0, 0];
  pixdim.forEach((v, i) => view.setFloat32(76 + 4 * i, v, true));
  view.setFloat32(108, NIFTI1_DATA_OFFSET, true);
  view.setFloat32(112, slope, true);
  view.setFloat32(116, inter, true);
  out[123] = 2 | 8; // millimetres, seconds
  out.write((options.description ?? '').slice(0, 79), 148, 'latin1');
  view.setInt16(252, 1, true); // qform_code: scanner anatomical
  view.setInt16(254, 1, true); // sform_code: scanner anatomical
  const originRas = [-volume.origin[0], -volume.origin[1], volume.origin[2]];
  quatern.forEach((v, i) => view.setFloat32(256 + 4 * i, v, true));
  originRas.forEach((v, i) => view.setFloat32(268 + 4 * i, v, true));
  for (let row = 0; row < 3; row++) {
    for (let col = 0; col < 3; col++) view.setFloat32(280 + 16 * row + 4 * col, axesRas[col][row] * volume.spacing[col], true);
    view.setFloat32(280 + 16 * row + 12, originRas[row], true);
  }
  out.write('n+1\0', 344, 'latin1');
  // bytes 348..351: extension flag, all zero (no extensions)

  writeVoxels(view, volume.data, datatype, bytesPer, slope, inter);
  return out;
}

function writeVoxels(
  view: DataView, data: Float32Array, datatype: NiftiDatatypeName, bytesPer: number, slope: number, inter: number,
): void {
  const ranges: Partial<Record<NiftiDatatypeName, [number, number]>> = {
    uint8: [0, 255], int8: [-128, 127], int16: [-32768, 32767], uint16: [0, 65535],
    int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
  };
  const range = ranges[datatype];
  for (let i = 0; i < data.length; i++) {
    let stored = (data[i] - inter) / slope;
    const at = NIFTI1_DATA_OFFSET + i * bytesPer;
    if (range) {
      stored = Math.round(stored);
      if (!(stored >= range[0] && stored <= range[1])) {
        throw new Error(`encodeNifti: value ${data[i]} at voxel ${i} does not fit ${datatype} with the given scaling`);
      }
    }
    switch (datatype) {
      case 'uint8': view.setUint8(at, stored); break;
      case 'int8': view.setInt8(at, stored); break;
      case 'int16': view.setInt16(at, stored, true); break;
      case 'uint16': view.setUint16(at, stored, true); break;
      case 'int32': view.setInt32(at, stored, true); break;
      case 'uint32': view.setUint32(at, stored, true); break;
      case 'float32': view.setFloat32(at, stored, true); break;
      case 'float64': view.setFloat64(at, stored, true); break;
    }
  }
}

/** Writes `.nii`, or gzip-compressed when the path ends with `.gz`. Output bytes depend only on the inputs. */
export function writeNifti(path: string, volume: Volume, options: NiftiWriteOptions = {}): void {
  const bytes = encodeNifti(volume, options);
  fs.writeFileSync(path, path.endsWith('.gz') ? zlib.gzipSync(bytes) : bytes);
}
