import * as fs from 'fs';
import * as path from 'path';

import {
  Direction,
  MESSAGE_SCHEMAS,
  parseMessage,
  ProtocolError,
  PyFloat,
  serializeMessage,
  TrainRequest,
  PongReply,
  ErrorMessage,
  LogMessage,
  NODE_TO_RESEARCHER_COMMANDS,
  parsePythonJson,
  pythonJsonDumps,
  RESEARCHER_TO_NODE_COMMANDS,
} from './index';
import { VECTORS_DIR } from '../testing/vectors-dir';

/** The recorded v4.5.0 network (see its README.md); the topic tells who sent each message. */

interface TraceRecord {
  topic: string;
  payload: string;
}

function directionOfTopic(topic: string): Direction {
  if (topic === 'general/nodes') return 'researcher-to-node';
  if (['general/researcher', 'general/monitoring', 'general/logger'].includes(topic)) return 'node-to-researcher';
  return 'researcher-to-node'; // general/<node_id>
}

const trace: TraceRecord[] = fs
  .readFileSync(path.join(VECTORS_DIR, 'mqtt-trace.jsonl'), 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line) => JSON.parse(line) as TraceRecord);

function firstRecorded(direction: Direction, command: string): string {
  const found = trace.find(
    (r) => directionOfTopic(r.topic) === direction && (JSON.parse(r.payload) as { command: string }).command === command,
  );
  if (!found) throw new Error(`no recorded ${direction} ${command}`);
  return found.payload;
}

function expectRejected(payload: string, direction: Direction, field: string | undefined, errorPattern: RegExp): void {
  const result = parseMessage(payload, direction);
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.field).toBe(field);
  expect(result.error).toMatch(errorPattern);
}

describe('recorded v4.5.0 trace', () => {
  it('holds the 115 messages the README describes', () => {
    expect(trace).toHaveLength(115);
  });

  it.each(trace.map((r, i) => [i, r.topic, r] as const))(
    'message %i on %s parses, validates and re-serialises to the same bytes',
    (_i, _topic, record) => {
      const direction = directionOfTopic(record.topic);
      const result = parseMessage(record.payload, direction);
      if (!result.ok) throw new Error(`${result.error} (field ${result.field})`);
      expect(result.warning).toBeUndefined();
      expect(serializeMessage(result.message, direction)).toBe(record.payload);
      // Bytes in, same bytes out: the Uint8Array path agrees with the string path.
      const fromBytes = parseMessage(Buffer.from(record.payload, 'utf8'), direction);
      expect(fromBytes.ok && serializeMessage(fromBytes.message, direction)).toBe(record.payload);
    },
  );

  it('covers every command seen on the wire in both directions', () => {
    const seen = new Set(trace.map((r) => `${directionOfTopic(r.topic)}/${(JSON.parse(r.payload) as { command: string }).command}`));
    expect([...seen].sort()).toEqual(
      [
        'researcher-to-node/ping', 'researcher-to-node/list', 'researcher-to-node/search', 'researcher-to-node/approval',
        'researcher-to-node/training-plan-status', 'researcher-to-node/train', 'node-to-researcher/pong',
        'node-to-researcher/list', 'node-to-researcher/search', 'node-to-researcher/approval',
        'node-to-researcher/training-plan-status', 'node-to-researcher/train', 'node-to-researcher/add_scalar',
        'node-to-researcher/log', 'node-to-researcher/error',
      ].sort(),
    );
  });

  it('returns schema floats as numbers and keeps whole floats of free-form dicts as PyFloat', () => {
    const trainPayload = firstRecorded('researcher-to-node', 'train');
    const result = parseMessage(trainPayload, 'researcher-to-node');
    expect(result.ok).toBe(true);
    if (!result.ok || result.message.command !== 'train') return;
    expect(result.message.training_args.test_ratio).toBe(0.25);
    const zeroRatio = trainPayload.replace('"test_ratio": 0.25', '"test_ratio": 0.0');
    const zero = parseMessage(zeroRatio, 'researcher-to-node');
    expect(zero.ok && zero.message.command === 'train' && zero.message.training_args.test_ratio).toBe(0);
    expect(zero.ok && serializeMessage(zero.message, 'researcher-to-node')).toBe(zeroRatio);
    const wholeLr = trainPayload.replace('"lr": 0.01', '"lr": 1.0');
    const lr = parseMessage(wholeLr, 'researcher-to-node');
    expect(lr.ok && lr.message.command === 'train' && lr.message.training_args.optimizer_args.lr).toEqual(new PyFloat(1));
    expect(lr.ok && serializeMessage(lr.message, 'researcher-to-node')).toBe(wholeLr);
  });
});

