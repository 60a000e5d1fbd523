/**
 * `fedbiomed-ts demo` (`npm run demo`): the whole story in one command.
 *   1. generate the synthetic glioblastoma cohort (three centres + 50 held-out patients),
 *   2. start the embedded network and one TS node per centre, each with its own DICOM folder,
 *   3. a researcher asks for plan approval, each hospital operator approves, N FedAvg rounds run with live progress,
 *   4. the same plan is trained at each site alone and on the pooled data (same budget),
 *   5. every model is judged on the held-out patients (AUC, sensitivity, specificity, confusion matrix),
 *   6. the global model is exported to ONNX and checked against tfjs with ONNX Runtime,
 *   7. the second model (tumour evolution under each RT technique) in its quick configuration (evolution-demo.ts),
 *   8. report.md + SVG plots + metrics.json are written.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Writable } from 'stream';
import { initBackend, planHash, generateTorchPlan, sliceSelection, initialWeights, startEmbeddedNetwork, startEmbeddedV6Network, evaluateBinary, evaluateBySite, predict, trainLocally, trainPooled, exportAndCheckOnnx } from 'fedbiomed-ts';
import { CohortSummary, generateCohort } from './cohort';
import { openCohort } from './datasets';
import { DemoConfig, demoConfig } from './demo-config';
import { runFederated } from './federated';
import { startHospitals, stopHospitals } from './hospitals';
import { glioResponsePlan } from './plan';
import { metricsTable, ModelResult, OnnxSummary, writeReport } from './report';
import { DemoDp, DpRunResult } from './dp';
import { EvolutionDemoResult, runEvolutionDemo } from './evolution-demo';

export const DEFAULT_OUT_DIR = 'demo-output';
/** Marks a folder as the demo's own, so a later run may clear it. */
const MARKER = '.fedbiomed-ts-demo';

export interface DemoOptions {
  outDir?: string;
  quick?: boolean;
  seed?: number;
  rounds?: number;
  /** Train the federated model under Fed-BioMed's dp_args (and, with a sweep, once per extra noise level). */
  dp?: DemoDp;
  /** Fed-BioMed protocol of the network: v4.5 (MQTT broker + file repository, default) or v6 (gRPC). */
  protocol?: 'v4.5' | 'v6';
  /** Where progress goes (default stdout). */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  /**
   * Also train the second model (tumour evolution under each RT technique, runEvolutionDemo) in its quick
   * configuration and add its section to the report. Default true.
   */
  evolution?: boolean;
}

export interface DemoResult {
  config: DemoConfig;
  reportDir: string;
  reportFile: string;
  models: ModelResult[];
  onnx: OnnxSummary;
  timings: Record<string, number>;
}

