import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { crc32c } from '../../src/serialize/crc';
import { readScalarEvents, TensorBoardWriter } from './tensorboard';
import { ScalarTracker, logRecord } from './scalars';
import { JsonLinesHistory, readHistory } from './history';
import { ConsoleMonitor, progressBar } from './console';
import { formatRoundSummary } from './summary';
import { traceMessage } from '../testing/vectors';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-mon-'));

describe('TensorBoard event files', () => {
  it('uses CRC-32C (Castagnoli): standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('writes a version record then scalar records that read back with valid CRCs', () => {
    const dir = tmp();
    const w = new TensorBoardWriter(dir);
    w.addScalar('node_peer1', 'TRAINING/Loss', 0.5, 1, 1000.5);
    w.addScalar('node_peer1', 'TRAINING/Loss', 0.25, 2, 1001);
    w.addScalar('node_peer1', 'TRAINING/Loss', NaN, 3, 1002);
    const files = fs.readdirSync(path.join(dir, 'node_peer1'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^events\.out\.tfevents\.1000\./);
    const { version, scalars } = readScalarEvents(path.join(dir, 'node_peer1', files[0]));
    expect(version).toBe('brain.Event:2');
    expect(scalars).toEqual([
      { wallTime: 1000.5, step: 1, tag: 'TRAINING/Loss', value: 0.5 },
      { wallTime: 1001, step: 2, tag: 'TRAINING/Loss', value: 0.25 },
    ]);
    const raw = fs.readFileSync(path.join(dir, 'node_peer1', files[0]));
    raw[raw.length - 6] ^= 0xff;
    fs.writeFileSync(path.join(dir, 'bad'), raw);
    expect(() => readScalarEvents(path.join(dir, 'bad'))).toThrow(/CRC/);
  });
});

describe('scalars and logs from recorded node messages', () => {
  it('classifies add_scalar phases and counts a cumulative step across rounds', () => {
    const t = new ScalarTracker();
    const globalVal = traceMessage(30).message;
    const train1 = traceMessage(31).message;
    const localVal = traceMessage(34).message;
    expect(t.record(globalVal as never, 0)).toMatchObject({ phase: 'validation-global', metric: { ACCURACY: 0.3333333333333333 }, step: 1 });
    expect(t.record(train1 as never, 0)).toMatchObject({ phase: 'training', nodeId: 'node_peer1', iteration: 1, numBatches: 3, step: 1, epoch: null });
    expect(t.record({ ...train1, iteration: 3 } as never, 0).step).toBe(3);
    expect(t.record(localVal as never, 0).phase).toBe('validation-local');
    expect(t.record(train1 as never, 1).step).toBe(4);
  });

  it('unwraps the JSON-in-a-string log payload', () => {
    const log = logRecord(traceMessage(36).message as never);
    expect(log).toMatchObject({ nodeId: 'node_peer1', level: 'WARNING', time: '2026-11-22 03:58:18,498' });
    expect(log.message).toMatch(/^Unable to save optimizer state/);
    expect(logRecord({ command: 'log', level: 'INFO', msg: 'not json', node_id: 'n' }).message).toBe('not json');
  });
});

