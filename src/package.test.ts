/**
 * The package as a user meets it: `npm pack` of this repository, installed into a fresh project from the local npm
 * cache (offline), then used from a CommonJS script, an ESM script, TypeScript (node16 / nodenext / bundler
 * resolution against the shipped .d.ts) and the README's command tour run with the installed `fedbiomed-ts`.
 *
 * The fresh project installs with a lockfile made from this repository's own (its runtime entries, the tarball as
 * `fedbiomed-ts`): exact versions that the cache holds after `npm ci`, where a plain `npm install` would ask the
 * registry for the newest matching ones.
 */
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const MAX_TARBALL_BYTES = 2 * 1024 * 1024;
/** What the tarball may hold: the build, the schemas, the native kernel sources and build script, docs. */
const ALLOWED_IN_TARBALL = [
  /^package\.json$/, /^README\.md$/, /^LICENSE$/, /^bin\/fedbiomed-ts\.js$/, /^dist\//, /^schemas\//, /^docs\//,
  /^src\/engine\/native\/[a-z_]+\.[ch]$/, /^src\/engine\/native\/(build|compile)\.js$/,
  /^src\/data\/native\/[a-z0-9_-]+\.(c|cc|h)$/, /^src\/data\/native\/build\.js$/, // the decoding programs, built at install
  /^src\/data\/daikon\.d\.ts$/, // the types of daikon (it has none), referenced by dist/src/data/dicom-series.d.ts
];
// npm run on a loaded 2-core machine: pack builds with tsc, install unpacks TensorFlow.js.
jest.setTimeout(300_000);

const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_fund: 'false', npm_config_audit: 'false',
  npm_config_update_notifier: 'false', MQTT_BROKER: '', MQTT_BROKER_PORT: '', UPLOADS_URL: '', FEDBIOMED_TS_THREADS: '1' };
let work: string;
let project: string;
let tarball: string;
let tarballFiles: string[];

