/**
 * A researcher on a Fed-BioMed v6 network (gRPC, protocol "7"), driving Python v6.3.3 nodes and fedbiomed-ts
 * nodes: discovery (ping, list, search), training-plan approval and status, and FedAvg rounds with a final
 * validation, with the same plan document as on v4.5 networks (Python v6 nodes get the plan's v6 PyTorch file).
 *
 * NOT the `Experiment` API yet: that class is built on the v4.5 message bus and file repository; this is the v6
 * transport's own entry point, on which `Experiment({ network: { protocol: 'v6' } })` is still to be built.
 */
import { makeV6Message, type V6Message } from '../src/transport/v6/messages';
import { V6ResearcherServer, type V6ResearcherServerOptions } from '../src/transport/v6/researcher-server';
import { generateTorchPlan } from '../src/plan/pytorch';
import { shippedPlan } from './plan-source';
import type { PlanSpec } from '../src/plan/spec';
import { PyFloat } from '../src/protocol/pyfloat';
import { buildTrainingArgs, type TrainingArgsInput } from './training-args';
import { TorchTensor } from '../src/serialize';
import { federatedAverage } from './aggregators/fedavg';
import { toFloat32, type WeightMap } from './aggregators/tensors';

/** Python's researcher uses DiscardOnTimeout(5) for ping, search, list, approval and status. */
export const V6_DISCOVERY_TIMEOUT_MS = 5_000;

/**
 * `training_args` for v6 nodes: the shared 17-key builder (checks and float typing as for v4.5), plus v6's two
 * extra keys (`test_batch_size`, `shuffle_testing_dataset`) and `test_metric` as v6's tagged MetricTypes.
 */
export function v6TrainingArgs(input: TrainingArgsInput | Record<string, unknown>): Record<string, unknown> {
  const { test_batch_size: testBatchSize = 0, shuffle_testing_dataset: shuffle = false, ...rest } =
    input as Record<string, unknown>;
  const args: Record<string, unknown> = { ...buildTrainingArgs(rest), test_batch_size: testBatchSize,
    shuffle_testing_dataset: shuffle };
  if (typeof args['test_metric'] === 'string') args['test_metric'] = { __type__: 'MetricTypes', value: args['test_metric'] };
  return args;
}

export interface V6RoundResult {
  round: number;
  replies: Map<string, V6Message>;
  /** Aggregated weights after the round. */
  weights: WeightMap;
}

export class V6Federation {
  private constructor(readonly server: V6ResearcherServer) {}

  static async start(options: V6ResearcherServerOptions): Promise<V6Federation> {
    return new V6Federation(await V6ResearcherServer.start(options));
  }

  get researcherId(): string {
    return this.server.researcherId;
  }

  private base(): Record<string, unknown> {
    return { researcher_id: this.server.researcherId };
  }