describe('history, progress and summary', () => {
  it('appends JSON lines that read back, NaN kept as text', () => {
    const file = path.join(tmp(), 'sub', 'history.jsonl');
    const h = new JsonLinesHistory(file);
    h.append({ type: 'round-start', round: 0, training: true, nodes: ['a'] });
    h.append({ type: 'scalar', round: 0, nodeId: 'a', phase: 'training', metric: { Loss: NaN }, iteration: 1, epoch: null, numBatches: 1, totalSamples: 1, batchSamples: 1, numSamplesTrained: 1, step: 1 });
    const lines = readHistory(file);
    expect(lines.map((l) => l.type)).toEqual(['round-start', 'scalar']);
    expect((lines[1] as { metric: Record<string, unknown> }).metric.Loss).toBe('NaN');
  });

  it('prints plain progress lines without a TTY and a summary table', () => {
    let text = '';
    const out = { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WritableStream;
    const m = new ConsoleMonitor({ out });
    m.handle({ type: 'round-start', round: 1, training: true, nodes: ['a', 'b'] });
    m.handle({ type: 'node-reply', round: 1, nodeId: 'a', success: true, sampleSize: 36, message: '', replyMs: 12, done: 1, total: 2 });
    m.handle({ type: 'log', nodeId: 'b', level: 'DEBUG', message: 'hidden', time: null });
    m.handle({ type: 'node-failed', round: 1, nodeId: 'b', reason: 'timeout', message: 'no reply within 100 ms', done: 2, total: 2 });
    m.handle({
      type: 'round-end',
      summary: {
        round: 1, training: true, durationMs: 100, aggregationReadyMs: 90, aggregated: true, paramsUrl: 'u',
        nodes: [
          { nodeId: 'a', status: 'ok', sampleSize: 36, lastLoss: 0.5, validationGlobal: { ACCURACY: 0.75 }, validationLocal: null, trainingSeconds: 0.07, replyMs: 12, message: '' },
          { nodeId: 'b', status: 'timeout', sampleSize: null, lastLoss: null, validationGlobal: null, validationLocal: null, trainingSeconds: null, replyMs: null, message: 'no reply within 100 ms' },
        ],
      },
    });
    expect(text).not.toContain('\r');
    expect(text).toContain('Round 1 [--------------------] 0/2 nodes');
    expect(text).toContain('Round 1 [##########----------] 1/2 nodes');
    expect(progressBar(1, 4, 8)).toBe('[##------]');
    expect(text).toContain('(a done)');
    expect(text).toContain('b: timeout: no reply within 100 ms');
    expect(text).not.toContain('hidden');
    expect(text).toContain('Round 1: 1/2 nodes ok, 100 ms, aggregated in 90 ms');
    expect(text).toMatch(/a\s+ok\s+36\s+0\.5000\s+ACCURACY=0\.7500/);
  });

  it('prints what nodes send as text: no escape sequence, no forged line, no credential', () => {
    let text = '';
    const out = { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WritableStream;
    const m = new ConsoleMonitor({ out });
    m.handle({ type: 'round-start', round: 1, training: true, nodes: ['a'] });
    m.handle({ type: 'log', nodeId: 'a\x1b[2J', level: 'INFO', message: '\x1b]0;pwned\x07ok\nRound 1: 9/9 nodes ok', time: null });
    m.handle({ type: 'node-failed', round: 1, nodeId: 'a', reason: 'failed', message: 'bad mqtts://u:pw@h.example.org\r\x1b[K', done: 1, total: 1 });
    expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(text).toContain('[INFO] a\\x1b[2J: \\x1b]0;pwned\\x07ok\\x0aRound 1: 9/9 nodes ok');
    expect(text).not.toMatch(/^Round 1: 9\/9/m);
    expect(text).toContain('bad mqtts://***@h.example.org\\x0d\\x1b[K');
  });

  it('redraws in place on a TTY', () => {
    let text = '';
    const out = { write: (s: string) => ((text += s), true), isTTY: true, columns: 80 } as unknown as NodeJS.WritableStream;
    const m = new ConsoleMonitor({ out });
    m.handle({ type: 'round-start', round: 0, training: true, nodes: ['a'] });
    m.handle({ type: 'scalar', round: 0, nodeId: 'a', phase: 'training', metric: { Loss: 0.125 }, iteration: 1, epoch: 1, numBatches: 1, totalSamples: 1, batchSamples: 1, numSamplesTrained: 1, step: 1 });
    expect(text).toContain('\r\x1b[K');
    expect(text).toContain('a loss=0.1250');
    expect(formatRoundSummary({ round: 2, training: false, durationMs: 5, aggregationReadyMs: null, aggregated: false, paramsUrl: null, nodes: [] })).toContain('Round 2 (validation only)');
  });
});
