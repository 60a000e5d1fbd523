/**
 * Notebook 3: run a federated experiment on the embedded network with three hospital nodes.
 *   npx ts-node --transpile-only examples/notebooks/03-run-experiment.ts        (ROUNDS=n to change the rounds)
 * The global weights are saved for notebook 4.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Experiment, initBackend, planHash, aggregatedParamsFile, writeParamsFile, startEmbeddedNetwork, stateDictFromWeightMap } from 'fedbiomed-ts';
import { DEFAULT_DEMO } from '../glioblastoma/demo-config';
import { approvePlan, DATASET_TAGS, startHospitals, stopHospitals } from '../glioblastoma/hospitals';
import { glioResponsePlan } from '../glioblastoma/plan';
import { COHORT_DIR, ensureCohort, GLOBAL_WEIGHTS_FILE, runNotebook, show, step, WORK_DIR } from './notebook';

const ROUNDS = Number(process.env.ROUNDS ?? DEFAULT_DEMO.rounds);

runNotebook(async () => {
  if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`ROUNDS must be a positive integer, got ${process.env.ROUNDS}`);
  await initBackend(() => undefined);
  const cohort = ensureCohort();
  const spec = glioResponsePlan({ volumeSize: cohort.volumeSize });

  step('Start the embedded network (MQTT broker + file repository, in this process)');
  const network = await startEmbeddedNetwork({ dataDir: path.join(WORK_DIR, 'network') });
  show(`  MQTT_BROKER URL ${network.mqttUrl}   UPLOADS_URL ${network.uploadsUrl}`);
  // Fresh node folders each run (a node folder holds its registry and approvals).
  const nodesDir = path.join(WORK_DIR, 'nodes');
  fs.rmSync(nodesDir, { recursive: true, force: true });
  const hospitals = await startHospitals(network, COHORT_DIR, cohort, nodesDir);
  try {
    step('Three hospitals: one node each, its DICOM folder registered under the same tags, approval required');
    for (const h of hospitals) show(`  ${h.site}: node ${h.nodeId}, dataset ${h.datasetId}, tags ${DATASET_TAGS.join(', ')}`);

    step('The researcher defines the experiment: plan, training arguments, FedAvg, rounds');
    const experiment = new Experiment({
      tags: DATASET_TAGS,
      plan: spec,
      trainingArgs: {
        loader_args: { batch_size: DEFAULT_DEMO.batchSize, shuffle: true }, epochs: DEFAULT_DEMO.epochsPerRound,
        test_ratio: 0, log_interval: 1, random_seed: DEFAULT_DEMO.seed,
      },
      aggregator: 'fedavg',
      roundLimit: ROUNDS,
      network: { brokerUrl: network.mqttUrl, uploadsUrl: network.uploadsUrl },
      seed: DEFAULT_DEMO.seed,
      console: true,
    });
    await experiment.setup();
    show(`  datasets found on ${experiment.nodes.join(', ')}; plan uploaded to ${experiment.trainingPlanUrl}`);

    step('Approval: the researcher asks, each hospital operator reviews and approves');
    const request = await experiment.requestApproval({ description: 'glioblastoma responder model' });
    show(`  request answered by ${request.replies.size} node(s)`);
    for (const h of hospitals) {
      const entry = approvePlan(h, planHash(spec), 'approved in notebook 3');
      show(`  ${h.site}: ${entry.training_plan_id} -> ${entry.training_plan_status}`);
    }
    const status = await experiment.planStatus();
    show(`  status: ${[...status.statuses.values()].map((s) => `${s.nodeId}=${s.status}`).join(', ')}`);

    step(`Run ${ROUNDS} rounds (the researcher's console monitor shows progress and a summary per round)`);
    const result = await experiment.run();

    step('Save the global model (a Fed-BioMed aggregated-params file)');
    // The aggregate as PyTorch-named torch tensors (the file a Python researcher would save too).
    const stateDict = stateDictFromWeightMap(spec, result.weights, DEFAULT_DEMO.seed);
    writeParamsFile(GLOBAL_WEIGHTS_FILE, aggregatedParamsFile(String(experiment.researcherId), stateDict));
    show(`  ${result.roundsCompleted} rounds; weights written to ${GLOBAL_WEIGHTS_FILE} (next: 04-evaluate-export.ts)`);
  } finally {
    await stopHospitals(hospitals);
    await network.close();
  }
});
