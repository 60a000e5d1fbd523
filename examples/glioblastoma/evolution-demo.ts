/**
 * The demo's second part (`fedbiomed-ts demo --task evolution [--quick]`): predict the post-treatment MRI tumour for
 * each radiotherapy type. A U-Net plan conditioned on the technique (one-hot broadcast to channels) and given the
 * planning dose as a channel learns, from the pre-treatment slice, the follow-up tumour and necrotic-core masks.
 * Three centres train it with FedAvg (in this process: each centre's local training is the node engine's
 * trainModel on its own patients, the researcher averages weights by sample count); baselines: each centre alone
 * and all data pooled, same number of epochs. On the held-out patients: Dice of the predicted vs the real follow-up
 * tumour, error of the tumour-area change, responder / non-responder from the predicted change (sensitivity,
 * specificity, AUC), the counterfactual check against the generative model, and PNG panels.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import {
  initBackend, rocAuc, trainModel, definePlan, maskDice as dice, generateTorchPlan, initialWeights, buildModel, trainingSettings,
  unet, exportWeights, TorchTensor, federatedAverage as aggregate, stateDictFromWeightMap,
} from 'fedbiomed-ts';
import type { PlanSpec } from 'fedbiomed-ts';
import { generateCohort } from './cohort';

/**
 * The repository's import-only stand-in of the `fedbiomed` Python package (the one the PyTorch conformance tests use):
 * enough for Debian's python3 to import a generated TorchTrainingPlan without Fed-BioMed installed. A folder, not a
 * module: the demo runs inside the repository.
 */
const TORCH_STANDIN_DIR = path.join(__dirname, '..', '..', 'src', 'plan', 'testing', 'python');
import { EVOLUTION_INPUTS, EvolutionPatient, loadEvolutionCohort, RT_COLUMNS } from './evolution-data';
import { encodePng } from 'fedbiomed-ts';
import { DEFAULT_SITES, RT_TYPES, RtType } from './sites';

export interface EvolutionDemoConfig {
  name: 'default' | 'quick';
  seed: number;
  sites: { name: string; patients: number }[];
  heldOut: number;
  volumeSize: [number, number, number];
  rounds: number;
  epochsPerRound: number;
  batchSize: number;
  baseChannels: number;
  /** Side of the window around the tumour (pixels); 96 mm at either resolution. */
  crop: number;
}

export const EVOLUTION_DEMO: EvolutionDemoConfig = {
  name: 'default', seed: 42, sites: DEFAULT_SITES.map((s) => ({ ...s })), heldOut: 50, volumeSize: [48, 48, 24],
  rounds: 10, epochsPerRound: 3, batchSize: 8, baseChannels: 8, crop: 24,
};
export const QUICK_EVOLUTION_DEMO: EvolutionDemoConfig = {
  ...EVOLUTION_DEMO, name: 'quick', volumeSize: [32, 32, 12], rounds: 8, epochsPerRound: 3, batchSize: 4, baseChannels: 6, crop: 16,
};

/** A responder by the predicted change: the tumour area on the slice at least halved (RANO's partial response). */
export const RESPONSE_CHANGE = -0.5;

export function evolutionPlan(height: number, width: number, baseChannels: number): PlanSpec {
  return definePlan({
    name: 'TumourEvolutionUnet',
    description: 'Follow-up tumour and necrotic-core masks from the pre-treatment slice, dose and RT technique',
    inputs: { image: { modalities: [...EVOLUTION_INPUTS], dims: 2, size: [height, width] }, tabular: { columns: [...RT_COLUMNS] } },
    target: { column: 'followup_seg' },
    // Logits out (BCEWithLogits: stable where a sigmoid saturates); a mask pixel is tumour when its logit is > 0.
    model: unet({ size: [height, width], baseChannels, depth: 2, outChannels: 2, condition: 'tabular' }),
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'adam', lr: 1e-2 },
  });
}

interface Example { patient: EvolutionPatient; caseIndex: number }

