/**
 * Fed-BioMed v6.3.3 application messages (protocol "7", fedbiomed/common/message.py): the field set of every
 * class, in dataclass order, and the checks a Python peer applies when it rebuilds one (`Message.from_dict`):
 * the class named in `__type_message__`, a compatible `protocol_version`, no unknown key, no missing required key,
 * each value of its annotated type. The tables were read from the v6.3.3 dataclasses
 * (`dataclasses.fields(cls)`), so our messages pass Python's checks and theirs pass ours.
 */
import { FedbiomedTsError } from '../../errors';
import { PyFloat } from '../../protocol/pyfloat';
import { PyTuple } from '../../serialize';
import { decodeV6Payload, encodeV6Payload } from './payload';

export const V6_PROTOCOL_VERSION = '7';
export const V6_MESSAGE_MODULE = 'fedbiomed.common.message';

/** A field's annotated type; `?` = Optional (None allowed). `int` accepts bool, as Python's isinstance does. */
type FieldType = 'str' | 'str?' | 'bool' | 'int' | 'int?' | 'dict' | 'dict?' | 'list' | 'list?' | 'bytes'
  | 'dict|list?' | 'int|list' | 'dict|tuple' | 'list|tuple|dict?';
/** [name, type, hasDefault] */
type Field = readonly [string, FieldType, boolean?];

const PV: Field = ['protocol_version', 'str', true];
const RID: Field = ['request_id', 'str?', true];
const RES: Field = ['researcher_id', 'str'];
const NODE: Field[] = [['node_id', 'str'], ['node_name', 'str']];
const SECAGG_SETUP: Field[] = [PV, RID, RES, ['secagg_id', 'str'], ['element', 'int'], ['experiment_id', 'str'],
  ['parties', 'list']];
const SECAGG_REPLY: Field[] = [PV, RID, RES, ['secagg_id', 'str'], ['success', 'bool'], ...NODE, ['msg', 'str?', true]];

