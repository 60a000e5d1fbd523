/**
 * The demo's second part (`fedbiomed-ts demo --task evolution [--quick]`): predict the post-treatment MRI tumour for
 * each radiotherapy type. A U-Net plan conditioned on the technique (one-hot broadcast to channels, down to the
 * decoder) and given the planning dose as a channel (evolution-model.ts) learns, from the pre-treatment MRI, the follow-up tumour, necrotic-core and
 * radiation-injury cross-sections on the axial slice through the tumour (the plan's image target, read by the nodes from their own medical folders).
 *   1. the cohort with follow-ups (NIfTI medical folder per centre, counterfactual follow-ups for the held-out set),
 *   2. the embedded network, one TS node per centre with its own folder, plan approval on,
 *   3. the researcher's Experiment: approval handshake, N FedAvg rounds over the network,
 *   4. baselines with the same plan and budget: each centre alone, all data pooled,
 *   5. on the held-out patients: Dice of the predicted vs real follow-up tumour, error of the change of the tumour's
 *      area on that slice, responder / non-responder from the predicted change (sensitivity, specificity, AUC),
 *   6. the counterfactual check (every held-out patient under the three techniques, against the generative model's
 *      directions), PNG panels, and the generated PyTorch plan run on the federated weights.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import {
  buildModel, definePlan, generateTorchPlan, initBackend, makeBatch, maskDice, openPlanDataset, planHash, rocAuc, startEmbeddedNetwork,
  trainLocally, trainPooled,
} from 'fedbiomed-ts';
import type { PlanSample, PlanSpec, TorchTensor, Vec3 } from 'fedbiomed-ts';
import { generateCohort } from './cohort';
import {
  CHANNEL, EVOLUTION_CHANNELS, EVOLUTION_DATASET, EVOLUTION_INPUTS, EVOLUTION_TAGS, evolutionGrid, evolutionPreprocessing, HeldOutPatient,
  loadHeldOut,
} from './evolution-data';
import { evolutionLoss, evolutionUnet } from './evolution-model';
import { renderPanel, RT_LABEL } from './evolution-panels';
import { runFederated } from './federated';
import { startHospitals, stopHospitals } from './hospitals';
import { DEFAULT_SITES, RT_TYPES, RtType } from './sites';

/**
 * The repository's import-only stand-in of the `fedbiomed` Python package (the one the PyTorch conformance tests use):
 * enough for Debian's python3 to import a generated TorchTrainingPlan without Fed-BioMed installed. A folder, not a
 * module: the demo runs inside the repository.
 */
const TORCH_STANDIN_DIR = path.join(__dirname, '..', '..', 'src', 'plan', 'testing', 'python');

export interface EvolutionDemoConfig {
  name: 'default' | 'quick';
  seed: number;
  sites: { name: string; patients: number }[];
  heldOut: number;
  volumeSize: Vec3;
  rounds: number;
  epochsPerRound: number;
  batchSize: number;
  baseChannels: number;
}

export const EVOLUTION_DEMO: EvolutionDemoConfig = {
  name: 'default', seed: 42, sites: DEFAULT_SITES.map((s) => ({ ...s })), heldOut: 50, volumeSize: [48, 48, 24],
  // Batch 4 (was 8): on the slice through the tumour, batch 8 let the federated model's injury mask collapse to
  // none (README, "The tumour-centred crop").
  rounds: 10, epochsPerRound: 3, batchSize: 4, baseChannels: 8,
};
export const QUICK_EVOLUTION_DEMO: EvolutionDemoConfig = {
  ...EVOLUTION_DEMO, name: 'quick', volumeSize: [48, 48, 12], rounds: 8, epochsPerRound: 3, batchSize: 4, baseChannels: 6,
};

/** A responder by the predicted change: the tumour's area on the slice through it at least halved (RANO's partial response). */
export const RESPONSE_CHANGE = -0.5;

