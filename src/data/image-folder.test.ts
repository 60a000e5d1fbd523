import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { DataReadError } from './errors';
import { openImageFolder, readRgbImage } from './image-folder';
import { crc32 } from '../serialize/crc';
import { describeDataset } from './registry-info';
import { runPython } from './python-oracle.test-helper';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'images-test-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function chunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

/**
 * A test-side PNG encoder: packs `samples` (row-major, channels interleaved, values < 2^depth) and filters row y with
 * filter type y % 5, so every PNG filter is exercised.
 */
function encodePng(width: number, height: number, depth: number, colourType: number, samples: number[], palette?: number[]): Buffer {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colourType] as number;
  const stride = Math.ceil((width * channels * depth) / 8);
  const bpp = Math.max(1, (channels * depth) / 8);
  const rows: Buffer[] = [];
  let previous = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(stride);
    for (let s = 0; s < width * channels; s++) {
      const v = samples[y * width * channels + s];
      if (depth === 16) row.writeUInt16BE(v, 2 * s);
      else if (depth === 8) row[s] = v;
      else row[(s * depth) >> 3] |= v << (8 - depth - ((s * depth) & 7));
    }
    const filter = y % 5;
    const out = Buffer.alloc(stride + 1);
    out[0] = filter;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? row[x - bpp] : 0;
      const b = previous[x];
      const c = x >= bpp ? previous[x - bpp] : 0;
      const p = a + b - c;
      const predictor = [0, a, b, (a + b) >> 1,
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c][filter];
      out[x + 1] = (row[x] - predictor) & 0xff;
    }
    rows.push(out);
    previous = row;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = colourType;
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    ...(palette ? [chunk('PLTE', Buffer.from(palette))] : []),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function writeFile(name: string, bytes: Buffer): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
  return file;
}

const W = 7;
const H = 6;
const range = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));

describe('PNG decoder', () => {
  test.each([1, 2, 4, 8])('grey %i-bit: levels scaled to 0..255', (depth) => {
    const max = (1 << depth) - 1;
    const grey = range(W * H, (i) => (i * 5) % (max + 1));
    const image = readRgbImage(writeFile(`g${depth}.png`, encodePng(W, H, depth, 0, grey)));
    expect([image.width, image.height]).toEqual([W, H]);
    expect(Array.from(image.rgb)).toEqual(grey.flatMap((g) => { const v = Math.round((g * 255) / max); return [v, v, v]; }));
  });

  test('grey 16-bit is clipped at 255, colour 16-bit keeps the high byte (as PIL)', () => {
    const grey = range(W * H, (i) => i * 9);
    expect(Array.from(readRgbImage(writeFile('g16.png', encodePng(W, H, 16, 0, grey))).rgb))
      .toEqual(grey.flatMap((g) => [Math.min(255, g), Math.min(255, g), Math.min(255, g)]));
    const rgb16 = range(W * H * 3, (i) => (i * 1111) % 65536);
    expect(Array.from(readRgbImage(writeFile('c16.png', encodePng(W, H, 16, 2, rgb16))).rgb)).toEqual(rgb16.map((v) => v >> 8));
  });

  test('RGB, RGBA and grey+alpha drop alpha; palette images are looked up at every index depth', () => {
    const rgb = range(W * H * 3, (i) => (i * 37) % 256);
    expect(Array.from(readRgbImage(writeFile('rgb.png', encodePng(W, H, 8, 2, rgb))).rgb)).toEqual(rgb);
    const rgba = range(W * H * 4, (i) => (i * 53) % 256);
    expect(Array.from(readRgbImage(writeFile('rgba.png', encodePng(W, H, 8, 6, rgba))).rgb))
      .toEqual(rgba.filter((_, i) => i % 4 !== 3));
    const la = range(W * H * 2, (i) => (i * 29) % 256);
    expect(Array.from(readRgbImage(writeFile('la.png', encodePng(W, H, 8, 4, la))).rgb))
      .toEqual(la.filter((_, i) => i % 2 === 0).flatMap((g) => [g, g, g]));
    for (const depth of [1, 2, 4, 8]) {
      const colours = 1 << Math.min(depth, 4);
      const palette = range(colours * 3, (i) => (i * 41 + 7) % 256);
      const index = range(W * H, (i) => (i * 3) % colours);
      expect(Array.from(readRgbImage(writeFile(`p${depth}.png`, encodePng(W, H, depth, 3, index, palette))).rgb))
        .toEqual(index.flatMap((k) => palette.slice(3 * k, 3 * k + 3)));
    }
  });

  test('corrupt, truncated and unsupported files are refused naming the file', () => {
    const good = encodePng(W, H, 8, 2, range(W * H * 3, (i) => i % 256));
    const crc = Buffer.from(good);
    crc[40] ^= 0xff;
    const cases: [string, Buffer, RegExp][] = [
      ['crc.png', crc, /CRC mismatch/],
      ['cut.png', good.subarray(0, good.length - 20), /truncated PNG/],
      ['text.png', Buffer.from('hello'), /unsupported image format/],
    ];
    const interlaced = Buffer.from(good);
    interlaced[8 + 8 + 12] = 1;
    interlaced.writeUInt32BE(crc32(interlaced.subarray(12, 12 + 4 + 13)), 8 + 8 + 13);
    cases.push(['adam7.png', interlaced, /interlaced \(Adam7\) PNG is not supported/]);
    for (const [name, bytes, why] of cases) {
      const file = writeFile(name, bytes);
      expect(() => readRgbImage(file)).toThrow(DataReadError);
      expect(() => readRgbImage(file)).toThrow(why);
      expect(() => readRgbImage(file)).toThrow(file);
    }
  });
});

