/**
 * What Opacus's ModuleValidator.fix does to a model before DP training on a Python Fed-BioMed v4.5 node
 * (DPController.validate_and_fix_model; opacus/validators/batch_norm.py, Opacus 1.4): every batch norm becomes
 * nn.GroupNorm(gcd(32, channels), channels) with GroupNorm's default eps and fresh affine parameters. A TS node
 * applies the same to the plan so that a mixed federation under DP trains one model with one set of parameter
 * names and shapes (weight and bias kept, running statistics gone).
 */
import type { LayerSpec, PlanSpec } from './spec';
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
  for (const branch of graph.branches) {
    const layers = fixed.model[branch.name] as LayerSpec[];
    for (const layer of branch.layers) {
      if (layer.type !== 'batch_norm') continue;
      const groups = dpGroupCount(layer.features);
      layers[layer.index] = { type: 'group_norm', groups };
      replaced.push(`${layer.path}: batch_norm -> group_norm(${groups} groups, ${layer.features} channels)`);
    }
  }
  return { spec: replaced.length > 0 ? validatePlan(fixed).spec : spec, replaced };
}