const V6_MESSAGE_FIELDS = {
  PingRequest: [PV, RID, RES],
  PingReply: [PV, RID, RES, ...NODE],
  SearchRequest: [PV, RID, RES, ['tags', 'list']],
  SearchReply: [PV, RID, RES, ['databases', 'list'], ...NODE, ['count', 'int']],
  ListRequest: [PV, RID, RES],
  ListReply: [PV, RID, RES, ['success', 'bool'], ['databases', 'list'], ...NODE, ['count', 'int']],
  ApprovalRequest: [PV, RID, RES, ['description', 'str'], ['training_plan', 'str']],
  ApprovalReply: [PV, RID, RES, ['training_plan_id', 'str?'], ['message', 'str'], ...NODE, ['status', 'int'],
    ['success', 'bool']],
  TrainingPlanStatusRequest: [PV, RID, RES, ['experiment_id', 'str'], ['training_plan', 'str']],
  TrainingPlanStatusReply: [PV, RID, RES, ...NODE, ['experiment_id', 'str'], ['success', 'bool'],
    ['approval_obligation', 'bool'], ['status', 'str'], ['msg', 'str'], ['training_plan', 'str'],
    ['training_plan_id', 'str?']],
  TrainRequest: [PV, RID, RES, ['experiment_id', 'str'], ['state_id', 'str?'], ['training_args', 'dict'],
    ['dataset_id', 'str'], ['training', 'bool'], ['model_args', 'dict'], ['params', 'dict'], ['training_plan', 'str'],
    ['training_plan_class', 'str'], ['round', 'int'], ['aggregator_args', 'dict'], ['secagg_arguments', 'dict?', true],
    ['optim_aux_var', 'dict?', true]],
  TrainReply: [PV, RID, RES, ['experiment_id', 'str'], ['success', 'bool'], ...NODE, ['dataset_id', 'str'],
    ['timing', 'dict'], ['msg', 'str'], ['state_id', 'str?', true], ['sample_size', 'int?', true],
    ['encrypted', 'bool', true], ['params', 'dict|list?', true], ['optimizer_args', 'dict?', true],
    ['optim_aux_var', 'dict?', true], ['encryption_factor', 'list?', true]],
  ErrorMessage: [PV, RID, RES, ...NODE, ['extra_msg', 'str'], ['errnum', 'str?', true]],
  SecaggRequest: SECAGG_SETUP,
  SecaggReply: SECAGG_REPLY,
  AdditiveSSSetupRequest: SECAGG_SETUP,
  AdditiveSSSetupReply: [...SECAGG_REPLY, ['share', 'int|list']],
  SecaggDeleteRequest: [PV, RID, RES, ['secagg_id', 'str'], ['element', 'int'], ['experiment_id', 'str?']],
  SecaggDeleteReply: SECAGG_REPLY,
  FARequest: [PV, RID, RES, ['experiment_id', 'str'], ['dataset_id', 'str'], ['fa_id', 'str'], ['stats', 'list?', true],
    ['stats_args', 'dict?', true], ['dataset_schema', 'list|tuple|dict?', true]],
  FAReply: [PV, RID, RES, ['experiment_id', 'str'], ['fa_id', 'str'], ...NODE, ['stats', 'list?'],
    ['output', 'dict|tuple']],
  PreprocRequest: [PV, RID, RES, ['experiment_id', 'str'], ['dataset_id', 'str'], ['preproc_type', 'int'],
    ['preproc_step', 'int'], ['preproc_id', 'str'], ['preproc_args', 'dict'], ['state_id', 'str?', true]],
  PreprocReply: [PV, RID, RES, ['experiment_id', 'str'], ...NODE, ['msg', 'str'], ['preproc_output', 'dict'],
    ['state_id', 'str?', true]],
  OverlayMessage: [PV, RES, ['node_id', 'str'], ['dest_node_id', 'str'], ['overlay', 'bytes'], ['setup', 'bool'],
    ['salt', 'bytes'], ['nonce', 'bytes']],
} as const satisfies Record<string, readonly Field[]>;

export type V6ClassName = keyof typeof V6_MESSAGE_FIELDS;

/** A decoded, validated message: its Python class and its fields (without the envelope). */
export interface V6Message<C extends V6ClassName = V6ClassName> {
  className: C;
  fields: Record<string, unknown>;
}

export class V6MessageError extends FedbiomedTsError {
  constructor(message: string, readonly className?: string) {
    super(message);
  }
}

function isDict(v: unknown): boolean {
  return v instanceof Map || (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
    && !(v instanceof PyFloat) && !(v instanceof PyTuple) && Object.getPrototypeOf(v) === Object.prototype);
}

function isInt(v: unknown): boolean {
  return typeof v === 'bigint' || typeof v === 'boolean' || (typeof v === 'number' && Number.isInteger(v));
}

function matches(type: FieldType, v: unknown): boolean {
  if (type.endsWith('?') && v === null) return true;
  return type.replace('?', '').split('|').some((t) => {
    switch (t) {
      case 'str': return typeof v === 'string';
      case 'bool': return typeof v === 'boolean';
      case 'int': return isInt(v);
      case 'dict': return isDict(v);
      case 'list': return Array.isArray(v);
      case 'tuple': return v instanceof PyTuple;
      case 'bytes': return v instanceof Uint8Array;
      default: return false;
    }
  });
}

function describeValue(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyFloat) return 'float';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'object') return isDict(v) ? 'dict' : (v.constructor?.name ?? 'object');
  return typeof v;
}

/**
 * Python's `raise_for_version_compatibility(theirs, "7")`: another major version is an error, and so is a higher
 * minor version; a lower one is accepted (Python logs a warning).
 */
