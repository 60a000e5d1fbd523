/**
 * Dev tool: the glioblastoma demo's image plan (a 2.5D CNN over four MRI modalities + clinical columns) on a real
 * Fed-BioMed v6.3.3 node: our researcher (Experiment over v6, this process the gRPC server) sends the plan's v6
 * PyTorch file; the Python node imports it, builds v6's MedicalFolderDataset on its NIfTI medical folder and trains
 * one round. Prints TSR_IMAGE_* lines.
 *   npx ts-node --transpile-only tools/interop-v6/image-plan.ts RESEARCHER_DIR PORT
 */
import { initBackend } from '../../src/engine/backend';
import { Experiment } from '../../researcher/experiment';
import { demoConfig } from '../../examples/glioblastoma/demo-config';
import { glioResponsePlan } from '../../examples/glioblastoma/plan';

const [dir, port] = process.argv.slice(2);

void (async () => {
  await initBackend(() => undefined);
  const config = demoConfig({});
  const spec = glioResponsePlan({ volumeSize: config.volumeSize });
  const exp = new Experiment({ tags: ['gbm-v6'], plan: spec, roundLimit: 1, seed: 1, roundTimeoutMs: 900_000,
    network: { protocol: 'v6', dir, port: Number(port), minNodes: 1, nodeWaitMs: 120_000 },
    trainingArgs: { loader_args: { batch_size: config.batchSize, shuffle: true }, epochs: 1, test_ratio: 0,
      log_interval: 1, random_seed: 1 } });
  exp.on('log', (ev) => console.log(`TSR_NODE_LOG ${ev.nodeId} ${ev.level} ${ev.message}`));
  exp.on('scalar', (ev) => console.log(`TSR_IMAGE_SCALAR ${ev.nodeId} ${ev.phase} ${JSON.stringify(ev.metric)}`));
  await exp.setup();
  const initial = new Map([...(exp.weights ?? new Map())].map(([k, t]) => [k, Float32Array.from(t.data as ArrayLike<number>)]));
  const t0 = Date.now();
  const result = await exp.run();
  const node = result.summaries[0].nodes[0];
  let changed = 0;
  let finite = true;
  for (const [name, t] of result.weights) {
    const values = Array.from(t.data as ArrayLike<number>);
    finite &&= values.every(Number.isFinite);
    if (values.some((v, i) => v !== initial.get(name)?.[i])) changed += 1;
  }
  console.log(`TSR_IMAGE_ROUND node=${node.nodeId} status=${node.status} samples=${String(node.sampleSize)}`,
    `training_s=${String(node.trainingSeconds)} round_ms=${Date.now() - t0} message=${JSON.stringify(node.message)}`);
  console.log(`TSR_IMAGE_WEIGHTS tensors=${result.weights.size} changed=${changed} finite=${finite}`);
  await exp.close();
  process.exit(node.status === 'ok' && finite && changed > 0 ? 0 : 1);
})().catch((err) => {
  console.error('TSR_FAILED', err);
  process.exit(1);
});
