import { PyFloat } from './pyfloat';

/**
 * A JSON value as Python's `json` module sees it, with the int/float distinction kept:
 *  - an int is a `number` holding an integer, or a `bigint` when it is outside the safe-integer range;
 *  - a float is a `PyFloat` or a `number` that is not an integer (fractional, NaN, ±Infinity);
 *  - objects are plain objects whose key order is the wire order.
 */
export type PyJsonValue = null | boolean | number | bigint | string | PyFloat | PyJsonValue[] | PyJsonObject;
export interface PyJsonObject {
  [key: string]: PyJsonValue;
}

/**
 * Python dicts keep insertion order for every key; JavaScript objects list integer-like keys ("0", "42") first.
 * The reader stores the wire order under this symbol (non-enumerable, only on objects that have such keys) so
 * the writer can restore it.
 */
export const KEY_ORDER: unique symbol = Symbol('fedbiomed-ts.pythonKeyOrder');

export function isIntegerLikeKey(key: string): boolean {
  // The keys ECMAScript orders first: canonical array indices (0 .. 2^32 - 2).
  if (!/^(0|[1-9][0-9]{0,9})$/.test(key)) return false;
  return Number(key) < 4294967295;
}

/** A long integer as its first digits and its length: enough to recognise it, never megabytes in a message. */
export function shortDigits(digits: string): string {
  return digits.length > 30 ? `${digits.slice(0, 20)}… (${digits.replace('-', '').length} digits)` : digits;
}

export function describePyValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (typeof value === 'boolean') return `boolean ${value}`;
  if (typeof value === 'bigint') return `integer ${shortDigits(value.toString())}`;
  if (value instanceof PyFloat) return `float ${value.value}`;
  if (typeof value === 'number') return Number.isInteger(value) ? `integer ${value}` : `float ${value}`;
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'object';
  return typeof value;
}