function batchOf(examples: Example[], indices: number[]): { inputs: Record<string, tf.Tensor>; target: tf.Tensor } {
  const { height: h, width: w } = examples[0].patient;
  const picked = indices.map((i) => examples[i]);
  const image = new Float32Array(picked.length * h * w * EVOLUTION_INPUTS.length);
  const target = new Float32Array(picked.length * h * w * 2);
  const tabular = new Float32Array(picked.length * RT_TYPES.length);
  picked.forEach(({ patient, caseIndex }, k) => {
    const c = patient.cases[caseIndex];
    image.set(c.image, k * c.image.length);
    target.set(c.target, k * c.target.length);
    tabular[k * RT_TYPES.length + RT_TYPES.indexOf(c.rt)] = 1;
  });
  return {
    inputs: {
      image: tf.tensor4d(image, [picked.length, h, w, EVOLUTION_INPUTS.length]),
      tabular: tf.tensor2d(tabular, [picked.length, RT_TYPES.length]),
    },
    target: tf.tensor4d(target, [picked.length, h, w, 2]),
  };
}

async function trainOn(spec: PlanSpec, weights: Record<string, TorchTensor>, patients: EvolutionPatient[], epochs: number, batchSize: number, seed: number): Promise<Record<string, TorchTensor>> {
  const model = buildModel(spec, { weights });
  try {
    // Training uses each patient's own (factual) follow-up only.
    const examples: Example[] = patients.map((patient) => ({ patient, caseIndex: 0 }));
    const settings = trainingSettings(spec);
    await trainModel(model, { size: examples.length, batch: (indices) => batchOf(examples, indices) }, {
      loader: { batchSize, shuffle: true }, loss: settings.loss, optimizer: settings.optimizer, epochs, seed,
    });
    return exportWeights(model);
  } finally {
    model.dispose();
  }
}

/**
 * FedAvg with the researcher's aggregator (the one the Experiment runs): the mean of the centres' weights, weighted
 * by their numbers of patients, accumulated in float64.
 */
export function federatedAverage(spec: PlanSpec, updates: { site: string; weights: Record<string, TorchTensor>; samples: number }[]): Record<string, TorchTensor> {
  const average = aggregate(updates.map((u) => ({
    nodeId: u.site, sampleSize: u.samples, weights: new Map(Object.entries(u.weights).map(([name, t]) => [name, { dtype: t.dtype, shape: t.shape, data: t.data }])),
  })));
  return stateDictFromWeightMap(spec, average, 0);
}

/** Predicted masks [N][H·W·2] for the given examples. */
function predict(spec: PlanSpec, weights: Record<string, TorchTensor>, examples: Example[]): Float32Array[] {
  const model = buildModel(spec, { weights });
  try {
    const out: Float32Array[] = [];
    for (let start = 0; start < examples.length; start += 16) {
      const indices = Array.from({ length: Math.min(16, examples.length - start) }, (_, i) => start + i);
      const { inputs, target } = batchOf(examples, indices);
      const y = model.forward(inputs, false);
      const data = y.dataSync() as Float32Array;
      const per = data.length / indices.length;
      indices.forEach((_, k) => out.push(sigmoid(data.slice(k * per, (k + 1) * per))));
      tf.dispose([y, target, ...Object.values(inputs)]);
    }
    return out;
  } finally {
    model.dispose();
  }
}

const channel = (data: Float32Array, c: number): Float32Array => data.filter((_, i) => i % 2 === c);
const area = (mask: ArrayLike<number>): number => Array.from(mask).filter((v) => v > 0.5).length;
/** Logits → probabilities (the masks and the panels read probabilities). */
const sigmoid = (logits: Float32Array): Float32Array => logits.map((v) => 1 / (1 + Math.exp(-v)));

export interface EvolutionScores {
  dice: number;
  /** Mean absolute error of the relative tumour-area change (predicted vs real). */
  changeError: number;
  sensitivity: number;
  specificity: number;
  auc: number;
}

function score(spec: PlanSpec, weights: Record<string, TorchTensor>, heldOut: EvolutionPatient[]): EvolutionScores {
  const predictions = predict(spec, weights, heldOut.map((patient) => ({ patient, caseIndex: 0 })));
  const dices: number[] = [];
  const errors: number[] = [];
  const changes: number[] = [];
  heldOut.forEach((p, k) => {
    const predicted = channel(predictions[k], 0);
    const real = channel(p.cases[0].target, 0);
    dices.push(dice(predicted, real));
    const before = Math.max(1, area(p.baseline));
    const change = area(predicted) / before - 1;
    changes.push(change);
    errors.push(Math.abs(change - (area(real) / before - 1)));
  });
  const labels = heldOut.map((p) => p.responder);
  const called = changes.map((c) => c <= RESPONSE_CHANGE);
  const tp = called.filter((c, i) => c && labels[i]).length;
  const tn = called.filter((c, i) => !c && !labels[i]).length;
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    dice: mean(dices), changeError: mean(errors),
    sensitivity: tp / Math.max(1, labels.filter(Boolean).length), specificity: tn / Math.max(1, labels.filter((l) => !l).length),
    auc: rocAuc(labels.map((l) => (l ? 1 : 0)), changes.map((c) => -c)),
  };
}