describe('schemas', () => {
  it('exist for all 19 message classes, keyed by command and direction', () => {
    expect(Object.keys(MESSAGE_SCHEMAS['researcher-to-node']).sort()).toEqual([...RESEARCHER_TO_NODE_COMMANDS].sort());
    expect(Object.keys(MESSAGE_SCHEMAS['node-to-researcher']).sort()).toEqual([...NODE_TO_RESEARCHER_COMMANDS].sort());
    const classes = Object.values(MESSAGE_SCHEMAS).flatMap((table) => Object.values(table).map((s) => s['x-python-class']));
    expect(new Set(classes).size).toBe(19);
  });

  it('list every property as required and forbid others', () => {
    for (const table of Object.values(MESSAGE_SCHEMAS)) {
      for (const schema of Object.values(table)) {
        expect(schema.additionalProperties).toBe(false);
        expect([...(schema.required ?? [])].sort()).toEqual(Object.keys(schema.properties ?? {}).sort());
      }
    }
  });
});

describe('rejected inputs name the field', () => {
  const train = firstRecorded('researcher-to-node', 'train');
  const pong = firstRecorded('node-to-researcher', 'pong');
  const addScalar = firstRecorded('node-to-researcher', 'add_scalar');

  /** Edits a recorded payload; our own reader/writer keep every other byte (e.g. `0.0`) as recorded. */
  const mutate = (payload: string, change: (m: Record<string, unknown>) => void): string => {
    const message = parsePythonJson(payload) as Record<string, unknown>;
    change(message);
    return pythonJsonDumps(message);
  };

  it('a removed field', () => {
    expectRejected(mutate(pong, (m) => delete m.sequence), 'node-to-researcher', 'sequence', /^sequence is missing$/);
    expectRejected(
      mutate(train, (m) => delete (m.training_args as Record<string, unknown>).test_ratio),
      'researcher-to-node',
      'training_args.test_ratio',
      /training_args\.test_ratio is missing/,
    );
  });

  it('an extra field', () => {
    expectRejected(mutate(pong, (m) => (m.extra = 1)), 'node-to-researcher', 'extra', /^extra is not an allowed field$/);
    expectRejected(
      mutate(train, (m) => ((m.training_args as Record<string, unknown>).batch_size = 8)),
      'researcher-to-node',
      'training_args.batch_size',
      /not an allowed field/,
    );
  });

  it('a float written as an int', () => {
    const intRatio = train.replace('"test_ratio": 0.25', '"test_ratio": 0');
    expect(intRatio).not.toBe(train);
    expectRejected(intRatio, 'researcher-to-node', 'training_args.test_ratio', /^training_args\.test_ratio must be a float \(got integer 0\)$/);
    const intRandom = train.replace('"secagg_random": null', '"secagg_random": 1');
    expectRejected(intRandom, 'researcher-to-node', 'secagg_random', /^secagg_random must be a float or null \(got integer 1\)$/);
  });

  it('an int written as a float', () => {
    expectRejected(pong.replace('"sequence": 0', '"sequence": 0.0'), 'node-to-researcher', 'sequence', /must be an int \(got float 0\.0\)/);
  });

  it('a wrong type', () => {
    expectRejected(mutate(pong, (m) => (m.success = 'yes')), 'node-to-researcher', 'success', /^success must be a boolean \(got string "yes"\)$/);
    expectRejected(mutate(train, (m) => (m.model_args = [])), 'researcher-to-node', 'model_args', /must be an object \(got array\)/);
    expectRejected(
      mutate(addScalar, (m) => ((m.metric as Record<string, unknown>).ACCURACY = 'high')),
      'node-to-researcher',
      'metric.ACCURACY',
      /metric\.ACCURACY must be an int or a float/,
    );
    const floatArgs = train.replace('"model_args": {"in_features": 4, "hidden": 8}', '"model_args": 1.0');
    expect(floatArgs).not.toBe(train);
    expectRejected(floatArgs, 'researcher-to-node', 'model_args', /must be an object \(got float 1\.0\)/);
  });

  it('a log whose msg is not a JSON object with "message" (a Python researcher would crash on it)', () => {
    const log = firstRecorded('node-to-researcher', 'log');
    const withMsg = (msg: string) => mutate(log, (m) => (m.msg = msg));
    expectRejected(withMsg('plain text'), 'node-to-researcher', 'msg', /^msg must be a JSON-encoded object \(Expecting value/);
    expectRejected(withMsg('[1]'), 'node-to-researcher', 'msg', /^msg must be a JSON-encoded object \(got JSON array\)$/);
    expectRejected(withMsg('{"level": "INFO"}'), 'node-to-researcher', 'msg', /^msg must be a JSON-encoded object with key "message"$/);
    expect(parseMessage(withMsg('{"message": "ok"}'), 'node-to-researcher').ok).toBe(true);
  });

  it('an add_scalar with num_batches 0 (a Python researcher divides by it)', () => {
    const zero = addScalar.replace('"num_batches": 1,', '"num_batches": 0,');
    expect(zero).not.toBe(addScalar);
    expectRejected(zero, 'node-to-researcher', 'num_batches', /^num_batches must be >= 1 \(got integer 0\)$/);
  });

  it('accepts a bool where Python wants an int (isinstance(True, int))', () => {
    const result = parseMessage(pong.replace('"sequence": 0', '"sequence": true'), 'node-to-researcher');
    expect(result.ok).toBe(true);
  });

  it('a bad or missing protocol version', () => {
    for (const version of ['"2"', '"1.1"', '"0"', '"1.0.1"', '1', 'null', '"one"']) {
      expectRejected(pong.replace('"protocol_version": "1"', `"protocol_version": ${version}`), 'node-to-researcher', 'protocol_version', /protocol_version/);
    }
    expectRejected(mutate(pong, (m) => delete m.protocol_version), 'node-to-researcher', 'protocol_version', /missing \(counts as "0"\)/);
  });

  it('equal versions pass silently, compatible different ones with a warning', () => {
    const equal = parseMessage(pong.replace('"protocol_version": "1"', '"protocol_version": "1.0.0"'), 'node-to-researcher');
    expect(equal).toMatchObject({ ok: true });
    expect(equal.ok && equal.warning).toBeUndefined();
    const older = parseMessage(pong.replace('"protocol_version": "1"', '"protocol_version": "1.0rc1"'), 'node-to-researcher');
    expect(older.ok && older.warning).toMatch(/differs from ours \("1"\) but is compatible/);
  });

  it('non-JSON, a JSON array, a non-object', () => {
    expectRejected('{"command": "pong"', 'node-to-researcher', undefined, /^payload is not valid JSON: .*char 18\)$/);
    expectRejected('[1, 2]', 'node-to-researcher', undefined, /must be a JSON object \(got array\)/);
    expectRejected('"pong"', 'node-to-researcher', undefined, /must be a JSON object \(got string/);
    expect(parseMessage(new Uint8Array([0x7b, 0xff, 0x7d]), 'node-to-researcher')).toEqual({ ok: false, error: 'payload is not valid UTF-8' });
  });

  it('an unknown command, or a command of the other direction', () => {
    expectRejected(pong, 'researcher-to-node', 'command', /"pong" is not a researcher-to-node message/);
    expectRejected(mutate(pong, (m) => delete m.command), 'node-to-researcher', 'command', /command is missing/);
    expectRejected(mutate(pong, (m) => (m.command = 7)), 'node-to-researcher', 'command', /command must be a string \(got integer 7\)/);
  });

  it('every field of every recorded message, given a value of the wrong JSON type, is rejected naming it', () => {
    // An array is wrong for every non-list field, a string for every list or dict, a dict for every null value.
    const wrongFor = (value: unknown): unknown => (value === null ? { bad: 1 } : typeof value === 'object' ? 'x' : []);
    for (const record of trace) {
      const direction = directionOfTopic(record.topic);
      for (const [key, value] of Object.entries(JSON.parse(record.payload) as Record<string, unknown>)) {
        if (key === 'protocol_version' || key === 'command') continue;
        const result = parseMessage(mutate(record.payload, (m) => (m[key] = wrongFor(value))), direction);
        expect(result).toMatchObject({ ok: false, field: key, error: expect.stringMatching(new RegExp(`^${key} must be `)) });
      }
      const extra = parseMessage(mutate(record.payload, (m) => (m.round_extra = 0)), direction);
      expect(extra).toEqual({ ok: false, error: 'round_extra is not an allowed field', field: 'round_extra' });
    }
  });

  it('never throws on corrupted payloads (20 000 random byte edits of recorded messages)', () => {
    let x = 12345;
    const random = (n: number) => {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return x % n;
    };
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const record = trace[random(trace.length)];
      const bytes = Buffer.from(record.payload, 'utf8');
      for (let edits = 1 + random(3); edits > 0; edits--) bytes[random(bytes.length)] = random(256);
      const direction = directionOfTopic(record.topic);
      const result = parseMessage(bytes, direction);
      expect(typeof result.ok).toBe('boolean');
      if (result.ok) {
        accepted++;
        expect(typeof serializeMessage(result.message, direction)).toBe('string');
      } else {
        expect(result.error).not.toMatch(/internal error/);
      }
    }
    expect(accepted).toBeGreaterThan(0); // some edits only touch string contents: those stay valid
  });

  it('every single-field removal of every recorded message is rejected, naming that field', () => {
    for (const record of trace) {
      const direction = directionOfTopic(record.topic);
      for (const key of Object.keys(JSON.parse(record.payload) as object)) {
        if (key === 'protocol_version' || key === 'command') continue;
        const result = parseMessage(mutate(record.payload, (m) => delete m[key]), direction);
        expect(result).toEqual({ ok: false, error: `${key} is missing`, field: key });
      }
    }
  });
});