export function evolutionPlan(config: Pick<EvolutionDemoConfig, 'volumeSize' | 'baseChannels'>): PlanSpec {
  const size = evolutionGrid(config.volumeSize);
  return definePlan({
    name: 'TumourEvolutionUnet',
    description: 'Follow-up tumour, necrotic-core and radiation-injury cross-sections (96 mm box, slice through the tumour) from the pre-treatment MRI, dose and RT technique',
    inputs: { image: { modalities: [...EVOLUTION_INPUTS], dims: 2, size }, tabular: { columns: ['rt_type'] } },
    target: { channels: EVOLUTION_CHANNELS },
    preprocessing: evolutionPreprocessing(config.volumeSize),
    // Logits out (stable where a sigmoid saturates); a mask pixel is set when its logit is > 0. The network and the
    // loss are explained in evolution-model.ts (what the counterfactual check needed of them).
    model: evolutionUnet({ size, baseChannels: config.baseChannels, depth: 2, outChannels: EVOLUTION_CHANNELS.length }),
    loss: evolutionLoss(),
    // 3e-3 (was 1e-2) and decoupled weight decay: the last round's held-out Dice varies less between seeds, and the
    // federated model stays above the best centre alone (README, "Why the federated model only tied").
    optimizer: { type: 'adamw', lr: 3e-3, weightDecay: 0.05 },
  });
}

/** Predicted probabilities per sample, channels first [C·X·Y]. */
export function predictMasks(spec: PlanSpec, weights: Record<string, TorchTensor>, samples: PlanSample[]): Float32Array[] {
  const model = buildModel(spec, { weights });
  try {
    const out: Float32Array[] = [];
    for (let start = 0; start < samples.length; start += 16) {
      const chunk = samples.slice(start, start + 16);
      const { inputs, target } = makeBatch(spec, chunk);
      const probabilities = tf.tidy(() => tf.sigmoid(tf.transpose(model.forward(inputs, false), [0, 3, 1, 2])));
      const data = probabilities.dataSync() as Float32Array;
      const per = data.length / chunk.length;
      chunk.forEach((_, k) => out.push(data.slice(k * per, (k + 1) * per)));
      tf.dispose([probabilities, target, ...Object.values(inputs)]);
    }
    return out;
  } finally {
    model.dispose();
  }
}

const channelOf = (data: Float32Array, c: number, pixels: number): Float32Array => data.subarray(c * pixels, (c + 1) * pixels);
const area = (mask: ArrayLike<number>): number => Array.from(mask).filter((v) => v > 0.5).length;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const targetOf = (sample: PlanSample): Float32Array => (typeof sample.target === 'number' ? new Float32Array(0) : sample.target.data);

export interface EvolutionScores {
  /** Mean Dice of the predicted vs real follow-up tumour. */
  dice: number;
  /** Mean absolute error of the relative change of the tumour's area on the slice through it (predicted vs real). */
  changeError: number;
  sensitivity: number;
  specificity: number;
  auc: number;
}

export function scoreModel(spec: PlanSpec, weights: Record<string, TorchTensor>, heldOut: HeldOutPatient[]): EvolutionScores {
  const pixels = spec.inputs.image!.size.reduce((a, b) => a * b, 1);
  const predictions = predictMasks(spec, weights, heldOut.map((p) => p.cases[0].sample));
  const dices: number[] = [];
  const errors: number[] = [];
  const changes: number[] = [];
  heldOut.forEach((p, k) => {
    const predicted = channelOf(predictions[k], CHANNEL.tumour, pixels);
    const real = channelOf(targetOf(p.cases[0].sample), CHANNEL.tumour, pixels);
    dices.push(maskDice(predicted, real));
    const before = Math.max(1, area(p.baseline));
    const change = area(predicted) / before - 1;
    changes.push(change);
    errors.push(Math.abs(change - (area(real) / before - 1)));
  });
  const labels = heldOut.map((p) => p.responder);
  const called = changes.map((c) => c <= RESPONSE_CHANGE);
  const tp = called.filter((c, i) => c && labels[i]).length;
  const tn = called.filter((c, i) => !c && !labels[i]).length;
  return {
    dice: mean(dices), changeError: mean(errors),
    sensitivity: tp / Math.max(1, labels.filter(Boolean).length), specificity: tn / Math.max(1, labels.filter((l) => !l).length),
    auc: rocAuc(labels.map((l) => (l ? 1 : 0)), changes.map((c) => -c)),
  };
}

export interface CounterfactualCheck {
  /** Mean predicted and real (simulated) areas, in grid pixels, per technique. */
  predicted: Record<RtType, { necrosis: number; injury: number; tumour: number }>;
  real: Record<RtType, { necrosis: number; injury: number; tumour: number }>;
  diceByRt: Record<RtType, number>;
  /** Share of patients whose predicted necrotic core under carbon is no larger than under conventional RT. */
  carbonCoreNoLarger: number;
  /** Share of patients whose predicted radiation injury under proton therapy is no larger than under conventional RT. */
  protonInjuryNoLarger: number;
  /** The two directions hold on average (mean predicted carbon core < conventional, proton injury < conventional). */
  directionsHold: boolean;
}

