/**
 * Medical folders as imaging sites hold them, with files written by nibabel (not by us):
 * - a 4-D DWI (3 volumes) beside a 3-D T1: with the dataset parameter `volumes`, a chosen volume or every volume
 *   as a channel (`DWI_0`, `DWI_2`) feeds the plan, equal to nibabel's `dataobj[..., t]`; without it the dataset is
 *   refused at registration, saying what to set;
 * - PET and CT of the same study on different grids (PET coarser, tilted, shifted): with `resample_to: 'CT'` the
 *   PET channel equals nibabel's affines + scipy.ndimage.affine_transform (linear, cval 0) onto the CT grid.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { definePlan } from '../plan/define';
import { PlanSpec } from '../plan/spec';
import { openPlanDataset } from './plan-dataset';
import { runPython } from './python-oracle.test-helper';
import { describeDataset } from './registry-info';

const WRITE_AND_ORACLE = String.raw`
import sys, json, os, numpy as np, nibabel as nib
from scipy.ndimage import affine_transform
root, out = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(4)
ct_affine = np.diag([1.2, 1.1, 2.0, 1.0]); ct_affine[:3, 3] = [-10.0, -8.0, -12.0]
t = 0.1
pet_affine = np.array([[2.6 * np.cos(t), -2.5 * np.sin(t), 0, -11.5], [2.6 * np.sin(t), 2.5 * np.cos(t), 0, -9.0], [0, 0, 3.1, -13.0], [0, 0, 0, 1]])
expected = {}
for s in ['s1', 's2']:
    ct = rng.normal(40, 300, (14, 12, 9)).astype(np.float32)
    pet = (rng.random((7, 6, 5)) * 8).astype(np.float32)
    dwi = rng.integers(0, 2000, (10, 9, 6, 3)).astype(np.int16)
    t1 = rng.normal(500, 50, (10, 9, 6)).astype(np.float32)
    for name, arr, aff in [('CT', ct, ct_affine), ('PET', pet, pet_affine), ('DWI', dwi, np.diag([2.0, 2.0, 2.5, 1.0])), ('T1', t1, np.diag([2.0, 2.0, 2.5, 1.0]))]:
        os.makedirs(os.path.join(root, s, name), exist_ok=True)
        nib.save(nib.Nifti1Image(arr, aff), os.path.join(root, s, name, name + '.nii.gz'))
    m = np.linalg.inv(pet_affine) @ ct_affine
    expected[s] = {
        'pet_on_ct': affine_transform(pet.astype(np.float64), m[:3, :3], offset=m[:3, 3], output_shape=ct.shape, order=1, mode='constant', cval=0.0).ravel().tolist(),
        'ct': ct.ravel().tolist(),
        'dwi': [np.asanyarray(nib.load(os.path.join(root, s, 'DWI', 'DWI.nii.gz')).dataobj)[..., k].astype(float).ravel().tolist() for k in range(3)],
        't1': t1.ravel().tolist(),
    }
with open(os.path.join(root, 'demographics.csv'), 'w') as f:
    f.write('patient,y\ns1,1\ns2,0\n')
json.dump(expected, open(out, 'w'))
`;

type Expected = Record<string, { pet_on_ct: number[]; ct: number[]; dwi: number[][]; t1: number[] }>;

let root: string;
let expected: Expected;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'medical-grids-'));
  const out = path.join(root, 'expected.json');
  runPython(WRITE_AND_ORACLE, [path.join(root, 'site'), out], ['nibabel', 'scipy']);
  expected = JSON.parse(fs.readFileSync(out, 'utf8')) as Expected;
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const plan = (modalities: string[], size: number[]): PlanSpec => definePlan({
  name: 'Grids',
  inputs: { image: { modalities, dims: 3, size } },
  target: { column: 'y' },
  model: { image: [{ type: 'flatten' }], head: [{ type: 'dense', outFeatures: 1 }] },
  loss: { type: 'bce', fromLogits: true },
  optimizer: { type: 'sgd', lr: 0.1 },
});

const site = () => path.join(root, 'site');
const tabular = () => ({ tabular_file: path.join(site(), 'demographics.csv'), index_col: 0 });

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

test('4-D DWI: every volume as a channel, or a chosen one, equal to nibabel', () => {
  const channels = openPlanDataset(plan(['T1', 'DWI_0', 'DWI_2'], [10, 9, 6]), {
    dataType: 'medical-folder', path: site(), parameters: { ...tabular(), volumes: { DWI: 'channels' } },
  });
  expect(channels.size).toBe(2);
  const plane = 10 * 9 * 6;
  for (const [i, s] of ['s1', 's2'].entries()) {
    const image = channels.sample(i).image!;
    expect(image.shape).toEqual([3, 10, 9, 6]);
    expect(maxDiff(image.data.subarray(0, plane), expected[s].t1)).toBeLessThan(1e-3);
    expect(Array.from(image.data.subarray(plane, 2 * plane))).toEqual(expected[s].dwi[0]);
    expect(Array.from(image.data.subarray(2 * plane))).toEqual(expected[s].dwi[2]);
  }
  const chosen = openPlanDataset(plan(['DWI'], [10, 9, 6]), { dataType: 'medical-folder', path: site(), parameters: { ...tabular(), volumes: { DWI: 1 } } });
  expect(Array.from(chosen.sample(1).image!.data)).toEqual(expected.s2.dwi[1]);
  expect(() => openPlanDataset(plan(['DWI_3'], [10, 9, 6]), { dataType: 'medical-folder', path: site(), parameters: { ...tabular(), volumes: { DWI: 'channels' } } }).sample(0))
    .toThrow(/DWI\.nii\.gz: volume 3 requested \(DWI_3\), the image has 3/);
});

test('4-D without the volumes parameter, or with an invalid one, is refused saying what to set', () => {
  expect(() => describeDataset('medical-folder', site(), tabular()))
    .toThrow(/DWI\.nii\.gz: 4-D image with 3 volumes: the dataset parameter volumes must choose one for modality DWI \(\{"DWI": <index>\}\) or read them as channels/);
  expect(describeDataset('medical-folder', site(), { ...tabular(), volumes: { DWI: 0 } }).shape).toMatchObject({ DWI: [10, 9, 6], num_modalities: 4 });
  expect(() => describeDataset('medical-folder', site(), { ...tabular(), volumes: { DWI: 'all' } as never }))
    .toThrow('dataset parameter volumes must map modality folders to a volume index or "channels", not {"DWI":"all"}');
});

test('PET resampled onto the CT grid (resample_to) equals nibabel affines + scipy affine_transform', () => {
  const data = openPlanDataset(plan(['CT', 'PET'], [14, 12, 9]), {
    dataType: 'medical-folder', path: site(), parameters: { ...tabular(), volumes: { DWI: 0 }, resample_to: 'CT' },
  });
  const plane = 14 * 12 * 9;
  for (const [i, s] of ['s1', 's2'].entries()) {
    const image = data.sample(i).image!;
    expect(image.shape).toEqual([2, 14, 12, 9]);
    expect(maxDiff(image.data.subarray(0, plane), expected[s].ct)).toBeLessThan(1e-3);
    expect(maxDiff(image.data.subarray(plane), expected[s].pet_on_ct)).toBeLessThan(1e-5);
    const covered = expected[s].pet_on_ct.filter((v) => v !== 0).length;
    expect(covered).toBeGreaterThan(plane / 3); // part of the CT field of view is outside the PET's
    expect(covered).toBeLessThan(plane);
  }
  // without resampling the grids differ and the plan's size cannot fit both
  expect(() => openPlanDataset(plan(['CT', 'PET'], [14, 12, 9]), { dataType: 'medical-folder', path: site(), parameters: { ...tabular(), volumes: { DWI: 0 } } }).sample(0))
    .toThrow(/modality 'PET' gives \[7, 6, 5\] after preprocessing, the network expects \[14, 12, 9\]/);
  expect(() => openPlanDataset(plan(['PET'], [14, 12, 9]), { dataType: 'medical-folder', path: site(), parameters: { ...tabular(), volumes: { DWI: 0 }, resample_to: 'MR' } }).sample(0))
    .toThrow(/s1[/]MR: no .nii[/].nii.gz image for modality MR/);
});
