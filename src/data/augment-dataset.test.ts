/**
 * On a TS node's dataset (a real medical folder of NIfTI files): training batch sources apply the plan's
 * augmentation, seeded by the round seed (same seed → same batches), while validation batches (batchSync) are the
 * plain preprocessed samples.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend';
import type { Batch } from '../engine/train';
import { definePlan } from '../plan/define';
import { writeNifti } from './nifti';
import { openPlanDataset } from './plan-dataset';
import { createVolume } from './volume';

let root: string;
const spec = definePlan({
  name: 'AugmentedData',
  inputs: { image: { modalities: ['T1'], dims: 2, size: [4, 4] } },
  target: { column: 'y' },
  augmentation: [{ op: 'flip', axes: [0], p: 0.5 }, { op: 'gaussian_noise', std: 0.5, p: 1 }],
  model: { image: [{ type: 'flatten' }], head: [{ type: 'dense', outFeatures: 1 }] },
  loss: { type: 'mse' },
  optimizer: { type: 'sgd', lr: 0.1 },
});

beforeAll(async () => {
  await initBackend(() => undefined);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-augment-data-'));
  for (const [i, s] of ['sub-01', 'sub-02', 'sub-03'].entries()) {
    const folder = path.join(root, s, 'T1');
    fs.mkdirSync(folder, { recursive: true });
    const v = createVolume([4, 4, 1]);
    v.data.forEach((_, k) => (v.data[k] = 10 * i + k));
    writeNifti(path.join(folder, `${s}_T1.nii.gz`), v, { datatype: 'float32' });
  }
  fs.writeFileSync(path.join(root, 'participants.csv'), 'subject,y\nsub-01,0.5\nsub-02,1.5\nsub-03,2.5\n');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function open() {
  return openPlanDataset(spec, { dataType: 'medical-folder', path: root, parameters: { tabular_file: path.join(root, 'participants.csv'), index_col: 0 } });
}

function images(made: Batch | Promise<Batch>): number[] {
  if (made instanceof Promise) throw new Error('a plan dataset builds batches synchronously');
  const batch = made;
  const values = Array.from(batch.inputs.image.dataSync());
  tf.dispose([...Object.values(batch.inputs), batch.target]);
  return values;
}

test('training batches are augmented and reproducible by seed; validation batches are not augmented', () => {
  const data = open();
  const plain = images(data.batchSync([0, 1, 2]));
  const first = images(data.batchSource([0, 1, 2], { augmentSeed: 11 }).batch([0, 1, 2]));
  const again = images(open().batchSource([0, 1, 2], { augmentSeed: 11 }).batch([0, 1, 2]));
  const other = images(data.batchSource([0, 1, 2], { augmentSeed: 12 }).batch([0, 1, 2]));
  expect(first).toEqual(again);
  expect(first).not.toEqual(plain);
  expect(other).not.toEqual(first);
  expect(images(data.batchSync([0, 1, 2]))).toEqual(plain); // the cached samples were not modified
  // successive batches of one source draw new seeds
  const source = data.batchSource([0, 1, 2], { augmentSeed: 11 });
  expect(images(source.batch([0, 1, 2]))).not.toEqual(images(source.batch([0, 1, 2])));
});

test('an image target is moved with the image in training batches (and left alone at validation)', () => {
  // The target is the T1 > 10 mask: after flips and turns (no intensity step) it must still be the image's mask.
  const targetSpec = definePlan({
    name: 'AugmentedTarget',
    inputs: { image: { modalities: ['T1'], dims: 2, size: [4, 4] } },
    target: { channels: [{ modality: 'mask', labels: [1] }] },
    augmentation: [{ op: 'flip', axes: [1], p: 0.5 }, { op: 'rotate90', axes: [0, 1], p: 0.9 }],
    model: { nodes: [{ name: 'conv', type: 'conv2d', outChannels: 1, kernelSize: 3, padding: 1, input: 'image' }], output: 'conv' },
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'sgd', lr: 0.1 },
  });
  for (const [i, s] of ['sub-01', 'sub-02', 'sub-03'].entries()) {
    const folder = path.join(root, s, 'mask');
    fs.mkdirSync(folder, { recursive: true });
    const v = createVolume([4, 4, 1]);
    v.data.forEach((_, k) => (v.data[k] = 10 * i + k > 10 ? 1 : 0));
    writeNifti(path.join(folder, `${s}_mask.nii.gz`), v, { datatype: 'float32' });
  }
  const data = openPlanDataset(targetSpec, { dataType: 'medical-folder', path: root, parameters: null });
  const pairs = (made: Batch | Promise<Batch>): [number[], number[]] => {
    if (made instanceof Promise) throw new Error('a plan dataset builds batches synchronously');
    const out: [number[], number[]] = [Array.from(made.inputs.image.dataSync()), Array.from(made.target.dataSync())];
    tf.dispose([...Object.values(made.inputs), made.target]);
    return out;
  };
  const [plainImage, plainTarget] = pairs(data.batchSync([0, 1, 2]));
  expect(plainTarget).toEqual(plainImage.map((v) => (v > 10 ? 1 : 0)));
  const [image, target] = pairs(data.batchSource([0, 1, 2], { augmentSeed: 5 }).batch([0, 1, 2]));
  expect(image).not.toEqual(plainImage);
  expect(target).toEqual(image.map((v) => (v > 10 ? 1 : 0)));
});
