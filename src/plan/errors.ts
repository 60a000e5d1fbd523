/** Problems found in a plan, each tied to the JSON path of the offending field (`model.image[3].kernelSize`). */
import { FedbiomedTsError } from '../errors';

export type PathSegment = string | number;

export interface PlanIssue {
  /** Dotted path with [index] for arrays, e.g. `model.head[0].outFeatures`; '' for the document itself. */
  path: string;
  message: string;
}

/** `['model', 'image', 3, 'kernelSize']` → `model.image[3].kernelSize`. */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** JSON Pointer (`/model/image/3/kernelSize`, as ajv reports) → `model.image[3].kernelSize`. */
export function pointerToPath(pointer: string): string {
  if (pointer === '') return '';
  const segments = pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s): PathSegment => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
  return formatPath(segments);
}

function describeIssue(issue: PlanIssue): string {
  return issue.path === '' ? issue.message : `${issue.path}: ${issue.message}`;
}

/** Thrown for an invalid plan; `issues` lists every problem found, the message names them all. */
export class PlanValidationError extends FedbiomedTsError {
  constructor(readonly issues: PlanIssue[]) {
    super(`invalid training plan: ${issues.map(describeIssue).join('; ')}`);
  }
}