const caseOf = (p: HeldOutPatient, rt: RtType): HeldOutPatient['cases'][number] => p.cases.find((c) => c.rt === rt)!;

/** Predictions of every held-out patient under the three techniques: the "what if" the clinicians ask. */
export function counterfactualPredictions(spec: PlanSpec, weights: Record<string, TorchTensor>, heldOut: HeldOutPatient[]): Map<RtType, Float32Array[]> {
  return new Map(RT_TYPES.map((rt) => [rt, predictMasks(spec, weights, heldOut.map((p) => caseOf(p, rt).sample))] as const));
}

/**
 * The counterfactual predictions (masks per technique, channels first, in `heldOut` order) against the generative
 * model: its simulated follow-up under each technique, and its two directions (carbon ions shrink the necrotic core
 * more than conventional RT; proton therapy injures less healthy brain than conventional RT).
 */
export function counterfactualCheck(spec: PlanSpec, predictions: Map<RtType, Float32Array[]>, heldOut: HeldOutPatient[]): CounterfactualCheck {
  const pixels = spec.inputs.image!.size.reduce((a, b) => a * b, 1);
  const areas = (rt: RtType, channel: number, source: 'predicted' | 'real'): number[] => heldOut.map((p, k) =>
    area(channelOf(source === 'predicted' ? predictions.get(rt)![k] : targetOf(caseOf(p, rt).sample), channel, pixels)));
  const summary = (source: 'predicted' | 'real') => Object.fromEntries(RT_TYPES.map((rt) => [rt, {
    tumour: mean(areas(rt, CHANNEL.tumour, source)), necrosis: mean(areas(rt, CHANNEL.necrosis, source)), injury: mean(areas(rt, CHANNEL.injury, source)),
  }])) as Record<RtType, { necrosis: number; injury: number; tumour: number }>;
  const share = (a: number[], b: number[]): number => a.filter((v, i) => v <= b[i]).length / Math.max(1, a.length);
  const predicted = summary('predicted');
  return {
    predicted, real: summary('real'),
    diceByRt: Object.fromEntries(RT_TYPES.map((rt) => [rt, mean(heldOut.map((p, k) =>
      maskDice(channelOf(predictions.get(rt)![k], CHANNEL.tumour, pixels), channelOf(targetOf(caseOf(p, rt).sample), CHANNEL.tumour, pixels))))])) as Record<RtType, number>,
    carbonCoreNoLarger: share(areas('carbon', CHANNEL.necrosis, 'predicted'), areas('conventional', CHANNEL.necrosis, 'predicted')),
    protonInjuryNoLarger: share(areas('proton', CHANNEL.injury, 'predicted'), areas('conventional', CHANNEL.injury, 'predicted')),
    directionsHold: predicted.carbon.necrosis < predicted.conventional.necrosis && predicted.proton.injury < predicted.conventional.injury,
  };
}

function changeText(after: ArrayLike<number>, before: ArrayLike<number>): string {
  const change = area(after) / Math.max(1, area(before)) - 1;
  return `area ${change >= 0 ? '+' : ''}${(100 * change).toFixed(0)}%`;
}

/** The panel of one held-out patient (pre-treatment, predicted under each technique, real follow-up). */
function patientPanel(spec: PlanSpec, p: HeldOutPatient, predictions: Map<RtType, Float32Array[]>, k: number): Buffer {
  const size = spec.inputs.image!.size as [number, number];
  const pixels = size[0] * size[1];
  const own = targetOf(p.cases[0].sample);
  const masks = (data: Float32Array) => ({
    tumour: channelOf(data, CHANNEL.tumour, pixels), necrosis: channelOf(data, CHANNEL.necrosis, pixels), injury: channelOf(data, CHANNEL.injury, pixels),
  });
  return renderPanel({
    heading: `${p.id}: treated with ${RT_LABEL[p.rt]}, ${p.responder ? 'responder' : 'non-responder'}`,
    size,
    tiles: [
      { title: 'pre-treatment', caption: 'baseline', gray: p.t1ce, tumour: p.baseline },
      ...RT_TYPES.map((rt) => ({
        title: `${rt === p.rt ? '*' : ''}${RT_LABEL[rt]}`, caption: `pred. ${changeText(channelOf(predictions.get(rt)![k], CHANNEL.tumour, pixels), p.baseline)}`,
        gray: p.t1ce, ...masks(predictions.get(rt)![k]),
      })),
      { title: 'real follow-up', caption: `real ${changeText(channelOf(own, CHANNEL.tumour, pixels), p.baseline)}`, gray: p.followUpT1ce, ...masks(own) },
    ],
  });
}

