import { pythonFloatRepr } from './float-repr';
import { PyFloat } from './pyfloat';
import { KEY_ORDER } from './python-json-value';

/** A value the writer cannot express as JSON (undefined, function, Map, …); `path` says where it is. */
export class PythonJsonWriteError extends TypeError {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`cannot write ${path || 'value'} as JSON: ${detail}`);
    this.name = 'PythonJsonWriteError';
  }
}

/**
 * Byte-for-byte Python `json.dumps(value)` with default options: separators `", "` and `": "`,
 * `ensure_ascii` (every code unit outside printable ASCII as a lowercase `\uXXXX`, so astral characters become
 * surrogate pairs), floats as Python's repr (`0.0`, `1e-05`, `1e+16`, `NaN`, `Infinity`), keys in insertion order.
 *
 * Numbers: a PyFloat is always a float; a plain `number` is an int when it is integral, a float otherwise;
 * a bigint is an int. Throws PythonJsonWriteError for undefined, functions, symbols and non-plain objects.
 */
export function pythonJsonDumps(value: unknown): string {
  const parts: string[] = [];
  writeValue(value, parts, '', new Set());
  return parts.join('');
}

function writeValue(value: unknown, out: string[], path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
      out.push(quote(value));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'bigint':
      out.push(value.toString());
      return;
    case 'number':
      out.push(numberRepr(value));
      return;
    case 'object':
      if (value === null) {
        out.push('null');
        return;
      }
      if (value instanceof PyFloat) {
        out.push(pythonFloatRepr(value.value));
        return;
      }
      if (ancestors.has(value)) throw new PythonJsonWriteError(path, 'circular reference');
      ancestors.add(value);
      if (Array.isArray(value)) writeArray(value, out, path, ancestors);
      else writeObject(value, out, path, ancestors);
      ancestors.delete(value);
      return;
    default:
      throw new PythonJsonWriteError(path, `${typeof value} has no JSON form`);
  }
}

function numberRepr(value: number): string {
  if (!Number.isInteger(value)) return pythonFloatRepr(value);
  // An integral number is a Python int; BigInt prints large ones positionally as Python does (no "1e+21").
  return Number.isSafeInteger(value) ? String(value === 0 ? 0 : value) : BigInt(value).toString();
}

function writeArray(items: unknown[], out: string[], path: string, ancestors: Set<object>): void {
  out.push('[');
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out.push(', ');
    writeValue(items[i], out, `${path}[${i}]`, ancestors);
  }
  out.push(']');
}

function writeObject(object: object, out: string[], path: string, ancestors: Set<object>): void {
  const proto = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    const name = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
    throw new PythonJsonWriteError(path, `${name} is not a plain object`);
  }
  const record = object as Record<string, unknown>;
  out.push('{');
  let first = true;
  for (const key of orderedKeys(object)) {
    if (!first) out.push(', ');
    first = false;
    out.push(quote(key), ': ');
    writeValue(record[key], out, path ? `${path}.${key}` : key, ancestors);
  }
  out.push('}');
}

/** Insertion order as Python would have it: the reader's recorded order first (see KEY_ORDER), then the rest. */
function orderedKeys(object: object): string[] {
  const keys = Object.keys(object);
  const recorded = (object as { [KEY_ORDER]?: string[] })[KEY_ORDER];
  if (recorded === undefined) return keys;
  const present = new Set(keys);
  const ordered = recorded.filter((key) => present.has(key));
  const seen = new Set(ordered);
  for (const key of keys) if (!seen.has(key)) ordered.push(key);
  return ordered;
}

const SHORT_ESCAPES: Record<number, string> = {
  0x22: '\\"',
  0x5c: '\\\\',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x08: '\\b',
  0x0c: '\\f',
};

/** Python's `py_encode_basestring_ascii`: everything outside 0x20..0x7e is escaped, per UTF-16 code unit. */
function quote(text: string): string {
  let out = '"';
  let chunkStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += text.slice(chunkStart, i);
    out += SHORT_ESCAPES[c] ?? '\\u' + c.toString(16).padStart(4, '0');
    chunkStart = i + 1;
  }
  return out + text.slice(chunkStart) + '"';
}
