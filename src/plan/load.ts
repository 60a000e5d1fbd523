/**
 * Reading a plan from a file: a TypeScript/JavaScript module (its default export, or its `plan` export), a JSON
 * document, or a generated PyTorch plan (.py, its embedded PLAN_SPEC). Always validated.
 */
import * as fs from 'fs';
import * as path from 'path';
import { findEmbeddedPlan } from './embed';
import { importPlanModule, loadErrorCause } from './module-loader';
import { PlanValidationError } from './errors';
import { PlanSpec } from './spec';
import { validatePlan } from './validate';
import { FedbiomedTsError } from '../errors';

export class PlanLoadError extends FedbiomedTsError {}

function planFromModule(file: string): unknown {
  let mod: Record<string, unknown>;
  try {
    mod = importPlanModule(file);
  } catch (err) {
    throw new PlanLoadError(`${file}: cannot load the module: ${loadErrorCause(err, file)}`);
  }
  const candidate = mod.default ?? mod.plan;
  if (candidate === undefined) {
    throw new PlanLoadError(`${file}: the module has neither a default export nor a 'plan' export`);
  }
  return candidate;
}

/** Loads and validates the plan in `file` (.ts/.js module, .json, or generated .py). */
export function loadPlanFile(file: string): PlanSpec {
  const absolute = path.resolve(file);
  if (!fs.existsSync(absolute)) throw new PlanLoadError(`${file}: no such file`);
  const ext = path.extname(absolute).toLowerCase();
  let value: unknown;
  if (ext === '.json') {
    try {
      value = JSON.parse(fs.readFileSync(absolute, 'utf8'));
    } catch (err) {
      throw new PlanLoadError(`${file}: not valid JSON: ${(err as Error).message}`);
    }
  } else if (ext === '.py') {
    const embedded = findEmbeddedPlan(fs.readFileSync(absolute, 'utf8'));
    if (!embedded) throw new PlanLoadError(`${file}: this Python file has no embedded fedbiomed-ts plan (PLAN_SPEC)`);
    return embedded.spec;
  } else {
    value = planFromModule(absolute);
  }
  try {
    return validatePlan(value).spec;
  } catch (err) {
    // Name the file, as every other load error does: the validation message alone does not say which plan.
    if (err instanceof PlanValidationError) err.message = `${file}: ${err.message}`;
    throw err;
  }
}
