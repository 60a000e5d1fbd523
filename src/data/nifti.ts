/**
 * NIfTI-1 single-file images (`.nii`, and `.nii.gz` through zlib): header parsing and validation, voxel decoding
 * into a Volume (LPS geometry, see volume.ts), and writing.
 *
 * Only 3-D scalar images are read (a 4th dimension of length 1 is accepted); that is what Fed-BioMed's
 * medical-folder layout holds, one image per subject and modality.
 */
import * as fs from 'fs';
import * as zlib from 'zlib';
import { DataReadError } from './errors';
import { Orientation, Vec3, Volume, voxelCount } from './volume';

export const NIFTI1_HEADER_SIZE = 348;
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
}

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

/** Uncompressed bytes of a .nii or .nii.gz file (gzip detected by its magic number, not the file name). */
function loadBytes(path: string): Buffer {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(path);
  } catch (error) {
    throw new DataReadError(path, `cannot read NIfTI file (${(error as Error).message})`);
  }
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return zlib.gunzipSync(raw);
    } catch (error) {
      throw new DataReadError(path, `corrupt or truncated gzip data (${(error as Error).message})`);
    }
  }
  return raw;
}

/** Reads header and voxels; throws DataReadError naming `path` if the file is not a valid 3-D NIfTI-1 image. */
export function readNifti(path: string): NiftiImage {
  return decodeNifti(loadBytes(path), path);
}

/** Reads and validates only the header (still decompresses a .nii.gz). */
export function readNiftiHeader(path: string): NiftiHeader {
  const bytes = loadBytes(path);
  const header = parseNiftiHeader(bytes, path);
  throwIfInvalid(header, bytes.length, path);
  return header;
}

export function decodeNifti(bytes: Buffer, path: string): NiftiImage {
  const header = parseNiftiHeader(bytes, path);
  throwIfInvalid(header, bytes.length, path);
  return { header, volume: { data: decodeVoxels(bytes, header), ...geometryOf(header) } };
}

export function parseNiftiHeader(bytes: Buffer, path: string): NiftiHeader {
  if (bytes.length < NIFTI1_HEADER_SIZE) {
    throw new DataReadError(path, `file too short for a NIfTI-1 header (${bytes.length} < 348 bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let littleEndian = true;
  if (view.getInt32(0, true) !== NIFTI1_HEADER_SIZE) {
    if (view.getInt32(0, false) !== NIFTI1_HEADER_SIZE) {
      throw new DataReadError(path, `not a NIfTI-1 file: sizeof_hdr is ${view.getInt32(0, true)}, expected 348`);
    }
    littleEndian = false;
  }
  const i16 = (at: number): number => view.getInt16(at, littleEndian);
  const f32 = (at: number): number => view.getFloat32(at, littleEndian);
  const text = (at: number, length: number): string =>
    bytes.subarray(at, at + length).toString('latin1').replace(/\0.*$/s, '');
  return {
    littleEndian,
    sizeofHdr: NIFTI1_HEADER_SIZE,
    dim: Array.from({ length: 8 }, (_, i) => i16(40 + 2 * i)),
    datatype: i16(70),
    bitpix: i16(72),
    pixdim: Array.from({ length: 8 }, (_, i) => f32(76 + 4 * i)),
    voxOffset: f32(108),
    sclSlope: f32(112),
    sclInter: f32(116),
    xyztUnits: bytes[123],
    descrip: text(148, 80),
    qformCode: i16(252),
    sformCode: i16(254),
    quatern: [f32(256), f32(260), f32(264)],
    qoffset: [f32(268), f32(272), f32(276)],
    srow: [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => f32(280 + 16 * r + 4 * c))) as NiftiHeader['srow'],
    magic: bytes.subarray(344, 348).toString('latin1'),
  };
}

/**
 * Everything that would make the image unreadable or misread; an empty list means valid.
 * `fileLength` (uncompressed) enables the truncation check.
 */
export function validateNiftiHeader(header: NiftiHeader, fileLength?: number): string[] {
  const problems: string[] = [];
  if (header.sizeofHdr !== NIFTI1_HEADER_SIZE) problems.push(`sizeof_hdr ${header.sizeofHdr} != 348`);
  if (header.magic === 'ni1\0') problems.push('two-file NIfTI (.hdr/.img) is not supported, expected magic "n+1"');
  else if (header.magic !== 'n+1\0') problems.push(`bad magic ${JSON.stringify(header.magic)}, expected "n+1"`);
  const rank = header.dim[0];
  if (!(rank >= 1 && rank <= 7)) {
    problems.push(`dim[0] = ${rank} is not in 1..7`);
  } else {
    for (let i = 1; i <= rank; i++) {
      if (header.dim[i] < 1) problems.push(`dim[${i}] = ${header.dim[i]} must be >= 1`);
    }
    for (let i = 4; i <= rank; i++) {
      if (header.dim[i] > 1) problems.push(`only 3-D images are supported, dim[${i}] = ${header.dim[i]}`);
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
  if (!Number.isFinite(header.voxOffset) || header.voxOffset < NIFTI1_DATA_OFFSET
    || !Number.isInteger(header.voxOffset)) {
    problems.push(`vox_offset ${header.voxOffset} must be an integer >= 352`);
  }
  if (Number.isFinite(header.sclSlope) && header.sclSlope !== 0 && !Number.isFinite(header.sclInter)) {
    problems.push(`scl_inter ${header.sclInter} is not finite`);
  }
  if (problems.length === 0 && fileLength !== undefined && type) {
    const needed = header.voxOffset + voxelCount(spatialDims(header)) * type.bytes;
    if (fileLength < needed) problems.push(`truncated: ${fileLength} bytes, header announces ${needed}`);
  }
  return problems;
}

function throwIfInvalid(header: NiftiHeader, fileLength: number, path: string): void {
  const problems = validateNiftiHeader(header, fileLength);
  if (problems.length > 0) throw new DataReadError(path, `invalid NIfTI-1 image: ${problems.join('; ')}`);
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

function decodeVoxels(bytes: Buffer, header: NiftiHeader): Float32Array {
  const count = voxelCount(spatialDims(header));
  const type = DATATYPES[header.datatype];
  const view = new DataView(bytes.buffer, bytes.byteOffset + header.voxOffset, count * type.bytes);
  const le = header.littleEndian;
  const read: (at: number) => number = {
    uint8: (at: number) => view.getUint8(at),
    int8: (at: number) => view.getInt8(at),
    int16: (at: number) => view.getInt16(at, le),
    uint16: (at: number) => view.getUint16(at, le),
    int32: (at: number) => view.getInt32(at, le),
    uint32: (at: number) => view.getUint32(at, le),
    float32: (at: number) => view.getFloat32(at, le),
    float64: (at: number) => view.getFloat64(at, le),
  }[type.name];
  const { slope, inter } = scaling(header);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = read(i * type.bytes) * slope + inter;
  return out;
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