function npm(args: string[], cwd: string): string {
  const run = spawnSync('npm', args, { cwd, env, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${run.status}):\n${run.stdout}\n${run.stderr}`);
  return run.stdout;
}

/** package.json + package-lock.json of a fresh project depending on the tarball, pinned to our tested versions. */
function writeFreshProject(dir: string, tarballName: string): void {
  const ours = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const spec = `file:../${tarballName}`;
  // Our install script builds the native kernels; npm 11 runs a dependency's install script only when allowed.
  const root = { name: 'fresh-project', version: '1.0.0', private: true, dependencies: { 'fedbiomed-ts': spec },
    allowScripts: { 'fedbiomed-ts': true, 'onnxruntime-node': false, 'core-js': false } };
  const packages: Record<string, unknown> = { '': { name: root.name, version: root.version, dependencies: root.dependencies } };
  const own = lock.packages[''];
  packages['node_modules/fedbiomed-ts'] = { version: ours.version, resolved: spec, license: ours.license,
    dependencies: own.dependencies, peerDependencies: own.peerDependencies, peerDependenciesMeta: own.peerDependenciesMeta,
    bin: own.bin, engines: own.engines, hasInstallScript: true };
  for (const [key, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean; devOptional?: boolean }>)) {
    if (key !== '' && !entry.dev && !entry.devOptional) packages[key] = entry;
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(root, null, 2));
  fs.writeFileSync(path.join(dir, 'package-lock.json'),
    JSON.stringify({ name: root.name, version: root.version, lockfileVersion: 3, requires: true, packages }, null, 2));
}

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-package-'));
  const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', work], ROOT)) as
    Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = path.join(work, packed[0].filename);
  tarballFiles = packed[0].files.map((f) => f.path);
  project = path.join(work, 'project');
  fs.mkdirSync(project);
  writeFreshProject(project, packed[0].filename);
  npm(['ci', '--offline'], project);
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function bin(args: string[], options: { cwd?: string } = {}): ReturnType<typeof spawnSync> {
  return spawnSync(path.join(project, 'node_modules', '.bin', 'fedbiomed-ts'), args,
    { cwd: options.cwd ?? project, env, encoding: 'utf8' });
}

test('the tarball is under 2 MB and holds only the build, schemas, native sources and docs', () => {
  expect(fs.statSync(tarball).size).toBeLessThan(MAX_TARBALL_BYTES);
  expect(tarballFiles.filter((f) => !ALLOWED_IN_TARBALL.some((re) => re.test(f)))).toEqual([]);
  expect(tarballFiles.filter((f) => /\.test\.|\/testing\/|bench\/|examples\//.test(f))).toEqual([]);
  expect(tarballFiles).toContain('dist/src/index.d.ts');
  expect(tarballFiles).toContain('src/engine/native/conv.c');
  expect(tarballFiles).toContain('src/data/native/j2k-decode.c');
  expect(tarballFiles).toContain('src/data/native/jpeg-decode.cc');
  expect(tarballFiles).toContain('src/data/native/frame-server.h');
});

test('a CommonJS script uses the API from the root and every subpath', () => {
  const script = path.join(project, 'use.cjs');
  fs.writeFileSync(script, `
const fbts = require('fedbiomed-ts');
const { Experiment } = require('fedbiomed-ts/researcher');
const { defaultConfig } = require('fedbiomed-ts/node');
const { validatePlan } = require('fedbiomed-ts/plan');
const { parseBrokerUrl } = require('fedbiomed-ts/network');
const { parseCsv } = require('fedbiomed-ts/data');
const plan = fbts.definePlan({ name: 'Cjs', inputs: { tabular: { columns: ['x'] } }, target: { column: 'y' },
  model: { tabular: [{ type: 'dense', outFeatures: 2 }], head: [{ type: 'dense', outFeatures: 1 }] }, loss: { type: 'mse' }, optimizer: { type: 'sgd', lr: 0.1 } });
const file = require('path').join(__dirname, 'w.mpk');
fbts.writeParamsFile(file, { model_weights: fbts.initialWeights(plan, 1) });
const back = fbts.modelWeightsOf(fbts.readParamsFile(file));
console.log(JSON.stringify({ hash: fbts.planHash(validatePlan(plan).spec), keys: Object.keys(back),
  experiment: Experiment === fbts.Experiment, node: defaultConfig().approval, port: parseBrokerUrl('mqtt://h:1884').port,
  rows: parseCsv('x,y\\n1,2\\n', 'inline.csv').rows.length,
  errors: [new fbts.DatasetError('d'), new fbts.PlanLoadError('p'), new (require('fedbiomed-ts/node').ConfigError)('c')]
    .map((e) => [e.name, e instanceof fbts.FedbiomedTsError]) }));
`);
  const out = JSON.parse(execFileSync(process.execPath, [script], { cwd: project, env, encoding: 'utf8' }));
  expect(out.hash).toMatch(/^[0-9a-f]{64}$/);
  expect(out.keys.sort()).toEqual(['head.0.bias', 'head.0.weight', 'tabular.0.bias', 'tabular.0.weight']);
  expect(out).toMatchObject({ experiment: true, node: true, port: '1884', rows: 1 });
  // Error names come from the class (src/errors.ts): they must survive the build; an error from a subpath is an
  // instance of the root's base too.
  expect(out.errors).toEqual([['DatasetError', true], ['PlanLoadError', true], ['ConfigError', true]]);
});

test('an ESM script imports named exports from the root and every subpath', () => {
  const script = path.join(project, 'use.mjs');
  fs.writeFileSync(script, `
import { definePlan, planHash, Experiment, NodeAgent, startEmbeddedNetwork } from 'fedbiomed-ts';
import { Researcher } from 'fedbiomed-ts/researcher';
import { NodeAgent as Agent } from 'fedbiomed-ts/node';
import { generateTorchPlan } from 'fedbiomed-ts/plan';
import { startBroker } from 'fedbiomed-ts/network';
import { readCsv } from 'fedbiomed-ts/data';
const net = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0 });
await net.close();
const plan = definePlan({ name: 'Esm', inputs: { tabular: { columns: ['x'] } }, target: { column: 'y' },
  model: { tabular: [{ type: 'dense', outFeatures: 2 }], head: [{ type: 'dense', outFeatures: 1 }] }, loss: { type: 'mse' }, optimizer: { type: 'sgd', lr: 0.1 } });
