/** `fedbiomed-ts plan …` end to end on real files (the command module registered on its own program). */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { decodeParams, TorchTensor } from '../serialize';
import { planHash } from '../plan/canonical';
import { extractPlanFromTorchSource } from '../plan/embed';
import { register } from './plan';

let dir: string;
let stdout: string[];

async function run(...args: string[]): Promise<void> {
  const program = new Command();
  program.exitOverride();
  register(program);
  await program.parseAsync(['node', 'fedbiomed-ts', ...args]);
}

const PLAN_MODULE = (definePlanPath: string, exportName: string): string => `
import { definePlan } from ${JSON.stringify(definePlanPath)};
export ${exportName} definePlan({
  name: 'CliPlan',
  inputs: { tabular: { columns: ['a', 'b'] } },
  target: { column: 'y' },
  model: { tabular: [{ type: 'dense', outFeatures: 3 }, { type: 'relu' }], head: [{ type: 'dense', outFeatures: 1 }] },
  loss: { type: 'mse' },
  optimizer: { type: 'sgd', lr: 0.1 },
});
`;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-plan-cli-'));
  stdout = [];
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout.push(String(chunk));
    return true;
  });
});

afterEach(() => {
  jest.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('build, export, hash and weights agree on one plan identity', async () => {
  const definePath = path.join(__dirname, '..', 'plan', 'define');
  const module = path.join(dir, 'plan.ts');
  fs.writeFileSync(module, PLAN_MODULE(definePath, 'default'));
  const json = path.join(dir, 'plan.json');
  await run('plan', 'build', module, '--out', json);
  const spec = JSON.parse(fs.readFileSync(json, 'utf8'));
  expect(spec.name).toBe('CliPlan');
  const hash = planHash(spec);
  expect(stdout.join('')).toContain(`plan CliPlan sha256 ${hash}`);

  const py = path.join(dir, 'plan.py');
  await run('plan', 'export', json, '--python', py, '--class-name', 'MyPlan');
  const source = fs.readFileSync(py, 'utf8');
  expect(source).toContain('class MyPlan(TorchTrainingPlan):');
  expect(extractPlanFromTorchSource(source)).toEqual(spec);

  stdout = [];
  await run('plan', 'hash', py);
  await run('plan', 'hash', module);
  await run('plan', 'hash', json);
  expect(stdout).toEqual([`${hash}\n`, `${hash}\n`, `${hash}\n`]);

  const mpk = path.join(dir, 'w.mpk');
  await run('plan', 'weights', module, '--out', mpk, '--seed', '4');
  const decoded = decodeParams(fs.readFileSync(mpk)) as { model_weights: Record<string, TorchTensor> };
  expect(Object.keys(decoded.model_weights)).toEqual(['tabular.0.weight', 'tabular.0.bias', 'head.0.weight', 'head.0.bias']);
  expect(decoded.model_weights['tabular.0.weight'].shape).toEqual([3, 2]);
});

test("a module's `plan` export is used when there is no default export", async () => {
  const module = path.join(dir, 'named.ts');
  fs.writeFileSync(module, PLAN_MODULE(path.join(__dirname, '..', 'plan', 'define'), 'const plan ='));
  await run('plan', 'build', module);
  expect(JSON.parse(stdout.join('')).name).toBe('CliPlan');
});

test('bad plans and bad files give errors naming the field or the file', async () => {
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ format: 'fedbiomed-ts/plan', version: 1 }));
  await expect(run('plan', 'hash', bad)).rejects.toThrow(/name: is required/);
  const broken = path.join(dir, 'broken.json');
  fs.writeFileSync(broken, '{');
  await expect(run('plan', 'hash', broken)).rejects.toThrow(/broken\.json: not valid JSON/);
  const plainPython = path.join(dir, 'other.py');
  fs.writeFileSync(plainPython, 'class X:\n    pass\n');
  await expect(run('plan', 'hash', plainPython)).rejects.toThrow(/no embedded fedbiomed-ts plan/);
  await expect(run('plan', 'hash', path.join(dir, 'missing.ts'))).rejects.toThrow(/no such file/);
  const noExport = path.join(dir, 'empty.ts');
  fs.writeFileSync(noExport, 'export const other = 1;\n');
  await expect(run('plan', 'build', noExport)).rejects.toThrow(/neither a default export nor a 'plan' export/);
});

test("a plan importing definePlan from 'fedbiomed-ts' loads where no project provides the package", async () => {
  const module = path.join(dir, 'plan.ts');
  fs.writeFileSync(module, PLAN_MODULE('fedbiomed-ts', 'default'));
  await run('plan', 'build', module);
  expect(JSON.parse(stdout.join('')).name).toBe('CliPlan');
});

test('a plan module that cannot load names the file and the cause on one line', async () => {
  const syntax = path.join(dir, 'syntax.ts');
  fs.writeFileSync(syntax, 'export default definePlan({ name: \n');
  await expect(run('plan', 'build', syntax)).rejects.toThrow(/^[^\n]*syntax\.ts: cannot load the module: [^\n]+$/);
  const missingImport = path.join(dir, 'missing-import.ts');
  fs.writeFileSync(missingImport, "import { x } from 'no-such-package-fbts';\nexport default x;\n");
  await expect(run('plan', 'build', missingImport)).rejects.toThrow(
    /^[^\n]*missing-import\.ts: cannot load the module: [^\n]*no-such-package-fbts[^\n]*$/,
  );
});

test('the command exits with code 2 and one line for a plan that exports no plan; --verbose adds the stack', () => {
  const { spawnSync } = require('child_process') as typeof import('child_process');
  const bin = path.join(__dirname, '..', '..', 'bin', 'fedbiomed-ts.js');
  const noPlan = path.join(dir, 'no-plan.ts');
  fs.writeFileSync(noPlan, 'export default { hello: 1 };\n');
  const quiet = spawnSync(process.execPath, [bin, 'plan', 'hash', noPlan], { encoding: 'utf8' });
  expect(quiet.status).toBe(2);
  expect(quiet.stderr.trim().split('\n')).toEqual([expect.stringMatching(/no-plan\.ts: invalid training plan: /)]);
  const verbose = spawnSync(process.execPath, [bin, 'plan', 'hash', noPlan, '--verbose'], { encoding: 'utf8' });
  expect(verbose.status).toBe(2);
  expect(verbose.stderr).toMatch(/\n\s+at /);
});
