/**
 * Differential privacy on a real TS node (embedded broker and repository, real training): a `train` request whose
 * `dp_args` the node cannot honour is refused with the reason, never trained without the protection it asked for.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startEmbeddedNetwork, EmbeddedNetwork } from '../src/transport/embedded';
import { Messaging } from '../src/transport/mqtt';
import { RepositoryClient } from '../src/transport/repository';
import type { NodeToResearcherMessage, TrainReply, TrainRequest, WireTrainingArgs } from '../src/protocol/messages';
import { encodeParams, aggregatedParamsFile } from '../src/serialize';
import { generateTorchPlan } from '../src/plan/pytorch';
import { initialWeights } from '../src/plan/init';
import { mlpPlan } from '../src/plan/testing/plans';
import type { PlanSpec } from '../src/plan/spec';
import { defaultConfig, writeConfig } from './config';
import { openNodeStores } from './stores';
import { NodeAgent } from './agent';

jest.setTimeout(60_000);

const NODE_ID = 'node_dp';
const RESEARCHER_ID = 'researcher_dp';

function writeCsv(file: string, rows: number): void {
  const lines = ['f0,f1,f2,f3,label'];
  for (let i = 0; i < rows; i++) lines.push(`${i % 7},${(i * 3) % 5},${i % 2},${(i % 11) / 10},${i % 2}`);
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

function uploadedFiles(dir: string): number {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .length;
}

describe('TS node with dp_args', () => {
  let network: EmbeddedNetwork;
  let researcher: Messaging;
  let repo: RepositoryClient;
  let agent: NodeAgent;
  let datasetId: string;
  const replies: NodeToResearcherMessage[] = [];
  const localLog: string[] = [];
  let jobs = 0;

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-dp-'));
    network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(dir, 'repo') });
    const nodeDir = path.join(dir, 'node');
    writeConfig(nodeDir, defaultConfig({ nodeId: NODE_ID, broker: network.mqttUrl, uploadsUrl: network.uploadsUrl,
      approval: false }));
    const csv = path.join(dir, 'data.csv');
    writeCsv(csv, 40);
    datasetId = (await openNodeStores(nodeDir, {}).datasets.add({ name: 'd', dataType: 'csv', tags: ['csv'], path: csv }))
      .dataset_id;
    agent = await NodeAgent.start({ dir: nodeDir, env: {}, localLog: (l) => localLog.push(l) });
    researcher = await Messaging.connect({ role: 'researcher', brokerUrl: network.mqttUrl });
    researcher.onMessage((m) => void replies.push(m as NodeToResearcherMessage));
    repo = new RepositoryClient({ uploadsUrl: network.uploadsUrl, retries: 0 });
  });

  afterAll(async () => {
    await agent?.stop();
    await researcher?.close();
    await network?.close();
  });

  /** Sends one train request and waits for its reply. */
  async function train(plan: PlanSpec, args: Partial<WireTrainingArgs>): Promise<TrainReply> {
    const jobId = `job_dp_${++jobs}`;
    const planUrl = await repo.upload(Buffer.from(generateTorchPlan(plan)), `my_model_${jobId}.py`);
    const paramsUrl = await repo.upload(Buffer.from(encodeParams(aggregatedParamsFile(RESEARCHER_ID,
      initialWeights(plan, 1)))), `aggregated_params_${jobId}.mpk`);
    const request: TrainRequest = {
      researcher_id: RESEARCHER_ID, job_id: jobId, state_id: null, params_url: paramsUrl,
      training_args: {
        optimizer_args: { lr: 0.05 }, loader_args: { batch_size: 8 }, epochs: null, num_updates: 6, dry_run: false,
        batch_maxnum: null, test_ratio: 0.25, test_on_local_updates: false, test_on_global_updates: false,
        test_metric: null, test_metric_args: {}, log_interval: 10, fedprox_mu: null, use_gpu: false, dp_args: null,
        share_persistent_buffers: true, random_seed: 7, ...args,
      },
      dataset_id: datasetId, training: true, model_args: {}, training_plan_url: planUrl,
      training_plan_class: plan.name, command: 'train', secagg_servkey_id: null, secagg_biprime_id: null,
      secagg_random: null, secagg_clipping_range: null, round: 0, aggregator_args: {}, aux_var_urls: null,
    };
    await researcher.send(request, NODE_ID);
    const start = Date.now();
    for (;;) {
      const hit = replies.find((m): m is TrainReply => m.command === 'train' && m.job_id === jobId);
      if (hit) return hit;
      if (Date.now() - start > 30_000) throw new Error(`timed out waiting for the train reply of ${jobId}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('refuses dp_args it cannot honour with success:false and the reason, and uploads nothing', async () => {
    const uploadsBefore = uploadedFiles(network.dataDir);
    const reply = await train(mlpPlan(), { dp_args: { type: 'local', sigma: 1.5, clip: 0.8 } });
    expect(reply).toMatchObject({ success: false, params_url: '', node_id: NODE_ID });
    expect(reply.msg).toMatch(/differential privacy/);
    // Only the researcher's two uploads (plan, weights) arrived: no weights left the node.
    expect(uploadedFiles(network.dataDir)).toBe(uploadsBefore + 2);
  });

  it('still trains the same request without dp_args', async () => {
    const reply = await train(mlpPlan(), {});
    expect(reply).toMatchObject({ success: true, sample_size: 30 });
  });
});
