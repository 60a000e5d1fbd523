import Ajv, { ErrorObject, SchemaValidateFunction, ValidateFunction } from 'ajv';

import { pythonFloatRepr } from './float-repr';
import type { Direction } from './messages';
import { PyFloat } from './pyfloat';
import { parsePythonJson } from './python-json-reader';
import { describePyValue } from './python-json-value';
import { MESSAGE_SCHEMAS, MessageSchema, PythonTypeName } from './schema-registry';

/** The first problem found in a message: `field` is a dotted path ("training_args.test_ratio", "databases[0]"). */
export interface ValidationFailure {
  field: string;
  error: string;
}

/**
 * Validates a message (as read by parsePythonJson, or built by a caller) against its ajv-compiled schema with
 * Python's isinstance semantics. Returns undefined when valid. Throws only for a direction/command pair that
 * has no schema (check with schemaFor() first).
 */
export function validateMessage(direction: Direction, command: string, message: object): ValidationFailure | undefined {
  const validate = compiled(direction, command);
  const view = validationView(message);
  floatsOfCurrentValidation = view.floats;
  try {
    if (validate(view.value)) return undefined;
  } finally {
    floatsOfCurrentValidation = undefined;
  }
  return describeError(validate.errors![0], message);
}

// ---- the data ajv sees --------------------------------------------------------------------------------------

/**
 * ajv's own keywords (minimum, type "object", …) only understand plain JSON values, so validation runs on a copy
 * where a PyFloat becomes its number and a bigint a number; which positions held floats is recorded (parent
 * container → keys) for the x-python-type keyword, which gets the parent and key of every value it checks.
 */
type FloatPositions = WeakMap<object, Set<string | number>>;

function validationView(root: object): { value: unknown; floats: FloatPositions } {
  const floats: FloatPositions = new WeakMap();
  const convert = (value: unknown, parent: object | undefined, key: string | number): unknown => {
    if (value instanceof PyFloat) {
      if (parent) {
        const keys = floats.get(parent) ?? new Set();
        keys.add(key);
        floats.set(parent, keys);
      }
      return value.value;
    }
    if (typeof value === 'bigint') return Number(value);
    if (Array.isArray(value)) {
      const copy: unknown[] = [];
      value.forEach((item, index) => copy.push(convert(item, copy, index)));
      return copy;
    }
    if (value !== null && typeof value === 'object') {
      const copy: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(value)) {
        Object.defineProperty(copy, k, { value: convert(item, copy, k), enumerable: true, writable: true, configurable: true });
      }
      return copy;
    }
    return value;
  };
  return { value: convert(root, undefined, ''), floats };
}

/** Set only while a (synchronous) ajv validation runs. */
let floatsOfCurrentValidation: FloatPositions | undefined;

type PythonKind = PythonTypeName | 'bool' | 'other';

function pythonKindOf(data: unknown, parent: object | undefined, key: string | number): PythonKind {
  if (data === null) return 'null';
  if (typeof data === 'boolean') return 'bool';
  if (typeof data !== 'number') return 'other';
  const wasFloat = parent !== undefined && floatsOfCurrentValidation?.get(parent)?.has(key) === true;
  return wasFloat || !Number.isInteger(data) ? 'float' : 'int';
}

/** Python's isinstance: bool is a subclass of int, an int is not a float. */
function pythonTypeMatches(kind: PythonKind, allowed: readonly PythonTypeName[]): boolean {
  if (kind === 'bool') return allowed.includes('int');
  return kind !== 'other' && allowed.includes(kind);
}

interface DataContext {
  parentData?: object;
  parentDataProperty?: string | number;
}

const checkPythonType: SchemaValidateFunction = (schema: PythonTypeName | PythonTypeName[], data: unknown, _parentSchema, cxt?: DataContext) => {
  const allowed = Array.isArray(schema) ? schema : [schema];
  const matches = pythonTypeMatches(pythonKindOf(data, cxt?.parentData, cxt?.parentDataProperty ?? ''), allowed);
  checkPythonType.errors = matches ? undefined : [{ keyword: 'x-python-type', message: 'wrong Python type', params: { allowed } }];
  return matches;
};

/** For a string field that must itself hold a JSON object with some keys (the `msg` of a `log` message). */
const checkJsonObjectText: SchemaValidateFunction = (keys: string[], data: unknown) => {
  let problem: string | undefined;
  try {
    const inner = parsePythonJson(String(data));
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner) || inner instanceof PyFloat) {
      problem = `must be a JSON-encoded object (got JSON ${describePyValue(inner)})`;
    } else {
      const missing = keys.filter((key) => !Object.prototype.hasOwnProperty.call(inner, key));
      if (missing.length > 0) problem = `must be a JSON-encoded object with key ${missing.map((k) => JSON.stringify(k)).join(', ')}`;
    }
  } catch (e) {
    problem = `must be a JSON-encoded object (${(e as Error).message})`;
  }
  checkJsonObjectText.errors = problem ? [{ keyword: 'x-json-object-with-keys', message: problem, params: { keys } }] : undefined;
  return problem === undefined;
};

