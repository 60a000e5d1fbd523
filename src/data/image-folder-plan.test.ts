/**
 * Image-folder datasets feed plans: pictures written by Pillow (PNG and JPEG, RGB and greyscale, odd sizes, a nested
 * sub-folder) in torchvision's ImageFolder layout. The TS node's plan dataset (openPlanDataset, `images`) and the
 * generated PyTorch plan run as a Fed-BioMed node runs it (real torchvision ImageFolder + PIL, stand-in `fedbiomed`
 * package) give the same samples in the same order, the same class indices and the same network inputs; the
 * pictures decode to Pillow's pixels (PNG and JPEG alike: both sides use libjpeg-turbo's default islow IDCT with
 * fancy upsampling).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { definePlan } from '../plan/define';
import { generateTorchPlan } from '../plan/pytorch';
import { checkPlan } from '../plan/validate';
import { PlanSpec } from '../plan/spec';
import { findTorchPython, runPython, STANDIN_DIR } from '../plan/testing/python';
import { readRgbImage } from './image-folder';
import { openPlanDataset } from './plan-dataset';
import { describeDataset } from './registry-info';

const rgbPlan = (): PlanSpec => definePlan({
  name: 'PictureRgb',
  inputs: { image: { modalities: ['R', 'G', 'B'], dims: 2, size: [12, 10], source: 'image_folder' } },
  target: { column: 'class' },
  preprocessing: [{ op: 'resize', size: [12, 10] }, { op: 'normalize', method: 'zscore', modalities: ['G'] }],
  model: { image: [{ type: 'conv2d', outChannels: 2, kernelSize: 3 }, { type: 'relu' }, { type: 'global_avg_pool' }], head: [{ type: 'dense', outFeatures: 3 }] },
  loss: { type: 'cross_entropy' },
  optimizer: { type: 'sgd', lr: 0.1 },
  metrics: ['accuracy'],
});

const lumaPlan = (): PlanSpec => definePlan({
  name: 'PictureLuma',
  inputs: { image: { modalities: ['L', 'B'], dims: 2, size: [8, 8], source: 'image_folder' } },
  target: { column: 'class' },
  preprocessing: [{ op: 'center_crop', size: [9, 9] }, { op: 'resize', size: [8, 8] }, { op: 'clip', min: 0.2, modalities: ['L'] }],
  model: { image: [{ type: 'flatten' }], head: [{ type: 'dense', outFeatures: 3 }] },
  loss: { type: 'cross_entropy' },
  optimizer: { type: 'sgd', lr: 0.1 },
});

const PLANS = [rgbPlan(), lumaPlan()];

/** Writes the pictures with Pillow, then runs each generated plan's training_data on the folder. */
const SCRIPT = String.raw`
import importlib, json, os, sys
import numpy as np, torch
from PIL import Image
from torch.utils.data import DataLoader
root, plan_dir, out_dir = sys.argv[1:4]
rng = np.random.default_rng(3)
def save(rel, arr, **kw):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    Image.fromarray(arr).save(p, **kw)
smooth = lambda h, w, s: ((np.add.outer(np.arange(h) * 9, np.arange(w) * 5) + s) % 256).astype(np.uint8)
save('melanoma/a.png', rng.integers(0, 256, (13, 11, 3), dtype=np.uint8))
save('melanoma/z.png', rng.integers(0, 256, (12, 10), dtype=np.uint8))
save('melanoma/deeper/b.jpg', np.stack([smooth(15, 13, 0), smooth(15, 13, 40)[::-1], 255 - smooth(15, 13, 7)], -1), quality=90)
save('nevus/x.jpeg', smooth(11, 17, 3), quality=85)
save('nevus/y.PNG', rng.integers(0, 256, (10, 12, 4), dtype=np.uint8))
save('seborrheic/k.jpg', np.stack([smooth(12, 12, 9), smooth(12, 12, 90), smooth(12, 12, 200)], -1), quality=75, subsampling=0)
sys.path.insert(0, plan_dir)
out = {'pixels': {}, 'plans': {}}
for rel in ['melanoma/a.png', 'melanoma/z.png', 'melanoma/deeper/b.jpg', 'nevus/x.jpeg', 'nevus/y.PNG', 'seborrheic/k.jpg']:
    out['pixels'][rel] = np.asarray(Image.open(os.path.join(root, rel)).convert('RGB')).ravel().tolist()
for name in sys.argv[4:]:
    plan = getattr(importlib.import_module('plan_' + name), name)()
    plan.post_init(model_args={}, training_args={'optimizer_args': {}, 'random_seed': 0})
    plan.set_dataset_path(root)
    manager = plan.training_data()
    dataset = manager.load()
    samples = []
    for i in range(len(dataset)):
        x, y = dataset[i]
        f = os.path.join(out_dir, '%s_%d.bin' % (name, i))
        x.numpy().astype('<f4').tofile(f)
        samples.append({'file': os.path.relpath(dataset.samples[i][0], root), 'label': y, 'shape': list(x.shape), 'raw': f})
    batch = next(iter(DataLoader(dataset, batch_size=4, shuffle=False)))
    out['plans'][name] = {'classes': dataset.classes, 'samples': samples, 'loss': float(plan.training_step(*batch)),
                          'metrics': {k: float(v) for k, v in plan.testing_step(*batch).items()}, 'loader': manager._loader_arguments}
print(json.dumps(out))
`;

