/**
 * A listener for people debugging a network (`fedbiomed-ts network spy`): every message on the Fed-BioMed
 * topics, with its command and whether a v4.5 peer would accept it (and why not). It only subscribes; it never
 * publishes, so it cannot disturb Python peers.
 */
import { MqttConnection, type ConnectionOptions } from './connection';
import { parseInbound } from './mqtt';
import { directionOfTopic } from './topics';
import { protocolCodec, type WireCodec } from './wire';
import { parsePythonJson } from '../protocol';

/** One observed message. */
export interface SpyRecord {
  time: string;
  topic: string;
  /** The message's `command`, or "?" when the payload has none. */
  command: string;
  valid: boolean;
  error?: string;
  field?: string;
  /** The start of the payload, when asked for. */
  payload?: string;
}

export interface SpyOptions extends Omit<ConnectionOptions, 'subscriptions'> {
  /** Topic filter; default `general/#` (every Fed-BioMed topic). */
  topic?: string;
  onRecord: (record: SpyRecord, payload: Buffer) => void;
  codec?: WireCodec;
}

/** The command of a payload, even of an invalid message, when it has one. */
function commandOf(payload: Buffer): string {
  try {
    const value = parsePythonJson(payload.toString('utf8'));
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const command = (value as Record<string, unknown>).command;
      if (typeof command === 'string') return command;
    }
  } catch {
    // not JSON: no command
  }
  return '?';
}

/** Judges one message as a peer subscribed to its topic would: requests on node topics, replies on the others. */
export function inspectTraffic(topic: string, payload: Buffer, codec: WireCodec = protocolCodec, now = new Date()): SpyRecord {
  const parsed = parseInbound(codec, payload, directionOfTopic(topic));
  const record: SpyRecord = { time: now.toISOString(), topic, command: commandOf(payload), valid: parsed.ok };
  if (!parsed.ok) {
    record.error = parsed.error;
    if (parsed.field !== undefined) record.field = parsed.field;
  }
  return record;
}

export function formatSpyLine(record: SpyRecord): string {
  const verdict = record.valid
    ? 'valid'
    : `INVALID: ${record.error ?? 'unknown reason'}${record.field ? ` (field ${record.field})` : ''}`;
  const line = `${record.time}  ${record.topic.padEnd(22)} ${record.command.padEnd(22)} ${verdict}`;
  return record.payload === undefined ? line : `${line}\n    ${record.payload}`;
}

/** Connects, subscribes to `topic` and reports every message until the returned connection is closed. */
export async function startSpy(options: SpyOptions): Promise<MqttConnection> {
  const { topic = 'general/#', onRecord, codec = protocolCodec, ...connection } = options;
  const spy = await MqttConnection.open({ ...connection, subscriptions: [topic] });
  spy.on('message', (messageTopic, payload) => {
    try {
      onRecord(inspectTraffic(messageTopic, payload, codec), payload);
    } catch (err) {
      options.logger?.error(`spy output failed: ${(err as Error).message}`);
    }
  });
  return spy;
}
