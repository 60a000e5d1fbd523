/**
 * The harness of the node fault tests (faults.test.ts, hostile.test.ts): a node directory configured against an
 * embedded broker and repository, a CSV dataset, a training plan and initial weights uploaded, a train request
 * builder, a researcher connected to the broker, and the node started on it ({@link withRunningNode}).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startEmbeddedNetwork, type EmbeddedNetwork } from '../../src/transport/embedded';
import { Messaging } from '../../src/transport/mqtt';
import { RepositoryClient } from '../../src/transport/repository';
import type { NodeToResearcherMessage, TrainRequest, TrainReply } from '../../src/protocol/messages';
import { encodeParams, aggregatedParamsFile } from '../../src/serialize';
import { generateTorchPlan } from '../../src/plan/pytorch';
import { initialWeights } from '../../src/plan/init';
import { mlpPlan } from '../../src/plan/testing/plans';
import { defaultConfig, writeConfig, type NodeLimits } from '../config';
import { openNodeStores } from '../stores';
import { NodeAgent, type NodeAgentOptions } from '../agent';

export interface NodeBench {
  dir: string;
  nodeDir: string;
  network: EmbeddedNetwork;
  /** The broker the node is configured with: the bench's, or `brokerUrl` when given. */
  brokerUrl: string;
  repo: RepositoryClient;
  datasetId: string;
  planUrl: string;
  paramsUrl: string;
  /** A train request for the uploaded plan and weights; `args` override training arguments. */
  request(overrides?: Partial<TrainRequest>, args?: Record<string, unknown>): TrainRequest;
  /** Closes the network and removes the directory. */
  close(): Promise<void>;
}

export interface NodeBenchOptions {
  limits?: Partial<NodeLimits>;
  /** The repository the node uploads to, the embedded one by default. */
  uploadsUrl?: string | ((network: EmbeddedNetwork) => string);
  /** The dataset's CSV text, 40 rows of 4 features and a binary label by default. */
  csv?: string;
  /** The MQTT broker the node and the researcher use instead of the bench's (one a test can stop and restart). */
  brokerUrl?: string;
}

/** Names used by a bench whose tag is `tag`: researcher_TAG, job_TAG. */
export const researcherIdFor = (tag: string) => `researcher_${tag}`;
export const jobIdFor = (tag: string) => `job_${tag}`;

