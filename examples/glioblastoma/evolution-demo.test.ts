/**
 * The evolution demo's parts, on a tiny cohort (the whole demo runs with `npm run demo -- --task evolution`):
 * samples read from the written NIfTI follow-ups, the plan and its generated PyTorch, FedAvg weighting, PNG panels.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodePng } from '../../src/data/png';
import { generateTorchPlan } from '../../src/plan/pytorch';
import { validatePlan } from '../../src/plan/validate';
import { initialWeights } from '../../src/plan/init';
import { TorchTensor } from '../../src/serialize';
import { generateCohort } from './cohort';
import { loadEvolutionCohort } from './evolution-data';
import { evolutionPlan, federatedAverage } from './evolution-demo';
import { encodePng } from 'fedbiomed-ts';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'evolution-demo-test-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

test('samples: the tumour window of each patient, own technique for the sites, all three for the held-out set', () => {
  const dir = path.join(root, 'cohort');
  const cohort = generateCohort({
    outDir: dir, seed: 3, sites: [{ name: 'Caen', patients: 2 }, { name: 'Nice', patients: 2 }], heldOut: 3, volumeSize: [24, 24, 8],
    formats: { dicom: false, nifti: true },
  });
  const data = loadEvolutionCohort(dir, cohort, 12);
  expect(Object.keys(data.sites)).toEqual(['Caen', 'Nice']);
  const all = [...Object.values(data.sites).flat(), ...data.heldOut];
  for (const p of all) {
    expect([p.height, p.width]).toEqual([12, 12]);
    for (const c of p.cases) {
      expect(c.image).toHaveLength(12 * 12 * 6);
      expect(c.target).toHaveLength(12 * 12 * 2);
      expect(c.target.every((v) => v === 0 || v === 1)).toBe(true);
      // Necrotic core ⊂ tumour.
      for (let i = 0; i < 144; i++) expect(c.target[2 * i + 1]).toBeLessThanOrEqual(c.target[2 * i]);
    }
    // The window is centred on the pre-treatment tumour: the mask channel has tumour pixels.
    expect(p.baseline.some((v) => v === 1)).toBe(true);
    expect(Array.from(p.baseline)).toEqual(Array.from({ length: 144 }, (_, i) => p.cases[0].image[6 * i + 5]));
  }
  for (const p of Object.values(data.sites).flat()) expect(p.cases).toHaveLength(1);
  for (const p of data.heldOut) expect(p.cases.map((c) => c.rt).sort()).toEqual(['carbon', 'conventional', 'proton']);
  // Counterfactual inputs differ only by the dose channel (the same pre-treatment MRI).
  const h = data.heldOut[0];
  const differing = new Set<number>();
  h.cases[1].image.forEach((v, i) => { if (v !== h.cases[0].image[i]) differing.add(i % 6); });
  expect([...differing]).toEqual([4]);
});

test('the plan is a conditioned U-Net with an image output; its PyTorch has ConvTranspose2d and torch.cat', () => {
  const spec = evolutionPlan(16, 16, 4);
  expect(validatePlan(spec).graph.outputShape).toEqual([2, 16, 16]);
  const source = generateTorchPlan(spec);
  expect(source).toContain('nn.ConvTranspose2d(');
  expect(source).toContain('torch.cat([');
  expect(source).toContain("nn.Upsample(size=(16, 16), mode='nearest')");
});

test('FedAvg (the researcher aggregator) weights the centres by their numbers of patients', () => {
  const spec = evolutionPlan(8, 8, 2);
  const base = initialWeights(spec, 1);
  const scaled = (factor: number): Record<string, TorchTensor> => Object.fromEntries(Object.entries(base).map(([name, t]) =>
    [name, new TorchTensor('float32', t.shape, (t.data as Float32Array).map((v) => v * factor))]));
  const avg = federatedAverage(spec, [{ site: 'A', weights: scaled(1), samples: 1 }, { site: 'B', weights: scaled(5), samples: 3 }]);
  expect(Object.keys(avg)).toEqual(Object.keys(base));
  for (const [name, t] of Object.entries(avg)) {
    (t.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(4 * (base[name].data as Float32Array)[i], 5));
  }
});

test('PNG panels decode back to their pixels', () => {
  const rgb = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 37) % 256);
  const image = decodePng(encodePng(5, 3, rgb), 'panel.png');
  expect([image.width, image.height]).toEqual([5, 3]);
  expect(Array.from(image.rgb)).toEqual(Array.from(rgb));
});
