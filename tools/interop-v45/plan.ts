/**
 * The training plan of every interop-v45 scenario: the recorded network's CSV MLP (4 → 8 → 2, Adam lr 0.01,
 * accuracy), as a fedbiomed-ts declarative plan. Python nodes run its generated TorchTrainingPlan; TS nodes train
 * the spec embedded in that file.
 */
import { definePlan } from '../../src/plan/define';

export default definePlan({
  name: 'InteropCsvMlp',
  description: 'interop-v45: MLP on the four synthetic CSV features',
  inputs: { tabular: { columns: ['f0', 'f1', 'f2', 'f3'] } },
  target: { column: 'label' },
  model: { tabular: [{ type: 'dense', outFeatures: 8 }, { type: 'relu' }], head: [{ type: 'dense', outFeatures: 2 }] },
  loss: { type: 'cross_entropy' },
  optimizer: { type: 'adam', lr: 0.01 },
  metrics: ['accuracy'],
});
