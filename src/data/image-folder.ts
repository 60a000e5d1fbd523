/**
 * 2-D image datasets the way Fed-BioMed v4.5 registers them (`images`, and `mednist` which is the same on a
 * MedNIST folder): torchvision's ImageFolder — one sub-folder per class (sorted names are the class indices), image
 * files found recursively and sorted, each read as RGB (PIL's `convert('RGB')`) and turned into a float tensor
 * [3, H, W] in [0, 1] (`ToTensor`). The registry shape is [number of images, 3, H, W] of the first image.
 *
 * PNG is decoded by ./png.ts (exact); JPEG by libjpeg-turbo (the Cornerstone wasm build, in the decoding worker
 * with its deadline, see pixel-decoder.ts), the library Pillow uses. Other extensions torchvision accepts (bmp, ppm, tiff, webp…) are listed so the
 * count matches, and refused with a clear error if one has to be read.
 */
import * as fs from 'fs';
import * as path from 'path';
import { decodeFramesSync } from './pixel-decoder';
import { JpegHeaderError, readJpegFrameHeader } from './jpeg-header';
import { DataIssue, DataReadError, issueFrom } from './errors';
import { decodePng, PNG_SIGNATURE, RgbImage } from './png';

/** torchvision.datasets.folder.IMG_EXTENSIONS (0.14). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'];

export interface ImageSample {
  /** [3, H, W], values in [0, 1]. */
  data: Float32Array;
  shape: [number, number, number];
  label: number;
}

export interface ImageFolderDataset {
  root: string;
  classes: string[];
  samples: { file: string; label: number }[];
  issues: DataIssue[];
  load(index: number): ImageSample;
  /** [number of images, 3, H, W] of the first image, as Fed-BioMed's get_torch_dataset_shape. */
  shape(): number[];
  /**
   * Checks every picture's structure (PNG chunks and CRCs, JPEG markers up to the frame header and the end marker)
   * without decoding pixels. Unusable pictures are dropped from `samples` with an issue ('skip', default) or one
   * DataReadError lists them all ('fail'). Returns the unusable files' issues.
   */
  scan(policy?: 'skip' | 'fail'): DataIssue[];
}

/** The structural checks of `scan` for one picture; throws DataReadError saying what is wrong. */
function checkPicture(file: string): void {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new DataReadError(file, `cannot read image (${(error as Error).message})`);
  }
  if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) {
    decodePng(bytes, file); // inflating a picture is cheap; the PNG reader checks every chunk's CRC
    return;
  }
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new DataReadError(file, 'unsupported image format (PNG and JPEG are read)');
  const header = jpegHeader(bytes, file);
  if (bytes[bytes.length - 2] !== 0xff || bytes[bytes.length - 1] !== 0xd9) throw new DataReadError(file, 'truncated JPEG (no end-of-image marker)');
  if (header.bits !== 8 || (header.components !== 1 && header.components !== 3)) {
    throw new DataReadError(file, `JPEG with ${header.components} component(s) of ${header.bits} bits is not supported`);
  }
}

function jpegHeader(bytes: Buffer, file: string): ReturnType<typeof readJpegFrameHeader> {
  try {
    return readJpegFrameHeader(bytes);
  } catch (error) {
    if (error instanceof JpegHeaderError) throw new DataReadError(file, `corrupt JPEG (${error.message})`);
    throw error;
  }
}

/** Reads a PNG or JPEG file (by content, not extension) as 8-bit RGB. */
export function readRgbImage(file: string): RgbImage {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new DataReadError(file, `cannot read image (${(error as Error).message})`);
  }
  if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return decodePng(bytes, file);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return decodeJpeg(bytes, file);
  throw new DataReadError(file, 'unsupported image format (PNG and JPEG are read)');
}

function decodeJpeg(bytes: Buffer, file: string): RgbImage {
  const header = jpegHeader(bytes, file);
  if (header.bits !== 8 || (header.components !== 1 && header.components !== 3)) {
    throw new DataReadError(file, `JPEG with ${header.components} component(s) of ${header.bits} bits is not supported`);
  }
  const layout = { rows: header.height, cols: header.width, bitsAllocated: 8 as const, bitsStored: 8, signed: false, samplesPerPixel: header.components };
  let samples: Uint8Array;
  try {
    [samples] = decodeFramesSync('jpeg-baseline', [new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)], layout);
  } catch (error) {
    throw new DataReadError(file, `corrupt JPEG (${(error as Error).message})`);
  }
  const { width, height } = header;
  if (header.components === 3) return { width, height, rgb: samples };
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = samples[i];
  return { width, height, rgb };
}

