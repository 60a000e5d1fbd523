/**
 * A streaming multipart/form-data parser (RFC 7578 / RFC 2046) for the embedded repository server: bytes are
 * handed over as they arrive, so a part of any size is never held in memory and a limit can stop an upload at
 * the first byte too many. No dependency: busboy is not among the project's packages.
 */
import { FedbiomedTsError } from '../errors';

export class MultipartError extends FedbiomedTsError {}

export interface PartHeaders {
  /** `name` of the Content-Disposition header (the form field). */
  name: string | undefined;
  /** `filename` (or decoded `filename*`) of the Content-Disposition header; undefined for a plain field. */
  filename: string | undefined;
  contentType: string | undefined;
}

export interface MultipartHandlers {
  onPartBegin(headers: PartHeaders): void;
  onPartData(chunk: Buffer): void;
  onPartEnd(): void;
}

export interface MultipartLimits {
  /** Largest header block of one part, in bytes. */
  maxHeaderBytes: number;
  /** Most parts in one body. */
  maxParts: number;
}

const DEFAULT_LIMITS: MultipartLimits = { maxHeaderBytes: 16 * 1024, maxParts: 32 };
const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

type State = 'preamble' | 'after-boundary' | 'headers' | 'body' | 'done';

/** The `boundary` parameter of a multipart/form-data Content-Type, or undefined when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const [type, ...rest] = splitParameters(contentType);
  if (type.trim().toLowerCase() !== 'multipart/form-data') return undefined;
  const boundary = parseParameters(rest).get('boundary');
  // RFC 2046: 1 to 70 characters.
  if (!boundary || boundary.length > 70) return undefined;
  return boundary;
}

export class MultipartParser {
  private readonly delimiter: Buffer;
  private readonly limits: MultipartLimits;
  private state: State = 'preamble';
  // A CRLF is put in front of the body so that the first boundary, which may start the body, looks like the
  // others ("\r\n--boundary").
  private pending: Buffer = Buffer.from(CRLF);
  private parts = 0;

  constructor(
    boundary: string,
    private readonly handlers: MultipartHandlers,
    limits: Partial<MultipartLimits> = {},
  ) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  get finished(): boolean {
    return this.state === 'done';
  }

  /** Feeds the next bytes of the body. Throws MultipartError on malformed input. */
  write(chunk: Buffer): void {
    if (this.state === 'done') return; // epilogue: ignored
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.advance();
  }

  /** Signals the end of the body; throws when the closing boundary never came. */
  end(): void {
    if (this.state !== 'done') {
      throw new MultipartError(
        this.state === 'preamble'
          ? 'multipart body has no boundary line: is the Content-Type boundary right?'
          : 'multipart body ended before its closing boundary (truncated upload?)',
      );
    }
  }

  private advance(): void {
    for (;;) {
      switch (this.state) {
        case 'preamble': {
          const at = this.pending.indexOf(this.delimiter);
          if (at < 0) {
            this.keepTail();
            return;
          }
          this.pending = this.pending.subarray(at + this.delimiter.length);
          this.state = 'after-boundary';
          break;
        }
        case 'after-boundary': {
          // After a boundary: "--" closes the body, otherwise optional blanks then CRLF open a part.
          if (this.pending.length < 2) return;
          if (this.pending[0] === 0x2d && this.pending[1] === 0x2d) {
            this.state = 'done';
            this.pending = Buffer.alloc(0);
            return;
          }
          const eol = this.pending.indexOf(CRLF);
          if (eol < 0) {
            if (this.pending.length > 256) throw new MultipartError('malformed multipart boundary line');
            return;
          }
          if (!/^[ \t]*$/.test(this.pending.subarray(0, eol).toString('latin1'))) {
            throw new MultipartError('malformed multipart boundary line');
          }
          this.pending = this.pending.subarray(eol + 2);
          this.parts += 1;
          if (this.parts > this.limits.maxParts) {
            throw new MultipartError(`multipart body has more than ${this.limits.maxParts} parts`);
          }
          this.state = 'headers';
          break;
        }
        case 'headers': {
          // A part without headers starts with the blank line directly.
          const end = this.pending.subarray(0, 2).equals(CRLF) ? -2 : this.pending.indexOf(HEADER_END);
          if (end === -1) {
            if (this.pending.length > this.limits.maxHeaderBytes) {
              throw new MultipartError(`multipart part headers exceed ${this.limits.maxHeaderBytes} bytes`);
            }
            return;
          }
          const block = end === -2 ? '' : this.pending.subarray(0, end).toString('utf8');
          if (block.length > this.limits.maxHeaderBytes) {
            throw new MultipartError(`multipart part headers exceed ${this.limits.maxHeaderBytes} bytes`);
          }
          this.pending = this.pending.subarray(end === -2 ? 2 : end + 4);
          this.handlers.onPartBegin(parsePartHeaders(block));
          this.state = 'body';
          break;
        }
        case 'body': {
          const at = this.pending.indexOf(this.delimiter);
          if (at < 0) {
            // Everything except what could be the start of a delimiter split across chunks is part data.
            const safe = this.pending.length - (this.delimiter.length - 1);
            if (safe > 0) {
              this.handlers.onPartData(this.pending.subarray(0, safe));
              this.pending = Buffer.from(this.pending.subarray(safe));
            }
            return;
          }
          if (at > 0) this.handlers.onPartData(this.pending.subarray(0, at));
          this.handlers.onPartEnd();
          this.pending = this.pending.subarray(at + this.delimiter.length);
          this.state = 'after-boundary';
          break;
        }
        case 'done':
          return;
      }
    }
  }

  /** In the preamble only a possible delimiter prefix needs keeping. */
  private keepTail(): void {
    const keep = Math.min(this.pending.length, this.delimiter.length - 1);
    this.pending = Buffer.from(this.pending.subarray(this.pending.length - keep));
  }
}

