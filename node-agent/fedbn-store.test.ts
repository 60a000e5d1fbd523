/**
 * A TS node's FedBN store on a real node database file: local parameters leave the reply, are kept per plan and
 * dataset with their dtypes, and fill in what a later global model lacks (a global model that has them wins).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { TorchTensor } from '../src/serialize';
import { JsonDb } from './json-db';
import { keepLocalParameters, restoreLocalParameters } from './fedbn-store';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-fedbn-store-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const f32 = (values: number[]) => new TorchTensor('float32', [values.length], Float32Array.from(values));
const LOCAL = ['bn.running_mean', 'bn.num_batches_tracked'];

test('kept out of the reply, stored with dtypes, restored only where the global model lacks them', () => {
  const db = new JsonDb(path.join(dir, 'db.json'));
  const trained = {
    'fc.weight': f32([0.5, -1]),
    'bn.running_mean': f32([0.1, 0.30000001192092896]),
    'bn.num_batches_tracked': new TorchTensor('int64', [], BigInt64Array.from([12n])),
  };
  const sent = keepLocalParameters(db, 'plan:ds1', LOCAL, trained);
  expect(Object.keys(sent)).toEqual(['fc.weight']);

  const global = { 'fc.weight': f32([0.4, -0.9]) };
  const restored = restoreLocalParameters(new JsonDb(path.join(dir, 'db.json')), 'plan:ds1', LOCAL, global);
  expect(Object.keys(restored).sort()).toEqual(['bn.num_batches_tracked', 'bn.running_mean', 'fc.weight']);
  expect(restored['fc.weight']).toBe(global['fc.weight']);
  expect(Array.from(restored['bn.running_mean'].data as Float32Array)).toEqual(Array.from(trained['bn.running_mean'].data));
  expect(restored['bn.num_batches_tracked'].dtype).toBe('int64');
  expect(Array.from(restored['bn.num_batches_tracked'].data as BigInt64Array)).toEqual([12n]);

  // another dataset has no copy yet; round 0's weights (which have them) are used as sent
  expect(restoreLocalParameters(db, 'plan:ds2', LOCAL, global)).toBe(global);
  const round0 = { ...global, 'bn.running_mean': f32([0, 0]), 'bn.num_batches_tracked': trained['bn.num_batches_tracked'] };
  expect(restoreLocalParameters(db, 'plan:ds1', LOCAL, round0)).toBe(round0);

  // the next round's values replace the stored ones
  keepLocalParameters(db, 'plan:ds1', LOCAL, { ...trained, 'bn.running_mean': f32([7, 8]) });
  expect(Array.from(restoreLocalParameters(db, 'plan:ds1', LOCAL, global)['bn.running_mean'].data as Float32Array)).toEqual([7, 8]);
  expect(db.all('FedBN_Local_Parameters')).toHaveLength(1);
});