/** Predictions of every held-out patient under the three techniques: the "what if" the clinicians ask. */
function counterfactualCheck(spec: PlanSpec, weights: Record<string, TorchTensor>, heldOut: EvolutionPatient[]) {
  const byRt = new Map<RtType, Float32Array[]>();
  for (const rt of RT_TYPES) {
    // The patient's inputs with the technique and its planning dose swapped in (case of that technique).
    const examples = heldOut.map((patient) => ({ patient, caseIndex: patient.cases.findIndex((c) => c.rt === rt) }));
    byRt.set(rt, predict(spec, weights, examples));
  }
  const necrosis = (rt: RtType): number[] => byRt.get(rt)!.map((p) => area(channel(p, 1)));
  const realNecrosis = (rt: RtType): number[] => heldOut.map((p) => area(channel(p.cases.find((c) => c.rt === rt)!.target, 1)));
  const diceAll = (rt: RtType): number => {
    const d = heldOut.map((p, k) => dice(channel(byRt.get(rt)![k], 0), channel(p.cases.find((c) => c.rt === rt)!.target, 0)));
    return d.reduce((a, b) => a + b, 0) / d.length;
  };
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const carbonSmaller = necrosis('carbon').filter((v, i) => v <= necrosis('conventional')[i]).length / heldOut.length;
  return {
    predictions: byRt,
    meanNecrosisPx: Object.fromEntries(RT_TYPES.map((rt) => [rt, mean(necrosis(rt))])) as Record<RtType, number>,
    realMeanNecrosisPx: Object.fromEntries(RT_TYPES.map((rt) => [rt, mean(realNecrosis(rt))])) as Record<RtType, number>,
    diceByRt: Object.fromEntries(RT_TYPES.map((rt) => [rt, diceAll(rt)])) as Record<RtType, number>,
    carbonNoLargerShare: carbonSmaller,
  };
}

/** One row of tiles (pre-treatment T1ce, predicted under each technique, real follow-up), masks overlaid. */
function panel(p: EvolutionPatient, predictions: Map<RtType, Float32Array[]>, k: number): Buffer {
  const { height: h, width: w } = p;
  const zoom = 4;
  const tiles: { gray: Float32Array; tumour?: ArrayLike<number>; necrosis?: ArrayLike<number> }[] = [
    { gray: p.t1ce, tumour: p.baseline },
    ...RT_TYPES.map((rt) => ({ gray: p.t1ce, tumour: channel(predictions.get(rt)![k], 0), necrosis: channel(predictions.get(rt)![k], 1) })),
    { gray: p.followUpT1ce, tumour: channel(p.cases[0].target, 0), necrosis: channel(p.cases[0].target, 1) },
  ];
  const gap = 2;
  const width = tiles.length * (w * zoom + gap) - gap;
  const height = h * zoom;
  const rgb = new Uint8Array(width * height * 3).fill(255);
  const max = Math.max(...p.t1ce, ...p.followUpT1ce, 1);
  tiles.forEach((tile, t) => {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < w * zoom; x++) {
        // Volumes are stored with y growing posterior; draw anterior at the top.
        const i = (h - 1 - Math.floor(y / zoom)) * w + Math.floor(x / zoom);
        const g = Math.round((255 * tile.gray[i]) / max);
        let colour = [g, g, g];
        if (tile.necrosis && tile.necrosis[i] > 0.5) colour = [Math.round(0.5 * g + 127), Math.round(0.5 * g + 110), Math.round(0.5 * g)];
        else if (tile.tumour && tile.tumour[i] > 0.5) colour = [Math.round(0.5 * g + 127), Math.round(0.5 * g), Math.round(0.5 * g)];
        rgb.set(colour, (y * width + t * (w * zoom + gap) + x) * 3);
      }
    }
  });
  return encodePng(width, height, rgb);
}

/**
 * The generated PyTorch plan, loaded with `weights` by Debian's python3 (torch) against the stand-in fedbiomed
 * package, on the held-out patients' inputs: the largest absolute difference from the tfjs logits, or the reason
 * it could not run.
 */