function checkProtocolVersion(theirs: unknown): void {
  if (typeof theirs !== 'string') throw new V6MessageError(`protocol_version must be a string, got ${describeValue(theirs)}`);
  const parse = (v: string) => v.split('.').map((p) => Number(p));
  const [tMajor, tMinor = 0, tMicro = 0] = parse(theirs);
  const [oMajor, oMinor = 0, oMicro = 0] = parse(V6_PROTOCOL_VERSION);
  if (![tMajor, tMinor, tMicro].every(Number.isInteger)) {
    throw new V6MessageError(`protocol_version "${theirs}" is not a version number`);
  }
  if (tMajor !== oMajor || tMinor > oMinor || (tMinor === oMinor && tMicro > oMicro)) {
    throw new V6MessageError(`protocol version "${theirs}" is incompatible with ours ("${V6_PROTOCOL_VERSION}")`);
  }
}

/** Checks a message's fields as Python's dataclass constructor and __post_init__ would. */
export function validateV6Fields(className: string, fields: Record<string, unknown>): V6Message {
  if (!Object.prototype.hasOwnProperty.call(V6_MESSAGE_FIELDS, className)) {
    throw new V6MessageError(`unknown message class "${className}"`, className);
  }
  const spec = V6_MESSAGE_FIELDS[className as V6ClassName] as readonly Field[];
  const known = new Set(spec.map(([name]) => name));
  const extra = Object.keys(fields).filter((k) => !known.has(k));
  if (extra.length > 0) throw new V6MessageError(`${className}: unexpected field(s) ${extra.join(', ')}`, className);
  for (const [name, type, hasDefault] of spec) {
    if (!(name in fields)) {
      if (hasDefault) continue;
      throw new V6MessageError(`${className}: missing field ${name}`, className);
    }
    if (!matches(type, fields[name])) {
      throw new V6MessageError(`${className}.${name} must be ${type.replace('?', ' or None')}, got ${describeValue(fields[name])}`,
        className);
    }
  }
  if ('protocol_version' in fields) checkProtocolVersion(fields['protocol_version']);
  return { className: className as V6ClassName, fields };
}

/**
 * Builds a message to send: every field present in dataclass order (Python sends defaults too), `protocol_version`
 * "7", validated as the receiver will validate it.
 */
export function makeV6Message<C extends V6ClassName>(className: C, fields: Record<string, unknown>): V6Message<C> {
  const spec = V6_MESSAGE_FIELDS[className] as readonly Field[];
  const ordered: Record<string, unknown> = {};
  for (const [name, type, hasDefault] of spec) {
    if (name === 'protocol_version') ordered[name] = V6_PROTOCOL_VERSION;
    else if (name in fields) ordered[name] = fields[name];
    else if (hasDefault && name === 'encrypted') ordered[name] = false;
    else if (hasDefault || type.endsWith('?')) ordered[name] = null;
  }
  for (const key of Object.keys(fields)) if (!(key in ordered)) ordered[key] = fields[key];
  return validateV6Fields(className, ordered) as V6Message<C>;
}

/** msgpack bytes of a message with its `__type_message__` envelope, as `Serializer.dumps(msg.to_dict())`. */
export function encodeV6Message(message: V6Message): Uint8Array {
  return encodeV6Payload({ ...message.fields,
    __type_message__: { module: V6_MESSAGE_MODULE, class: message.className } });
}

/** Decodes and validates one message. Throws V6MessageError (or SerializationError for bad msgpack). */
export function decodeV6Message(bytes: Uint8Array): V6Message {
  const value = decodeV6Payload(bytes);
  if (!isDict(value) || value instanceof Map) throw new V6MessageError('a message must be a map with string keys');
  const { __type_message__: envelope, ...fields } = value as Record<string, unknown>;
  if (!isDict(envelope) || envelope instanceof Map) {
    throw new V6MessageError('the message has no __type_message__ {module, class} envelope');
  }
  const className = (envelope as Record<string, unknown>)['class'];
  if (typeof className !== 'string' || typeof (envelope as Record<string, unknown>)['module'] !== 'string') {
    throw new V6MessageError('__type_message__ must name a module and a class');
  }
  return validateV6Fields(className, fields);
}