interface PythonSide {
  pixels: Record<string, number[]>;
  plans: Record<string, {
    classes: string[];
    samples: { file: string; label: number; shape: number[]; raw: string }[];
    loss: number;
    metrics: Record<string, number>;
    loader: Record<string, unknown>;
  }>;
}

let work: string;
let root: string;
let py: PythonSide;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'image-folder-plan-'));
  root = path.join(work, 'lesions');
  const planDir = path.join(work, 'plans');
  fs.mkdirSync(planDir);
  for (const plan of PLANS) fs.writeFileSync(path.join(planDir, `plan_${plan.name}.py`), generateTorchPlan(plan));
  fs.writeFileSync(path.join(work, 'run.py'), SCRIPT);
  const python = findTorchPython();
  expect(python.hasTorchvision).toBe(true); // the generated plan reads the folder with the real ImageFolder
  // runPython runs scripts of the stand-in folder: ours is reached from there
  const script = path.relative(STANDIN_DIR, path.join(work, 'run.py'));
  py = JSON.parse(runPython(python, script, [root, planDir, work, ...PLANS.map((p) => p.name)], work)) as PythonSide;
}, 120_000);
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const float32 = (file: string): Float32Array => {
  const bytes = fs.readFileSync(file);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

test('the pictures decode to the pixels Pillow gives (PNG and JPEG, RGB, grey, RGBA, 4:2:0 and 4:4:4)', () => {
  for (const [rel, pixels] of Object.entries(py.pixels)) {
    const ours = readRgbImage(path.join(root, rel));
    let worst = 0;
    ours.rgb.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - pixels[i])); });
    expect({ rel, length: ours.rgb.length, worst }).toEqual({ rel, length: pixels.length, worst: 0 });
  }
});

describe.each(PLANS.map((p) => p.name))('plan %s on an image folder', (name) => {
  const spec = PLANS.find((p) => p.name === name)!;

  test('same samples, order and class indices as torchvision ImageFolder; same network inputs as the generated plan', () => {
    const side = py.plans[name];
    const data = openPlanDataset(spec, { dataType: 'images', path: root, parameters: null });
    expect(side.classes).toEqual(['melanoma', 'nevus', 'seborrheic']);
    // torchvision's order: folders by path (melanoma/ before melanoma/deeper/), then file names
    expect(side.samples.map((s) => s.file)).toEqual(['melanoma/a.png', 'melanoma/z.png', 'melanoma/deeper/b.jpg', 'nevus/x.jpeg', 'nevus/y.PNG', 'seborrheic/k.jpg']);
    expect(data.size).toBe(side.samples.length);
    expect(Array.from(data.targets(side.samples.map((_, i) => i)))).toEqual(side.samples.map((s) => s.label));
    side.samples.forEach((s, i) => {
      const ours = data.sample(i).image!;
      expect(ours.shape).toEqual(s.shape);
      const theirs = float32(s.raw);
      let worst = 0;
      ours.data.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - theirs[j])); });
      expect({ file: s.file, worst: worst < 1e-5 }).toEqual({ file: s.file, worst: true });
    });
    expect(Number.isFinite(side.loss)).toBe(true);
    expect(side.loader).toEqual({ shuffle: true });
  });
});

