/**
 * What a plan costs to train, estimated from its shapes alone (nothing allocated): the number of parameters and
 * the memory of one training step. A node shows it on review (`node plan show`) and checks it against its limits
 * before it builds the model, so a plan too big for the node fails its round with a reply instead of growing the
 * node until the kernel kills it.
 */
import { resolveGraph } from '../src/plan/graph';
import { describeParameters } from '../src/plan/parameters';
import type { PlanSpec } from '../src/plan/spec';
import type { NodeLimits } from './config';

export interface PlanResources {
  parameters: number;
  /** Values (floats) of activation per sample: the input and every layer's output. */
  activationsPerSample: number;
  /** Weights, gradients and optimizer state (Adam keeps two moments: the worst case), MB. */
  staticMb: number;
  /** Forward activations kept for the backward pass plus their gradients, per sample, MB. */
  perSampleMb: number;
}

const BYTES_PER_VALUE = 4;
const MB = 1024 * 1024;

const product = (values: readonly number[]): number => values.reduce((a, b) => a * b, 1);

/** Undefined when the plan's shapes cannot be resolved (validation reports why). */
export function estimatePlanResources(spec: PlanSpec): PlanResources | undefined {
  const { graph } = resolveGraph(spec);
  if (!graph) return undefined;
  const parameters = describeParameters(graph).reduce((sum, p) => sum + product(p.torchShape), 0);
  const inputs = product(graph.imageInputShape ?? [0]) * (graph.imageInputShape ? 1 : 0) +
    product(graph.tabularInputShape ?? [0]) * (graph.tabularInputShape ? 1 : 0);
  const activationsPerSample = inputs + graph.branches
    .reduce((sum, branch) => sum + branch.layers.reduce((s, layer) => s + product(layer.outShape), 0), 0);
  return {
    parameters,
    activationsPerSample,
    staticMb: (parameters * BYTES_PER_VALUE * 4) / MB,
    perSampleMb: (activationsPerSample * BYTES_PER_VALUE * 2) / MB,
  };
}

export function trainingMemoryMb(resources: PlanResources, batchSize: number): number {
  return resources.staticMb + resources.perSampleMb * batchSize;
}

/** Why this node will not train the plan with this batch size, or undefined when it fits its limits. */
export function resourceProblem(resources: PlanResources, batchSize: number, limits: NodeLimits): string | undefined {
  if (resources.parameters > limits.maxParameters) {
    return `the plan's model has ${resources.parameters} parameters, over this node's limit of ${limits.maxParameters}`;
  }
  const memory = trainingMemoryMb(resources, batchSize);
  if (memory > limits.maxTrainingMemoryMb) {
    return `training the plan with batch size ${batchSize} needs about ${Math.ceil(memory)} MB, over this node's ` +
      `limit of ${limits.maxTrainingMemoryMb} MB`;
  }
  return undefined;
}

/** One line for a reviewer. */
export function describeResources(resources: PlanResources | undefined): string {
  if (!resources) return 'unknown (the plan does not resolve)';
  return `${resources.parameters.toLocaleString('en-US')} parameters; training memory about ` +
    `${Math.ceil(resources.staticMb)} MB + ${resources.perSampleMb.toFixed(2)} MB per sample of a batch`;
}