/** ToTensor: HWC uint8 -> CHW float in [0, 1]. */
export function rgbToTensor(image: RgbImage): { data: Float32Array; shape: [number, number, number] } {
  const plane = image.width * image.height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) data[c * plane + i] = image.rgb[3 * i + c] / 255;
  }
  return { data, shape: [3, image.height, image.width] };
}

/**
 * The bands an image-folder plan asks for (src/plan/image-folder-plan.ts), each a C-order [H, W] float array in
 * [0, 1]: `R`, `G`, `B`, or `L`, Pillow's `convert('L')` of an RGB picture (ITU-R 601-2 luma in its 16-bit fixed
 * point, libImaging/Convert.c `L24`).
 */
export function pictureBands(image: RgbImage, bands: readonly string[]): Record<string, { data: Float32Array; shape: number[] }> {
  const plane = image.width * image.height;
  const rgb = image.rgb;
  const out: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (const band of bands) {
    const data = new Float32Array(plane);
    const channel = 'RGB'.indexOf(band);
    if (band === 'L') {
      for (let i = 0; i < plane; i++) data[i] = ((rgb[3 * i] * 19595 + rgb[3 * i + 1] * 38470 + rgb[3 * i + 2] * 7471 + 0x8000) >> 16) / 255;
    } else if (channel >= 0 && band.length === 1) {
      for (let i = 0; i < plane; i++) data[i] = rgb[3 * i + channel] / 255;
    } else {
      throw new RangeError(`picture band '${band}' is not one of R, G, B, L`);
    }
    out[band] = { data, shape: [image.height, image.width] };
  }
  return out;
}

/**
 * Image files under `dir` in torchvision's order (datasets.folder.make_dataset): `sorted(os.walk(dir))`, i.e. the
 * folders by their path string, then each folder's file names sorted.
 */
function walk(dir: string): string[] {
  const folders: { dir: string; files: string[] }[] = [];
  const visit = (d: string): void => {
    const entries = fs.readdirSync(d, { withFileTypes: true });
    folders.push({ dir: d, files: entries.filter((e) => !e.isDirectory() && IMAGE_EXTENSIONS.some((ext) => e.name.toLowerCase().endsWith(ext))).map((e) => e.name) });
    for (const e of entries) if (e.isDirectory()) visit(path.join(d, e.name));
  };
  visit(dir);
  const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return folders.sort((a, b) => byCodePoint(a.dir, b.dir)).flatMap((f) => f.files.sort(byCodePoint).map((name) => path.join(f.dir, name)));
}

export function openImageFolder(root: string): ImageFolderDataset {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new DataReadError(root, 'image folder not found');
  const classes = fs.readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (classes.length === 0) throw new DataReadError(root, "couldn't find any class folder");
  const samples: { file: string; label: number }[] = [];
  const empty: string[] = [];
  classes.forEach((name, label) => {
    const files = walk(path.join(root, name));
    if (files.length === 0) empty.push(name);
    for (const file of files) samples.push({ file, label });
  });
  if (empty.length > 0) {
    throw new DataReadError(root, `found no valid image file for the classes ${empty.join(', ')} (extensions: ${IMAGE_EXTENSIONS.join(', ')})`);
  }
  const load = (index: number): ImageSample => {
    const sample = samples[index];
    if (!sample) throw new RangeError(`image index ${index} out of range 0..${samples.length - 1}`);
    return { ...rgbToTensor(readRgbImage(sample.file)), label: sample.label };
  };
  const issues: DataIssue[] = [];
  return {
    root,
    classes,
    samples,
    issues,
    load,
    shape: () => {
      if (samples.length === 0) throw new DataReadError(root, 'no readable picture');
      return [samples.length, ...load(0).shape];
    },
    scan(policy = 'skip') {
      const found: DataIssue[] = [];
      const kept = samples.filter((sample) => {
        try {
          checkPicture(sample.file);
          return true;
        } catch (error) {
          found.push(issueFrom(sample.file, error));
          return false;
        }
      });
      if (found.length > 0 && policy === 'fail') {
        throw new DataReadError(root, `${found.length} unreadable picture(s): ${found.map((i) => i.message).join('; ')}`);
      }
      for (const issue of found) issues.push({ path: issue.path, message: `${issue.message}; picture skipped` });
      samples.splice(0, samples.length, ...kept);
      return found;
    },
  };
}