// ---- ajv setup ----------------------------------------------------------------------------------------------

// strictTypes is off because withPythonTypes() removes `type` where x-python-type decides it (see below).
const ajv = new Ajv({ strict: true, strictTypes: false, allowUnionTypes: true, verbose: true, allErrors: false });
ajv.addKeyword({ keyword: 'x-python-type', schemaType: ['string', 'array'], validate: checkPythonType, errors: true });
ajv.addKeyword({ keyword: 'x-json-object-with-keys', type: 'string', schemaType: 'array', validate: checkJsonObjectText, errors: true });
// Documentation keywords of our schema files.
ajv.addKeyword({ keyword: 'x-python-class', schemaType: 'string' });
ajv.addKeyword({ keyword: 'x-direction', schemaType: 'string' });

/**
 * Where a schema gives `x-python-type`, that keyword alone decides the JSON type: the file's `type` (kept for
 * other JSON Schema tools) cannot tell `1` from `1.0`, refuses NaN/Infinity (which Python floats can be), and
 * refuses `true` for an int (which Python accepts).
 */
function withPythonTypes(schema: MessageSchema): MessageSchema {
  const out: MessageSchema = {};
  for (const [keyword, value] of Object.entries(schema)) {
    if (keyword === 'type' && schema['x-python-type'] !== undefined) continue;
    if (keyword === 'properties' && value && typeof value === 'object') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, MessageSchema>).map(([k, s]) => [k, withPythonTypes(s)]),
      );
    } else if ((keyword === 'items' || keyword === 'additionalProperties') && value && typeof value === 'object') {
      out[keyword] = withPythonTypes(value as MessageSchema);
    } else {
      out[keyword] = value;
    }
  }
  return out;
}

/** All 19 compiled once, at load: a broken schema file fails every import, not some later message. */
const validators: ReadonlyMap<string, ValidateFunction> = new Map(
  (Object.keys(MESSAGE_SCHEMAS) as Direction[]).flatMap((direction) =>
    Object.entries(MESSAGE_SCHEMAS[direction]).map(
      ([command, schema]) => [`${direction}/${command}`, ajv.compile(withPythonTypes(schema))] as const,
    ),
  ),
);

function compiled(direction: Direction, command: string): ValidateFunction {
  const validate = validators.get(`${direction}/${command}`);
  if (!validate) throw new Error(`no schema for ${direction}/${command}`);
  return validate;
}

// ---- error messages -----------------------------------------------------------------------------------------

function fieldPath(instancePath: string, child?: string | number): string {
  const segments = instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) segments.push(String(child));
  return segments.reduce((path, segment) => (/^\d+$/.test(segment) ? `${path}[${segment}]` : path ? `${path}.${segment}` : segment), '');
}

function valueAt(root: unknown, instancePath: string): unknown {
  let value = root;
  for (const raw of instancePath.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

const TYPE_WORDS: Record<string, string> = {
  int: 'an int',
  float: 'a float',
  null: 'null',
  string: 'a string',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
  integer: 'an int',
  number: 'a number',
};

function typeWords(names: unknown): string {
  const list = (Array.isArray(names) ? names : [names]).map((n) => TYPE_WORDS[String(n)] ?? String(n));
  return list.length === 1 ? list[0] : `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}`;
}

function describeOriginal(value: unknown): string {
  return value instanceof PyFloat ? `float ${pythonFloatRepr(value.value)}` : describePyValue(value);
}

function describeError(error: ErrorObject, original: unknown): ValidationFailure {
  const value = valueAt(original, error.instancePath);
  const got = `(got ${describeOriginal(value)})`;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required': {
      const field = fieldPath(error.instancePath, String(params.missingProperty));
      return { field, error: `${field} is missing` };
    }
    case 'additionalProperties': {
      const field = fieldPath(error.instancePath, String(params.additionalProperty));
      return { field, error: `${field} is not an allowed field` };
    }
    default:
      break;
  }
  const field = fieldPath(error.instancePath);
  const name = field || 'message';
  switch (error.keyword) {
    case 'x-python-type':
      return { field, error: `${name} must be ${typeWords(params.allowed)} ${got}` };
    case 'type':
      return { field, error: `${name} must be ${typeWords(params.type)} ${got}` };
    case 'const':
      return { field, error: `${name} must be ${JSON.stringify(params.allowedValue)} ${got}` };
    case 'enum':
      return {
        field,
        error: `${name} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')} ${got}`,
      };
    case 'minimum':
    case 'maximum':
      return { field, error: `${name} must be ${params.comparison} ${params.limit} ${got}` };
    case 'x-json-object-with-keys':
      return { field, error: `${name} ${error.message}` };
    case 'multipleOf':
      return { field, error: `${name} must be a whole number ${got}` };
    default:
      return { field, error: `${name} ${error.message ?? 'is invalid'} ${got}` };
  }
}
