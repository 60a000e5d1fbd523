import { ERROR_NUMBERS, errnumString, errorCodeOf, isErrorCode, normalizeErrnum, parseMessage } from './index';

describe('Fed-BioMed error numbers', () => {
  it('each wire string starts with its own code', () => {
    for (const [code, text] of Object.entries(ERROR_NUMBERS)) expect(text.startsWith(`${code}: `)).toBe(true);
    expect(Object.keys(ERROR_NUMBERS)).toHaveLength(82); // ErrorNumbers of v4.5.0: 5 MQTT, 4 HTTP, 24 node, 19 researcher, 2 server, 27 common, FB999
  });

  it('keeps exact strings, including FB315\'s trailing space', () => {
    expect(errnumString('FB312')).toBe('FB312: Node stopped in SIGTERM signal handler');
    expect(errnumString('FB315')).toBe('FB315: Error while loading the data ');
    expect(errnumString('FB999')).toBe('FB999: unknown error code sent by the node');
  });

  it('maps a wire errnum back to its code by exact match; anything else is FB999', () => {
    expect(errorCodeOf('FB313: no dataset matching request')).toBe('FB313');
    expect(errorCodeOf('FB315: Error while loading the data')).toBe('FB999');
    expect(errorCodeOf('FB313')).toBe('FB999');
    expect(errorCodeOf(313)).toBe('FB999');
    expect(normalizeErrnum('FB301: Protocol error')).toBe('FB301: Protocol error');
    expect(normalizeErrnum('FB777: made up')).toBe('FB999: unknown error code sent by the node');
    expect(isErrorCode('FB601')).toBe(true);
    expect(isErrorCode('FB777')).toBe(false);
  });

  it('the recorded SIGTERM error maps to FB312', () => {
    const payload =
      '{"command": "error", "errnum": "FB312: Node stopped in SIGTERM signal handler", "node_id": "node_peer1", "extra_msg": "", "researcher_id": "<unknown>", "protocol_version": "1"}';
    const result = parseMessage(payload, 'node-to-researcher');
    expect(result.ok && result.message.command === 'error' && errorCodeOf(result.message.errnum)).toBe('FB312');
  });
});
