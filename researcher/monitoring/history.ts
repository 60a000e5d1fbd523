/**
 * JSON-lines history: one line per experiment event (`{"time": ISO, ...event}`), appended as it happens, so a
 * crashed or interrupted run still leaves a readable record. NaN/Infinity (possible in node losses) are written
 * as strings, keeping every line valid JSON.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ExperimentEvent } from '../events';

export class JsonLinesHistory {
  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  }

  append(event: ExperimentEvent): void {
    const line = JSON.stringify({ time: new Date().toISOString(), ...event }, (_k, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? String(v) : v,
    );
    fs.appendFileSync(this.file, line + '\n');
  }
}

export function readHistory(file: string): Array<ExperimentEvent & { time: string }> {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as ExperimentEvent & { time: string };
      } catch (err) {
        throw new Error(`${file}:${i + 1}: not a JSON line (${(err as Error).message})`, { cause: err });
      }
    });
}
