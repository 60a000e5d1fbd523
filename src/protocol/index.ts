/** Public API of the Fed-BioMed v4.5.0 message layer. */
export { parseMessage, serializeMessage, ProtocolError } from './message-codec';
export { MESSAGE_SCHEMAS } from './schema-registry';
export { parsePythonJson } from './python-json-reader';
export { pythonJsonDumps } from './python-json-writer';
export { PyFloat } from './pyfloat';
export { ERROR_NUMBERS, errnumString, errorCodeOf, normalizeErrnum, isErrorCode } from './error-numbers';
export * from './messages';
