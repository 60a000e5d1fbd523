/**
 * The Fed-BioMed v6 variant of the generated PyTorch plan. Checked end to end on a real v6.3.3 node by
 * tools/interop-v6 (run.sh ts-nodes: a mixed federation); here what distinguishes it from the v4.5 file.
 */
import { generateTorchPlan, TORCH_PLAN_DEFAULT_DEPENDENCIES, TORCH_PLAN_DEFAULT_DEPENDENCIES_V6 } from './pytorch';
import { extractPlanFromTorchSource } from './embed';
import { planHash } from './canonical';
import { cnn2dPlan, mlpPlan } from './testing/plans';

test('v6 plans import from v6 packages, pass numpy rows as lists, and embed the same plan', () => {
  const v45 = generateTorchPlan(mlpPlan());
  const v6 = generateTorchPlan(mlpPlan(), { fedbiomed: 'v6' });
  expect(v6.startsWith(TORCH_PLAN_DEFAULT_DEPENDENCIES_V6.join('\n'))).toBe(true);
  expect(v45.startsWith(TORCH_PLAN_DEFAULT_DEPENDENCIES.join('\n'))).toBe(true);
  expect(v6).not.toContain('from fedbiomed.common.data import');
  expect(v6).toContain('DataManager(dataset=x.tolist(), target=y.tolist(), shuffle=True)');
  expect(v45).toContain('DataManager(dataset=x, target=y, shuffle=True)');
  const embedded = extractPlanFromTorchSource(v6);
  expect(embedded && planHash(embedded)).toBe(planHash(mlpPlan()));
});

test('image plans are refused for v6 with the reason', () => {
  expect(() => generateTorchPlan(cnn2dPlan(), { fedbiomed: 'v6' })).toThrow(/MedicalFolderDataset/);
});
