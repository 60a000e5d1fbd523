/**
 * The demo's report folder: report.md (setup, per-round table, held-out metrics of every model, confusion
 * matrix, ONNX check), metrics.json (the same numbers for programs), and SVG plots (training loss per site per
 * round, held-out AUC per round, ROC curves of the federated, single-site and centralised models).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { CohortSummary } from './cohort';
import type { DemoConfig } from './demo-config';
import { aucStandardError, type BinaryEvaluation, type OnnxCheck, type SiteEvaluation } from 'fedbiomed-ts';
import type { RoundRow } from './progress';
import { lineChart, PALETTE } from './svg';
import { DemoDp, DpRunResult, privacyMarkdown } from './dp';
import type { EvolutionDemoResult } from './evolution-demo';
import { evolutionMarkdown } from './evolution-report';

export interface ModelResult {
  /** "Federated (FedAvg)", "Caen alone", "Centralised (pooled)". */
  name: string;
  kind: 'federated' | 'single-site' | 'centralised';
  trainedOn: string;
  patients: number;
  evaluation: BinaryEvaluation;
  trainingSeconds: number;
}

export type OnnxSummary = OnnxCheck;

export interface DemoReportData {
  config: DemoConfig;
  cohort: CohortSummary;
  cohortDir: string;
  plan: { name: string; hash: string; parameters: number; pythonFile: string };
  backend: string;
  federated: { rounds: RoundRow[]; researcherId: string; jobId: string; seconds: number };
  models: ModelResult[];
  onnx: OnnxSummary;
  /** The federated model on each centre's own patients and on all of them (absent in older callers). */
  federatedBySite?: SiteEvaluation[];
  timings: Record<string, number>;
  /** Present when the federated model was trained under differential privacy. */
  dp?: { config: DemoDp; runs: DpRunResult[] };
  /** The evolution task's run (its output folder, for the panels), when the demo ran it. */
  evolution?: { result: EvolutionDemoResult; dir: string };
}

export const REPORT_FILES = {
  markdown: 'report.md',
  metrics: 'metrics.json',
  loss: 'loss-per-site.svg',
  roundAuc: 'heldout-auc-per-round.svg',
  roc: 'roc-heldout.svg',
};

export function writeReport(dir: string, data: DemoReportData): string {
  fs.mkdirSync(dir, { recursive: true });
  const sites = data.cohort.sites.map((s) => s.name);
  const rounds = data.federated.rounds;
  fs.writeFileSync(path.join(dir, REPORT_FILES.loss), lineChart({
    title: 'Training loss per site per round (FedAvg)',
    xLabel: 'round',
    yLabel: 'mean training loss (BCE)',
    series: sites.map((site, i) => ({
      name: site, color: PALETTE[i % PALETTE.length], points: rounds.map((r) => [r.round, r.lossBySite[site]] as [number, number]),
    })),
    x: [rounds.length > 1 ? 1 : 0, Math.max(1, rounds.length)],
  }));
  fs.writeFileSync(path.join(dir, REPORT_FILES.roundAuc), lineChart({
    title: 'Held-out AUC of the global model after each round',
    xLabel: 'round',
    yLabel: 'AUC (50 held-out patients)',
    series: [{ name: 'federated', color: PALETTE[0], points: rounds.map((r) => [r.round, r.heldOutScore] as [number, number]) }],
    x: [rounds.length > 1 ? 1 : 0, Math.max(1, rounds.length)],
    y: [0.4, 1],
  }));
  fs.writeFileSync(path.join(dir, REPORT_FILES.roc), lineChart({
    title: 'ROC on the held-out patients',
    xLabel: 'false-positive rate (1 - specificity)',
    yLabel: 'true-positive rate (sensitivity)',
    series: data.models.map((m, i) => ({
      name: `${m.name} (${m.evaluation.auc.toFixed(3)})`,
      color: PALETTE[i % PALETTE.length],
      dashed: m.kind === 'single-site',
      points: m.evaluation.roc.fpr.map((f, k) => [f, m.evaluation.roc.tpr[k]] as [number, number]),
    })),
    x: [0, 1],
    y: [0, 1],
    diagonal: true,
  }));
  fs.writeFileSync(path.join(dir, REPORT_FILES.metrics), `${JSON.stringify(metricsJson(data), null, 2)}\n`);
  const file = path.join(dir, REPORT_FILES.markdown);
  fs.writeFileSync(file, markdown(data, data.evolution ? evolutionMarkdown(data.evolution.result, data.evolution.dir, dir) : []));
  return file;
}

