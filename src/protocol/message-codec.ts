import { DIRECTIONS, Direction, MessageOf } from './messages';
import { validateMessage } from './message-validator';
import { PyFloat } from './pyfloat';
import { parsePythonJson } from './python-json-reader';
import { KEY_ORDER, describePyValue } from './python-json-value';
import { pythonJsonDumps } from './python-json-writer';
import { isFloatSchema, MessageSchema, schemaFor } from './schema-registry';
import { checkProtocolVersion, PROTOCOL_VERSION } from './version';
import { FedbiomedTsError } from '../errors';

export type ParseResult<D extends Direction = Direction> =
  | { ok: true; message: MessageOf<D>; warning?: string }
  | { ok: false; error: string; field?: string };

/** A message we refuse to send; `field` names the offending field when there is one. */
export class ProtocolError extends FedbiomedTsError {
  override readonly errnum = 'FB301' as const;
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Reads one MQTT payload the way a v4.5.0 peer does, in its order: JSON (tolerant: NaN, Infinity), a JSON
 * object, protocol_version (Fed-BioMed's rule), a command known for this direction, then the command's schema
 * with Python's isinstance semantics. Never throws: any problem is `{ok:false, error, field?}`.
 *
 * In the returned message, schema-float fields (test_ratio, secagg_random, …) are plain numbers; whole floats
 * inside free-form dicts stay PyFloat so that serializeMessage writes the message back byte for byte.
 */
export function parseMessage<D extends Direction>(payload: string | Uint8Array, direction: D): ParseResult<D> {
  try {
    return parseMessageUnsafe(payload, direction);
  } catch (e) {
    // Defensive: every known failure is returned above; a bug must still not kill a transport's callback.
    return { ok: false, error: `internal error while parsing message: ${(e as Error)?.message ?? String(e)}` };
  }
}

function parseMessageUnsafe<D extends Direction>(payload: string | Uint8Array, direction: D): ParseResult<D> {
  if (!DIRECTIONS.includes(direction)) return { ok: false, error: `unknown direction ${JSON.stringify(direction)}` };
  let text: string;
  if (typeof payload === 'string') {
    text = payload;
  } else if (payload instanceof Uint8Array) {
    try {
      text = utf8.decode(payload);
    } catch {
      return { ok: false, error: 'payload is not valid UTF-8' };
    }
  } else {
    return { ok: false, error: `payload must be a string or bytes (got ${describePyValue(payload)})` };
  }

  let value: unknown;
  try {
    value = parsePythonJson(text);
  } catch (e) {
    return { ok: false, error: `payload is not valid JSON: ${(e as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof PyFloat) {
    return { ok: false, error: `payload must be a JSON object (got ${describePyValue(value)})` };
  }
  const record = value as Record<string, unknown>;

  const version = checkProtocolVersion(record.protocol_version);
  if (!version.ok) return { ok: false, error: version.error, field: 'protocol_version' };

  const command = record.command;
  if (command === undefined) return { ok: false, error: 'command is missing', field: 'command' };
  if (typeof command !== 'string') {
    return { ok: false, error: `command must be a string (got ${describePyValue(command)})`, field: 'command' };
  }
  const schema = schemaFor(direction, command);
  if (!schema) {
    return { ok: false, error: `command ${JSON.stringify(command)} is not a ${direction} message`, field: 'command' };
  }

  const failure = validateMessage(direction, command, record);
  if (failure) return { ok: false, error: failure.error, field: failure.field };

  unwrapSchemaFloats(schema, record);
  const message = record as unknown as MessageOf<D>;
  return version.warning ? { ok: true, message, warning: version.warning } : { ok: true, message };
}

/**
 * Writes a message exactly as a v4.5.0 Python peer would: protocol_version set to PROTOCOL_VERSION, top-level
 * keys in the schema's property order (Python's order for that message), schema-float fields written as floats
 * (`0.0`), everything else as given. Throws ProtocolError (with `.field`) if the message does not validate.
 */
export function serializeMessage<D extends Direction>(message: MessageOf<D>, direction: D): string {
  if (!DIRECTIONS.includes(direction)) throw new ProtocolError(`unknown direction ${JSON.stringify(direction)}`);
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw new ProtocolError(`message must be an object (got ${describePyValue(message)})`);
  }
  const source = message as unknown as Record<string, unknown>;
  const command = source.command;
  if (typeof command !== 'string') {
    throw new ProtocolError(`command must be a string (got ${describePyValue(command)})`, 'command');
  }
  const schema = schemaFor(direction, command);
  if (!schema) throw new ProtocolError(`command ${JSON.stringify(command)} is not a ${direction} message`, 'command');

  const wire: Record<string, unknown> = {};
  for (const key of Object.keys(schema.properties ?? {})) {
    if (key === 'protocol_version') wire[key] = PROTOCOL_VERSION;
    else if (key in source) wire[key] = wrapSchemaFloats(schema.properties![key], source[key]);
  }
  // Keys the schema does not know are kept so that validation names them.
  for (const key of Object.keys(source)) if (!(key in wire)) wire[key] = source[key];

  const failure = validateMessage(direction, command, wire);
  if (failure) throw new ProtocolError(`invalid ${direction} ${command} message: ${failure.error}`, failure.field);
  return pythonJsonDumps(wire);
}

// ---- schema-float positions -------------------------------------------------------------------------------

/** A copy of `value` where numbers at schema-float positions are PyFloats (written `0.0`, not `0`). */
function wrapSchemaFloats(schema: MessageSchema, value: unknown): unknown {
  if (typeof value === 'number' && isFloatSchema(schema)) return new PyFloat(value);
  if (Array.isArray(value) && schema.items) return value.map((item) => wrapSchemaFloats(schema.items!, item));
  if (isPlainObject(value) && (schema.properties || typeof schema.additionalProperties === 'object')) {
    const copy: Record<string, unknown> = {};
    for (const key of keysInWireOrder(value)) {
      const child = childSchema(schema, key);
      Object.defineProperty(copy, key, {
        value: child ? wrapSchemaFloats(child, value[key]) : value[key],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    const order = (value as { [KEY_ORDER]?: string[] })[KEY_ORDER];
    if (order) Object.defineProperty(copy, KEY_ORDER, { value: order, enumerable: false });
    return copy;
  }
  return value;
}

/** In place: PyFloats at schema-float positions become plain numbers (the schema already says "float"). */
function unwrapSchemaFloats(schema: MessageSchema, value: unknown): void {
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => {
      if (item instanceof PyFloat && isFloatSchema(schema.items!)) value[i] = item.value;
      else unwrapSchemaFloats(schema.items!, item);
    });
  } else if (isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      const child = childSchema(schema, key);
      if (!child) continue;
      const item = value[key];
      if (item instanceof PyFloat && isFloatSchema(child)) value[key] = item.value;
      else unwrapSchemaFloats(child, item);
    }
  }
}

function childSchema(schema: MessageSchema, key: string): MessageSchema | undefined {
  const declared = schema.properties?.[key];
  if (declared) return declared;
  return typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof PyFloat);
}

function keysInWireOrder(object: Record<string, unknown>): string[] {
  const order = (object as { [KEY_ORDER]?: string[] })[KEY_ORDER];
  if (!order) return Object.keys(object);
  const present = new Set(Object.keys(object));
  const ordered = order.filter((k) => present.has(k));
  for (const k of present) if (!ordered.includes(k)) ordered.push(k);
  return ordered;
}
