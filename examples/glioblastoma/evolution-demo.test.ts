/**
 * The evolution demo's parts, on a tiny cohort (the whole demo runs with `npm run demo -- --task evolution`): what a
 * centre's node reads from its medical folder through the plan (inputs and the follow-up target), the held-out
 * patients under the three techniques, the plan and its generated PyTorch, the labelled PNG panels, the
 * counterfactual check, and two FedAvg rounds over the embedded network with a TS node per centre.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodePng } from '../../src/data/png';
import { generateTorchPlan } from '../../src/plan/pytorch';
import { validatePlan } from '../../src/plan/validate';
import { initBackend, initialWeights, openPlanDataset, startEmbeddedNetwork } from 'fedbiomed-ts';
import { Writable } from 'stream';
import { CohortSummary, generateCohort } from './cohort';
import { CHANNEL, EVOLUTION_DATASET, EVOLUTION_INPUTS, EVOLUTION_TAGS, HeldOutPatient, loadHeldOut } from './evolution-data';
import { counterfactualCheck, evolutionPlan, scoreModel } from './evolution-demo';
import { runFederated } from './federated';
import { startHospitals, stopHospitals } from './hospitals';
import { RT_TYPES, RtType } from './sites';
import { renderPanel } from './evolution-panels';
import { drawText, textWidth } from './bitmap-font';

const VOLUME: [number, number, number] = [24, 24, 8];
let root: string;
let cohort: CohortSummary;
let heldOut: HeldOutPatient[];
const spec = evolutionPlan({ volumeSize: VOLUME, baseChannels: 4 });

beforeAll(async () => {
  await initBackend(() => undefined);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'evolution-demo-test-'));
  cohort = generateCohort({
    outDir: path.join(root, 'cohort'), seed: 3, sites: [{ name: 'Caen', patients: 3 }, { name: 'Nice', patients: 2 }], heldOut: 3, volumeSize: VOLUME,
    formats: { dicom: false, nifti: true },
  });
  heldOut = loadHeldOut(spec, path.join(root, 'cohort'), cohort.heldOut);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

test('the plan is a conditioned U-Net with a 3-channel image target; its PyTorch reads the target modalities', () => {
  // A 96 mm box of the 192 mm field at 24 voxels: 12, a multiple of 4 (two poolings).
  expect(spec.inputs.image!.size).toEqual([12, 12]);
  expect(validatePlan(spec).graph.outputShape).toEqual([3, 12, 12]);
  const source = generateTorchPlan(spec);
  expect(source).toContain('nn.ConvTranspose2d(');
  expect(source).toContain('torch.cat([');
  expect(source).toContain('target_modalities=self.TARGET_MODALITIES');
  expect(source).toContain("TARGET_MODALITIES = ['followup_seg', 'followup_injury']");
});

test('the technique reaches every decoder level and the raw inputs (the dose) the last one; the injury Dice is smoothed', () => {
  if (!('nodes' in spec.model)) throw new Error('expected a graph model');
  const nodes = spec.model.nodes;
  const broadcasts = nodes.filter((n) => n.type === 'spatial_broadcast').map((n) => n.name);
  expect(broadcasts).toEqual(['input_rt', 'bottom_rt', 'skip1_rt', 'skip0_rt']);
  expect(nodes.find((n) => n.name === 'skip0_with_rt')!.input).toEqual(expect.arrayContaining(['image', 'skip0_rt']));
  expect(nodes.find((n) => n.name === 'skip1_with_rt')!.input).not.toContain('image');
  const dose = spec.preprocessing.find((s) => s.op === 'normalize' && s.modalities?.includes('dose'));
  // 54 Gy → 0: the injury threshold of the generative model sits at the ReLUs' hinge.
  expect(dose).toMatchObject({ method: 'fixed', mean: 54, std: 6 });
  expect(spec.loss.terms?.map((t) => [t.weight, t.loss.type, t.loss.channel, t.loss.smooth])).toEqual([
    [1, 'bce', undefined, undefined], [1, 'soft_dice', CHANNEL.tumour, undefined], [1, 'soft_dice', CHANNEL.necrosis, undefined],
    [2, 'soft_dice', CHANNEL.injury, 10],
  ]);
});

test('a centre\'s node reads inputs and the follow-up target from its own medical folder', () => {
  const site = cohort.sites[0];
  const dataset = openPlanDataset(spec, EVOLUTION_DATASET.entry(path.join(root, 'cohort'), site));
  expect(dataset.issues).toEqual([]);
  expect(dataset.size).toBe(3);
  const sample = dataset.sample(0);
  expect(sample.image!.shape).toEqual([EVOLUTION_INPUTS.length, 12, 12]);
  expect(Array.from(sample.tabular!).reduce((a, b) => a + b, 0)).toBe(1); // one technique
  if (typeof sample.target === 'number') throw new Error('expected an image target');
  expect(sample.target.shape).toEqual([3, 12, 12]);
  expect(sample.target.data.every((v) => v === 0 || v === 1)).toBe(true);
  expect(sample.target.data.some((v) => v === 1)).toBe(true);
  const batch = dataset.batchSync([0, 1, 2]);
  expect(batch.target.shape).toEqual([3, 12, 12, 3]);
  batch.target.dispose();
  Object.values(batch.inputs).forEach((t) => t.dispose());
});

test('held-out patients: own technique first, then the two counterfactuals, differing only by dose, technique and follow-up', () => {
  expect(heldOut).toHaveLength(3);
  const pixels = 12 * 12;
  for (const p of heldOut) {
    expect(p.cases.map((c) => c.rt).sort()).toEqual(['carbon', 'conventional', 'proton']);
    expect(p.cases[0].rt).toBe(p.rt);
    expect(p.baseline.some((v) => v === 1)).toBe(true);
    for (const c of p.cases) {
      if (typeof c.sample.target === 'number') throw new Error('expected an image target');
      const t = c.sample.target.data;
      // Necrotic core ⊂ tumour.
      for (let i = 0; i < pixels; i++) expect(t[CHANNEL.necrosis * pixels + i]).toBeLessThanOrEqual(t[CHANNEL.tumour * pixels + i]);
    }
    const differing = new Set<number>();
    const [a, b] = [p.cases[0].sample.image!.data, p.cases[1].sample.image!.data];
    a.forEach((v, i) => { if (v !== b[i]) differing.add(Math.floor(i / pixels)); });
    expect([...differing]).toEqual([EVOLUTION_INPUTS.indexOf('dose')]);
    expect(Array.from(p.cases[1].sample.tabular!)).not.toEqual(Array.from(p.cases[0].sample.tabular!));
  }
});

test('the box is centred on each pre-treatment tumour, and the panels show the slice the network sees', () => {
  const [nx, ny] = spec.inputs.image!.size;
  const t1ceChannel = EVOLUTION_INPUTS.indexOf('T1ce');
  for (const p of heldOut) {
    // crop_around centres the box on the tumour's bounding box: its cross-section sits around the grid's centre.
    const xs: number[] = [];
    const ys: number[] = [];
    p.baseline.forEach((v, i) => { if (v === 1) { xs.push(Math.floor(i / ny)); ys.push(i % ny); } });
    expect(Math.abs((Math.min(...xs) + Math.max(...xs)) / 2 - nx / 2)).toBeLessThanOrEqual(1.5);
    expect(Math.abs((Math.min(...ys) + Math.max(...ys)) / 2 - ny / 2)).toBeLessThanOrEqual(1.5);
    // The panel's T1ce is the network's T1ce input before its z-score: the same pixels, linearly related.
    const input = p.cases[0].sample.image!.data.subarray(t1ceChannel * nx * ny, (t1ceChannel + 1) * nx * ny);
    expect(p.t1ce).toHaveLength(nx * ny);
    expect(correlation(p.t1ce, input)).toBeGreaterThan(0.999);
  }
});

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let [ma, mb] = [0, 0];
  for (let i = 0; i < n; i++) { ma += a[i] / n; mb += b[i] / n; }
  let [ab, aa, bb] = [0, 0, 0];
  for (let i = 0; i < n; i++) { ab += (a[i] - ma) * (b[i] - mb); aa += (a[i] - ma) ** 2; bb += (b[i] - mb) ** 2; }
  return ab / Math.sqrt(aa * bb);
}

test('PNG panels: titled tiles and legend, decoded back at the expected size', () => {
  const p = heldOut[0];
  const tile = { title: 'pre-treatment', caption: 'baseline', gray: p.t1ce, tumour: p.baseline };
  const png = renderPanel({ heading: `${p.id}: test`, size: [12, 12], tiles: [tile, tile, tile] });
  const image = decodePng(png, 'panel.png');
  // 12 px upscaled by 16 (192 px tiles), three tiles with 10 px gaps and 12 px margins.
  expect(image.width).toBe(12 * 2 + 3 * 192 + 2 * 10);
  // The heading is drawn in dark ink at the top-left.
  const ink = (x: number, y: number): boolean => image.rgb[(y * image.width + x) * 3] < 60;
  let inked = 0;
  for (let y = 12; y < 26; y++) for (let x = 12; x < 12 + textWidth(p.id, 2); x++) if (ink(x, y)) inked++;
  expect(inked).toBeGreaterThan(50);
});

test('the bitmap font draws known glyphs and a box for unknown ones', () => {
  const canvas = { width: 12, height: 7, rgb: new Uint8Array(12 * 7 * 3) };
  drawText(canvas, 'I~', 0, 0, [255, 255, 255]);
  const on = (x: number, y: number): boolean => canvas.rgb[(y * 12 + x) * 3] === 255;
  expect([0, 1, 2, 3, 4].map((x) => on(x, 0))).toEqual([false, true, true, true, false]); // I's top bar
  expect([6, 7, 8, 9, 10].every((x) => on(x, 0) && on(x, 6))).toBe(true); // the box
  expect(textWidth('AB', 2)).toBe(22);
});

test('the counterfactual check: the generative model\'s own follow-ups pass it, the techniques swapped fail it', () => {
  // A perfect predictor (each technique's simulated follow-up) must show both directions; one that mixes the
  // techniques up (carbon's follow-up given for conventional RT and back, proton's and conventional's likewise) not.
  const targets = (rt: RtType): Float32Array[] => heldOut.map((p) => {
    const t = p.cases.find((c) => c.rt === rt)!.sample.target;
    if (typeof t === 'number') throw new Error('expected an image target');
    return t.data;
  });
  const oracle = new Map(RT_TYPES.map((rt) => [rt, targets(rt)]));
  const good = counterfactualCheck(spec, oracle, heldOut);
  expect(good.directionsHold).toBe(true);
  expect(good.carbonCoreNoLarger).toBe(1);
  expect(good.predicted).toEqual(good.real);
  const swapped = new Map<RtType, Float32Array[]>([['conventional', targets('carbon')], ['carbon', targets('conventional')], ['proton', targets('conventional')]]);
  const bad = counterfactualCheck(spec, swapped, heldOut);
  expect(bad.directionsHold).toBe(false);
});

test('FedAvg over the embedded network: each centre\'s TS node trains the image-target plan on its own folder, approval on', async () => {
  const network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(root, 'network') });
  const lines: string[] = [];
  const out = new Writable({ write: (chunk: Buffer, _encoding, done) => { lines.push(String(chunk)); done(); } });
  try {
    const hospitals = await startHospitals(network, path.join(root, 'cohort'), cohort, path.join(root, 'nodes'), EVOLUTION_DATASET);
    try {
      const result = await runFederated({
        spec, network, hospitals, rounds: 2, epochsPerRound: 1, batchSize: 2, seed: 7, out,
        heldOutScore: (weights) => scoreModel(spec, weights, heldOut).dice, scoreName: 'Dice', tags: EVOLUTION_TAGS,
      });
      expect(result.rounds.map((r) => r.round)).toEqual([1, 2]);
      for (const r of result.rounds) expect(r.heldOutScore).toBeGreaterThanOrEqual(0);
      expect(lines.join('')).toMatch(/approves it/);
      // Every node trained: the aggregate moved away from the round-0 weights, and stayed finite (float tensors;
      // batch norm's num_batches_tracked is an int64 counter).
      const start = initialWeights(spec, 7);
      let moved = 0;
      for (const [name, t] of Object.entries(result.weights)) {
        if (t.dtype !== 'float32') continue;
        const a = t.data as Float32Array;
        const b = start[name].data as Float32Array;
        a.forEach((v, i) => { expect(Number.isFinite(v)).toBe(true); moved = Math.max(moved, Math.abs(v - b[i])); });
      }
      expect(moved).toBeGreaterThan(1e-3);
    } finally {
      await stopHospitals(hospitals);
    }
  } finally {
    await network.close();
  }
}, 120000);