function metricsJson(data: DemoReportData): unknown {
  return {
    config: data.config,
    plan: data.plan,
    backend: data.backend,
    heldOut: { patients: data.cohort.heldOut.patients, responders: data.cohort.heldOut.responders },
    models: data.models.map((m) => ({
      name: m.name, kind: m.kind, trainedOn: m.trainedOn, patients: m.patients,
      auc: m.evaluation.auc, aucInterval: m.evaluation.aucInterval, sensitivity: m.evaluation.sensitivity, specificity: m.evaluation.specificity,
      accuracy: m.evaluation.accuracy, confusion: m.evaluation.confusion, trainingSeconds: m.trainingSeconds,
    })),
    rounds: data.federated.rounds,
    onnx: data.onnx,
    federatedBySite: data.federatedBySite?.map(({ site, evaluation: e }) => ({ site, patients: e.samples, auc: e.auc,
      aucInterval: e.aucInterval, sensitivity: e.sensitivity, specificity: e.specificity })),
    timings: data.timings,
    ...(data.evolution ? { evolution: data.evolution.result } : {}),
    ...(data.dp ? { dp: { ...data.dp.config, runs: data.dp.runs.map((r) => ({ sigma: r.sigma, privacy: r.privacy,
      auc: r.evaluation.auc, sensitivity: r.evaluation.sensitivity, specificity: r.evaluation.specificity })) } } : {}),
  };
}

/** The held-out metrics table (also printed on the console and given to the README). */
export function metricsTable(models: ModelResult[]): string {
  const lines = [
    '| model | trained on | AUC | sensitivity | specificity | accuracy | TP | FN | FP | TN |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const m of models) {
    const e = m.evaluation;
    const c = e.confusion;
    lines.push(`| ${m.name} | ${m.trainedOn} | ${e.auc.toFixed(3)} | ${e.sensitivity.toFixed(3)} | ${e.specificity.toFixed(3)} | ` +
      `${e.accuracy.toFixed(3)} | ${c.tp} | ${c.fn} | ${c.fp} | ${c.tn} |`);
  }
  return lines.join('\n');
}

