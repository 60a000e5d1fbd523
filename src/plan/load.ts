/**
 * Reading a plan from a file: a TypeScript/JavaScript module (its default export, or its `plan` export), a JSON
 * document, or a generated PyTorch plan (.py, its embedded PLAN_SPEC). Always validated.
 */
import * as fs from 'fs';
import * as path from 'path';
import { findEmbeddedPlan } from './embed';
import { PlanSpec } from './spec';
import { validatePlan } from './validate';

export class PlanLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanLoadError';
  }
}

/** Makes `require` understand .ts files (ts-node, transpile only) when nothing registered it yet. */
function ensureTypeScriptLoader(): void {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  if (require.extensions['.ts']) return;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const tsNode = require('ts-node') as { register(options: object): void };
  // skipProject: a plan file may live anywhere; its own folder's tsconfig (if any) must not change how it loads.
  tsNode.register({
    transpileOnly: true,
    skipProject: true,
    compilerOptions: { module: 'commonjs', target: 'ES2022', esModuleInterop: true },
  });
}

function planFromModule(file: string): unknown {
  if (/\.[cm]?tsx?$/.test(file)) ensureTypeScriptLoader();
  let mod: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    mod = require(file) as Record<string, unknown>;
  } catch (err) {
    throw new PlanLoadError(`${file}: cannot load the module: ${(err as Error).message}`);
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
  return validatePlan(value).spec;
}