  /** Waits until `count` nodes poll (v6 researchers wait 3 s, then up to 20 s, for the first one). */
  async waitForNodes(count: number, timeoutMs = 20_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.server.activeNodes().length < count) {
      if (Date.now() > deadline) {
        throw new Error(`${this.server.activeNodes().length} node(s) connected within ${timeoutMs} ms, ${count} expected`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.server.activeNodes();
  }

  ping(): Promise<Map<string, V6Message>> {
    return this.server.request(this.server.activeNodes(), () => makeV6Message('PingRequest', this.base()),
      V6_DISCOVERY_TIMEOUT_MS);
  }

  list(): Promise<Map<string, V6Message>> {
    return this.server.request(this.server.activeNodes(), () => makeV6Message('ListRequest', this.base()),
      V6_DISCOVERY_TIMEOUT_MS);
  }

  /** Node id → the dataset it offers for `tags` (nodes with none are left out, as v6 does). */
  async search(tags: string[]): Promise<Map<string, Record<string, unknown>>> {
    const replies = await this.server.request(this.server.activeNodes(),
      () => makeV6Message('SearchRequest', { ...this.base(), tags }), V6_DISCOVERY_TIMEOUT_MS);
    const found = new Map<string, Record<string, unknown>>();
    for (const [node, reply] of replies) {
      const databases = reply.fields['databases'];
      if (reply.className === 'SearchReply' && Array.isArray(databases) && databases.length > 0) {
        found.set(node, databases[0] as Record<string, unknown>);
      }
    }
    return found;
  }

  /** The Python source v6 nodes receive for a plan (its v6 TorchTrainingPlan file). */
  static planSource(spec: PlanSpec): string {
    return generateTorchPlan(spec, { fedbiomed: 'v6' });
  }

  approve(nodes: string[], spec: PlanSpec, description: string): Promise<Map<string, V6Message>> {
    return this.server.request(nodes, () => makeV6Message('ApprovalRequest', { ...this.base(), description,
      training_plan: V6Federation.planSource(spec) }), V6_DISCOVERY_TIMEOUT_MS);
  }

  status(nodes: string[], spec: PlanSpec, experimentId: string): Promise<Map<string, V6Message>> {
    return this.server.request(nodes, () => makeV6Message('TrainingPlanStatusRequest', { ...this.base(),
      experiment_id: experimentId, training_plan: V6Federation.planSource(spec) }), V6_DISCOVERY_TIMEOUT_MS);
  }

  /** Round-0 weights, as for v4.5 networks (parameters only, torch names and layout). */
  static initialWeights(spec: PlanSpec, seed: number): WeightMap {
    return shippedPlan(spec).initialWeights(seed);
  }

  /**
   * FedAvg over `datasets` (node id → dataset entry from search): `rounds` training rounds, then one validation
   * request (training: false) with the final weights when `validate`. Every node's reply is awaited (as v6 does:
   * no timeout for training); a failed reply or an error ends the run with an error naming the node.
   */
  async runFedAvg(options: { spec: PlanSpec; datasets: Map<string, Record<string, unknown>>; rounds: number;
    trainingArgs: Record<string, unknown>; experimentId: string; seed?: number; validate?: boolean;
    onRound?: (result: V6RoundResult) => void }): Promise<V6RoundResult[]> {
    const source = V6Federation.planSource(options.spec);
    let weights = V6Federation.initialWeights(options.spec, options.seed ?? 0);
    const states = new Map<string, string | null>();
    const results: V6RoundResult[] = [];
    const nodes = [...options.datasets.keys()];
    const trainRequest = (node: string, round: number, training: boolean) => makeV6Message('TrainRequest', {
      ...this.base(), experiment_id: options.experimentId, state_id: states.get(node) ?? null,
      training_args: options.trainingArgs, dataset_id: options.datasets.get(node)?.['dataset_id'], training,
      model_args: {}, params: Object.fromEntries([...weights].map(([k, t]) =>
        [k, new TorchTensor('float32', t.shape, toFloat32(t).data as Float32Array)])),
      training_plan: source, training_plan_class: options.spec.name, round, aggregator_args: {},
      secagg_arguments: {}, optim_aux_var: null,
    });
    for (let round = 0; round < options.rounds; round++) {
      const replies = await this.server.request(nodes, (node) => trainRequest(node, round, true));
      const contributions = [...replies].map(([node, reply]) => {
        if (reply.className !== 'TrainReply' || reply.fields['success'] !== true) {
          throw new Error(`round ${round}: node ${node} failed: ${String(reply.fields['msg'] ?? reply.fields['extra_msg'])}`);
        }
        states.set(node, reply.fields['state_id'] as string | null);
        return { nodeId: node, sampleSize: Number(reply.fields['sample_size']),
          weights: new Map(Object.entries(reply.fields['params'] as Record<string, TorchTensor>)) as WeightMap };
      });
      const missing = nodes.filter((n) => !replies.has(n));
      if (missing.length > 0) throw new Error(`round ${round}: no reply from ${missing.join(', ')} (disconnected)`);
      weights = federatedAverage(contributions);
      const result = { round, replies, weights };
      results.push(result);
      options.onRound?.(result);
    }
    if (options.validate) {
      await this.server.request(nodes, (node) => trainRequest(node, options.rounds, false));
    }
    return results;
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/** A plain number of a v6 value (whole floats arrive as PyFloat). */
export function numberValue(v: unknown): number {
  return v instanceof PyFloat ? v.value : Number(v);
}
