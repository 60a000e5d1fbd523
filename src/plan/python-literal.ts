/**
 * Python literals: writing JSON values as Python source, and reading back a Python string literal (as written
 * by us, or re-quoted by python-minifier, which Fed-BioMed runs before hashing a plan).
 */
import { FedbiomedTsError } from '../errors';

/** A single-quoted Python str literal; non-ASCII characters stay as they are (plan files are UTF-8). */
export function pyString(text: string): string {
  let out = "'";
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === "'") out += "\\'";
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code >= 0xd800 && code <= 0xdfff) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}'`;
}

/** A Python number literal; `asFloat` forces a float (`1` → `1.0`) where PyTorch or Python cares. */
export function pyNumber(value: number, asFloat = false): string {
  if (!Number.isFinite(value)) throw new TypeError(`cannot write ${value} as a Python literal`);
  const text = String(value);
  if (asFloat && /^-?\d+$/.test(text)) return `${text}.0`;
  return text;
}

/** A JSON value as a Python literal (dict, list, str, int/float, True/False/None). */
export function pyLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return pyNumber(value);
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) return `[${value.map(pyLiteral).join(', ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${pyString(k)}: ${pyLiteral(v)}`).join(', ')}}`;
  }
  throw new TypeError(`cannot write a ${typeof value} as a Python literal`);
}

export class PythonLiteralError extends FedbiomedTsError {}

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

/**
 * Reads the Python string literal starting at `start` in `source` (optional r/u prefix, any of the four quote
 * styles, the standard escapes). Returns its value and the index just after it.
 */
export function readPythonString(source: string, start: number): { value: string; end: number } {
  let i = start;
  let raw = false;
  while (i < source.length && /[rRuU]/.test(source[i])) {
    if (source[i] === 'r' || source[i] === 'R') raw = true;
    i++;
  }
  const quoteChar = source[i];
  if (quoteChar !== "'" && quoteChar !== '"') throw new PythonLiteralError(`expected a string literal at offset ${start}`);
  const triple = source.startsWith(quoteChar.repeat(3), i);
  const quote = triple ? quoteChar.repeat(3) : quoteChar;
  i += quote.length;
  let value = '';
  while (i < source.length) {
    if (source.startsWith(quote, i)) return { value, end: i + quote.length };
    const ch = source[i];
    if (!triple && (ch === '\n' || ch === '\r')) throw new PythonLiteralError(`unterminated string literal at offset ${start}`);
    if (ch !== '\\') {
      value += ch;
      i++;
      continue;
    }
    const next = source[i + 1];
    if (next === undefined) break;
    if (raw) {
      value += ch + next;
      i += 2;
      continue;
    }
    if (next === '\n') {
      i += 2; // line continuation inside the literal
      continue;
    }
    if (next in SIMPLE_ESCAPES) {
      value += SIMPLE_ESCAPES[next];
      i += 2;
      continue;
    }
    const hexLength = next === 'x' ? 2 : next === 'u' ? 4 : next === 'U' ? 8 : 0;
    if (hexLength > 0) {
      const hex = source.slice(i + 2, i + 2 + hexLength);
      if (!new RegExp(`^[0-9a-fA-F]{${hexLength}}$`).test(hex)) {
        throw new PythonLiteralError(`bad \\${next} escape at offset ${i}`);
      }
      value += String.fromCodePoint(parseInt(hex, 16));
      i += 2 + hexLength;
      continue;
    }
    const octal = /^[0-7]{1,3}/.exec(source.slice(i + 1, i + 4));
    if (octal) {
      value += String.fromCharCode(parseInt(octal[0], 8));
      i += 1 + octal[0].length;
      continue;
    }
    if (next === 'N') throw new PythonLiteralError(`\\N{...} escapes are not supported (offset ${i})`);
    value += ch + next; // Python keeps unknown escapes as written
    i += 2;
  }
  throw new PythonLiteralError(`unterminated string literal at offset ${start}`);
}
