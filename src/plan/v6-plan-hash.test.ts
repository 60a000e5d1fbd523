/**
 * Approval across a real Fed-BioMed v6.3.3 node and our components. A v6 node identifies a plan by the SHA-256 of
 * its python-minifier output (TrainingPlanSecurityManager._create_hash); fedbiomed-ts nodes by the plan's
 * canonical JSON hash, embedded in the file (PLAN_SHA256). Recorded by `tools/interop-v6/run.sh plan-hash` with the
 * real v6 code: the minified text and the hash a v6 node computes for our v6 plans (the CSV interop plan and the
 * demo's image plan).
 */
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';
import { generateTorchPlan } from './pytorch';
import { findEmbeddedPlan } from './embed';
import { planHash } from './canonical';
import linPlan from '../../tools/interop-v6/lin-plan';

const DIR = path.join(__dirname, '..', 'transport', 'v6', 'testing', 'vectors', 'plan-hash');
const recorded = new Map(fs.readFileSync(path.join(DIR, 'hashes.txt'), 'utf8').trim().split('\n')
  .map((line) => line.split(' ')).map(([name, , hash, algorithm]) => [name, { hash, algorithm }]));

// The demo's image plan (examples/ is not imported from src/): the spec embedded in the recorded file.
const glioPlan = findEmbeddedPlan(fs.readFileSync(path.join(DIR, 'glio_plan_v6.py'), 'utf8'))?.spec;
const plans = [['lin_plan_v6', linPlan], ['glio_plan_v6', glioPlan]] as const;

describe.each(plans)('%s', (name, spec) => {
  const minified = fs.readFileSync(path.join(DIR, `${name}.minified.txt`), 'utf8');

  test('what we send today is the recorded file (else re-record: its v6 hash changed, v6 nodes must re-approve)', () => {
    expect(spec).toBeDefined();
    expect(generateTorchPlan(spec as NonNullable<typeof spec>, { fedbiomed: 'v6' })).toBe(fs.readFileSync(path.join(DIR, `${name}.py`), 'utf8'));
  });

  test("the v6 node's hash is the SHA-256 of the minified text", () => {
    expect(recorded.get(name)?.algorithm).toBe('SHA256');
    expect(createHash('sha256').update(minified, 'utf8').digest('hex')).toBe(recorded.get(name)?.hash);
  });

  test('the minified file a v6 node hashes still names our plan: its embedded spec has our hash', () => {
    const embedded = findEmbeddedPlan(minified);
    expect(embedded).toBeDefined();
    expect(embedded?.hash).toBe(planHash(spec));
    expect(/PLAN_SHA256=['"]([0-9a-f]{64})['"]/.exec(minified)?.[1]).toBe(planHash(spec));
    if (name === 'glio_plan_v6') expect(embedded?.spec.inputs.image?.modalities).toEqual(['T1', 'T1ce', 'T2', 'FLAIR']);
  });
});