function torchReproduction(spec: PlanSpec, weights: Record<string, TorchTensor>, heldOut: EvolutionPatient[], workDir: string): { maxAbsDiff?: number; error?: string } {
  fs.mkdirSync(workDir, { recursive: true });
  const examples = heldOut.map((patient) => ({ patient, caseIndex: 0 }));
  const { inputs, target } = batchOf(examples, examples.map((_, i) => i));
  const model = buildModel(spec, { weights });
  const logits = model.forward(inputs, false);
  // tfjs is channels last; the plan's PyTorch module takes and gives channels first.
  const nchw = (t: tf.Tensor): Float32Array => tf.tidy(() => (t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t).dataSync() as Float32Array);
  const expected = nchw(logits);
  const write = (name: string, data: Float32Array, shape: number[]) => {
    const file = path.join(workDir, `${name}.bin`);
    fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    return { file, shape };
  };
  const image = inputs.image;
  const manifest = {
    plan_dir: workDir, module: 'evolution_plan', class_name: spec.name, input_order: ['image', 'tabular'],
    weights: Object.entries(weights).map(([name, t], i) => ({ name, ...write(`w${i}`, t.data as Float32Array, t.shape) })),
    inputs: {
      image: write('image', nchw(image), [0, 3, 1, 2].map((axis) => image.shape[axis] as number)),
      tabular: write('tabular', inputs.tabular.dataSync() as Float32Array, inputs.tabular.shape),
    },
    output: path.join(workDir, 'output.bin'),
  };
  tf.dispose([logits, target, ...Object.values(inputs)]);
  model.dispose();
  fs.writeFileSync(path.join(workDir, 'evolution_plan.py'), generateTorchPlan(spec));
  fs.writeFileSync(path.join(workDir, 'manifest.json'), JSON.stringify(manifest));
  const run = spawnSync('/usr/bin/python3', [path.join(__dirname, 'python', 'predict_plan.py'), path.join(workDir, 'manifest.json')], {
    encoding: 'utf8', timeout: 120000,
    env: { ...process.env, PYTHONPATH: [TORCH_STANDIN_DIR, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter), OMP_NUM_THREADS: '1' },
  });
  if (run.status !== 0) return { error: `python3 predict_plan.py: ${run.error?.message ?? ''} ${run.stderr.trim().split('\n').slice(-3).join(' ')}` };
  const bytes = fs.readFileSync(manifest.output);
  const theirs = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  if (theirs.length !== expected.length) return { error: `PyTorch gave ${theirs.length} values, tfjs ${expected.length}` };
  let worst = 0;
  for (let i = 0; i < theirs.length; i++) worst = Math.max(worst, Math.abs(theirs[i] - expected[i]));
  return { maxAbsDiff: worst };
}

export interface EvolutionDemoOptions {
  outDir: string;
  quick?: boolean;
  seed?: number;
  out?: NodeJS.WritableStream;
}

export interface EvolutionDemoResult {
  scores: Record<string, EvolutionScores>;
  counterfactual: ReturnType<typeof counterfactualCheck> extends infer T ? Omit<T & object, 'predictions'> : never;
  diceFederated: number;
  diceBestSite: number;
  /** The generated PyTorch plan's predictions vs tfjs (federated weights, held-out inputs). */
  torch: { maxAbsDiff?: number; error?: string };
  seconds: Record<string, number>;
}

