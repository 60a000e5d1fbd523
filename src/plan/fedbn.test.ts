/**
 * FedBN: which parameters stay local, and the generated PyTorch plan honouring it on a (stand-in) Python node over
 * two rounds: the local parameters are not sent, and the next round's model gets the node's own values back.
 * The TS node's side: node-agent/fedbn-store.test.ts.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SeededRandom } from '../engine/prng';
import { localParameterNamesOf } from './fedbn';
import { initialWeights } from './init';
import { generateTorchPlan } from './pytorch';
import { PlanSpec } from './spec';
import { cnnTabularPlan, mlpPlan, normsGraphPlan } from './testing/plans';
import { findTorchPython, pythonSide, runTorchConformance } from './testing/python';
import { checkPlan, validatePlan } from './validate';

const withFedbn = (spec: PlanSpec, fedbn: 'statistics' | 'all'): PlanSpec => ({ ...spec, fedbn });
const names = (spec: PlanSpec) => localParameterNamesOf(spec, validatePlan(spec).graph);

test('statistics keeps the batch-norm buffers local; all also the norms’ affine parameters', () => {
  expect(names(withFedbn(cnnTabularPlan(), 'statistics'))).toEqual([
    'image.3.running_mean', 'image.3.running_var', 'image.3.num_batches_tracked',
    'tabular.1.running_mean', 'tabular.1.running_var', 'tabular.1.num_batches_tracked',
  ]);
  expect(names(withFedbn(cnnTabularPlan(), 'all'))).toHaveLength(10);
  expect(names(withFedbn(normsGraphPlan(), 'all'))).toEqual(['enc_1.weight', 'enc_1.bias', 'enc_5.weight', 'enc_5.bias', 'head_0.weight', 'head_0.bias']);
  expect(names(cnnTabularPlan())).toEqual([]);
  expect(checkPlan(withFedbn(mlpPlan(), 'statistics')).issues).toEqual([{ path: 'fedbn', message: 'the model has no batch_norm layer: nothing would stay local' }]);
  expect(checkPlan(withFedbn(normsGraphPlan(), 'statistics')).issues[0].path).toBe('fedbn');
});

interface FedbnResult {
  error?: string;
  sent_keys: string[];
  restored_equal: boolean;
  local_moved: boolean;
  other_differs: boolean;
}

test('the generated PyTorch plan keeps them on the node across rounds (Fed-BioMed postprocess / set_model_params)', () => {
  const spec = withFedbn(cnnTabularPlan(), 'all');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-fedbn-'));
  const previousVar = process.env.FBTS_TEST_VAR_DIR;
  process.env.FBTS_TEST_VAR_DIR = path.join(work, 'var');
  try {
    const planDir = path.join(work, 'plans');
    fs.mkdirSync(planDir);
    fs.writeFileSync(path.join(planDir, 'fedbn_plan.py'), generateTorchPlan(spec));
    const raw = (name: string, data: Float32Array | BigInt64Array, shape: number[]) => {
      const file = path.join(work, `${name}.bin`);
      fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      return { file, dtype: data instanceof BigInt64Array ? 'int64' : 'float32', shape };
    };
    const weights = Object.entries(initialWeights(spec, 3)).map(([name, t], i) => ({ name, ...raw(`w${i}`, t.data as Float32Array | BigInt64Array, t.shape) }));
    const rng = new SeededRandom(1);
    const n = 4;
    const batch = {
      image: raw('image', Float32Array.from({ length: n * 6 * 8 * 8 }, () => rng.next() * 2 - 1), [n, 6, 8, 8]),
      tabular: raw('tabular', Float32Array.from({ length: n * 3 }, () => rng.next()), [n, 3]),
      target: raw('target', Float32Array.from([1, 0, 1, 0]), [n]),
      modalities: ['T1ce', 'FLAIR'],
      slices: 3,
    };
    const local = names(spec);
    const manifest = {
      plan_dir: planDir,
      cases: [],
      fedbn_cases: [{ name: 'fedbn', module: 'fedbn_plan', class_name: spec.name, weights, batch, local, path_a: path.join(work, 'site-a'), path_b: path.join(work, 'site-b') }],
    };
    const r = pythonSide(runTorchConformance<{ fedbn_cases: Record<string, FedbnResult> }>(findTorchPython(), manifest, work).fedbn_cases, 'fedbn');
    expect(r.sent_keys.filter((k) => local.includes(k))).toEqual([]);
    expect(r.sent_keys.length).toBe(Object.keys(initialWeights(spec, 3)).length - local.length);
    expect([r.local_moved, r.restored_equal, r.other_differs]).toEqual([true, true, true]);
  } finally {
    if (previousVar === undefined) delete process.env.FBTS_TEST_VAR_DIR;
    else process.env.FBTS_TEST_VAR_DIR = previousVar;
    fs.rmSync(work, { recursive: true, force: true });
  }
}, 120000);
