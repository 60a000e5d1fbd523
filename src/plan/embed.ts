/**
 * Recovering the plan embedded in a generated PyTorch plan file (pytorch.ts), so a TS node that receives such a
 * file — from a TS researcher or a Python one re-sending our class — trains from the document, never the code.
 * Works on the file as generated and after python-minifier (re-quoted strings, statements joined with ';').
 */
import { planHash } from './canonical';
import { PlanValidationError } from './errors';
import { PythonLiteralError, readPythonString } from './python-literal';
import { PlanSpec } from './spec';
import { validatePlan } from './validate';
import { FedbiomedTsError } from '../errors';

/** The file carries a PLAN_SPEC that cannot be used (bad literal, bad JSON, invalid plan, altered hash). */
export class EmbeddedPlanError extends FedbiomedTsError {}

export interface EmbeddedPlan {
  spec: PlanSpec;
  /** planHash(spec) */
  hash: string;
}

/** A class-level assignment `PLAN_SPEC = …` (start of line after indentation, or after `;` or `:` when minified). */
function assignments(source: string, name: string): number[] {
  const pattern = new RegExp(`(?:^|[;:])[ \\t]*${name}[ \\t]*=[ \\t]*`, 'gm');
  const starts: number[] = [];
  for (let m = pattern.exec(source); m !== null; m = pattern.exec(source)) starts.push(m.index + m[0].length);
  return starts;
}

function readConstant(source: string, name: string): string | undefined {
  const starts = assignments(source, name);
  if (starts.length === 0) return undefined;
  if (starts.length > 1) throw new EmbeddedPlanError(`the file assigns ${name} ${starts.length} times`);
  try {
    return readPythonString(source, starts[0]).value;
  } catch (err) {
    if (err instanceof PythonLiteralError) throw new EmbeddedPlanError(`${name} is not a plain string literal: ${err.message}`);
    throw err;
  }
}

/** The embedded plan and its hash; undefined when the file has no PLAN_SPEC (a hand-written Python plan). */
export function findEmbeddedPlan(source: string): EmbeddedPlan | undefined {
  const json = readConstant(source, 'PLAN_SPEC');
  if (json === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new EmbeddedPlanError(`PLAN_SPEC is not valid JSON: ${(err as Error).message}`);
  }
  let spec: PlanSpec;
  try {
    spec = validatePlan(value).spec;
  } catch (err) {
    if (err instanceof PlanValidationError) throw new EmbeddedPlanError(`PLAN_SPEC is not a valid plan: ${err.message}`);
    throw err;
  }
  const hash = planHash(spec);
  const declared = readConstant(source, 'PLAN_SHA256');
  if (declared !== undefined && declared !== hash) {
    throw new EmbeddedPlanError(`PLAN_SHA256 ${declared} does not match the embedded plan (${hash}): the file was altered`);
  }
  return { spec, hash };
}

/** The plan embedded in a generated PyTorch plan file, or undefined when there is none. */
export function extractPlanFromTorchSource(source: string): PlanSpec | undefined {
  return findEmbeddedPlan(source)?.spec;
}
