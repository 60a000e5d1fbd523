/**
 * Plan validation: JSON Schema (schemas/plan.schema.json, via ajv) first, then the semantic rules the schema cannot
 * say (shape inference through the layers, preprocessing against inputs, loss against the head output).
 * Every problem names the JSON path of the offending field.
 */
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import planSchema from '../../schemas/plan.schema.json';
import { PlanIssue, PlanValidationError, pointerToPath } from './errors';
import { resolveGraph, ResolvedGraph } from './graph';
import { checkAugmentation } from './augment';
import { fedbnIssues } from './fedbn';
import { imageFolderIssues } from './image-folder-plan';
import { imageTargetIssues } from './image-target';
import { metricIssues } from './metrics';
import { headView, planHeads } from './heads';
import { checkPreprocessing } from './preprocess';
import { isGraphModel, isImageTarget, MERGE_TYPES, PlanSpec } from './spec';

let compiled: { plan: ValidateFunction; layer: ValidateFunction } | undefined;

function validators(): { plan: ValidateFunction; layer: ValidateFunction } {
  if (!compiled) {
    // strictTypes off: the schema's if/then branches constrain objects already typed by their parent.
    const ajv = new Ajv({ allErrors: true, discriminator: true, strictTypes: false, strictTuples: false });
    const plan = ajv.compile(planSchema);
    const layer = ajv.getSchema(`${planSchema.$id}#/definitions/layer`);
    if (!layer) throw new Error('internal: plan schema has no #/definitions/layer');
    compiled = { plan, layer };
  }
  return compiled;
}

function schemaValidator(): ValidateFunction {
  return validators().plan;
}

/**
 * A graph node is a layer plus `name` and `input`: its layer fields are checked against the same schema as a
 * branch layer (so every layer type is defined once), merge nodes must have nothing else.
 */
function graphNodeIssues(spec: PlanSpec): PlanIssue[] {
  if (!isGraphModel(spec.model)) return [];
  const { layer: validateLayer } = validators();
  const issues: PlanIssue[] = [];
  spec.model.nodes.forEach((node, i) => {
    const { name: _name, input: _input, ...fields } = node;
    const base = `/model/nodes/${i}`;
    if ((MERGE_TYPES as readonly string[]).includes(fields.type)) {
      for (const key of Object.keys(fields)) {
        if (key !== 'type') issues.push({ path: pointerToPath(`${base}/${key}`), message: `unknown field '${key}' (${fields.type} takes only name and input)` });
      }
      return;
    }
    if (!validateLayer(fields)) {
      const errors = (validateLayer.errors ?? []).map((e) => ({ ...e, instancePath: `${base}${e.instancePath}` }));
      issues.push(...issuesFromAjv(errors).map((issue) =>
        issue.path === `model.nodes[${i}].type` && issue.message.startsWith('must be one of') ? { ...issue, message: `${issue.message}, "add", "concat"` } : issue));
    }
  });
  return issues;
}

/** Keywords that only say "some branch failed"; the branch's own errors are more useful. */
const COMBINATOR_KEYWORDS = new Set(['oneOf', 'anyOf', 'if', 'allOf']);

function messageOf(error: ErrorObject): { path: string; message: string } {
  const path = pointerToPath(error.instancePath);
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required': {
      const child = pointerToPath(`${error.instancePath}/${String(p.missingProperty)}`);
      return { path: child, message: 'is required' };
    }
    case 'additionalProperties':
      return { path, message: `unknown field '${String(p.additionalProperty)}'` };
    case 'enum':
      return { path, message: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'const':
      return { path, message: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'discriminator':
      return {
        path: pointerToPath(`${error.instancePath}/${String(p.tag)}`),
        message: p.error === 'mapping' ? `unknown value ${JSON.stringify(p.tagValue)}` : 'must be a string',
      };
    default:
      return { path, message: error.message ?? error.keyword };
  }
}

/** Turns ajv's raw errors into one issue per field, dropping combinator noise when a precise error exists. */
function issuesFromAjv(errors: ErrorObject[]): PlanIssue[] {
  const precise = errors.filter((e) => !COMBINATOR_KEYWORDS.has(e.keyword));
  // In a oneOf of "number or list", a list with a bad item also fails the "number" branch with a `type` error at
  // the list itself; the item's error is the useful one.
  const specific = precise.filter(
    (e) => e.keyword !== 'type' || !precise.some((o) => o.instancePath.startsWith(`${e.instancePath}/`)),
  );
  const chosen = specific.length > 0 ? specific : errors;
  const byPath = new Map<string, string[]>();
  for (const e of chosen) {
    const { path, message } = messageOf(e);
    const list = byPath.get(path) ?? [];
    if (!list.includes(message)) list.push(message);
    byPath.set(path, list);
  }
  // A field that failed inside a oneOf reports each alternative's complaint: "must be >= 1, or must be array".
  return [...byPath.entries()].map(([path, messages]) => ({ path, message: messages.join(', or ') }));
}

export interface PlanCheck {
  issues: PlanIssue[];
  /** Present when the plan is valid. */
  graph?: ResolvedGraph;
}

/** Each head's metrics against its loss and output. */
function headMetricIssues(spec: PlanSpec, graph: ResolvedGraph): PlanIssue[] {
  const heads = planHeads(spec);
  if (heads.length > 1 && heads.some((head) => isImageTarget(head.target))) {
    return [{ path: 'heads', message: 'a plan with several heads takes column targets only (an image target needs a single-output plan)' }];
  }
  return heads.flatMap((head, h) =>
    metricIssues(headView(spec, head), graph.outputShapes[h], h === 0 ? ['metrics'] : ['heads', h - 1, 'metrics']),
  );
}

/** Validates any value as a plan; never throws on bad input. */
export function checkPlan(value: unknown): PlanCheck {
  const validate = schemaValidator();
  if (!validate(value)) return { issues: issuesFromAjv(validate.errors ?? []) };
  const spec = value as PlanSpec;
  const nodeIssues = graphNodeIssues(spec);
  if (nodeIssues.length > 0) return { issues: nodeIssues };
  const preprocessingIssues = [...imageFolderIssues(spec), ...checkPreprocessing(spec), ...checkAugmentation(spec)];
  const { graph, issues } = resolveGraph(spec);
  const all = [...preprocessingIssues, ...issues, ...(graph ? [...headMetricIssues(spec, graph), ...fedbnIssues(spec, graph), ...imageTargetIssues(spec, graph.outputShape)] : [])];
  return all.length > 0 ? { issues: all } : { issues: [], graph };
}

/** Validates and returns the plan with its resolved graph; throws PlanValidationError naming every bad field. */
export function validatePlan(value: unknown): { spec: PlanSpec; graph: ResolvedGraph } {
  const { issues, graph } = checkPlan(value);
  if (issues.length > 0 || !graph) throw new PlanValidationError(issues);
  return { spec: value as PlanSpec, graph };
}
