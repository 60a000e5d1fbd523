/**
 * The node's cross-round dataset cache, on real files: the same dataset and plan over unchanged files give the same
 * (already read) dataset; any change to the files (edited, added, removed, touched), another plan or another
 * dataset reads again; an unreadable path is not cached and fails as without the cache.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { mlpPlan } from '../src/plan/testing/plans';
import { PlanDatasetCache, sourceFingerprint } from './dataset-cache';
import type { DatasetEntry } from './datasets';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-cache-'));
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function csv(file: string, rows: number): void {
  const lines = ['f0,f1,f2,f3,label'];
  for (let i = 0; i < rows; i++) lines.push(`${i},${i + 1},${i % 3},${i * 0.5},${i % 2}`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

function entry(file: string, id = 'dataset_1'): DatasetEntry {
  return { name: 'tab', data_type: 'csv', tags: ['t'], description: '', shape: [0, 5], path: file, dataset_id: id,
    dtypes: [], dataset_parameters: null }; // prettier-ignore
}

/** Moves a file's modification time, as a rewrite a moment later would. */
function touch(file: string, secondsLater: number): void {
  const t = fs.statSync(file).mtime.getTime() / 1000 + secondsLater;
  fs.utimesSync(file, t, t);
}

test('unchanged files: the same dataset object, not read again', () => {
  const file = path.join(dir, 'data.csv');
  csv(file, 10);
  const cache = new PlanDatasetCache();
  const first = cache.open(mlpPlan(), entry(file));
  expect(first.size).toBe(10);
  expect(cache.open(mlpPlan(), entry(file))).toBe(first);
});

test('an edited file is read again, even at the same size', () => {
  const file = path.join(dir, 'data.csv');
  csv(file, 10);
  const cache = new PlanDatasetCache();
  const first = cache.open(mlpPlan(), entry(file));
  csv(file, 12);
  const grown = cache.open(mlpPlan(), entry(file));
  expect(grown).not.toBe(first);
  expect(grown.size).toBe(12);
  // Same bytes count, new content: only the modification time tells.
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('0,1,0,0,0', '9,1,0,0,0'));
  touch(file, 5);
  const edited = cache.open(mlpPlan(), entry(file));
  expect(edited).not.toBe(grown);
  expect(edited.sample(0).tabular?.[0]).not.toBe(grown.sample(0).tabular?.[0]);
});

test('another plan or another dataset is read again; only one dataset is kept', () => {
  const file = path.join(dir, 'data.csv');
  csv(file, 10);
  const cache = new PlanDatasetCache();
  const first = cache.open(mlpPlan(), entry(file));
  const otherPlan = { ...mlpPlan(), preprocessing: [] };
  const second = cache.open(otherPlan, entry(file));
  expect(second).not.toBe(first);
  expect(cache.open(mlpPlan(), entry(file, 'dataset_2'))).not.toBe(first);
  // The first one was dropped: asking for it again reads again.
  expect(cache.open(mlpPlan(), entry(file))).not.toBe(first);
});

test('a folder dataset: a file added, removed or touched anywhere below changes the fingerprint', () => {
  fs.mkdirSync(path.join(dir, 'sub-01', 'T1'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'sub-01', 'T1', 'a.dcm'), 'x');
  const before = sourceFingerprint(dir);
  expect(sourceFingerprint(dir)).toBe(before);
  fs.writeFileSync(path.join(dir, 'sub-01', 'T1', 'b.dcm'), 'y');
  const added = sourceFingerprint(dir);
  expect(added).not.toBe(before);
  touch(path.join(dir, 'sub-01', 'T1', 'a.dcm'), 7);
  const touched = sourceFingerprint(dir);
  expect(touched).not.toBe(added);
  fs.rmSync(path.join(dir, 'sub-01', 'T1', 'b.dcm'));
  expect(sourceFingerprint(dir)).not.toBe(touched);
});

test('a missing path is not cached and fails as it would without the cache', () => {
  const cache = new PlanDatasetCache();
  const missing = entry(path.join(dir, 'gone.csv'));
  expect(() => cache.open(mlpPlan(), missing)).toThrow(/gone\.csv/);
  const file = path.join(dir, 'gone.csv');
  csv(file, 4);
  expect(cache.open(mlpPlan(), missing).size).toBe(4);
});
