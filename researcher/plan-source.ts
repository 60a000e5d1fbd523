/**
 * What an experiment ships to nodes: Python source (uploaded as `my_model_<uuid>.py`), the class to import
 * (`training_plan_class`) and the round-0 weights. Two kinds:
 *  - a declarative plan spec (src/plan): the PyTorch source is generated from it (Python nodes run it, TS nodes
 *    read the spec embedded in it) and the round-0 weights come from the TS model;
 *  - a hand-written Python plan with its own round-0 weights (to drive Python nodes with any Fed-BioMed plan).
 */
import type { PlanSpec } from '../src/plan/spec';
import { validatePlan } from '../src/plan/validate';
import { initialWeights } from '../src/plan/init';
import { describeParameters } from '../src/plan/parameters';
import { PLAN_FORMAT } from '../src/plan/spec';
import { generateTorchPlan } from '../src/plan/pytorch';
import type { ModelWeights } from '../src/serialize/params-file';
import { WeightMap, toWeightMap, WeightTensor } from './aggregators/tensors';
import { FedbiomedTsError } from '../src/errors';

export interface PythonPlan {
  /** Full Python file text, imports included (Fed-BioMed's layout: dependency lines, then the class). */
  python: string;
  className: string;
  /** Round-0 weights with PyTorch state_dict names (parameters; buffers optional). */
  initialWeights: WeightMap | ModelWeights | Record<string, WeightTensor>;
}

export type PlanInput = PlanSpec | PythonPlan;

export interface ShippedPlan {
  kind: 'spec' | 'python';
  source: string;
  className: string;
  /** The declarative spec, for spec plans. */
  spec?: PlanSpec;
  /** Round-0 weights: parameters only, as Python's `named_parameters()` (buffers are not sent in round 0). */
  initialWeights(seed: number): WeightMap;
}

export class PlanSourceError extends FedbiomedTsError {}

function isPlanSpec(plan: unknown): plan is PlanSpec {
  return typeof plan === 'object' && plan !== null && (plan as { format?: unknown }).format === PLAN_FORMAT;
}

const PY_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `fedbiomed` says which Fed-BioMed the generated PyTorch file targets (v6 moved DataManager and the data loader;
 * v6 networks carry the source inline): a hand-written plan is shipped as written.
 */
export function shippedPlan(plan: PlanInput, options: { className?: string; fedbiomed?: 'v4.5' | 'v6' } = {}): ShippedPlan {
  if (isPlanSpec(plan)) {
    const { spec, graph } = validatePlan(plan);
    const className = options.className ?? spec.name;
    if (!PY_IDENTIFIER.test(className)) throw new PlanSourceError(`plan class name ${JSON.stringify(className)} is not a Python identifier`);
    const trainable = new Set(describeParameters(graph).filter((p) => p.trainable).map((p) => p.name));
    return {
      kind: 'spec',
      source: generateTorchPlan(spec, { className, fedbiomed: options.fedbiomed }),
      className,
      spec,
      initialWeights(seed: number): WeightMap {
        const all = initialWeights(spec, seed);
        return new Map(Object.entries(all).filter(([name]) => trainable.has(name)));
      },
    };
  }
  if (typeof plan !== 'object' || plan === null || typeof plan.python !== 'string') {
    throw new PlanSourceError('plan must be a plan spec (definePlan) or { python, className, initialWeights }');
  }
  const { python, className, initialWeights: weights } = plan;
  if (!PY_IDENTIFIER.test(className ?? '')) throw new PlanSourceError(`className ${JSON.stringify(className)} is not a Python identifier`);
  if (!new RegExp(`^class\\s+${className}\\b`, 'm').test(python)) {
    throw new PlanSourceError(`the Python plan source defines no class ${className}`);
  }
  const map = toWeightMap(weights as WeightMap);
  if (map.size === 0) throw new PlanSourceError('a Python plan needs non-empty initialWeights (round-0 model_weights)');
  return { kind: 'python', source: python, className, initialWeights: () => map };
}
