/**
 * Differential privacy on a real TS node (embedded broker and repository, real training): local DP-SGD and central
 * DP honoured as a Python v4.5 node does, and a `train` request whose `dp_args` the node cannot honour refused
 * with the reason, never trained without the protection it asked for.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startEmbeddedNetwork, EmbeddedNetwork } from '../src/transport/embedded';
import { Messaging } from '../src/transport/mqtt';
import { RepositoryClient } from '../src/transport/repository';
import type { NodeToResearcherMessage, TrainReply, TrainRequest, WireTrainingArgs } from '../src/protocol/messages';
import { encodeParams, aggregatedParamsFile, decodeParams, modelWeightsOf, TorchTensor } from '../src/serialize';
import { definePlan } from '../src/plan/define';
import { expectedPrivacy } from '../src/engine/dp/expected';
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

/** A tabular MLP on the test CSV, `hidden` wide, optionally with batch norm. */
function tabularPlan(hidden: number, batchNorm = false): PlanSpec {
  return definePlan({
    name: batchNorm ? 'DpMlpBn' : `DpMlp${hidden}`,
    inputs: { tabular: { columns: ['f0', 'f1', 'f2', 'f3'] } },
    target: { column: 'label' },
    model: {
      tabular: [{ type: 'dense', outFeatures: hidden }, ...(batchNorm ? [{ type: 'batch_norm' as const }] : []), { type: 'relu' }],
      head: [{ type: 'dense', outFeatures: 2 }],
    },
    loss: { type: 'cross_entropy' },
    optimizer: { type: 'sgd', lr: 0.05 },
    metrics: ['accuracy'],
  });
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

  /** The weights a successful reply uploaded. */
  async function uploaded(reply: TrainReply): Promise<Record<string, Float32Array>> {
    const weights = modelWeightsOf(decodeParams(await repo.download(reply.params_url))) as Record<string, TorchTensor>;
    return Object.fromEntries(Object.entries(weights).map(([k, t]) => [k, t.data as Float32Array]));
  }

  /** Sends one train request and waits for its reply. */
  async function train(plan: PlanSpec, args: Partial<WireTrainingArgs>, training = true): Promise<TrainReply> {
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
      dataset_id: datasetId, training, model_args: {}, training_plan_url: planUrl,
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

  it('trains a batch norm plan under DP as a Python node does: group norm in its place (Opacus ModuleValidator.fix)', async () => {
    const reply = await train(tabularPlan(8, true), { dp_args: { type: 'local', sigma: 1.5, clip: 0.8 } });
    expect(reply).toMatchObject({ success: true, node_id: NODE_ID });
    const weights = await uploaded(reply);
    // GroupNorm(gcd(32, 8) = 8, 8): weight and bias, no running statistics.
    expect(Object.keys(weights)).toEqual(['tabular.0.weight', 'tabular.0.bias', 'tabular.1.weight', 'tabular.1.bias',
      'head.0.weight', 'head.0.bias']);
    expect(localLog.some((l) => l.includes('model.tabular[1]: batch_norm -> group_norm(8 groups, 8 channels)'))).toBe(true);
  });

  it('validates under dp_args the model it trains (group norm for batch norm), and does not refuse validation', async () => {
    localLog.length = 0;
    const reply = await train(tabularPlan(8, true), { fedprox_mu: 0.1, test_on_global_updates: true,
      dp_args: { type: 'local', sigma: 1.5, clip: 0.8 } }, false);
    expect(reply).toMatchObject({ success: true, params_url: '' });
    expect(localLog.some((l) => l.includes('batch_norm -> group_norm(8 groups, 8 channels)'))).toBe(true);
  });

  it('refuses what it cannot honour (a clip of 0, FedProx with DP) with success:false and the reason, uploading nothing', async () => {
    const uploadsBefore = uploadedFiles(network.dataDir);
    const zero = await train(tabularPlan(8), { dp_args: { type: 'local', sigma: 1.5, clip: 0 } });
    expect(zero.success).toBe(false);
    expect(zero.msg).toMatch(/dp_args.clip must be a finite number > 0/);
    const prox = await train(tabularPlan(8), { fedprox_mu: 0.1, dp_args: { type: 'local', sigma: 1.5, clip: 0.8 } });
    expect(prox.success).toBe(false);
    expect(prox.msg).toMatch(/^FB616: differential privacy cannot be honoured, refusing to train: fedprox_mu cannot be combined with dp_args/);
    // Only the researcher's uploads (plan and weights, twice): no weights left the node.
    expect(uploadedFiles(network.dataDir)).toBe(uploadsBefore + 4);
  });

  it('local DP: trains, never returns the weights of the same run without DP, logs its epsilon', async () => {
    const plain = await train(tabularPlan(8), {});
    const local = await train(tabularPlan(8), { dp_args: { type: 'local', sigma: 1.1, clip: 0.5 } });
    expect(plain).toMatchObject({ success: true, sample_size: 30 });
    expect(local).toMatchObject({ success: true, sample_size: 30 });
    const a = await uploaded(plain);
    const b = await uploaded(local);
    expect(Object.keys(b)).toEqual(Object.keys(a));
    for (const name of Object.keys(a)) expect(Array.from(b[name])).not.toEqual(Array.from(a[name]));
    // 30 samples, batch 8: sample rate 1/4; 6 steps; delta = 1/30.
    const line = localLog.find((l) => l.includes('DP local: sigma 1.1, clip 0.5, sample rate 0.250000, 6 noised steps'));
    expect(line).toMatch(/epsilon \d+\.\d{4} this round, \d+\.\d{4} for the job over 1 round\(s\), at delta 3\.333e-2/);
    // The researcher's estimate before the run is what the node spent.
    const expected = expectedPrivacy({ samples: 40, testRatio: 0.25, batchSize: 8, numUpdates: 6, sigma: 1.1, rounds: 1 });
    expect(line).toContain(`epsilon ${expected.epsilon.toFixed(4)} this round`);
  });

  it('central DP: noise of std sigma*clip added once to every parameter after training; local DP adds none after', async () => {
    // lr 0: training changes nothing, so what changed is the central noise alone.
    const plan = tabularPlan(64); // 4*64 + 64 + 64*2 + 2 = 450 coordinates
    const sigma = 0.8;
    const clip = 0.5;
    const start = initialWeights(plan, 1);
    const central = await train(plan, { optimizer_args: { lr: 0 }, dp_args: { type: 'central', sigma, clip } });
    expect(central).toMatchObject({ success: true });
    const noised = await uploaded(central);
    const diffs = Object.entries(noised).flatMap(([k, w]) => Array.from(w, (v, i) => v - (start[k].data as Float32Array)[i]));
    expect(diffs.length).toBe(450);
    const std = sigma * clip;
    const mean = diffs.reduce((s, d) => s + d, 0) / diffs.length;
    const ratio = diffs.reduce((s, d) => s + d * d, 0) / diffs.length / (std * std);
    expect(Math.abs(mean)).toBeLessThan(5 * std / Math.sqrt(diffs.length));
    // Once: variance ratio 1 (twice would be 2, none 0); 5 standard errors of a chi-square mean is ±0.33 here.
    expect(Math.abs(ratio - 1)).toBeLessThan(5 * Math.sqrt(2 / diffs.length));
    expect(localLog.some((l) => l.includes(`Gaussian noise of std ${std} (sigma ${sigma} x clip ${clip}) added once to each of the 4 shared tensors`))).toBe(true);

    const local = await train(plan, { optimizer_args: { lr: 0 }, dp_args: { type: 'local', sigma, clip } });
    const unchanged = await uploaded(local);
    for (const [k, w] of Object.entries(unchanged)) expect(Array.from(w)).toEqual(Array.from(start[k].data as Float32Array));
  });

  it('still trains the same request without dp_args', async () => {
    const reply = await train(mlpPlan(), {});
    expect(reply).toMatchObject({ success: true, sample_size: 30 });
  });
});