describe('serializeMessage', () => {
  const pong: PongReply = { researcher_id: 'r', node_id: 'n', success: true, sequence: 3, command: 'pong' };

  it('injects protocol_version first and orders keys as Python does', () => {
    const shuffled = { command: 'pong', sequence: 3, success: true, node_id: 'n', researcher_id: 'r' } as PongReply;
    expect(serializeMessage(shuffled, 'node-to-researcher')).toBe(
      '{"protocol_version": "1", "researcher_id": "r", "node_id": "n", "success": true, "sequence": 3, "command": "pong"}',
    );
  });

  it('writes log and error keys in insertion order with protocol_version last', () => {
    const error: ErrorMessage = { researcher_id: '<unknown>', node_id: 'n', errnum: 'FB312: Node stopped in SIGTERM signal handler', extra_msg: '', command: 'error' };
    expect(serializeMessage(error, 'node-to-researcher')).toBe(
      '{"command": "error", "errnum": "FB312: Node stopped in SIGTERM signal handler", "node_id": "n", "extra_msg": "", "researcher_id": "<unknown>", "protocol_version": "1"}',
    );
    const log: LogMessage = { node_id: 'n', msg: '{"message": "hi"}', level: 'INFO', researcher_id: '<unknown>', command: 'log' };
    expect(serializeMessage(log, 'node-to-researcher')).toBe(
      '{"command": "log", "level": "INFO", "msg": "{\\"message\\": \\"hi\\"}", "node_id": "n", "researcher_id": "<unknown>", "protocol_version": "1"}',
    );
  });

  it('writes schema floats as Python floats', () => {
    const parsed = parseMessage(firstRecorded('researcher-to-node', 'train'), 'researcher-to-node');
    if (!parsed.ok || parsed.message.command !== 'train') throw new Error('recorded train request does not parse');
    const request: TrainRequest = {
      ...parsed.message,
      training_args: { ...parsed.message.training_args, test_ratio: 0, fedprox_mu: 1, dp_args: { sigma: 2, clip: 0.5 } },
      secagg_random: 0,
    };
    const text = serializeMessage(request, 'researcher-to-node');
    expect(text).toContain('"test_ratio": 0.0,');
    expect(text).toContain('"fedprox_mu": 1.0,');
    expect(text).toContain('"dp_args": {"sigma": 2.0, "clip": 0.5}');
    expect(text).toContain('"secagg_random": 0.0,');
    expect(text).toContain('"round": 0,');
    const back = parseMessage(text, 'researcher-to-node');
    expect(back.ok && serializeMessage(back.message, 'researcher-to-node')).toBe(text);
  });

  it('throws ProtocolError naming the field of an invalid message', () => {
    const missing = { ...pong } as Partial<PongReply>;
    delete missing.node_id;
    const attempt = (m: unknown, d: Direction = 'node-to-researcher') => () => serializeMessage(m as PongReply, d);
    expect(attempt(missing)).toThrow(ProtocolError);
    expect(attempt(missing)).toThrow(/node_id is missing/);
    try {
      serializeMessage({ ...pong, sequence: 1.5 }, 'node-to-researcher');
      throw new Error('no error thrown');
    } catch (e) {
      expect(e).toBeInstanceOf(ProtocolError);
      expect((e as ProtocolError).field).toBe('sequence');
      expect((e as ProtocolError).message).toMatch(/sequence must be an int \(got float 1\.5\)/);
    }
    expect(attempt({ ...pong, extra: 1 })).toThrow(/extra is not an allowed field/);
    expect(attempt(pong, 'researcher-to-node')).toThrow(/"pong" is not a researcher-to-node message/);
    expect(attempt({ ...pong, sequence: new PyFloat(1) })).toThrow(/sequence must be an int \(got float 1\.0\)/);
    expect(attempt([pong])).toThrow(/must be an object \(got array\)/);
  });

  it('leaves the caller\'s message untouched', () => {
    const message = { ...pong, protocol_version: '0' };
    serializeMessage(message, 'node-to-researcher');
    expect(message).toEqual({ ...pong, protocol_version: '0' });
  });
});
