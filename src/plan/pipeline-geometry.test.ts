/**
 * The geometric preprocessing steps against independent computations: `resample` against nibabel's
 * `as_closest_canonical` + scipy's `map_coordinates` on the grid the step defines (target spacing along the
 * canonical axes, first voxel's centre kept), linear (order 1) and nearest (order 0); `crop_around` against
 * hand-worked boxes; one image read from an LPS DICOM series and from a RAS-ordered NIfTI file resamples alike. The
 * generated PyTorch plan's side of both is in data-conformance.test.ts.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SeededRandom } from '../engine/prng';
import { phantomVolume, seriesOptions } from '../data/dicom-corpus.test-helper';
import { writeMrSeries } from '../data/dicom-writer';
import { writeNifti } from '../data/nifti';
import { closestCanonical } from '../data/orientation';
import { openPlanDataset } from '../data/plan-dataset';
import { definePlan } from './define';
import { Affine, cropCentre, padCrop, rasAxes, resample } from './pipeline-geometry';
import { writeNpyFloat32 } from './testing/npy';
import { findTorchPython } from './testing/python';

const ORACLE = String.raw`
import json, sys
import numpy as np
import nibabel as nib
from scipy.ndimage import map_coordinates
out = {}
for c in json.load(open(sys.argv[1])):
    canonical = nib.as_closest_canonical(nib.Nifti1Image(np.load(c['file']).astype(np.float64), np.array(c['affine'])))
    a = canonical.affine
    v = np.asarray(canonical.dataobj, dtype=np.float64)
    old = np.sqrt((a[:3, :3] ** 2).sum(axis=0))
    target = np.array(c['spacing'], dtype=np.float64)
    shape = [int(np.floor((n - 1) * o / t + 1e-6)) + 1 for n, o, t in zip(v.shape, old, target)]
    # the output grid: canonical directions, target spacing, same first voxel
    world = (a[:3, :3] / old * target) @ np.indices(shape).reshape(3, -1) + a[:3, 3:4]
    voxels = np.linalg.solve(a[:3, :3], world - a[:3, 3:4])
    values = map_coordinates(v, voxels, order=c['order'], mode='nearest')
    values.astype(np.float32).tofile(c['out'])
    out[c['name']] = shape
print(json.dumps(out))
`;

interface Case {
  name: string;
  shape: number[];
  affine: Affine;
  spacing: [number, number, number];
  nearest: boolean;
}

const deg = Math.PI / 180;
/** A rotation by `angle` in the plane of world axes (p, q), applied to the affine's direction columns. */
function rotated(affine: Affine, p: number, q: number, angle: number): Affine {
  const out = affine.map((row) => row.slice());
  for (let a = 0; a < 3; a++) {
    const [u, v] = [affine[p][a], affine[q][a]];
    out[p][a] = Math.cos(angle) * u - Math.sin(angle) * v;
    out[q][a] = Math.sin(angle) * u + Math.cos(angle) * v;
  }
  return out;
}

const CASES: Case[] = [
  // LPS voxel order (a DICOM-style axial series): i runs to −R, j to −A.
  { name: 'lps_upsample', shape: [7, 9, 6], affine: [[-1.1, 0, 0, 30], [0, -0.9, 0, 12], [0, 0, 2.5, -40], [0, 0, 0, 1]], spacing: [0.7, 0.65, 1.3], nearest: false },
  // Permuted axes (a sagittal acquisition): i → S, j → R, k → −A; downsampling.
  { name: 'permuted_downsample', shape: [8, 7, 9], affine: [[0, 1.2, 0, -5], [0, 0, -0.8, 20], [1.5, 0, 0, 3], [0, 0, 0, 1]], spacing: [1.9, 1.7, 2.3], nearest: false },
  // Slightly oblique (12° about S, 7° about R), anisotropic.
  {
    name: 'oblique',
    shape: [6, 8, 5],
    affine: rotated(rotated([[0.9, 0, 0, 1], [0, -1.3, 0, 2], [0, 0, 2.2, 3], [0, 0, 0, 1]], 0, 1, 12 * deg), 1, 2, 7 * deg),
    spacing: [0.55, 1.7, 1.4],
    nearest: false,
  },
  // A label volume, nearest neighbour.
  { name: 'mask_nearest', shape: [7, 9, 6], affine: [[0, 0, -2.1, 0], [1.1, 0, 0, 0], [0, 0.9, 0, 0], [0, 0, 0, 1]], spacing: [1.7, 0.65, 1.3], nearest: true },
];

let results: Record<string, { ts: { data: Float32Array; shape: number[] }; oracle: Float32Array; oracleShape: number[] }>;
let work: string;