function markdown(d: DemoReportData, evolution: string[]): string {
  const fed = d.models.find((m) => m.kind === 'federated');
  const singles = d.models.filter((m) => m.kind === 'single-site');
  const c = d.config;
  const sitesText = d.cohort.sites.map((s) => `${s.name} ${s.patients} (${s.responders} responders)`).join(', ');
  const roundHeader = `| round | ${d.cohort.sites.map((s) => `${s.name} loss`).join(' | ')} | held-out AUC | time (s) |`;
  const roundRows = d.federated.rounds.map((r) =>
    `| ${r.round} | ${d.cohort.sites.map((s) => fmt(r.lossBySite[s.name])).join(' | ')} | ${fmt(r.heldOutScore)} | ${r.seconds.toFixed(1)} |`);
  const beats = fed ? singles.filter((s) => fed.evaluation.auc > s.evaluation.auc).length : 0;
  const conf = fed?.evaluation.confusion;
  return [
    `# Glioblastoma responder prediction: federated vs single-site vs centralised`,
    '',
    `Run: \`${c.name}\` configuration, seed ${c.seed}, tfjs backend ${d.backend}.`,
    '',
    '## Setup',
    '',
    `- Cohort (synthetic, \`${d.cohortDir}\`): ${sitesText}; held-out ${d.cohort.heldOut.patients} patients ` +
      `(${d.cohort.heldOut.responders} responders) from all three centres; volumes ${d.cohort.volumeSize.join(' x ')} voxels.`,
    `- Plan \`${d.plan.name}\` (sha256 \`${d.plan.hash}\`), ${d.plan.parameters} parameters; generated PyTorch plan: \`${d.plan.pythonFile}\`.`,
    `- Federated: ${c.rounds} FedAvg rounds x ${c.epochsPerRound} local epochs, batch ${c.batchSize}, three TS nodes on the embedded ` +
      `network, each reading its own DICOM folder; the plan was approved by each hospital before training.`,
    `- Baselines, same plan, same initial weights, same budget of ${c.rounds * c.epochsPerRound} epochs: each site alone, and ` +
      `centralised training on the pooled data of the three sites (what federation tries to match without moving data).`,
    '',
    '## Held-out evaluation',
    '',
    metricsTable(d.models),
    '',
    `Threshold 0.5 on P(responder). Federated AUC is above ${beats} of ${singles.length} single-site AUCs. With ` +
      `${d.cohort.heldOut.patients} held-out patients an AUC near ${fed ? fed.evaluation.auc.toFixed(2) : '-'} has a standard error of about ` +
      `${fed ? aucStandardError(fed.evaluation.auc, d.cohort.heldOut.responders, d.cohort.heldOut.patients - d.cohort.heldOut.responders).toFixed(3) : '-'} ` +
      `(Hanley & McNeil; 95% interval ${fed ? `${fed.evaluation.aucInterval.low.toFixed(3)}-${fed.evaluation.aucInterval.high.toFixed(3)}` : '-'}): ` +
      'differences of a few hundredths are within noise.',
    '',
    ...(d.federatedBySite ? [
      "The federated model on each centre's own (training) patients, and on all of them:",
      '',
      '| centre | patients | AUC | 95% CI | sensitivity | specificity |',
      '|---|---:|---:|---|---:|---:|',
      ...d.federatedBySite.map(({ site, evaluation: e }) => `| ${site} | ${e.samples} | ${e.auc.toFixed(3)} | ` +
        `${e.aucInterval.low.toFixed(3)}-${e.aucInterval.high.toFixed(3)} | ${e.sensitivity.toFixed(3)} | ${e.specificity.toFixed(3)} |`),
      '',
    ] : []),
    ...(conf ? [
      'Confusion matrix of the federated model (rows: truth, columns: prediction):',
      '',
      '| | predicted responder | predicted non-responder |',
      '|---|---:|---:|',
      `| responder | ${conf.tp} | ${conf.fn} |`,
      `| non-responder | ${conf.fp} | ${conf.tn} |`,
      '',
    ] : []),
    `![ROC curves](${REPORT_FILES.roc})`,
    '',
    ...(d.dp ? privacyMarkdown(d.dp.config, d.dp.runs) : []),
    '## Federated training',
    '',
    roundHeader,
    `|---|${d.cohort.sites.map(() => '---:').join('|')}|---:|---:|`,
    ...roundRows,
    '',
    `![Loss per site](${REPORT_FILES.loss})`,
    '',
    `![Held-out AUC per round](${REPORT_FILES.roundAuc})`,
    '',
    '## Reading the results',
    '',
    '- Each site alone sees one scanner and one case mix (Rouen: older patients, larger tumours, few responders; Nice: ' +
      'younger, more proton therapy); its model transfers less well to the mixed held-out patients. FedAvg learns from the ' +
      'three sites without any image leaving its hospital.',
    `- "Same budget" means the same ${c.rounds * c.epochsPerRound} passes over each patient. On pooled data that is about three times ` +
      'as many optimizer steps as one FedAvg round sequence takes, with no early stopping, so the centralised model can ' +
      'overfit and end below the federated one; it is the reference for what pooling the data would give, not a ceiling.',
    '- The plan crops the tumour-bearing region rather than a box centred on each tumour: the generator puts tumours in ' +
      'one hemisphere, off the volume centre, and a per-patient crop cannot be expressed by the plan (Python nodes must ' +
      'reproduce every step).',
    '- The held-out AUC per round is shown for monitoring only; no model or round was selected with it.',
    '',
    '## ONNX export',
    '',
    `Global model exported to \`${path.basename(d.onnx.file)}\` (${d.onnx.bytes} bytes; ops: ${d.onnx.opTypes.join(', ')}). ` +
      `onnxruntime-node vs tfjs on the ${d.onnx.samples} held-out patients: max |difference| ${d.onnx.maxAbsDifference.toExponential(2)} ` +
      `(tolerance ${d.onnx.tolerance}): ${d.onnx.passed ? 'PASS' : 'FAIL'}.`,
    '',
    ...evolution,
    '## Timings',
    '',
    ...Object.entries(d.timings).map(([k, v]) => `- ${k}: ${v.toFixed(1)} s`),
    '',
  ].join('\n');
}

function fmt(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? '-' : x.toFixed(3);
}
