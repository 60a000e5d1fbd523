/**
 * Test helpers reading the recorded Fed-BioMed v4.5.0 vectors (/work/shared/fedbiomed-v4.5-vectors, or
 * FEDBIOMED_VECTORS). Only tests import this file.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { WeightMap } from '../aggregators/tensors';
import { VECTORS_DIR } from '../../src/testing/vectors-dir';


export function vectorPath(...parts: string[]): string {
  return path.join(VECTORS_DIR, ...parts);
}

export interface TraceLine {
  ts: number;
  topic: string;
  payload: string;
}

/** mqtt-trace.jsonl, line N (1-based, as in sequence.txt). */
/** The training arguments the recorded Python researcher set (its train request, trace line 27). */
export const RECORDED_USER_TRAINING_ARGS = {
  loader_args: { batch_size: 8 },
  optimizer_args: { lr: 0.01 },
  num_updates: 3,
  log_interval: 1,
  random_seed: 1234,
  test_ratio: 0.25,
  test_on_local_updates: true,
  test_on_global_updates: true,
  test_metric: 'ACCURACY',
} as const;

export function traceLines(): TraceLine[] {
  return fs
    .readFileSync(vectorPath('mqtt-trace.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as TraceLine);
}

export function traceMessage(line: number): { topic: string; payload: string; message: Record<string, unknown> } {
  const t = traceLines()[line - 1];
  return { topic: t.topic, payload: t.payload, message: JSON.parse(t.payload) as Record<string, unknown> };
}

/** model_weights of a recorded .mpk, rebuilt from the raw little-endian bytes in its .decoded.json. */
export function decodedWeights(file: string): WeightMap {
  const decoded = JSON.parse(fs.readFileSync(vectorPath('files', `${file}.decoded.json`), 'utf8')) as {
    model_weights: Record<string, { dtype: string; shape: number[]; hex: string }>;
  };
  const out: WeightMap = new Map();
  for (const [name, t] of Object.entries(decoded.model_weights)) {
    if (t.dtype !== 'float32') throw new Error(`${file}: ${name} is ${t.dtype}, helper reads float32 only`);
    const bytes = Buffer.from(t.hex, 'hex');
    const data = new Float32Array(bytes.length / 4);
    for (let i = 0; i < data.length; i++) data[i] = bytes.readFloatLE(i * 4);
    out.set(name, { dtype: t.dtype, shape: t.shape, data });
  }
  return out;
}

export function weightsHex(weights: WeightMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, t] of weights) {
    const data = t.data as Float32Array;
    out[name] = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
  }
  return out;
}

export function recordedHex(file: string): Record<string, string> {
  const decoded = JSON.parse(fs.readFileSync(vectorPath('files', `${file}.decoded.json`), 'utf8')) as {
    model_weights: Record<string, { hex: string }>;
  };
  return Object.fromEntries(Object.entries(decoded.model_weights).map(([k, v]) => [k, v.hex]));
}
