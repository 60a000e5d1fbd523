/** Human-readable description of a stored training plan, for `node plan show`. */
import * as fs from 'fs';
import type { TrainingPlanEntry } from './training-plans';
import { readPlanSource } from './plan-source';
import { describeTarget } from '../src/plan/image-target';
import { describeResources, estimatePlanResources } from './plan-resources';

export function describeStoredPlan(entry: TrainingPlanEntry): string {
  const lines = [
    `training plan ${entry.training_plan_id}`,
    `  status:      ${entry.training_plan_status}`,
    `  hash:        ${entry.hash} (${entry.algorithm} of the canonical plan JSON)`,
    `  researcher:  ${entry.researcher_id ?? '-'}`,
    `  description: ${entry.description}`,
    `  received:    ${entry.date_created}; last action ${entry.date_last_action}`,
  ];
  let source: string;
  try {
    source = fs.readFileSync(entry.training_plan_path, 'utf8');
  } catch (err) {
    lines.push(`  (plan file ${entry.training_plan_path} cannot be read: ${(err as Error).message})`);
    return lines.join('\n');
  }
  const reading = readPlanSource(source);
  if (!reading.ok) {
    lines.push(`  ${reading.reason}`);
    return lines.join('\n');
  }
  const { spec } = reading;
  lines.push(`  plan name:   ${spec.name}`);
  if (spec.inputs.image) {
    lines.push(`  image input: ${spec.inputs.image.modalities.join(', ')} → ${spec.inputs.image.dims}D ${spec.inputs.image.size.join('×')}`);
  }
  if (spec.inputs.tabular) lines.push(`  tabular:     ${spec.inputs.tabular.columns.join(', ')}`);
  lines.push(`  target:      ${describeTarget(spec)}`);
  lines.push(`  loss:        ${JSON.stringify(spec.loss)}; optimizer ${JSON.stringify(spec.optimizer)}`);
  // What training it costs, from the shapes alone: what a reviewer checks against the machine before approving.
  lines.push(`  resources:   ${describeResources(estimatePlanResources(spec))}`);
  lines.push('  spec (canonical JSON, what the hash covers):');
  lines.push(JSON.stringify(spec, null, 2).split('\n').map((l) => `    ${l}`).join('\n'));
  return lines.join('\n');
}
