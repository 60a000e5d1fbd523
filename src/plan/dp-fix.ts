/**
 * What Opacus's ModuleValidator.fix does to a model before DP training on a Python Fed-BioMed v4.5 node
 * (DPController.validate_and_fix_model; opacus/validators/batch_norm.py, Opacus 1.4): every batch norm becomes
 * nn.GroupNorm(gcd(32, channels), channels) with GroupNorm's default eps and fresh affine parameters. A TS node
 * applies the same to the plan so that a mixed federation under DP trains one model with one set of parameter
 * names and shapes (weight and bias kept, running statistics gone).
 */
import { isGraphModel, type LayerSpec, type PlanSpec } from './spec';
import { validatePlan } from './validate';

export interface DpFixedPlan {
  spec: PlanSpec;
  /** `model.image[1]: batch_norm -> group_norm(4 groups)` for each replaced layer. */
  replaced: string[];
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Opacus's group count for a batch norm over `channels`: gcd(32, channels). */
export function dpGroupCount(channels: number): number {
  return gcd(32, channels);
}

export function withGroupNormForDp(spec: PlanSpec): DpFixedPlan {
  const { graph } = validatePlan(spec);
  const fixed = JSON.parse(JSON.stringify(spec)) as PlanSpec;
  const replaced: string[] = [];
  const note = (path: string, groups: number, channels: number) =>
    replaced.push(`${path}: batch_norm -> group_norm(${groups} groups, ${channels} channels)`);
  const model = fixed.model;
  if (isGraphModel(model)) {
    // Graph plans: the node keeps its name (hence its parameter names) and its inputs.
    for (const { layer } of graph.nodes) {
      if (layer.type !== 'batch_norm') continue;
      const groups = dpGroupCount(layer.features);
      const { name, input } = model.nodes[layer.index];
      model.nodes[layer.index] = { type: 'group_norm', groups, name, ...(input !== undefined ? { input } : {}) };
      note(layer.path, groups, layer.features);
    }
  } else {
    for (const branch of graph.branches) {
      const layers = model[branch.name] as LayerSpec[];
      for (const layer of branch.layers) {
        if (layer.type !== 'batch_norm') continue;
        const groups = dpGroupCount(layer.features);
        layers[layer.index] = { type: 'group_norm', groups };
        note(layer.path, groups, layer.features);
      }
    }
  }
  return { spec: replaced.length > 0 ? validatePlan(fixed).spec : spec, replaced };
}
