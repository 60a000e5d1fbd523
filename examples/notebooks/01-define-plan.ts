/**
 * Notebook 1: define the training plan.
 *   npx ts-node --transpile-only examples/notebooks/01-define-plan.ts
 * A plan is data (a JSON document) written with a typed builder; nodes hash and approve it, train it natively,
 * and Python nodes receive it as a generated Fed-BioMed TorchTrainingPlan.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, planHash, describeParameters, describeTarget, generateTorchPlan, buildModel } from 'fedbiomed-ts';
import { GENERATED_PLAN_FILE } from '../glioblastoma/generate-python-plan';
import { glioResponsePlan, TUMOUR_BOX_MM } from '../glioblastoma/plan';
import { runNotebook, show, step, table } from './notebook';

runNotebook(async () => {
  await initBackend(() => undefined);

  step('Build the plan with the TypeScript builder');
  const spec = glioResponsePlan();
  show(`  ${spec.name}: ${spec.description}`);
  show(`  image input: ${spec.inputs.image?.modalities.join(', ')} at ${spec.inputs.image?.size.join(' x ')}`);
  show(`  tabular input: ${spec.inputs.tabular?.columns.join(', ')}; target: ${describeTarget(spec)}`);
  show(`  loss ${JSON.stringify(spec.loss)}, optimizer ${JSON.stringify(spec.optimizer)}`);

  step('Preprocessing: the tumour-bearing box, thick slices as channels, z-score, clinical standardisation');
  show(`  tumour box (mm, from the field-of-view centre): centre ${TUMOUR_BOX_MM.centre.join(', ')}, size ${TUMOUR_BOX_MM.size.join(' x ')}`);
  spec.preprocessing.forEach((p, i) => show(`  ${i + 1}. ${JSON.stringify(p)}`));

  step('Layers and their PyTorch parameter names (what travels on the wire)');
  const model = buildModel(spec, { seed: 0 });
  const params = describeParameters(model.graph);
  table([['parameter', 'torch shape', 'dtype'], ...params.map((p) => [p.name, `[${p.torchShape.join(', ')}]`, p.dtype])]);
  show(`  ${params.reduce((n, p) => n + p.torchShape.reduce((a, b) => a * b, 1), 0)} values in total`);

  step('A forward pass on a random batch of 2 patients (channels-last in tfjs)');
  const [c, h, w] = model.graph.imageInputShape ?? [];
  const out = tf.tidy(() => model.forward({
    image: tf.randomNormal([2, h, w, c], 0, 1, 'float32', 1),
    tabular: tf.randomNormal([2, spec.inputs.tabular?.columns.length ?? 0], 0, 1, 'float32', 2),
  }, false));
  show(`  output shape [${out.shape.join(', ')}], logits ${Array.from(out.dataSync(), (v) => v.toFixed(4)).join(', ')}`);
  out.dispose();
  model.dispose();

  step('Approval hash: SHA-256 of the canonical JSON (what a hospital approves)');
  show(`  ${planHash(spec)}`);

  step('The same plan as a Fed-BioMed TorchTrainingPlan for Python nodes');
  const python = generateTorchPlan(spec, { className: spec.name });
  show(python.split('\n').filter((l) => /class |nn\.|def /.test(l)).slice(0, 14).map((l) => `  ${l}`).join('\n'));
  show(`  … ${python.split('\n').length} lines; committed copy: ${GENERATED_PLAN_FILE}`);
});
