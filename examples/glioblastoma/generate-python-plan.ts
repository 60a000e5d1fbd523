/**
 * Writes the PyTorch (Fed-BioMed TorchTrainingPlan) version of the demo's plan, for Python nodes and for reading:
 *   npx ts-node --transpile-only examples/glioblastoma/generate-python-plan.ts
 * plan.test.ts fails when the committed file is not what this script writes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { generateTorchPlan } from 'fedbiomed-ts';
import { glioResponsePlan, PLAN_NAME } from './plan';

export const GENERATED_PLAN_FILE = path.join(__dirname, 'generated', `${PLAN_NAME}.py`);

export function generatedPlanSource(): string {
  return generateTorchPlan(glioResponsePlan(), { className: PLAN_NAME });
}

if (require.main === module) {
  fs.mkdirSync(path.dirname(GENERATED_PLAN_FILE), { recursive: true });
  fs.writeFileSync(GENERATED_PLAN_FILE, generatedPlanSource());
  process.stdout.write(`wrote ${path.relative(process.cwd(), GENERATED_PLAN_FILE)}\n`);
}
