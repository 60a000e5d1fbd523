import mqtt from 'mqtt';
import { startBroker, type EmbeddedBroker } from './broker';
import { formatSpyLine, inspectTraffic, startSpy, type SpyRecord } from './spy';
import { tracedMessages } from './testing/vectors';
import { waitFor } from './testing/waits';

describe('inspectTraffic', () => {
  test('judges every message of the recorded v4.5 network valid on the topic it travelled on', () => {
    const records = tracedMessages().map((m) => inspectTraffic(m.topic, Buffer.from(m.payload)));
    expect(records).toHaveLength(115);
    expect(records.filter((r) => !r.valid)).toEqual([]);
    expect(new Set(records.map((r) => r.command))).toEqual(
      new Set(['log', 'ping', 'pong', 'list', 'search', 'approval', 'training-plan-status', 'train', 'add_scalar', 'error']),
    );
  });

  test('says why a message is invalid, and which field', () => {
    const ping = '{"protocol_version": "1", "researcher_id": "r", "sequence": 0, "command": "ping"}';
    const onReplyTopic = inspectTraffic('general/researcher', Buffer.from(ping));
    expect(onReplyTopic.valid).toBe(false); // a request on the reply topic: no node-to-researcher "ping"
    expect(onReplyTopic.command).toBe('ping');
    const extra = inspectTraffic('general/nodes', Buffer.from(ping.replace('}', ', "extra": 1}')));
    expect(extra).toMatchObject({ valid: false, command: 'ping' });
    expect(`${extra.error} ${extra.field ?? ''}`).toMatch(/extra/);
    const garbage = inspectTraffic('general/nodes', Buffer.from('\u0000\u0001 not json'));
    expect(garbage).toMatchObject({ valid: false, command: '?' });
  });

  test('formats one line per message', () => {
    const record: SpyRecord = { time: '2026-01-01T00:00:00.000Z', topic: 'general/nodes', command: 'ping', valid: false, error: 'boom', field: 'sequence' };
    expect(formatSpyLine(record)).toBe(
      '2026-01-01T00:00:00.000Z  general/nodes          ping                   INVALID: boom (field sequence)',
    );
    expect(formatSpyLine({ ...record, valid: true })).toMatch(/ping\s+valid$/);
  });
});

describe('startSpy', () => {
  let broker: EmbeddedBroker;
  beforeAll(async () => {
    broker = await startBroker();
  });
  afterAll(async () => {
    await broker.close();
  });

  test('reports every message on general/# and publishes nothing itself', async () => {
    const records: SpyRecord[] = [];
    const spy = await startSpy({ brokerUrl: broker.url, onRecord: (r) => void records.push(r) });
    const watcher = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
    const seenByWatcher: string[] = [];
    watcher.on('message', (topic) => seenByWatcher.push(topic));
    await watcher.subscribeAsync('#', { qos: 0 });
    const recorded = tracedMessages().slice(0, 10);
    for (const m of recorded) await watcher.publishAsync(m.topic, m.payload);
    await watcher.publishAsync('elsewhere/topic', 'not for the spy');
    await waitFor(() => records.length === 10 && seenByWatcher.length === 11, 'the spy to see the ten messages');
    expect(records.map((r) => [r.topic, r.command, r.valid])).toEqual(recorded.map((m) => [m.topic, m.command, true]));
    await spy.close();
    await watcher.endAsync();
    // Only what the watcher itself published went through the broker.
    expect(seenByWatcher.filter((t) => t.startsWith('$SYS'))).toEqual([]);
    expect(seenByWatcher).toHaveLength(11);
  });
});