/** Generates the cohort only (`fedbiomed-ts demo data`). */
export function generateDemoData(outDir: string, options: { seed?: number; quick?: boolean; followUp?: boolean } = {}): CohortSummary {
  const config = demoConfig(options);
  return generateCohort({
    outDir, seed: config.seed, sites: config.sites, heldOut: config.heldOut, volumeSize: config.volumeSize,
    formats: { dicom: true, nifti: config.writeNifti },
    // The responder demo reads pre-treatment data only; follow-ups (the evolution task) double the generation time.
    followUp: options.followUp ?? false,
  });
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const config = demoConfig(options);
  const out = options.out ?? process.stdout;
  const print = (line = ''): void => void out.write(`${line}\n`);
  const outDir = path.resolve(options.outDir ?? DEFAULT_OUT_DIR);
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, work: () => Promise<T> | T): Promise<T> => {
    const t0 = Date.now();
    try {
      return await work();
    } finally {
      timings[name] = (Date.now() - t0) / 1000;
    }
  };
  const started = Date.now();
  const withEvolution = options.evolution ?? true;
  const steps = withEvolution ? 8 : 7;
  const step = (k: number, text: string): void => print(`\n[${k}/${steps}] ${text}`);

  const dp = options.dp;
  const protocol = options.protocol ?? 'v4.5';
  // A fedbiomed-ts node on v6 refuses dp_args (v6.3.3's DP arguments are not ours): refused here, before any work.
  if (protocol === 'v6' && dp) throw new Error('demo: --dp is not available with --protocol v6 (v6 nodes here refuse dp_args)');
  print(`fedbiomed-ts glioblastoma demo (${config.name}: ${config.rounds} rounds x ${config.epochsPerRound} epochs, seed ${config.seed}` +
    `${dp ? `, ${dp.type} DP sigma ${dp.sigma} clip ${dp.clip}` : ''})`);
  print(`output: ${outDir}`);
  prepareOutDir(outDir);
  const cohortDir = path.join(outDir, 'cohort');
  const reportDir = path.join(outDir, 'report');

  step(1, 'Generating the synthetic cohort (DICOM series + clinical CSV per centre, held-out set)');
  const cohort = await timed('cohort generation', () => generateDemoData(cohortDir, { seed: config.seed, quick: config.name === 'quick' }));
  for (const s of [...cohort.sites, cohort.heldOut]) {
    print(`  ${s.name.padEnd(8)} ${String(s.patients).padStart(3)} patients, ${String(s.responders).padStart(3)} responders  ` +
      `(RT: ${Object.entries(s.rtTypes).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  }

  const backend = await initBackend(() => undefined);
  const spec = glioResponsePlan({ volumeSize: config.volumeSize });
  const hash = planHash(spec);
  fs.mkdirSync(reportDir, { recursive: true });
  const pythonFile = path.join(reportDir, `${spec.name}.py`);
  fs.writeFileSync(pythonFile, generateTorchPlan(spec, { className: spec.name }));
  const parameters = Object.values(initialWeights(spec, 0)).reduce((n, t) => n + t.data.length, 0);
  print(`  plan ${spec.name}: ${spec.inputs.image?.modalities.join('/')} ${spec.inputs.image?.size.join('x')} x ` +
    `${sliceSelection(spec)?.count ?? 1} slices + ${spec.inputs.tabular?.columns.length ?? 0} ` +
    `clinical features, ${parameters} parameters, sha256 ${hash.slice(0, 16)}…  (tfjs backend: ${backend.name})`);

  step(2, 'Starting the embedded network and one node per hospital');
  const network = protocol === 'v6'
    ? await startEmbeddedV6Network({ dir: path.join(outDir, 'network', 'researcher') })
    : await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(outDir, 'network') });
  let federated: Awaited<ReturnType<typeof runFederated>>;
  const sweepRuns: DpRunResult[] = [];
  const data = openCohort(spec, cohortDir, cohort);
  const heldOutAuc = (weights: Parameters<typeof predict>[1]): number => evaluateBinary(predict(spec, weights, data.heldOut)).auc;
  try {
    print('server' in network
      ? `  Fed-BioMed v6 researcher (gRPC, TLS) on ${network.researcherAddress}: the nodes dial it`
      : `  MQTT broker ${network.mqttUrl}, file repository ${network.uploadsUrl}`);
    const hospitals = await startHospitals(network, cohortDir, cohort, path.join(outDir, 'nodes'));
    try {
      for (const h of hospitals) {
        print(`  [${h.site}] node ${h.nodeId} up, dataset ${h.datasetId} registered (DICOM, approval required); log ${path.relative(outDir, h.logFile)}`);
      }
      step(3, `Federated training: ${config.rounds} FedAvg rounds over ${hospitals.length} hospitals`);
      const history = path.join(reportDir, 'experiment-events.jsonl');
      federated = await timed('federated training', () => runFederated({
        spec, network, hospitals, rounds: config.rounds, epochsPerRound: config.epochsPerRound, batchSize: config.batchSize,
        seed: config.seed, out, heldOutScore: heldOutAuc, dp,
        onEvent: (ev) => fs.appendFileSync(history, `${JSON.stringify(ev)}\n`),
      }));
      for (const sigma of dp?.sweep ?? []) {
        // One more full federated run per noise level, same data and seed, for the privacy-vs-utility table.
        print(`  DP sweep: federated run with sigma ${sigma}…`);
        const run = await timed(`federated training, sigma ${sigma}`, () => runFederated({
          spec, network, hospitals, rounds: config.rounds, epochsPerRound: config.epochsPerRound, batchSize: config.batchSize,
          seed: config.seed, out: quiet(), heldOutScore: heldOutAuc, dp: { ...(dp as DemoDp), sigma }, requestApproval: false,
        }));
        sweepRuns.push({ sigma, privacy: run.privacy ?? [], evaluation: evaluateBinary(predict(spec, run.weights, data.heldOut)) });
        print(`    held-out AUC ${sweepRuns[sweepRuns.length - 1].evaluation.auc.toFixed(3)}`);
      }
    } finally {
      await stopHospitals(hospitals);
    }
  } finally {
    await network.close();
  }

  step(4, `Baselines with the same plan and budget (${config.rounds * config.epochsPerRound} epochs): each site alone, centralised`);
  const epochs = config.rounds * config.epochsPerRound;
  const local = { epochs, batchSize: config.batchSize, initSeed: config.seed, shuffleSeed: config.seed };
  const baselines: { name: string; kind: ModelResult['kind']; trainedOn: string; patients: number; weights: Awaited<ReturnType<typeof trainLocally>> }[] = [];
  for (const site of data.sites) {
    const all = Array.from({ length: site.data.size }, (_, i) => i);
    const result = await timed(`${site.name} alone`, () => trainLocally(spec, site.data.batchSource(all), local));
    print(`  ${`${site.name} alone`.padEnd(22)} ${result.seconds.toFixed(1).padStart(6)} s, final loss ${result.epochLosses[result.epochLosses.length - 1].toFixed(3)}`);
    baselines.push({ name: `${site.name} alone`, kind: 'single-site', trainedOn: `${site.name} (${site.data.size})`, patients: site.data.size, weights: result });
  }
  const pooled = { size: data.sites.reduce((n, s) => n + s.data.size, 0) };
  const central = await timed('centralised', () => trainPooled(spec, data.sites.map((s) => s.data), local));
  print(`  ${'Centralised (pooled)'.padEnd(22)} ${central.seconds.toFixed(1).padStart(6)} s, final loss ${central.epochLosses[central.epochLosses.length - 1].toFixed(3)}`);

  step(5, `Evaluation on the ${data.heldOut.size} held-out patients`);
  const fedPredictions = predict(spec, federated.weights, data.heldOut);
  const models: ModelResult[] = [
    { name: dp ? `Federated (FedAvg, ${dp.type} DP, sigma ${dp.sigma})` : 'Federated (FedAvg)', kind: 'federated', trainedOn: `3 sites (${pooled.size}), data stay home`, patients: pooled.size,
      evaluation: evaluateBinary(fedPredictions), trainingSeconds: federated.seconds },
    ...baselines.map((b) => ({ name: b.name, kind: b.kind, trainedOn: b.trainedOn, patients: b.patients,
      evaluation: evaluateBinary(predict(spec, b.weights.weights, data.heldOut)), trainingSeconds: b.weights.seconds })),
    { name: 'Centralised (pooled)', kind: 'centralised', trainedOn: `pooled (${pooled.size})`, patients: pooled.size,
      evaluation: evaluateBinary(predict(spec, central.weights, data.heldOut)), trainingSeconds: central.seconds },
  ];
  print(metricsTable(models));
  const fed = models[0].evaluation;
  print(`\n  federated confusion matrix: TP ${fed.confusion.tp}  FN ${fed.confusion.fn}  FP ${fed.confusion.fp}  TN ${fed.confusion.tn}`);

  const federatedBySite = evaluateBySite(data.sites.map((s) => ({ site: s.name, predictions: predict(spec, federated.weights, s.data) })));
  print(`\n  federated model on each centre's own patients: ${federatedBySite.map(({ site, evaluation: e }) =>
    `${site} AUC ${e.auc.toFixed(3)} [${e.aucInterval.low.toFixed(2)}, ${e.aucInterval.high.toFixed(2)}]`).join(', ')}`);

  step(6, 'ONNX export of the global model, checked with onnxruntime-node');
  const onnx = await timed('onnx export + check', () =>
    exportAndCheckOnnx(spec, federated.weights, data.heldOut, fedPredictions.scores, path.join(reportDir, `${spec.name}.onnx`)));
  print(`  ${path.relative(outDir, onnx.file)}: ${onnx.bytes} bytes, ops ${onnx.opTypes.join(', ')}`);
  print(`  onnxruntime vs tfjs on ${onnx.samples} patients: max |diff| ${onnx.maxAbsDifference.toExponential(2)} ` +
    `(tolerance ${onnx.tolerance}) ${onnx.passed ? 'OK' : 'MISMATCH'}`);

  let evolution: { result: EvolutionDemoResult; dir: string } | undefined;
  if (withEvolution) {
    step(7, 'Second model: tumour evolution under each RT technique (quick configuration; full: --task evolution)');
    const dir = path.join(outDir, 'evolution');
    const result = await timed('evolution model (quick)', () => runEvolutionDemo({ outDir: dir, quick: true, seed: config.seed, out }));
    evolution = { result, dir };
  }

  step(steps, 'Writing the report');
  timings['total'] = (Date.now() - started) / 1000;
  const reportFile = writeReport(reportDir, {
    config, cohort, cohortDir: path.relative(outDir, cohortDir) || '.', backend: backend.name,
    plan: { name: spec.name, hash, parameters, pythonFile: path.basename(pythonFile) },
    federated: { rounds: federated.rounds, researcherId: federated.researcherId, jobId: federated.jobId, seconds: federated.seconds },
    models, onnx, federatedBySite, timings, ...(evolution ? { evolution } : {}),
    ...(dp ? { dp: { config: dp, runs: [{ sigma: dp.sigma, privacy: federated.privacy ?? [], evaluation: models[0].evaluation }, ...sweepRuns] } } : {}),
  });
  print(`  report: ${reportFile}`);
  print(`\nDone in ${timings['total'].toFixed(0)} s. Open ${reportFile}`);
  if (!onnx.passed) throw new Error(`ONNX predictions differ from tfjs by ${onnx.maxAbsDifference} (> ${onnx.tolerance})`);
  return { config, reportDir, reportFile, models, onnx, timings };
}

/** A stream that drops what it is given (the sweep's extra runs print one line each, not their progress). */
function quiet(): NodeJS.WritableStream {
  return new Writable({ write: (_chunk, _encoding, done) => done() });
}

/**
 * The output folder must be new, empty, or one a previous demo run wrote (then its content is replaced): the demo
 * never deletes a folder it did not create.
 */
function prepareOutDir(outDir: string): void {
  if (fs.existsSync(outDir)) {
    const entries = fs.readdirSync(outDir);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new Error(`${outDir} is not empty and was not written by the demo; choose another --out folder`);
    }
    for (const e of entries) fs.rmSync(path.join(outDir, e), { recursive: true, force: true });
  }
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, MARKER), 'written by `fedbiomed-ts demo`; the next run replaces this folder\n');
  // Keeps the demo's output out of git wherever it is written (the default is inside the checkout).
  fs.writeFileSync(path.join(outDir, '.gitignore'), '*\n');
}

