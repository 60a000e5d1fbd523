/**
 * Notebook 5: the same experiment on an existing network (a Mosquitto broker and Fed-BioMed's file server, or
 * `fedbiomed-ts network start`), with nodes started by the hospitals themselves (TS or Python).
 *
 *   MQTT_BROKER=broker.example.org MQTT_BROKER_PORT=1883 UPLOADS_URL=http://files.example.org:8844/upload/ \
 *     npx ts-node --transpile-only examples/notebooks/05-existing-network.ts
 *
 * Optional: TAGS (comma-separated, default the demo's), ROUNDS, VOLUME_SIZE (e.g. 48x48x24: the size of the
 * hospitals' volumes, which fixes the plan's crop), APPROVAL_TIMEOUT_S (default 600). Nothing is started here.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Experiment, networkFromEnvironment, Researcher, planHash, aggregatedParamsFile, writeParamsFile, stateDictFromWeightMap } from 'fedbiomed-ts';
import { DEFAULT_DEMO } from '../glioblastoma/demo-config';
import { DATASET_TAGS } from '../glioblastoma/hospitals';
import { glioResponsePlan } from '../glioblastoma/plan';
import { runNotebook, show, step, WORK_DIR } from './notebook';

function volumeSizeFromEnv(): [number, number, number] {
  const text = process.env.VOLUME_SIZE;
  if (!text) return [...DEFAULT_DEMO.volumeSize];
  const parts = text.split('x').map(Number);
  if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n) || n < 4)) {
    throw new Error(`VOLUME_SIZE must look like 48x48x24, got ${JSON.stringify(text)}`);
  }
  return parts as [number, number, number];
}

runNotebook(async () => {
  const rounds = Number(process.env.ROUNDS ?? DEFAULT_DEMO.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`ROUNDS must be a positive integer, got ${process.env.ROUNDS}`);
  const tags = process.env.TAGS ? process.env.TAGS.split(',').map((t) => t.trim()).filter(Boolean) : DATASET_TAGS;
  const approvalTimeoutMs = 1000 * Number(process.env.APPROVAL_TIMEOUT_S ?? 600);

  step('Where the network is: MQTT_BROKER, MQTT_BROKER_PORT, UPLOADS_URL (Fed-BioMed\'s variables)');
  const network = networkFromEnvironment();
  show(`  broker ${network.brokerUrl}, file repository ${network.uploadsUrl}`);

  step('Who is there: ping, then search the datasets with our tags');
  const researcher = await Researcher.connect(network);
  try {
    const pong = await researcher.ping({ timeoutMs: 3000 });
    show(`  ${pong.nodes.size} node(s) answered: ${[...pong.nodes.keys()].join(', ') || '(none)'}`);
    const found = await researcher.search(tags, { timeoutMs: 3000 });
    for (const [nodeId, datasets] of found) show(`  ${nodeId}: ${datasets.map((d) => `${d.name} (${d.data_type}, ${d.dataset_id})`).join('; ')}`);
    if (found.size === 0) throw new Error(`no node has a dataset tagged ${tags.join(', ')}`);

    step('The experiment, with the plan for the hospitals\' volume size');
    const spec = glioResponsePlan({ volumeSize: volumeSizeFromEnv() });
    const experiment = new Experiment({
      tags, nodes: [...found.keys()], plan: spec, network: researcher, roundLimit: rounds, aggregator: 'fedavg',
      trainingArgs: {
        loader_args: { batch_size: DEFAULT_DEMO.batchSize, shuffle: true }, epochs: DEFAULT_DEMO.epochsPerRound,
        test_ratio: 0, log_interval: 1, random_seed: DEFAULT_DEMO.seed,
      },
      seed: DEFAULT_DEMO.seed, console: true,
    });
    await experiment.setup();

    step('Ask for approval and wait for every hospital operator');
    await experiment.requestApproval({ description: 'glioblastoma responder model (fedbiomed-ts notebook 5)' });
    show(`  plan sha256 ${planHash(spec)}`);
    show(`  on a TS node:     fedbiomed-ts node plan list   then   fedbiomed-ts node plan approve <id>`);
    show('  on a Python node: fedbiomed node training-plan approve');
    const deadline = Date.now() + approvalTimeoutMs;
    for (;;) {
      const status = await experiment.planStatus({ timeoutMs: 3000 });
      const waiting = [...status.missing, ...[...status.statuses.values()].filter((s) => !s.canTrain).map((s) => `${s.nodeId} (${s.status})`)];
      if (waiting.length === 0) break;
      if (Date.now() > deadline) throw new Error(`still not approved after ${approvalTimeoutMs / 1000} s: ${waiting.join(', ')}`);
      show(`  waiting for: ${waiting.join(', ')}`);
      await new Promise((r) => setTimeout(r, 5000));
    }
    show('  approved everywhere');

    step(`Run ${rounds} FedAvg rounds`);
    const result = await experiment.run();

    step('Save the global model');
    const file = path.join(WORK_DIR, 'global-weights-existing-network.mpk');
    fs.mkdirSync(WORK_DIR, { recursive: true });
    writeParamsFile(file, aggregatedParamsFile(researcher.id, stateDictFromWeightMap(spec, result.weights, DEFAULT_DEMO.seed)));
    show(`  ${result.roundsCompleted} rounds; ${file}`);
  } finally {
    await researcher.close();
  }
});