test('the generated plan reads the folder with torchvision, not MedicalFolderDataset', () => {
  const source = generateTorchPlan(rgbPlan());
  expect(source).toContain('datasets.ImageFolder(self.dataset_path, transform=self._fbts_picture)');
  expect(source).not.toContain('MedicalFolderDataset');
  expect(py.plans.PictureRgb.metrics).toHaveProperty('ACCURACY');
});

test('image-folder plans refuse what a picture cannot give, naming the field', () => {
  const base = rgbPlan() as unknown as Record<string, any>;
  const paths = (value: unknown) => checkPlan(value).issues.map((i) => `${i.path}: ${i.message}`);
  expect(paths({ ...base, inputs: { image: { ...base.inputs.image, modalities: ['G', 'T1'] } } }))
    .toEqual(["inputs.image.modalities[1]: an image folder gives the bands R, G, B, L, not 'T1'"]);
  expect(paths({ ...base, target: { column: 'label' } }))
    .toEqual(["target.column: must be 'class' for an image folder (the class index of the picture's sub-folder)"]);
  expect(paths({ ...base, inputs: { ...base.inputs, tabular: { columns: ['age'] } } }))
    .toContain('inputs.tabular: an image folder has no tabular columns');
  expect(paths({ ...base, inputs: { image: { ...base.inputs.image, source: 'dicom' } } }))
    .toEqual(['inputs.image.source: must be one of "image_folder"']);
  expect(paths({ ...base, preprocessing: [{ op: 'crop_around', modality: 'G', center: 'brightest', size: [12, 10] }] }))
    .toContain('preprocessing: resample and crop_around need volumes with their geometry; an image folder holds 2-D pictures');
  expect(() => generateTorchPlan(rgbPlan(), { fedbiomed: 'v6' })).toThrow(/image-folder plans are generated for Fed-BioMed v4.5 only/);
});

test('a plan and a dataset of different kinds are refused with the reason', () => {
  expect(() => openPlanDataset(rgbPlan(), { dataType: 'medical-folder', path: root, parameters: null }))
    .toThrow("the plan reads an image folder (inputs.image.source 'image_folder') but the dataset is medical-folder");
  const volumes = { ...rgbPlan(), inputs: { image: { modalities: ['T1'], dims: 2 as const, size: [12, 10] } }, target: { column: 'y' } };
  expect(() => openPlanDataset(volumes, { dataType: 'images', path: root, parameters: null }))
    .toThrow("the dataset is an image folder but the plan does not read one (inputs.image.source must be 'image_folder')");
});

test('unreadable pictures are skipped with the reason (default) or fail the dataset (unreadable: fail)', () => {
  const broken = path.join(work, 'broken');
  fs.cpSync(root, broken, { recursive: true });
  const jpeg = path.join(broken, 'nevus', 'x.jpeg');
  fs.writeFileSync(jpeg, fs.readFileSync(jpeg).subarray(0, 300)); // cut short: no end-of-image marker
  const png = path.join(broken, 'melanoma', 'z.png');
  const bytes = fs.readFileSync(png);
  bytes[bytes.length - 20] ^= 0x55; // a flipped byte in the image data: CRC mismatch
  fs.writeFileSync(png, bytes);
  fs.writeFileSync(path.join(broken, 'seborrheic', 'notes.jpg'), 'not a picture');
  const data = openPlanDataset(rgbPlan(), { dataType: 'images', path: broken, parameters: null });
  expect(data.size).toBe(4);
  expect(data.issues.map((i) => i.message)).toEqual([
    `${png}: corrupt PNG: CRC mismatch in chunk IDAT; picture skipped`,
    `${jpeg}: truncated JPEG (no end-of-image marker); picture skipped`,
    `${path.join(broken, 'seborrheic', 'notes.jpg')}: unsupported image format (PNG and JPEG are read); picture skipped`,
  ]);
  expect(Array.from(data.targets([0, 1, 2, 3]))).toEqual([0, 0, 1, 2]);
  expect(() => openPlanDataset(rgbPlan(), { dataType: 'images', path: broken, parameters: { unreadable: 'fail' } }))
    .toThrow(new RegExp(`^${broken}: 3 unreadable picture\\(s\\): ${png}: corrupt PNG`));
  expect(describeDataset('images', broken).issues?.map((i) => i.path)).toEqual([png, jpeg, path.join(broken, 'seborrheic', 'notes.jpg')]);
});
