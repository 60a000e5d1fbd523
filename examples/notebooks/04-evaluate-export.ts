/**
 * Notebook 4: judge the federated model on the held-out patients and export it to ONNX.
 *   npx ts-node --transpile-only examples/notebooks/04-evaluate-export.ts     (after 03-run-experiment.ts)
 */
import * as fs from 'fs';
import * as path from 'path';
import { initBackend, modelWeightsOf, readParamsFile, TorchTensor, evaluateBinary, predict, exportAndCheckOnnx } from 'fedbiomed-ts';
import { openSplit } from '../glioblastoma/datasets';
import { glioResponsePlan } from '../glioblastoma/plan';
import { lineChart } from '../glioblastoma/svg';
import { COHORT_DIR, ensureCohort, GLOBAL_WEIGHTS_FILE, runNotebook, show, step, table, WORK_DIR } from './notebook';

runNotebook(async () => {
  await initBackend(() => undefined);
  const cohort = ensureCohort();
  const spec = glioResponsePlan({ volumeSize: cohort.volumeSize });

  step('Load the global model saved by notebook 3');
  if (!fs.existsSync(GLOBAL_WEIGHTS_FILE)) throw new Error(`${GLOBAL_WEIGHTS_FILE} not found: run examples/notebooks/03-run-experiment.ts first`);
  const weights = modelWeightsOf(readParamsFile(GLOBAL_WEIGHTS_FILE)) as Record<string, TorchTensor>;
  show(`  ${Object.keys(weights).length} tensors: ${Object.entries(weights).map(([k, t]) => `${k} [${t.shape.join(',')}]`).join(', ')}`);

  step(`Predict P(responder) for the ${cohort.heldOut.patients} held-out patients`);
  const heldOut = openSplit(spec, COHORT_DIR, cohort.heldOut);
  const predictions = predict(spec, weights, heldOut);
  show(`  first five: ${Array.from(predictions.scores.slice(0, 5), (p, i) => `${p.toFixed(3)} (truth ${predictions.truth[i]})`).join(', ')}`);

  step('Metrics at the 0.5 threshold, and the confusion matrix');
  const e = evaluateBinary(predictions);
  table([['AUC', '95% CI', 'sensitivity', 'specificity', 'accuracy'],
    [e.auc, `${e.aucInterval.low.toFixed(3)}-${e.aucInterval.high.toFixed(3)}`, e.sensitivity, e.specificity, e.accuracy]]);
  table([['', 'predicted responder', 'predicted non-responder'],
    ['responder', e.confusion.tp, e.confusion.fn], ['non-responder', e.confusion.fp, e.confusion.tn]]);

  step('Other thresholds: the sensitivity / specificity trade-off');
  table([['threshold', 'sensitivity', 'specificity'], ...[0.3, 0.4, 0.5, 0.6, 0.7].map((t) => {
    const x = evaluateBinary(predictions, { threshold: t });
    return [t.toFixed(1), x.sensitivity, x.specificity];
  })]);
  const rocFile = path.join(WORK_DIR, 'roc-federated.svg');
  fs.writeFileSync(rocFile, lineChart({
    title: 'Federated model, held-out ROC', xLabel: 'false-positive rate', yLabel: 'true-positive rate', x: [0, 1], y: [0, 1],
    diagonal: true, series: [{ name: `AUC ${e.auc.toFixed(3)}`, color: '#1f77b4', points: e.roc.fpr.map((f, i) => [f, e.roc.tpr[i]]) }],
  }));
  show(`  ROC curve: ${rocFile}`);

  step('Export to ONNX and check ONNX Runtime against tfjs');
  const onnx = await exportAndCheckOnnx(spec, weights, heldOut, predictions.scores, path.join(WORK_DIR, `${spec.name}.onnx`));
  show(`  ${onnx.file} (${onnx.bytes} bytes), ops: ${onnx.opTypes.join(', ')}`);
  show(`  max |onnxruntime - tfjs| over ${onnx.samples} patients: ${onnx.maxAbsDifference.toExponential(2)} -> ${onnx.passed ? 'equal within 1e-4' : 'MISMATCH'}`);
  if (!onnx.passed) throw new Error('ONNX and tfjs predictions differ');
});
