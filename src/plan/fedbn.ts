/**
 * FedBN (Li et al., ICLR 2021): normalisation layers stay local to each node and never enter the aggregate.
 * A plan's `fedbn` option names what stays: 'statistics' (batch-norm running_mean, running_var,
 * num_batches_tracked) or 'all' (those, plus the affine weight and bias of batch, instance, layer and group norms).
 *
 * Both kinds of node honour it the same way: a node leaves the local parameters out of the weights it returns,
 * keeps its own copy, and when a global model lacks them (every round after round 0) puts its copy back before
 * validating or training; a global model that has them (round 0's initial weights) is used as sent.
 * TS nodes: node-agent/fedbn-store.ts; Python nodes: the generated plan's postprocess / set_model_params /
 * set_dataset_path (src/plan/pytorch.ts), in Fed-BioMed's var directory.
 */
import { formatPath, PlanIssue } from './errors';
import type { ResolvedGraph } from './graph';
import { describeParameters } from './parameters';
import type { PlanSpec } from './spec';

const STATISTICS = new Set(['running_mean', 'running_var', 'num_batches_tracked']);
const NORMS = new Set(['batch_norm', 'instance_norm', 'layer_norm', 'group_norm']);

/** Names of the parameters that stay on the node, in state_dict order (empty without the option). */
export function localParameterNamesOf(spec: PlanSpec, graph: ResolvedGraph): string[] {
  if (!spec.fedbn) return [];
  return describeParameters(graph)
    .filter((p) => NORMS.has(p.layer.type) && (STATISTICS.has(p.role) || spec.fedbn === 'all'))
    .map((p) => p.name);
}

/** The option needs something to keep local. */
export function fedbnIssues(spec: PlanSpec, graph: ResolvedGraph): PlanIssue[] {
  if (!spec.fedbn || localParameterNamesOf(spec, graph).length > 0) return [];
  const what = spec.fedbn === 'all' ? 'normalisation layer with parameters' : 'batch_norm layer';
  return [{ path: formatPath(['fedbn']), message: `the model has no ${what}: nothing would stay local` }];
}