console.log(JSON.stringify({ hash: planHash(plan), same: Agent === NodeAgent, url: net.mqttUrl,
  kinds: [Experiment, Researcher, generateTorchPlan, startBroker, readCsv].map((f) => typeof f) }));
`);
  const out = JSON.parse(execFileSync(process.execPath, [script], { cwd: project, env, encoding: 'utf8' }));
  expect(out.hash).toMatch(/^[0-9a-f]{64}$/);
  expect(out.same).toBe(true);
  expect(out.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
  expect(out.kinds).toEqual(['function', 'function', 'function', 'function', 'function']);
});

test('TypeScript type-checks against the shipped .d.ts with node16, nodenext and bundler resolution', () => {
  fs.writeFileSync(path.join(project, 'check.mts'), `
import { definePlan, Experiment, type ExperimentOptions, type PlanSpec } from 'fedbiomed-ts';
import { NodeAgent, type NodeConfig } from 'fedbiomed-ts/node';
import { startEmbeddedNetwork } from 'fedbiomed-ts/network';
const plan: PlanSpec = definePlan({ name: 'Typed', inputs: { tabular: { columns: ['x'] } }, target: { column: 'y' },
  model: { tabular: [{ type: 'dense', outFeatures: 2 }], head: [{ type: 'dense', outFeatures: 1 }] }, loss: { type: 'mse' }, optimizer: { type: 'sgd', lr: 0.1 } });