beforeAll(() => {
  const python = findTorchPython();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-geometry-'));
  const rng = new SeededRandom(11);
  const manifest = [];
  const ts: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (const c of CASES) {
    const n = c.shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, () => (c.nearest ? Math.floor(4 * rng.next()) : 100 * rng.next() - 20));
    const file = path.join(work, `${c.name}.npy`);
    writeNpyFloat32(file, data, c.shape);
    manifest.push({ name: c.name, file, affine: c.affine, spacing: c.spacing, order: c.nearest ? 0 : 1, out: path.join(work, `${c.name}.bin`) });
    const y = resample({ data, shape: [1, ...c.shape] }, c.affine, { op: 'resample', spacing: c.spacing, nearest: c.nearest ? ['M'] : undefined }, 'M');
    ts[c.name] = { data: y.data, shape: y.shape.slice(1) };
  }
  fs.writeFileSync(path.join(work, 'manifest.json'), JSON.stringify(manifest));
  fs.writeFileSync(path.join(work, 'oracle.py'), ORACLE);
  const run = spawnSync(python.executable, [path.join(work, 'oracle.py'), path.join(work, 'manifest.json')], { encoding: 'utf8', timeout: 120000 });
  if (run.status !== 0) throw new Error(`nibabel/scipy oracle failed (needs python3-nibabel and python3-scipy): ${run.stderr}`);
  const shapes = JSON.parse(run.stdout) as Record<string, number[]>;
  results = {};
  for (const c of CASES) {
    const bytes = fs.readFileSync(path.join(work, `${c.name}.bin`));
    const oracle = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    results[c.name] = { ts: ts[c.name], oracle, oracleShape: shapes[c.name] };
  }
}, 120000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.each(CASES.map((c) => c.name))('resample %s', (name) => {
  test('equals nibabel as_closest_canonical + scipy map_coordinates on the target grid', () => {
    const r = results[name];
    expect(r.ts.shape).toEqual(r.oracleShape);
    expect(r.ts.data.length).toBe(r.oracle.length);
    let worst = 0;
    for (let i = 0; i < r.oracle.length; i++) worst = Math.max(worst, Math.abs(r.ts.data[i] - r.oracle[i]));
    expect(worst).toBeLessThan(1e-4);
  });
});

test('RAS axes of a permuted, flipped affine and the output size rule', () => {
  const { oldOf, signs, norms } = rasAxes([[0, 1.2, 0, 0], [0, 0, -0.8, 0], [1.5, 0, 0, 0], [0, 0, 0, 1]]);
  expect(oldOf).toEqual([1, 2, 0]);
  expect(signs).toEqual([1, -1, 1]);
  expect(norms.map((n) => Number(n.toFixed(6)))).toEqual([1.5, 1.2, 0.8]);
  // 10 voxels of 1 mm to 3 mm: centres 0, 3, 6, 9 (the last input centre is reached exactly, so it is kept).
  const y = resample({ data: Float32Array.from({ length: 10 }, (_, i) => i), shape: [1, 10, 1, 1] }, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], { op: 'resample', spacing: [3, 1, 1] }, 'M');
  expect(Array.from(y.data)).toEqual([0, 3, 6, 9]);
  expect(() => rasAxes([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])).toThrow(/degenerate voxel axis/);
});