describe('image folder (torchvision ImageFolder)', () => {
  test('classes are sorted folder names, files recursive and sorted, shape [n, 3, H, W], ToTensor values', () => {
    const root = path.join(dir, 'folder');
    const grey = range(W * H, (i) => i);
    writeFile('folder/b_class/x2.png', encodePng(W, H, 8, 0, grey));
    writeFile('folder/b_class/sub/x1.png', encodePng(W, H, 8, 0, grey));
    writeFile('folder/a_class/z.PNG', encodePng(W, H, 8, 0, grey.map((g) => 255 - g)));
    writeFile('folder/a_class/notes.txt', Buffer.from('ignored'));
    const dataset = openImageFolder(root);
    expect(dataset.classes).toEqual(['a_class', 'b_class']);
    // torchvision's order: sorted(os.walk(class folder)), so a folder's own files before its sub-folders'
    expect(dataset.samples.map((s) => [path.relative(root, s.file), s.label])).toEqual([
      ['a_class/z.PNG', 0], ['b_class/x2.png', 1], ['b_class/sub/x1.png', 1],
    ]);
    expect(dataset.shape()).toEqual([3, 3, H, W]);
    const sample = dataset.load(2);
    expect(sample.label).toBe(1);
    expect(sample.shape).toEqual([3, H, W]);
    expect(sample.data[W * H + 5]).toBeCloseTo(5 / 255, 7);
    expect(describeDataset('images', root)).toEqual({ shape: [3, 3, H, W], dtypes: [] });
    fs.mkdirSync(path.join(dir, 'mednist-parent'));
    fs.renameSync(root, path.join(dir, 'mednist-parent', 'MedNIST'));
    expect(describeDataset('mednist', path.join(dir, 'mednist-parent')).shape).toEqual([3, 3, H, W]);
  });

  test('an empty class or a missing folder is refused, naming the path', () => {
    const root = path.join(dir, 'empty-class');
    writeFile('empty-class/a/x.png', encodePng(2, 2, 8, 0, [1, 2, 3, 4]));
    fs.mkdirSync(path.join(root, 'b'));
    expect(() => openImageFolder(root)).toThrow(`${root}: found no valid image file for the classes b`);
    expect(() => openImageFolder(path.join(dir, 'none'))).toThrow(`${path.join(dir, 'none')}: image folder not found`);
  });
});

/** Same tensors as torchvision 0.14's ImageFolder + ToTensor (PIL 9.4 decoding), when that Python is available. */
describe('agreement with torchvision ImageFolder', () => {
  test('PNG and JPEG exactly as Pillow reads them', () => {
    const root = path.join(dir, 'torchvision');
    const script = [
      'import json, os, sys, numpy as np',
      'from PIL import Image',
      'from torchvision import datasets, transforms',
      'root = sys.argv[1]',
      'rng = np.random.default_rng(0)',
      'def save(rel, arr, mode=None, **kw):',
      '    p = os.path.join(root, rel); os.makedirs(os.path.dirname(p), exist_ok=True)',
      '    Image.fromarray(arr, mode).save(p, **kw) if mode else Image.fromarray(arr).save(p, **kw)',
      'save("cls0/grey.png", rng.integers(0, 256, (9, 11), dtype=np.uint8))',
      'save("cls0/rgba.png", rng.integers(0, 256, (9, 11, 4), dtype=np.uint8))',
      'save("cls1/pal.png", rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)) ',
      'Image.open(os.path.join(root, "cls1/pal.png")).convert("P", palette=Image.ADAPTIVE, colors=16).save(os.path.join(root, "cls1/pal.png"))',
      'save("cls1/g16.png", (np.arange(99).reshape(9, 11) * 7).astype(np.uint16))',
      'smooth = (np.add.outer(np.arange(16) * 9, np.arange(24) * 5) % 256).astype(np.uint8)',
      'save("cls2/grey.jpg", smooth, quality=95)',
      'save("cls2/rgb.jpg", np.stack([smooth, smooth[::-1], 255 - smooth], -1), quality=95, subsampling=0)',
      'ds = datasets.ImageFolder(root, transform=transforms.ToTensor())',
      'out = {"classes": ds.classes, "files": [os.path.relpath(p, root) for p, _ in ds.samples],',
      '       "shape": [len(ds)] + list(ds[0][0].shape), "tensors": [ds[i][0].numpy().ravel().tolist() for i in range(len(ds))]}',
      'print(json.dumps(out))',
    ].join('\n');
    const run = runPython(script, [root], ['torchvision', 'PIL']);
    if (!run) return;
    const expected = JSON.parse(run) as { classes: string[]; files: string[]; shape: number[]; tensors: number[][] };
    const dataset = openImageFolder(root);
    expect(dataset.classes).toEqual(expected.classes);
    expect(dataset.samples.map((s) => path.relative(root, s.file))).toEqual(expected.files);
    expect(dataset.shape()).toEqual(expected.shape);
    expected.files.forEach((file, i) => {
      const ours = Array.from(dataset.load(i).data);
      expect(ours).toHaveLength(expected.tensors[i].length);
      const tolerance = 1e-6; // JPEG too: libjpeg-turbo, as Pillow
      const worst = ours.reduce((m, v, j) => Math.max(m, Math.abs(v - expected.tensors[i][j])), 0);
      expect({ file, worst: worst <= tolerance }).toEqual({ file, worst: true });
    });
  });
});