export async function runEvolutionDemo(options: EvolutionDemoOptions): Promise<EvolutionDemoResult> {
  const config = { ...(options.quick ? QUICK_EVOLUTION_DEMO : EVOLUTION_DEMO), ...(options.seed !== undefined ? { seed: options.seed } : {}) };
  const print = (line = ''): void => void (options.out ?? process.stdout).write(`${line}\n`);
  const seconds: Record<string, number> = {};
  const started = Date.now();
  const lap = (name: string, t0: number): void => { seconds[name] = (Date.now() - t0) / 1000; };
  await initBackend(() => undefined);
  fs.rmSync(options.outDir, { recursive: true, force: true });
  const cohortDir = path.join(options.outDir, 'cohort');
  let t0 = Date.now();
  print(`Tumour evolution after radiotherapy (${config.name}): generating the cohort with follow-ups…`);
  const cohort = generateCohort({
    outDir: cohortDir, seed: config.seed, sites: config.sites, heldOut: config.heldOut, volumeSize: config.volumeSize,
    formats: { dicom: !options.quick, nifti: true }, followUp: true,
  });
  lap('cohort', t0);
  t0 = Date.now();
  const data = loadEvolutionCohort(cohortDir, cohort, config.crop);
  const { height, width } = data.heldOut[0];
  const spec = evolutionPlan(height, width, config.baseChannels);
  const weights0 = initialWeights(spec, config.seed);
  lap('loading', t0);
  const epochs = config.rounds * config.epochsPerRound;

  t0 = Date.now();
  let global = weights0;
  for (let round = 1; round <= config.rounds; round++) {
    const updates = [];
    for (const [site, patients] of Object.entries(data.sites)) {
      updates.push({ site, weights: await trainOn(spec, global, patients, config.epochsPerRound, config.batchSize, config.seed + round * 7 + site.length), samples: patients.length });
    }
    global = federatedAverage(spec, updates);
    print(`  FedAvg round ${round}/${config.rounds}: held-out Dice ${score(spec, global, data.heldOut).dice.toFixed(3)}`);
  }
  lap('federated', t0);
  const models: Record<string, Record<string, TorchTensor>> = { federated: global };
  t0 = Date.now();
  for (const [site, patients] of Object.entries(data.sites)) models[`${site} alone`] = await trainOn(spec, weights0, patients, epochs, config.batchSize, config.seed);
  models.centralised = await trainOn(spec, weights0, Object.values(data.sites).flat(), epochs, config.batchSize, config.seed);
  lap('baselines', t0);

  const scores = Object.fromEntries(Object.entries(models).map(([name, w]) => [name, score(spec, w, data.heldOut)]));
  print('');
  print(`Held-out patients: ${data.heldOut.length} (slice of largest pre-treatment tumour)`);
  print('model            Dice   |Δarea| err  sens   spec   AUC');
  for (const [name, s] of Object.entries(scores)) {
    print(`${name.padEnd(16)} ${s.dice.toFixed(3)}  ${s.changeError.toFixed(3)}        ${s.sensitivity.toFixed(2)}   ${s.specificity.toFixed(2)}   ${s.auc.toFixed(3)}`);
  }
  const check = counterfactualCheck(spec, global, data.heldOut);
  print('');
  print('Counterfactuals (federated model, every held-out patient under each technique):');
  for (const rt of RT_TYPES) {
    print(`  ${rt.padEnd(12)} predicted necrotic core ${check.meanNecrosisPx[rt].toFixed(1)} px (real ${check.realMeanNecrosisPx[rt].toFixed(1)} px), Dice vs real ${check.diceByRt[rt].toFixed(3)}`);
  }
  print(`  carbon's predicted necrotic core no larger than conventional's for ${(100 * check.carbonNoLargerShare).toFixed(0)}% of patients`);

  const panelsDir = path.join(options.outDir, 'panels');
  fs.mkdirSync(panelsDir, { recursive: true });
  const shown = data.heldOut.slice(0, 4);
  shown.forEach((p, k) => fs.writeFileSync(path.join(panelsDir, `${p.id}.png`), panel(p, check.predictions, k)));
  const torch = torchReproduction(spec, global, data.heldOut, path.join(options.outDir, 'pytorch-check'));
  print(torch.maxAbsDiff !== undefined
    ? `Generated PyTorch plan with the federated weights on the ${data.heldOut.length} held-out patients: max |logit difference| vs tfjs ${torch.maxAbsDiff.toExponential(2)}`
    : `Generated PyTorch plan check did not run: ${torch.error}`);
  const { predictions: _predictions, ...counterfactual } = check;
  const siteDice = Object.entries(scores).filter(([n]) => n.endsWith(' alone')).map(([, s]) => s.dice);
  const result: EvolutionDemoResult = {
    scores, counterfactual, diceFederated: scores.federated.dice, diceBestSite: Math.max(...siteDice), torch, seconds,
  };
  seconds.total = (Date.now() - started) / 1000;
  fs.writeFileSync(path.join(options.outDir, 'evolution-metrics.json'), `${JSON.stringify(result, null, 2)}\n`);
  print('');
  print(`Panels (pre-treatment | predicted conventional, proton, carbon | real follow-up): ${panelsDir}`);
  print(`Timings (s): ${Object.entries(seconds).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
  print(`RESULT dice_federated=${result.diceFederated.toFixed(4)} dice_best_site=${result.diceBestSite.toFixed(4)}`);
  return result;
}