describe('crop_around', () => {
  // A [1, 6, 7] image: value 10·i + j; mask with voxels at (1, 2), (3, 5), (2, 4).
  const image = { data: Float32Array.from({ length: 42 }, (_, f) => 10 * Math.floor(f / 7) + (f % 7)), shape: [1, 6, 7] };
  const mask = { data: new Float32Array(42), shape: [1, 6, 7] };
  for (const [i, j] of [[1, 2], [3, 5], [2, 4]]) mask.data[i * 7 + j] = 1;

  test('mask: centre of the bounding box, floor((first + last) / 2) per axis', () => {
    expect(cropCentre(mask, 'mask')).toEqual([2, 3]); // rows 1..3, columns 2..5
  });

  test('mask with labels: the bounding box of the voxels holding one of them (a tumour core, not its oedema)', () => {
    const seg = { data: Float32Array.from(mask.data, (v, f) => (v ? [4, 1, 2][[1 * 7 + 2, 3 * 7 + 5, 2 * 7 + 4].indexOf(f)] : 0)), shape: [1, 6, 7] };
    expect(cropCentre(seg, 'mask')).toEqual([2, 3]); // every label > 0, as without labels
    expect(cropCentre(seg, 'mask', 1, [1, 4])).toEqual([2, 3]); // (1, 2) and (3, 5)
    expect(cropCentre(seg, 'mask', 1, [2, 4])).toEqual([1, 3]); // (1, 2) and (2, 4): rows 1..2, columns 2..4
    expect(cropCentre(seg, 'mask', 1, [9])).toEqual([3, 3]); // none of them: the volume centre
  });

  test('an empty mask centres the box on the volume', () => {
    expect(cropCentre({ data: new Float32Array(42), shape: [1, 6, 7] }, 'mask')).toEqual([3, 3]);
  });

  test('brightest: the maximum voxel, the first in C order on ties, over every channel', () => {
    const two = { data: new Float32Array(2 * 42), shape: [2, 6, 7] };
    two.data[42 + 4 * 7 + 1] = 5;
    two.data[42 + 5 * 7 + 6] = 5;
    expect(cropCentre(two, 'brightest')).toEqual([4, 1]);
  });

  test('brightest with smooth: the centre of the brightest k-wide box mean, not a lone hot voxel', () => {
    const x = { data: new Float32Array(8 * 9), shape: [1, 8, 9] };
    x.data[0] = 10; // one hot voxel in the corner
    for (let i = 4; i <= 6; i++) for (let j = 5; j <= 7; j++) x.data[i * 9 + j] = 5; // a 3×3 region around (5, 6)
    expect(cropCentre(x, 'brightest')).toEqual([0, 0]);
    expect(cropCentre(x, 'brightest', 3)).toEqual([5, 6]);
    // two 2×2 regions: the boxes at (0, 0) and (4, 4) both sum 4 (zero outside); a tie keeps the first in C order
    const y = { data: new Float32Array(8 * 9), shape: [1, 8, 9] };
    for (const [i, j] of [[0, 0], [0, 1], [1, 0], [1, 1], [4, 4], [4, 5], [5, 4], [5, 5]]) y.data[i * 9 + j] = 1;
    expect(cropCentre(y, 'brightest', 3)).toEqual([0, 0]);
    y.data[5 * 9 + 5] = 1.5;
    expect(cropCentre(y, 'brightest', 3)).toEqual([4, 4]);
  });

  test('the box is padded where it leaves the volume', () => {
    // centre (5, 0), size 3×4: rows 4..6, columns −2..1
    const out = padCrop(image, [4, -2], [3, 4], -1);
    expect(out.shape).toEqual([1, 3, 4]);
    expect(Array.from(out.data)).toEqual([-1, -1, 40, 41, -1, -1, 50, 51, -1, -1, -1, -1]);
    expect(Array.from(padCrop(image, [7, 0], [2, 2], 0).data)).toEqual([0, 0, 0, 0]);
  });
});

test('one image stored as an LPS DICOM series and as a RAS-ordered NIfTI gives one resampled plan input', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-geometry-readers-'));
  try {
    const volume = phantomVolume([9, 8, 5], 3); // axial, x to the patient's left: LPS voxel order
    writeMrSeries(path.join(dir, 'dicom', 'P-1', 'mr'), volume, seriesOptions('t1', 'P-1'));
    fs.writeFileSync(path.join(dir, 'dicom', 'clinical.csv'), 'id,y\nP-1,1\n');
    const canonical = closestCanonical(volume); // the same voxels in RAS order (x and y reversed)
    expect(canonical.data).not.toEqual(volume.data);
    fs.mkdirSync(path.join(dir, 'nifti', 'P-1', 'MR'), { recursive: true });
    writeNifti(path.join(dir, 'nifti', 'P-1', 'MR', 'mr.nii'), canonical);
    fs.writeFileSync(path.join(dir, 'nifti', 'clinical.csv'), 'id,y\nP-1,1\n');
    const spec = definePlan({
      name: 'ReaderGeometry',
      inputs: { image: { modalities: ['MR'], dims: 3, size: [5, 8, 3] } },
      target: { column: 'y' },
      // 9 × 0.9 mm → 6 voxels of 1.3 mm; 8 × 0.9 mm → 10 of 0.7 mm; 5 × 1.2 mm → 3 of 2 mm
      preprocessing: [{ op: 'resample', spacing: [1.3, 0.7, 2] }, { op: 'center_crop', size: [5, 8, 3] }],
      model: { image: [{ type: 'flatten' }], head: [{ type: 'dense', outFeatures: 1 }] },
      loss: { type: 'mse' },
      optimizer: { type: 'sgd', lr: 0.1 },
    });
    const fromDicom = openPlanDataset(spec, {
      dataType: 'dicom',
      path: path.join(dir, 'dicom'),
      parameters: { tabular_file: path.join(dir, 'dicom', 'clinical.csv'), index_col: 0, series_rules: [{ role: 'MR', modality: 'MR', description: 't1' }] },
    }).sample(0).image!;
    const fromNifti = openPlanDataset(spec, {
      dataType: 'medical-folder',
      path: path.join(dir, 'nifti'),
      parameters: { tabular_file: path.join(dir, 'nifti', 'clinical.csv'), index_col: 0 },
    }).sample(0).image!;
    expect(fromDicom.shape).toEqual([1, 5, 8, 3]);
    expect(fromNifti.shape).toEqual(fromDicom.shape);
    let worst = 0;
    for (let i = 0; i < fromDicom.data.length; i++) worst = Math.max(worst, Math.abs(fromDicom.data[i] - fromNifti.data[i]));
    expect(worst).toBeLessThan(1e-3); // intensities up to 4000
    expect(Math.max(...fromDicom.data) - Math.min(...fromDicom.data)).toBeGreaterThan(10);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
