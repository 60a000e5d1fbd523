/**
 * The typed builder researchers write plans with:
 *
 *   export default definePlan({
 *     name: 'GbmResponder',
 *     inputs: { image: { modalities: ['T1', 'FLAIR'], dims: 2, size: [64, 64] } },
 *     target: { column: 'responder' },
 *     model: { image: [{ type: 'conv2d', outChannels: 8, kernelSize: 3 }, { type: 'relu' }, { type: 'flatten' }],
 *              head: [{ type: 'dense', outFeatures: 1 }, { type: 'sigmoid' }] },
 *     loss: { type: 'bce' },
 *     optimizer: { type: 'adam', lr: 1e-3 },
 *   });
 *
 * It fills the fixed format, the version (1 for branch models, 2 for graph models) and the empty lists, validates,
 * and returns a plain JSON-ready PlanSpec. Graph models are easiest written with modelGraph() (graph-builder.ts).
 */
import { validatePlan } from './validate';
import { isGraphModel, PLAN_FORMAT, PLAN_FORMAT_VERSION, PLAN_GRAPH_VERSION, PlanInit, PlanSpec } from './spec';

/**
 * Writes a declarative training plan: fills the fixed fields, validates, returns the plan as JSON-ready data.
 *
 * @example
 * ```ts
 * // plan.ts: what `fedbiomed-ts researcher run experiment.yaml` loads (its default export)
 * import { definePlan } from 'fedbiomed-ts';
 * export default definePlan({
 *   name: 'TourMlp',
 *   inputs: { tabular: { columns: ['x1', 'x2'] } },
 *   target: { column: 'y' },
 *   model: { tabular: [{ type: 'dense', outFeatures: 8 }, { type: 'relu' }], head: [{ type: 'dense', outFeatures: 2 }] },
 *   loss: { type: 'cross_entropy' },
 *   optimizer: { type: 'sgd', lr: 0.1 },
 * });
 * ```
 */
export function definePlan(init: PlanInit): PlanSpec {
  const spec: PlanSpec = {
    ...init,
    format: init.format ?? PLAN_FORMAT,
    version: init.version ?? (isGraphModel(init.model) ? PLAN_GRAPH_VERSION : PLAN_FORMAT_VERSION),
    preprocessing: init.preprocessing ?? [],
    metrics: init.metrics ?? [],
    modelArgs: init.modelArgs ?? {},
  };
  // A deep copy through JSON drops undefined fields, so what is validated is exactly what will be hashed and sent.
  const plain = JSON.parse(JSON.stringify(spec)) as PlanSpec;
  return validatePlan(plain).spec;
}
