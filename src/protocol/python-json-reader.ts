import { PyFloat } from './pyfloat';
import { isIntegerLikeKey, KEY_ORDER, PyJsonObject, PyJsonValue } from './python-json-value';
import { FedbiomedTsError } from '../errors';

/** Raised by parsePythonJson; the message says what was expected and where (line, column, char offset). */
export class PythonJsonSyntaxError extends FedbiomedTsError {
  constructor(
    readonly reason: string,
    readonly position: number,
    text: string,
  ) {
    const before = text.slice(0, position);
    const line = before.split('\n').length;
    const column = position - before.lastIndexOf('\n');
    super(`${reason}: line ${line} column ${column} (char ${position})`);
  }
}

const MAX_DEPTH = 512;

/**
 * Reads JSON the way Python's `json.loads` does: accepts the bare tokens `NaN`, `Infinity`, `-Infinity`,
 * rejects raw control characters in strings, and keeps what re-serialisation needs: ints vs floats (a whole
 * float such as `0.0` comes back as a PyFloat, see python-json-value.ts), big ints as bigint, key order.
 * Duplicate keys keep the first position and the last value, like a Python dict.
 * Throws PythonJsonSyntaxError on malformed input.
 */
export function parsePythonJson(text: string): PyJsonValue {
  return new Reader(text).readDocument();
}

/** Python's default `sys.get_int_max_str_digits()`. */
const MAX_INT_DIGITS = 4300;

class Reader {
  private pos = 0;
  private depth = 0;

  constructor(private readonly text: string) {}

  readDocument(): PyJsonValue {
    this.skipWhitespace();
    const value = this.readValue();
    this.skipWhitespace();
    if (this.pos !== this.text.length) this.fail('Extra data');
    return value;
  }

  private fail(reason: string, at = this.pos): never {
    throw new PythonJsonSyntaxError(reason, at, this.text);
  }

  private skipWhitespace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else break;
    }
  }

  private readValue(): PyJsonValue {
    const t = this.text;
    const c = t[this.pos];
    switch (c) {
      case '{':
        return this.readObject();
      case '[':
        return this.readArray();
      case '"':
        return this.readString();
      case 't':
        return this.readLiteral('true', true);
      case 'f':
        return this.readLiteral('false', false);
      case 'n':
        return this.readLiteral('null', null);
      case 'N':
        return this.readLiteral('NaN', NaN);
      case 'I':
        return this.readLiteral('Infinity', Infinity);
      default:
        if (c === '-' && t.startsWith('-Infinity', this.pos)) return this.readLiteral('-Infinity', -Infinity);
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.readNumber();
        return this.fail('Expecting value');
    }
  }

  private readLiteral<T extends PyJsonValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail('Expecting value');
    this.pos += word.length;
    return value;
  }

  private static readonly NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;

  private readNumber(): number | bigint | PyFloat {
    const pattern = Reader.NUMBER;
    pattern.lastIndex = this.pos;
    const match = pattern.exec(this.text);
    if (!match) return this.fail('Expecting value');
    const token = match[0];
    this.pos += token.length;
    if (match[1] === undefined && match[2] === undefined) {
      // Python (3.11+) refuses to convert integer strings over 4300 digits, so no Python peer can send one; the
      // conversion is quadratic and a 4-million-digit integer would cost seconds.
      if (token.replace('-', '').length > MAX_INT_DIGITS) {
        return this.fail(`Exceeds the limit (${MAX_INT_DIGITS} digits) for integer string conversion`, this.pos - token.length);
      }
      const asNumber = Number(token);
      // Python ints are unbounded: beyond 2^53 keep every digit.
      return Number.isSafeInteger(asNumber) ? (asNumber === 0 ? 0 : asNumber) : BigInt(token);
    }
    const value = Number(token);
    return Number.isInteger(value) || Object.is(value, -0) ? new PyFloat(value) : value;
  }

  private readString(): string {
    const t = this.text;
    const start = this.pos;
    this.pos++; // opening quote
    let out = '';
    let chunkStart = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail('Unterminated string starting at', start);
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(chunkStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('Invalid control character at');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(chunkStart, this.pos);
      out += this.readEscape();
      chunkStart = this.pos;
    }
  }

  private readEscape(): string {
    const t = this.text;
    const escapeStart = this.pos;
    const e = t[this.pos + 1];
    this.pos += 2;
    switch (e) {
      case '"':
        return '"';
      case '\\':
        return '\\';
      case '/':
        return '/';
      case 'b':
        return '\b';
      case 'f':
        return '\f';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case 'u': {
        const hex = t.slice(this.pos, this.pos + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('Invalid \\uXXXX escape', escapeStart + 1);
        this.pos += 4;
        // Surrogate halves are kept as separate UTF-16 code units: a pair forms the character, a lone one
        // stays lone (Python keeps it too), and the writer escapes each unit back exactly.
        return String.fromCharCode(parseInt(hex, 16));
      }
      default:
        return this.fail('Invalid \\escape', escapeStart);
    }
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) this.fail('Nesting too deep');
  }

  /** Consumes `close` (a container's end) if it comes next, leaving the container's nesting level. */
  private leaveOn(close: ']' | '}'): boolean {
    if (this.text[this.pos] !== close) return false;
    this.pos++;
    this.depth--;
    return true;
  }

  private readArray(): PyJsonValue[] {
    this.enter();
    this.pos++;
    const items: PyJsonValue[] = [];
    this.skipWhitespace();
    if (this.leaveOn(']')) return items;
    for (;;) {
      this.skipWhitespace();
      items.push(this.readValue());
      this.skipWhitespace();
      if (this.leaveOn(']')) return items;
      if (this.text[this.pos] !== ',') this.fail("Expecting ',' delimiter");
      this.pos++;
    }
  }

  private readObject(): PyJsonObject {
    this.enter();
    const objectStart = this.pos;
    this.pos++;
    const object: PyJsonObject = {};
    let order: string[] | undefined;
    const keys: string[] = [];
    this.skipWhitespace();
    if (this.leaveOn('}')) return object;
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.fail('Expecting property name enclosed in double quotes');
      const key = this.readString();
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') this.fail("Expecting ':' delimiter");
      this.pos++;
      this.skipWhitespace();
      const value = this.readValue();
      const isNew = !Object.prototype.hasOwnProperty.call(object, key);
      if (isNew) {
        keys.push(key);
        if (order === undefined && isIntegerLikeKey(key)) order = keys;
      }
      // defineProperty, not assignment: a "__proto__" key must become data, not the prototype.
      Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
      this.skipWhitespace();
      if (this.leaveOn('}')) break;
      if (this.text[this.pos] !== ',') this.fail("Expecting ',' delimiter");
      this.pos++;
      if (this.pos >= this.text.length) this.fail('Expecting property name enclosed in double quotes', objectStart);
    }
    if (order !== undefined) Object.defineProperty(object, KEY_ORDER, { value: order, enumerable: false });
    return object;
  }
}
