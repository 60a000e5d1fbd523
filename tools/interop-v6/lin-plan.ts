/** The plan of the v6 interop run: linear regression on the runbook's 4-feature CSV (x0..x3 -> y), MSE, SGD. */
import { definePlan } from '../../src/plan/define';

export default definePlan({
  name: 'LinPlan',
  description: 'linear regression on four CSV features (Fed-BioMed v6 interop run)',
  inputs: { tabular: { columns: ['x0', 'x1', 'x2', 'x3'] } },
  target: { column: 'y' },
  model: { tabular: [{ type: 'dense', outFeatures: 1 }], head: [] },
  loss: { type: 'mse' },
  optimizer: { type: 'sgd', lr: 0.05 },
  metrics: ['mse'],
});
