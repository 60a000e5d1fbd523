/**
 * The `researcher` commands, run in-process on a real embedded broker and repository with simulated nodes
 * (experiments, discovery) and a real TS node agent with approval on (approve, status).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startEmbeddedNetwork, EmbeddedNetwork } from '../src/transport/embedded';
import { EXIT } from './cli';
import { runResearcherCli } from './testing/run-cli';
import { SimNode, startSimNode, affineTrain } from './testing/sim-node';
import { encodeAggregatedParams, decodeNodeParams } from './weights-file';
import { readHistory } from './monitoring/history';
import { loadExperimentFile } from './config';
import { defaultConfig, writeConfig } from '../node-agent/config';
import { NodeAgent } from '../node-agent/agent';
import { mlpPlan } from '../src/plan/testing/plans';
import { shippedPlan } from './plan-source';

let network: EmbeddedNetwork;
let nodes: SimNode[] = [];
let dir: string;

beforeAll(async () => {
  network = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-cli-'));
  for (const [nodeId, size] of [['node_x', 10], ['node_y', 30]] as const) {
    nodes.push(await startSimNode(network.mqttUrl, network.uploadsUrl, { nodeId, sampleSize: size, tags: ['sim', 'cli'], train: affineTrain(size / 100) }));
  }
});
afterAll(async () => {
  for (const n of nodes) await n.close();
  nodes = [];
  await network.close();
});

const cli = runResearcherCli;

const net = () => ['--broker', network.mqttUrl, '--uploads', network.uploadsUrl];

describe('fedbiomed-ts researcher', () => {
  it('ping, list and search print what the nodes answered', async () => {
    const ping = await cli('ping', ...net(), '--nodes', 'node_x,node_y', '--timeout', '5000');
    expect(ping.code).toBe(EXIT.ok);
    expect(ping.out).toMatch(/node_x\s+\d+/);
    expect(ping.out).toMatch(/node_y\s+\d+/);

    const search = await cli('search', ...net(), '--tags', 'sim,cli', '--timeout', '500', '--json');
    expect(search.code).toBe(EXIT.ok);
    const found = JSON.parse(search.out) as Record<string, Array<{ dataset_id: string }>>;
    expect(Object.keys(found).sort()).toEqual(['node_x', 'node_y']);
    expect(found.node_x[0].dataset_id).toBe('dataset_node_x');

    const none = await cli('search', ...net(), '--tags', 'nothing', '--timeout', '200');
    expect(none.out).toContain('no dataset found');

    const missing = await cli('ping', ...net(), '--nodes', 'node_x,node_gone', '--timeout', '300');
    expect(missing.code).toBe(EXIT.missing);
    expect(missing.err).toContain('no answer from node_gone');
  });

  it('run EXPERIMENT.yaml trains, writes the history and the final weights, resumes from a breakpoint', async () => {
    const initial = new Map([['fc.weight', { dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }]]);
    fs.writeFileSync(path.join(dir, 'init.mpk'), Buffer.concat(encodeAggregatedParams('r', initial)));
    fs.writeFileSync(path.join(dir, 'plan.py'), 'import torch\nclass CliPlan:\n    pass\n');
    const yaml = `
name: cli test
tags: [sim, cli]
plan: { python: plan.py, className: CliPlan, initialWeights: init.mpk }
trainingArgs:
  loader_args: { batch_size: 4 }
  epochs: 1
roundLimit: 2
timeouts: { roundMs: 10000, discoveryMs: 500 }
output: { history: out/history.jsonl, weights: out/final.mpk, breakpoints: out/bp }
`;
    fs.writeFileSync(path.join(dir, 'exp.yaml'), yaml);
    const run = await cli('run', path.join(dir, 'exp.yaml'), ...net(), '--json');
    expect(run.err).toContain('Round 1: 2/2 nodes ok');
    expect(run.code).toBe(EXIT.ok);
    const summary = JSON.parse(run.out) as { roundsCompleted: number };
    expect(summary.roundsCompleted).toBe(2);
    const final = decodeNodeParams(fs.readFileSync(path.join(dir, 'out', 'final.mpk')), 'final');
    // two rounds of w' = 0.9w + size/100 (+ i·1e-4), weighted 10:30, computed here independently
    let w = [1, 2, 3, 4];
    for (const round of [0, 1]) {
      w = w.map((v, i) => {
        const t = (s: number) => Math.fround(Math.fround(v * 0.9) + s / 100 + round * 0.001 + i * 1e-4);
        return (10 * t(10) + 30 * t(30)) / 40;
      });
    }
    Array.from(final.get('fc.weight')!.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(w[i], 5));
    expect(readHistory(path.join(dir, 'out', 'history.jsonl')).filter((e) => e.type === 'round-end')).toHaveLength(2);

    // The breakpoint saved after the last round: resuming it finds nothing left to run and succeeds.
    const resumed = await cli('run', path.join(dir, 'exp.yaml'), ...net(), '--resume', path.join(dir, 'out', 'bp'), '--no-progress');
    expect(resumed.code).toBe(EXIT.ok);
  });

  it('bad experiment files and unreachable brokers give clear errors and distinct exit codes', async () => {
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'tags: [a]\nplan: x.json\ntrainingArgs: { loader_args: { batch_size: 2 }, epoch: 1 }\nroundLimit: 1\n');
    const bad = await cli('run', path.join(dir, 'bad.yaml'), ...net());
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.err).toContain('/trainingArgs: unknown key "epoch"');

    fs.writeFileSync(path.join(dir, 'broken.yaml'), 'tags: [a\n');
    const broken = await cli('run', path.join(dir, 'broken.yaml'));
    expect(broken.code).toBe(EXIT.usage);
    expect(broken.err).toMatch(/broken\.yaml: not valid YAML/);

    const nofile = await cli('run', path.join(dir, 'absent.yaml'));
    expect(nofile.code).toBe(EXIT.usage);
    expect(nofile.err).toContain('absent.yaml: no such file');

    const down = await cli('ping', '--broker', 'mqtt://127.0.0.1:1', '--uploads', network.uploadsUrl, '--timeout', '100');
    expect(down.code).toBe(EXIT.network);
    expect(down.err).toContain('cannot connect to the broker at mqtt://127.0.0.1:1');

    const badUrl = await cli('ping', '--broker', 'http://x');
    expect(badUrl.code).toBe(EXIT.usage);

    // The password of a broker URL is never printed; --json prints the failure as JSON.
    const secret = await cli('run', path.join(dir, 'absent.yaml'), '--json', '--broker', 'mqtt://fbuser:S3cret-pw@127.0.0.1:1');
    expect(JSON.parse(secret.out)).toEqual({ error: expect.stringContaining('absent.yaml: no such file'), exitCode: EXIT.usage });
    const downSecret = await cli('ping', '--broker', 'mqtt://fbuser:S3cret-pw@127.0.0.1:1', '--uploads', network.uploadsUrl, '--timeout', '100');
    expect(downSecret.err).toContain('cannot connect to the broker at mqtt://127.0.0.1:1');
    expect(downSecret.err + downSecret.out).not.toContain('S3cret-pw');
  });

  it('experiment files: relative paths resolve against the file, plan files load through src/plan', () => {
    const planFile = path.join(dir, 'mlp.json');
    const { mlpPlan } = jest.requireActual<typeof import('../src/plan/testing/plans')>('../src/plan/testing/plans');
    fs.writeFileSync(planFile, JSON.stringify(mlpPlan()));
    fs.writeFileSync(path.join(dir, 'spec.yaml'), 'tags: [t]\nplan: mlp.json\ntrainingArgs: { loader_args: { batch_size: 2 }, num_updates: 3 }\nroundLimit: 1\naggregator: { name: fedyogi, lr: 0.01 }\nstrategy: { name: at-least, k: 1 }\noutput: { tensorboard: tb }\n');
    const loaded = loadExperimentFile(path.join(dir, 'spec.yaml'));
    expect(loaded.options.plan).toMatchObject({ format: 'fedbiomed-ts/plan', name: 'TinyMlp' });
    expect(loaded.options.tensorboard).toBe(path.join(dir, 'tb'));
    expect(loaded.options.aggregator).toEqual({ name: 'fedyogi', lr: 0.01 });
    fs.writeFileSync(path.join(dir, 'spec2.yaml'), 'tags: [t]\nplan: missing.json\ntrainingArgs: { loader_args: { batch_size: 2 } }\nroundLimit: 1\n');
    expect(() => loadExperimentFile(path.join(dir, 'spec2.yaml'))).toThrow(/spec2\.yaml: plan: .*missing\.json: no such file/);
  });
});

describe('fedbiomed-ts researcher approve / status against a TS node agent (approval on)', () => {
  let agent: NodeAgent;
  let planJson: string;

  beforeAll(async () => {
    const nodeDir = path.join(dir, 'node_ts');
    writeConfig(nodeDir, defaultConfig({ nodeId: 'node_ts', broker: network.mqttUrl, uploadsUrl: network.uploadsUrl, approval: true }));
    agent = await NodeAgent.start({ dir: nodeDir, env: {}, localLog: () => undefined });
    planJson = path.join(dir, 'approve-plan.json');
    fs.writeFileSync(planJson, JSON.stringify(mlpPlan()));
  });
  afterAll(async () => {
    await agent?.stop();
  });

  it('approve stores the plan as Pending; once approved on the node, status shows Approved', async () => {
    const approve = await cli('approve', planJson, ...net(), '--nodes', 'node_ts', '--description', 'cli approve test', '--timeout', '10000');
    expect(approve.err).toBe('');
    expect(approve.code).toBe(EXIT.ok);
    expect(approve.out).toMatch(/node_ts\s+200\s+true/);
    const stored = agent.stores.plans.list();
    expect(stored).toHaveLength(1);
    expect(stored[0].training_plan_status).toBe('Pending');
    expect(stored[0].description).toBe('cli approve test');

    const pending = await cli('status', planJson, ...net(), '--nodes', 'node_ts', '--timeout', '10000', '--json');
    expect(pending.code).toBe(EXIT.ok);
    const byNode = JSON.parse(pending.out) as Record<string, { status: string; approval_obligation: boolean; can_train: boolean; msg: string }>;
    expect(byNode.node_ts).toMatchObject({ status: 'Pending', approval_obligation: true, can_train: false });
    expect(typeof byNode.node_ts.msg).toBe('string');

    agent.stores.plans.setStatus(stored[0].training_plan_id, 'Approved');
    // The generated .py of the same plan is the same bytes the JSON spec ships: the node finds the same hash.
    const planPy = path.join(dir, 'approve-plan.py');
    fs.writeFileSync(planPy, shippedPlan(mlpPlan()).source);
    const approved = await cli('status', planPy, ...net(), '--nodes', 'node_ts', '--timeout', '10000');
    expect(approved.code).toBe(EXIT.ok);
    expect(approved.out).toMatch(/^node\s+status\s+approval_obligation\s+can train\s+msg/m);
    expect(approved.out).toMatch(/node_ts\s+Approved\s+true\s+yes/);
    expect(agent.stores.plans.list()).toHaveLength(1);

    // Without --nodes, status asks whoever answers a ping: the simulated nodes answer pings but not status.
    const everyone = await cli('status', planJson, ...net(), '--timeout', '700');
    expect(everyone.out).toMatch(/node_ts\s+Approved/);
    expect(everyone.code).toBe(EXIT.missing);
    expect(everyone.err).toMatch(/no answer from (node_x, node_y|node_y, node_x)/);
  });

  it('a hand-written Python plan is sent as is; a TS node refuses it (it cannot read it): exit code 1', async () => {
    const handWritten = 'import torch\nfrom fedbiomed.common.training_plans import TorchTrainingPlan\n\nclass HandPlan(TorchTrainingPlan):\n    pass\n';
    fs.writeFileSync(path.join(dir, 'hand.py'), handWritten);
    const hand = await cli('approve', path.join(dir, 'hand.py'), ...net(), '--nodes', 'node_ts', '--class-name', 'HandPlan', '--timeout', '10000');
    expect(hand.code).toBe(EXIT.failed);
    expect(hand.out).toMatch(/node_ts\s+200\s+false/);
    expect(hand.err).toContain('the plan was not stored by node_ts');

    const wrongClass = await cli('approve', path.join(dir, 'hand.py'), ...net(), '--class-name', 'OtherPlan');
    expect(wrongClass.code).toBe(EXIT.usage);
    expect(wrongClass.err).toContain('hand.py: the Python plan defines no class OtherPlan');
  });

  it('a node that does not answer gives exit code 4 and is named', async () => {
    const approve = await cli('approve', planJson, ...net(), '--nodes', 'node_ts,node_gone', '--timeout', '600');
    expect(approve.code).toBe(EXIT.missing);
    expect(approve.out).toMatch(/node_ts\s+\d{3}/);
    expect(approve.err).toContain('no answer from node_gone');

    const status = await cli('status', planJson, ...net(), '--nodes', 'node_gone', '--timeout', '300');
    expect(status.code).toBe(EXIT.missing);
    expect(status.err).toContain('no node answered the status request (asked node_gone)');
  });

  it('bad plan files and unreachable brokers give clear errors and distinct exit codes', async () => {
    const absent = await cli('approve', path.join(dir, 'no-such-plan.json'), ...net());
    expect(absent.code).toBe(EXIT.usage);
    expect(absent.err).toContain('no-such-plan.json: no such file');

    fs.writeFileSync(path.join(dir, 'broken-plan.json'), '{ "format": ');
    const broken = await cli('status', path.join(dir, 'broken-plan.json'), ...net(), '--nodes', 'node_ts');
    expect(broken.code).toBe(EXIT.usage);
    expect(broken.err).toContain('broken-plan.json: not valid JSON');

    fs.writeFileSync(path.join(dir, 'noclass.py'), 'import torch\nx = 1\n');
    const noClass = await cli('approve', path.join(dir, 'noclass.py'), ...net());
    expect(noClass.code).toBe(EXIT.usage);
    expect(noClass.err).toContain('noclass.py: the Python plan defines no class');

    // A generated plan edited by hand: its PLAN_SHA256 no longer matches the embedded spec.
    const generated = shippedPlan(mlpPlan()).source;
    fs.writeFileSync(path.join(dir, 'altered.py'), generated.replace(/PLAN_SHA256 = (['"])[0-9a-f]{8}/, 'PLAN_SHA256 = $100000000'));
    const altered = await cli('status', path.join(dir, 'altered.py'), ...net(), '--nodes', 'node_ts');
    expect(altered.code).toBe(EXIT.usage);
    expect(altered.err).toMatch(/altered\.py: PLAN_SHA256 \w+ does not match the embedded plan/);

    const badClass = await cli('approve', planJson, ...net(), '--class-name', 'not-python');
    expect(badClass.code).toBe(EXIT.usage);
    expect(badClass.err).toContain('approve-plan.json: plan class name "not-python" is not a Python identifier');

    const down = await cli('approve', planJson, '--broker', 'mqtt://127.0.0.1:1', '--uploads', network.uploadsUrl);
    expect(down.code).toBe(EXIT.network);
    expect(down.err).toContain('cannot connect to the broker at mqtt://127.0.0.1:1');
  });
});