export async function startNodeBench(tag: string, nodeId: string, options: NodeBenchOptions = {}): Promise<NodeBench> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fbts-${tag}-`));
  const network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0, dataDir: path.join(dir, 'repo') });
  const nodeDir = path.join(dir, 'node');
  const uploadsUrl = typeof options.uploadsUrl === 'function' ? options.uploadsUrl(network) : options.uploadsUrl;
  writeConfig(nodeDir, defaultConfig({ nodeId, broker: network.mqttUrl, uploadsUrl: uploadsUrl ?? network.uploadsUrl,
    approval: false, limits: { ...defaultConfig().limits, ...options.limits } }));
  if (options.brokerUrl) {
    const config = path.join(nodeDir, 'config.yaml');
    fs.writeFileSync(config, fs.readFileSync(config, 'utf8').replace(network.mqttUrl, options.brokerUrl));
  }
  const csv = path.join(dir, 'data.csv');
  fs.writeFileSync(csv, options.csv ?? ['f0,f1,f2,f3,label',
    ...Array.from({ length: 40 }, (_, i) => `${i % 7},${(i * 3) % 5},${i % 2},${(i % 11) / 10},${i % 2}`)].join('\n') + '\n');
  const datasetId = (await openNodeStores(nodeDir, {}).datasets.add({ name: 'd', dataType: 'csv', tags: ['csv'], path: csv }))
    .dataset_id;
  const repo = new RepositoryClient({ uploadsUrl: network.uploadsUrl, retries: 0 });
  const planUrl = await repo.upload(Buffer.from(generateTorchPlan(mlpPlan())), `my_model_${tag}.py`);
  const paramsUrl = await repo.upload(Buffer.from(encodeParams(aggregatedParamsFile(researcherIdFor(tag),
    initialWeights(mlpPlan(), 1)))), `aggregated_params_${tag}.mpk`);
  return {
    dir, nodeDir, network, brokerUrl: options.brokerUrl ?? network.mqttUrl, repo, datasetId, planUrl, paramsUrl,
    request: (overrides = {}, args = {}) => ({
      researcher_id: researcherIdFor(tag), job_id: jobIdFor(tag), state_id: null, params_url: paramsUrl,
      training_args: {
        optimizer_args: { lr: 0.01 }, loader_args: { batch_size: 4 }, epochs: null, num_updates: 4, dry_run: false,
        batch_maxnum: null, test_ratio: 0.25, test_on_local_updates: false, test_on_global_updates: false,
        test_metric: null, test_metric_args: {}, log_interval: 10, fedprox_mu: null, use_gpu: false, dp_args: null,
        share_persistent_buffers: true, random_seed: 7, ...args,
      },
      dataset_id: datasetId, training: true, model_args: {}, training_plan_url: planUrl, training_plan_class: 'TinyMlp',
      command: 'train', secagg_servkey_id: null, secagg_biprime_id: null, secagg_random: null,
      secagg_clipping_range: null, round: 0, aggregator_args: {}, aux_var_urls: null, ...overrides,
    }),
    close: async () => {
      await network.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A researcher on the broker at `url`, every message it receives kept in `replies`. */
export async function researcherOn(url: string, reconnectMs = 50): Promise<{ messaging: Messaging; replies: NodeToResearcherMessage[] }> {
  const messaging = await Messaging.connect({ role: 'researcher', brokerUrl: url, reconnectBackoff:
    { initialDelayMs: reconnectMs, maxDelayMs: reconnectMs, factor: 1 } });
  const replies: NodeToResearcherMessage[] = [];
  messaging.onMessage((m) => void replies.push(m as NodeToResearcherMessage));
  return { messaging, replies };
}

/** Polls `probe` until it returns a value, or fails naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const trainReply = (replies: NodeToResearcherMessage[], job: string) =>
  replies.find((m): m is TrainReply => m.command === 'train' && m.job_id === job);

/** A node started on a bench, with a researcher on its broker. */
export interface RunningNode {
  bench: NodeBench;
  agent: NodeAgent;
  messaging: Messaging;
  /** Every message the researcher received. */
  replies: NodeToResearcherMessage[];
  /** Closes the researcher, stops the node, closes the bench: in that order. */
  close(): Promise<void>;
}

export interface RunningNodeOptions extends NodeBenchOptions {
  /** The agent's options beyond its folder; by default an empty environment and a silent local log. */
  agent?: Omit<NodeAgentOptions, 'dir'>;
  /** Runs on the bench before the node starts (a queue left from a previous run, a config edited). */
  beforeStart?: (bench: NodeBench) => void;
}

/**
 * A bench, a researcher on its broker (subscribed first: it sees what the node sends as it starts) and the node
 * started on it. What fails half-way is closed before the error is thrown.
 */
export async function startRunningNode(tag: string, nodeId: string, options: RunningNodeOptions = {}): Promise<RunningNode> {
  const bench = await startNodeBench(tag, nodeId, options);
  let researcher: Awaited<ReturnType<typeof researcherOn>> | undefined;
  try {
    researcher = await researcherOn(bench.brokerUrl);
    options.beforeStart?.(bench);
    const agent = await NodeAgent.start({ env: {}, localLog: () => undefined, ...options.agent, dir: bench.nodeDir });
    const { messaging, replies } = researcher;
    return {
      bench, agent, messaging, replies,
      close: async () => {
        await messaging.close();
        await agent.stop();
        await bench.close();
      },
    };
  } catch (err) {
    await researcher?.messaging.close();
    await bench.close();
    throw err;
  }
}

/** Runs `body` against a running node ({@link startRunningNode}), and closes it after whatever happens. */
export async function withRunningNode(tag: string, nodeId: string, options: RunningNodeOptions,
  body: (node: RunningNode) => Promise<void>): Promise<void> {
  const node = await startRunningNode(tag, nodeId, options);
  try {
    await body(node);
  } finally {
    await node.close();
  }
}
