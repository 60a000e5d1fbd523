/**
 * The set-up of the researcher tests over simulated nodes (experiment.test.ts, hostile.test.ts): one embedded
 * network per test file, simulated nodes whose "training" is a known affine function, closed after each test.
 */
import { type EmbeddedNetwork, startEmbeddedNetwork } from '../../src/transport/embedded';
import type { WeightMap } from '../aggregators/tensors';
import { type SimNode, type SimNodeOptions, startSimNode, affineTrain } from './sim-node';

export const INITIAL: WeightMap = new Map([
  ['fc.weight', { dtype: 'float32', shape: [2, 3], data: new Float32Array([0.1, -0.2, 0.3, 0.4, -0.5, 0.6]) }],
  ['fc.bias', { dtype: 'float32', shape: [2], data: new Float32Array([0.01, -0.02]) }],
]);
/** Each simulated node's sample size and training offset, so expected averages can be recomputed independently. */
export const SIZES: Record<string, number> = { node_a: 10, node_b: 20, node_c: 30 };
export const OFFSETS: Record<string, number> = { node_a: 0.1, node_b: -0.05, node_c: 0.2 };

export interface SimFederation {
  /** The embedded broker and repository, started before the file's tests. */
  readonly network: EmbeddedNetwork;
  /** The nodes started by the current test, in start order. */
  readonly nodes: SimNode[];
  /** Starts `ids` (the federation's default ids unless given), each with its `extra` options. */
  readonly startNodes: (extra?: Partial<Record<string, Partial<SimNodeOptions>>>, ids?: string[]) => Promise<void>;
}

/** Registers the jest hooks that start the network and close the nodes; call it at the top of a test file. */
export function simFederation(defaultIds: string[] = Object.keys(SIZES)): SimFederation {
  let network: EmbeddedNetwork | undefined;
  const nodes: SimNode[] = [];
  beforeAll(async () => {
    network = await startEmbeddedNetwork();
  });
  afterAll(() => network?.close());
  afterEach(async () => {
    for (const n of nodes) await n.close();
    nodes.length = 0;
  });
  const started = () => {
    if (!network) throw new Error('the simulated federation is used before its beforeAll hook ran');
    return network;
  };
  return {
    get network() {
      return started();
    },
    nodes,
    startNodes: async (extra = {}, ids = defaultIds) => {
      for (const nodeId of ids) {
        nodes.push(await startSimNode(started().mqttUrl, started().uploadsUrl,
          { nodeId, sampleSize: SIZES[nodeId], train: affineTrain(OFFSETS[nodeId]), ...(extra[nodeId] ?? {}) }));
      }
    },
  };
}
