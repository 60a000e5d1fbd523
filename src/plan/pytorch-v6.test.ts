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

test("v6 image plans use v6's MedicalFolderDataset (modalities + demographics, target from the row); v4.5's are unchanged", () => {
  const v45 = generateTorchPlan(cnn2dPlan());
  const v6 = generateTorchPlan(cnn2dPlan(), { fedbiomed: 'v6' });
  expect(v6).toContain('\nfrom fedbiomed.common.dataset import MedicalFolderDataset\n');
  expect(v6).not.toContain('from fedbiomed.common.data import');
  expect(v6).toContain("data_modalities=self.MODALITIES + ['demographics'],");
  expect(v6).toContain("target_modalities=['demographics'],");
  expect(v6).not.toContain('root=self.dataset_path');
  expect(v6).toContain("            data = (data, data['demographics'])\n        if isinstance(data, (list, tuple)):\n");
  // The v4.5 file keeps v4.5's API (and so the hashes Python v4.5 nodes approved).
  expect(v45).toContain('root=self.dataset_path,');
  expect(v45).toContain('demographics_transform=self._fbts_demographics,');
  expect(v45).not.toContain("data['demographics']");
  expect(v45).not.toContain('_fbts_demographics_v6');
  const embedded = extractPlanFromTorchSource(v6);
  expect(embedded && planHash(embedded)).toBe(planHash(cnn2dPlan()));
});