function parsePartHeaders(block: string): PartHeaders {
  const headers = new Map<string, string>();
  for (const line of block.split('\r\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new MultipartError(`malformed multipart header line ${JSON.stringify(line.slice(0, 80))}`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const disposition = headers.get('content-disposition');
  if (!disposition) throw new MultipartError('multipart part without a Content-Disposition header');
  const [kind, ...rest] = splitParameters(disposition);
  if (kind.trim().toLowerCase() !== 'form-data') {
    throw new MultipartError(`multipart part disposition is ${JSON.stringify(kind.trim())}, not form-data`);
  }
  const params = parseParameters(rest);
  const extended = params.get('filename*');
  return {
    name: params.get('name'),
    filename: extended !== undefined ? decodeExtendedValue(extended) : params.get('filename'),
    contentType: headers.get('content-type'),
  };
}

/** Splits a header value on `;` outside quoted strings. */
function splitParameters(value: string): string[] {
  const pieces: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted && c === '\\' && i + 1 < value.length) {
      current += c + value[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === ';' && !quoted) {
      pieces.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  pieces.push(current);
  return pieces;
}

function parseParameters(pieces: string[]): Map<string, string> {
  const params = new Map<string, string>();
  for (const piece of pieces) {
    const eq = piece.indexOf('=');
    if (eq <= 0) continue;
    const key = piece.slice(0, eq).trim().toLowerCase();
    let value = piece.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
      // Only \\ and \" are escapes, as in Django's parser: browsers do not escape a backslash in a file name.
      value = value.slice(1, -1).replace(/\\([\\"])/g, '$1');
    }
    params.set(key, value);
  }
  return params;
}

/** RFC 5987 `charset'lang'percent-encoded` value (UTF-8 or ISO-8859-1). */
function decodeExtendedValue(value: string): string | undefined {
  const match = /^([^']*)'[^']*'(.*)$/.exec(value);
  if (!match) return undefined;
  const charset = match[1].toLowerCase();
  try {
    if (charset === 'utf-8') return decodeURIComponent(match[2]);
    if (charset === 'iso-8859-1') {
      return match[2].replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    }
  } catch {
    return undefined;
  }
  return undefined;
}