/**
 * The generated PyTorch plan, loaded with `weights` by Debian's python3 (torch) against the stand-in fedbiomed
 * package, on the held-out patients' inputs: the largest absolute difference from the tfjs logits, or the reason
 * it could not run.
 */
function torchReproduction(spec: PlanSpec, weights: Record<string, TorchTensor>, heldOut: HeldOutPatient[], workDir: string): { maxAbsDiff?: number; error?: string } {
  fs.mkdirSync(workDir, { recursive: true });
  const { inputs, target } = makeBatch(spec, heldOut.map((p) => p.cases[0].sample));
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
    // float32 files (predict_plan.py reads every file so); load_state_dict casts batch norm's int64 counter back.
    weights: Object.entries(weights).map(([name, t], i) => ({
      name, ...write(`w${i}`, t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number | bigint>, Number), t.shape),
    })),
    inputs: {
      image: write('image', nchw(image), [0, 3, 1, 2].map((axis) => image.shape[axis])),
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
  out?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface EvolutionDemoResult {
  config: EvolutionDemoConfig;
  plan: { name: string; hash: string; grid: number[] };
  /** By model: 'federated', '<site> alone', 'centralised'. */
  scores: Record<string, EvolutionScores>;
  counterfactual: CounterfactualCheck;
  diceFederated: number;
  diceBestSite: number;
  heldOut: number;
  /** Federated rounds: held-out Dice of the global model after each. */
  rounds: { round: number; dice: number; seconds: number }[];
  /** The generated PyTorch plan's predictions vs tfjs (federated weights, held-out inputs). */
  torch: { maxAbsDiff?: number; error?: string };
  /** PNG panels, relative to the output folder. */
  panels: string[];
  seconds: Record<string, number>;
}

export async function runEvolutionDemo(options: EvolutionDemoOptions): Promise<EvolutionDemoResult> {
  const config = { ...(options.quick ? QUICK_EVOLUTION_DEMO : EVOLUTION_DEMO), ...(options.seed !== undefined ? { seed: options.seed } : {}) };
  const out = options.out ?? process.stdout;
  const print = (line = ''): void => void out.write(`${line}\n`);
  const seconds: Record<string, number> = {};
  const started = Date.now();
  const lap = (name: string, t0: number): void => { seconds[name] = (Date.now() - t0) / 1000; };
  await initBackend(() => undefined);
  fs.rmSync(options.outDir, { recursive: true, force: true });
  fs.mkdirSync(options.outDir, { recursive: true });
  const cohortDir = path.join(options.outDir, 'cohort');
  let t0 = Date.now();
  print(`Tumour evolution after radiotherapy (${config.name}): generating the cohort with follow-ups…`);
  const cohort = generateCohort({
    outDir: cohortDir, seed: config.seed, sites: config.sites, heldOut: config.heldOut, volumeSize: config.volumeSize,
    formats: { dicom: false, nifti: true }, followUp: true,
  });
  lap('cohort', t0);
  const spec = evolutionPlan(config);
  const hash = planHash(spec);
  const grid = spec.inputs.image!.size;
  t0 = Date.now();
  const heldOut = loadHeldOut(spec, cohortDir, cohort.heldOut);
  lap('held-out loading', t0);
  print(`  plan ${spec.name} (sha256 ${hash.slice(0, 16)}…): ${EVOLUTION_INPUTS.join('/')} + RT one-hot → ` +
    `${EVOLUTION_CHANNELS.length} follow-up masks on a ${grid.join('x')} grid; ${heldOut.length} held-out patients`);

  t0 = Date.now();
  const network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(options.outDir, 'network') });
  const rounds: EvolutionDemoResult['rounds'] = [];
  let federated: Awaited<ReturnType<typeof runFederated>>;
  try {
    const hospitals = await startHospitals(network, cohortDir, cohort, path.join(options.outDir, 'nodes'), EVOLUTION_DATASET);
    try {
      for (const h of hospitals) print(`  [${h.site}] node ${h.nodeId} up, dataset ${h.datasetId} registered (NIfTI medical folder, approval required)`);
      federated = await runFederated({
        spec, network, hospitals, rounds: config.rounds, epochsPerRound: config.epochsPerRound, batchSize: config.batchSize, seed: config.seed, out,
        heldOutScore: (weights) => scoreModel(spec, weights, heldOut).dice, scoreName: 'Dice', tags: EVOLUTION_TAGS,
      });
      for (const r of federated.rounds) rounds.push({ round: r.round, dice: r.heldOutScore, seconds: r.seconds });
    } finally {
      await stopHospitals(hospitals);
    }
  } finally {
    await network.close();
  }
  lap('federated', t0);

  t0 = Date.now();
  const epochs = config.rounds * config.epochsPerRound;
  const local = { epochs, batchSize: config.batchSize, initSeed: config.seed, shuffleSeed: config.seed };
  const models: Record<string, Record<string, TorchTensor>> = { federated: federated.weights };
  const datasets = cohort.sites.map((split) => openPlanDataset(spec, EVOLUTION_DATASET.entry(cohortDir, split)));
  for (const [i, split] of cohort.sites.entries()) {
    const all = Array.from({ length: datasets[i].size }, (_, k) => k);
    models[`${split.name} alone`] = (await trainLocally(spec, datasets[i].batchSource(all), local)).weights;
  }
  models.centralised = (await trainPooled(spec, datasets, local)).weights;
  lap('baselines', t0);

  const scores = Object.fromEntries(Object.entries(models).map(([name, w]) => [name, scoreModel(spec, w, heldOut)]));
  print('');
  print(`Held-out patients: ${heldOut.length} (tumour cross-sections on the axial slice through the tumour, 96 mm box)`);
  print('model            Dice   |Δarea| err  sens   spec   AUC');
  for (const [name, s] of Object.entries(scores)) {
    print(`${name.padEnd(16)} ${s.dice.toFixed(3)}  ${s.changeError.toFixed(3)}        ${s.sensitivity.toFixed(2)}   ${s.specificity.toFixed(2)}   ${s.auc.toFixed(3)}`);
  }
  const predictions = counterfactualPredictions(spec, federated.weights, heldOut);
  const check = counterfactualCheck(spec, predictions, heldOut);
  print('');
  print('Counterfactuals (federated model, every held-out patient under each technique; areas in grid pixels):');
  for (const rt of RT_TYPES) {
    const p = check.predicted[rt];
    const r = check.real[rt];
    print(`  ${rt.padEnd(12)} necrotic core ${p.necrosis.toFixed(1)} (real ${r.necrosis.toFixed(1)}), radiation injury ${p.injury.toFixed(1)} ` +
      `(real ${r.injury.toFixed(1)}), tumour Dice vs real ${check.diceByRt[rt].toFixed(3)}`);
  }
  print(`  carbon's predicted necrotic core no larger than conventional's for ${(100 * check.carbonCoreNoLarger).toFixed(0)}% of patients; ` +
    `proton's predicted injury no larger than conventional's for ${(100 * check.protonInjuryNoLarger).toFixed(0)}%`);
  print(`  directions of the generative model (carbon: smaller core, proton: less injury) ${check.directionsHold ? 'hold' : 'DO NOT hold'} on average`);

  const panelsDir = path.join(options.outDir, 'panels');
  fs.mkdirSync(panelsDir, { recursive: true });
  const panels = heldOut.slice(0, 4).map((p, k) => {
    const file = path.join(panelsDir, `${p.id}.png`);
    fs.writeFileSync(file, patientPanel(spec, p, predictions, k));
    return path.relative(options.outDir, file);
  });
  const torch = torchReproduction(spec, federated.weights, heldOut, path.join(options.outDir, 'pytorch-check'));
  print(torch.maxAbsDiff !== undefined
    ? `Generated PyTorch plan with the federated weights on the ${heldOut.length} held-out patients: max |logit difference| vs tfjs ${torch.maxAbsDiff.toExponential(2)}`
    : `Generated PyTorch plan check did not run: ${torch.error}`);
  const siteDice = Object.entries(scores).filter(([n]) => n.endsWith(' alone')).map(([, s]) => s.dice);
  seconds.total = (Date.now() - started) / 1000;
  const result: EvolutionDemoResult = {
    config, plan: { name: spec.name, hash, grid }, scores, counterfactual: check, diceFederated: scores.federated.dice,
    diceBestSite: Math.max(...siteDice), heldOut: heldOut.length, rounds, torch, panels, seconds,
  };
  fs.writeFileSync(path.join(options.outDir, 'evolution-metrics.json'), `${JSON.stringify(result, null, 2)}\n`);
  print('');
  print(`Panels (pre-treatment | predicted conventional, proton, carbon | real follow-up): ${panelsDir}`);
  print(`Timings (s): ${Object.entries(seconds).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
  print(`RESULT dice_federated=${result.diceFederated.toFixed(4)} dice_best_site=${result.diceBestSite.toFixed(4)}`);
  return result;
}
