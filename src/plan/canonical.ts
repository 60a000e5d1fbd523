/**
 * Plan identity. A TS node approves a plan by this hash, so it must not depend on key order or formatting:
 * canonical JSON = keys sorted by UTF-16 code units at every level, no whitespace, numbers and strings as
 * JSON.stringify writes them; identity = SHA-256 (hex) of its UTF-8 bytes.
 */
import { createHash } from 'crypto';

export function canonicalJson(value: unknown): string {
  return write(value, '');
}

function write(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${path || 'value'} is ${value}, which JSON cannot hold`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v, i) => write(v, `${path}[${i}]`)).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${write(v, path ? `${path}.${k}` : k)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON: ${path || 'value'} is a ${typeof value}, which JSON cannot hold`);
  }
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** SHA-256 (hex) of the plan's canonical JSON. */
export function planHash(spec: unknown): string {
  return sha256Hex(canonicalJson(spec));
}