const network = { brokerUrl: 'mqtt://127.0.0.1:1883', uploadsUrl: 'http://127.0.0.1:8844/upload/' };
const options: ExperimentOptions = { tags: ['t'], plan, roundLimit: 1, trainingArgs: { num_updates: 1 }, network };
export async function main(): Promise<void> {
  const net = await startEmbeddedNetwork({ mqttPort: 0 });
  const config: Pick<NodeConfig, 'nodeId'> = { nodeId: 'n' };
  void [new Experiment({ ...options, network: { brokerUrl: net.mqttUrl, uploadsUrl: net.uploadsUrl } }), NodeAgent, config];
  // @ts-expect-error roundLimit is a number: the declarations carry real types, not any
  const wrong: ExperimentOptions = { ...options, roundLimit: 'three' };
  void wrong;
}
`);
  const typeRoots = path.join(ROOT, 'node_modules', '@types');
  // Every declaration file is checked once (nodenext, skipLibCheck off); the other two check the resolution.
  for (const [module, resolution, skipLibCheck] of [['nodenext', 'nodenext', 'false'], ['node16', 'node16', 'true'], ['esnext', 'bundler', 'true']]) {
    const check = spawnSync(process.execPath, [TSC, '--noEmit', '--strict', '--skipLibCheck', skipLibCheck, '--target', 'es2022',
      '--module', module, '--moduleResolution', resolution, '--typeRoots', typeRoots, '--types', 'node', 'check.mts'],
    { cwd: project, encoding: 'utf8' });
    // Our declarations are checked too (skipLibCheck off); other packages' own .d.ts problems are theirs
    // (tfjs-core names a `Long` type it does not declare).
    const ours = check.stdout.split('\n').filter((line) => /^(check\.mts|node_modules\/fedbiomed-ts\/)/.test(line));
    expect({ resolution, ours, status: check.status }).toEqual({ resolution, ours: [], status: ours.length > 0 ? 2 : check.status });
    expect(check.stdout).not.toMatch(/Cannot find module 'fedbiomed-ts/);
  }
});

test('the installed command starts fast, without loading TensorFlow.js, and refuses a bad plan in one line', () => {
  const probe = path.join(project, 'probe.cjs');
  fs.writeFileSync(probe, `process.on('exit', () => process.stderr.write('TFJS_LOADED=' +
    Object.keys(require.cache).some((k) => k.includes('@tensorflow')) + '\\n'));`);
  const started = process.hrtime.bigint();
  const help = spawnSync(process.execPath, ['-r', probe, path.join(project, 'node_modules', 'fedbiomed-ts', 'bin', 'fedbiomed-ts.js'), '--help'],
    { cwd: project, env, encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/Usage: fedbiomed-ts/);
  expect(help.stdout).toMatch(/researcher/);
  expect(help.stderr).toContain('TFJS_LOADED=false');
  process.stdout.write(`fedbiomed-ts --help from the installed package: ${seconds.toFixed(2)} s\n`);

  fs.writeFileSync(path.join(project, 'broken.ts'), "import { definePlan } from 'fedbiomed-ts';\nexport default definePlan({ name:\n");
  const bad = bin(['plan', 'hash', 'broken.ts']);
  expect(bad.status).toBe(2);
  expect(String(bad.stderr).trim().split('\n')).toEqual([expect.stringMatching(/broken\.ts: cannot load the module: .*line 3/)]);
});

interface Running {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  exited: Promise<number | null>;
}

function start(args: string[]): Running {
  const child = spawn(process.execPath, [path.join(project, 'node_modules', 'fedbiomed-ts', 'bin', 'fedbiomed-ts.js'), ...args],
    { cwd: project, env });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => text, exited };
}

async function waitFor(running: Running, pattern: RegExp, what: string, timeoutMs = 60_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = running.output().match(pattern);
    if (match) return match;
    if (Date.now() > deadline || running.child.exitCode !== null) {
      throw new Error(`no ${what}; output so far:\n${running.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function csv(rows: number, seed: number): string {
  const lines = ['x1,x2,y'];
  for (let i = 0; i < rows; i++) {
    const x1 = ((i * 37 + seed * 11) % 100) / 50 - 1;
    const x2 = ((i * 53 + seed * 7) % 100) / 50 - 1;
    lines.push(`${x1.toFixed(3)},${x2.toFixed(3)},${x1 + x2 > 0 ? 1 : 0}`);
  }
  return `${lines.join('\n')}\n`;
}

test("the README tour runs from the user's project: network, two nodes, researcher run with a plan.ts", async () => {
  const running: Running[] = [];
  try {
    const network = start(['network', 'start', '--mqtt-port', '0', '--http-port', '0', '--data', 'net']);
    running.push(network);
    await waitFor(network, /running; stop with Ctrl\+C/, 'network ready');
    const broker = network.output().match(/MQTT broker\s+(mqtt:\/\/127\.0\.0\.1:\d+)/)![1];
    const uploads = network.output().match(/upload URL\s+(http:\/\/127\.0\.0\.1:\d+\/upload\/)/)![1];

    for (const [id, seed] of [['node_a', 1], ['node_b', 2]] as const) {
      fs.writeFileSync(path.join(project, `${id}.csv`), csv(60, seed));
      for (const args of [
        ['node', 'init', '--dir', id, '--id', id, '--broker', broker, '--uploads-url', uploads, '--approval', 'off'],
        ['node', 'dataset', 'add', '--dir', id, '--type', 'csv', '--path', `${id}.csv`, '--tags', 'csv,tour', '--name', id],
      ]) {
        const step = bin(args);
        expect({ args, status: step.status, stderr: step.stderr }).toEqual({ args, status: 0, stderr: '' });
      }
      const node = start(['node', 'start', '--dir', id]);
      running.push(node);
      await waitFor(node, new RegExp(`Node ${id} ready`), `${id} ready`);
      // The install script built the native kernels in the installed package, and the node uses them: its training
      // worker logs its engine line once the engine is up (after "ready": the node serves meanwhile).
      await waitFor(node, /native kernels \(AVX2\+FMA[,)]|native kernels need AVX2/, `${id} engine line`);
    }

    // One node per folder: a second start on node_a refuses, naming the running one.
    const second = bin(['node', 'start', '--dir', 'node_a']);
    expect(second.status).not.toBe(0);
    expect(String(second.stderr)).toMatch(/node_a is already in use by a running node \(pid \d+/);
    const status = JSON.parse(String(bin(['node', 'status', '--dir', 'node_b', '--json']).stdout));
    expect(status).toMatchObject({ running: true, nodeId: 'node_b', runtime: { broker: { connected: true } },
      datasets: [{ name: 'node_b', type: 'csv' }] });

    fs.writeFileSync(path.join(project, 'plan.ts'), `
import { definePlan } from 'fedbiomed-ts';
export default definePlan({
  name: 'TourMlp',
  inputs: { tabular: { columns: ['x1', 'x2'] } },
  target: { column: 'y' },
  model: { tabular: [{ type: 'dense', outFeatures: 8 }, { type: 'relu' }], head: [{ type: 'dense', outFeatures: 2 }] },
  loss: { type: 'cross_entropy' },
  optimizer: { type: 'sgd', lr: 0.1 },
  metrics: ['accuracy'],
});
`);
    fs.writeFileSync(path.join(project, 'experiment.yaml'), [
      'name: tour', 'tags: [csv, tour]', 'plan: plan.ts', 'trainingArgs:', '  loader_args: { batch_size: 8 }',
      '  optimizer_args: { lr: 0.1 }', '  num_updates: 10', '  test_ratio: 0.25', '  test_on_global_updates: true',
      'roundLimit: 3', '',
    ].join('\n'));
    const researcher = start(['researcher', 'run', 'experiment.yaml', '--broker', broker, '--uploads', uploads]);
    running.push(researcher);
    expect(await researcher.exited).toBe(0);
    const out = researcher.output();
    for (const round of [0, 1, 2]) expect(out).toMatch(new RegExp(`Round ${round}: 2/2 nodes ok, \\d+ ms, aggregated in \\d+ ms`));
    expect(out).toMatch(/node_a\s+ok\s+45\s/);
    expect(out).toMatch(/node_b\s+ok\s+45\s/);
    expect(out).toContain('Experiment finished after 3 round(s)');
  } finally {
    for (const r of running.reverse()) {
      if (r.child.exitCode === null) r.child.kill('SIGTERM');
      await r.exited;
    }
  }
});

test('stopping `npx fedbiomed-ts network start` (SIGTERM to npx, Ctrl-C in its terminal) leaves no process on its ports', async () => {
  const net = await import('net');
  const portFree = (port: number) => new Promise<boolean>((resolve) => {
    const server = net.createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  // SIGTERM goes to npx alone, as `kill` or a service manager sends it; Ctrl-C in a terminal sends SIGINT to the
  // whole foreground process group (npx, the shell npm starts, the command), reproduced with a group of its own.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const child = spawn('npx', ['--offline', '--no-install', 'fedbiomed-ts', 'network', 'start', '--mqtt-port', '0', '--http-port', '0'],
      { cwd: project, env, detached: true });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const running: Running = { child, output: () => text, exited };
    try {
      await waitFor(running, /running; stop with Ctrl\+C/, 'network ready');
      const mqttPort = Number(text.match(/MQTT broker\s+mqtt:\/\/127\.0\.0\.1:(\d+)/)![1]);
      const httpPort = Number(text.match(/upload URL\s+http:\/\/127\.0\.0\.1:(\d+)\//)![1]);
      expect([await portFree(mqttPort), await portFree(httpPort)]).toEqual([false, false]);
      if (signal === 'SIGINT') process.kill(-child.pid!, 'SIGINT');
      else child.kill('SIGTERM');
      await exited;
      const deadline = Date.now() + 10_000;
      while (!(await portFree(mqttPort) && await portFree(httpPort)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect({ signal, mqtt: await portFree(mqttPort), http: await portFree(httpPort) }).toEqual({ signal, mqtt: true, http: true });
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL'); // whatever is left of the group, after a failure
      } catch {
        // the group is gone: nothing left
      }
    }
  }
}, 120_000);
