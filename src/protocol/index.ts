/** Public API of the Fed-BioMed v4.5.0 message layer. */
export { PROTOCOL_VERSION, checkProtocolVersion } from './version';
export type { VersionCheck } from './version';
export { parseMessage, serializeMessage, ProtocolError } from './message-codec';
export type { ParseResult } from './message-codec';
export { validateMessage } from './message-validator';
export type { ValidationFailure } from './message-validator';
export { MESSAGE_SCHEMAS, schemaFor } from './schema-registry';
export type { MessageSchema } from './schema-registry';
export { parsePythonJson, PythonJsonSyntaxError } from './python-json-reader';
export { pythonJsonDumps, PythonJsonWriteError } from './python-json-writer';
export { pythonFloatRepr } from './float-repr';
export { KEY_ORDER } from './python-json-value';
export type { PyJsonValue, PyJsonObject } from './python-json-value';
export { PyFloat, pyFloat, numberOf } from './pyfloat';
export { ERROR_NUMBERS, errnumString, errorCodeOf, normalizeErrnum, isErrorCode } from './error-numbers';
export type { ErrorCode, ErrnumString } from './error-numbers';
export * from './messages';
