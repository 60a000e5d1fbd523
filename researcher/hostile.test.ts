/**
 * The researcher against hostile or broken nodes, on the embedded network with simulated nodes speaking the real
 * protocol: duplicated and replayed replies, NaN weights, a params URL that never answers. Every aggregate is
 * checked against FedAvg recomputed independently from the nodes' known training.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { RepositoryClient } from '../src/transport/repository';
import { Experiment, ExperimentOptions } from './experiment';
import { startSimNode, affineTrain } from './testing/sim-node';
import type { WeightMap } from './aggregators/tensors';
import type { ExperimentEvent } from './events';
import { INITIAL, OFFSETS, SIZES, simFederation } from './testing/sim-federation';
import { asArrays, maxDifference, referenceRound } from './testing/fedavg-reference';

jest.setTimeout(30_000);

const sims = simFederation(['node_a', 'node_b']);
const { nodes, startNodes } = sims;

function experiment(over: Partial<ExperimentOptions> = {}): { exp: Experiment; events: ExperimentEvent[] } {
  const exp = new Experiment({
    tags: ['sim'], nodes: ['node_a', 'node_b'],
    plan: { python: 'import torch\nclass SimPlan:\n    pass\n', className: 'SimPlan', initialWeights: INITIAL },
    trainingArgs: { loader_args: { batch_size: 4 }, epochs: 1 }, roundLimit: 3, discoveryTimeoutMs: 3000,
    roundTimeoutMs: 5000, network: { brokerUrl: sims.network.mqttUrl, uploadsUrl: sims.network.uploadsUrl }, ...over,
  });
  const events: ExperimentEvent[] = [];
  for (const type of ['reply-dropped', 'node-failed', 'node-skipped', 'round-end'] as const) exp.on(type, (ev) => void events.push(ev));
  return { exp, events };
}

/** Each round's aggregate against FedAvg recomputed from the previous aggregate and the round's participants. */
function expectExactRounds(exp: Experiment, participants: string[][]): void {
  let global = asArrays(INITIAL);
  participants.forEach((who, round) => {
    const expected = referenceRound(global, round, who, SIZES, OFFSETS);
    expect(maxDifference(exp.roundWeights.get(round) as WeightMap, expected)).toBeLessThan(1e-6);
    global = asArrays(exp.roundWeights.get(round) as WeightMap);
  });
}

describe('replies bound to their round', () => {
  it('drops duplicated and replayed replies with a reason, and aggregates each round from its own results', async () => {
    await startNodes({ node_a: { duplicateReplies: true }, node_b: { replayPreviousOnRound: 2 } });
    const { exp, events } = experiment();
    await exp.run();
    expectExactRounds(exp, [['node_a', 'node_b'], ['node_a', 'node_b'], ['node_a', 'node_b']]);
    const dropped = events.filter((e): e is Extract<ExperimentEvent, { type: 'reply-dropped' }> => e.type === 'reply-dropped');
    expect(dropped.filter((e) => e.nodeId === 'node_a')).toHaveLength(3);
    expect(dropped.filter((e) => e.nodeId === 'node_b')).toEqual([
      { type: 'reply-dropped', round: 2, nodeId: 'node_b', reason: 'duplicate or replayed reply (state_id / params_url already seen)' },
    ]);
    expect(events.filter((e) => e.type === 'node-failed')).toEqual([]);
  });
});

describe('replies bound to their round, across a breakpoint', () => {
  it('drops a reply replayed after a resume: the seen replies are kept in the breakpoint', async () => {
    await startNodes({ node_b: { replayPreviousOnRound: 2 } });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-bp-replay-'));
    // The same researcher id before and after the resume, so the replay reaches the resumed experiment.
    const network = { brokerUrl: sims.network.mqttUrl, uploadsUrl: sims.network.uploadsUrl, researcherId: 'researcher_bp_replay' };
    try {
      const { exp: first } = experiment({ network, jobId: 'job_bp_replay' });
      await first.runOnce();
      await first.runOnce();
      await first.breakpoint(dir);
      await first.close();
      const resumed = await Experiment.load(dir, { network });
      const dropped: ExperimentEvent[] = [];
      resumed.on('reply-dropped', (ev) => void dropped.push(ev));
      await resumed.run();
      // Round 2 is the average of the two nodes' round-2 training, not of node_b's replayed round-1 results.
      const expected = referenceRound(asArrays(first.roundWeights.get(1) as WeightMap), 2, ['node_a', 'node_b'], SIZES, OFFSETS);
      expect(maxDifference(resumed.roundWeights.get(2) as WeightMap, expected)).toBeLessThan(1e-6);
      expect(dropped).toEqual([{ type: 'reply-dropped', round: 2, nodeId: 'node_b',
        reason: 'duplicate or replayed reply (state_id / params_url already seen)' }]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('contributions that cannot be trusted', () => {
  it('refuses NaN weights naming the node, and averages the others', async () => {
    await startNodes({ node_b: { nanOnRound: 1 } });
    const { exp, events } = experiment({ strategy: { name: 'at-least', k: 1 } });
    await exp.run();
    expectExactRounds(exp, [['node_a', 'node_b'], ['node_a'], ['node_a', 'node_b']]);
    const failed = events.find((e) => e.type === 'node-failed');
    expect(failed).toMatchObject({ round: 1, nodeId: 'node_b', reason: 'rejected',
      message: "node_b sent non-finite values (NaN or infinity) in 'fc.weight': its contribution is refused" });
  });

  it('gives a params URL that never answers no more than the round deadline', async () => {
    // The repository behind a pass-through proxy (the Host header kept, so file URLs name the proxy) that holds one
    // path forever: a URL on the researcher's own repository origin that never answers.
    const held: http.ServerResponse[] = [];
    const upstream = new URL(sims.network.uploadsUrl);
    const silent = http.createServer((req, res) => {
      if (req.url === '/media/never.mpk') return void held.push(res);
      const forward = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method,
        headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(forward);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(silent.address() as import('net').AddressInfo).port}`;
    const url = `${base}/media/never.mpk`;
    try {
      for (const nodeId of ['node_a', 'node_b']) {
        nodes.push(await startSimNode(sims.network.mqttUrl, `${base}/upload/`, { nodeId, sampleSize: SIZES[nodeId],
          train: affineTrain(OFFSETS[nodeId]), ...(nodeId === 'node_b' ? { paramsUrlOnRound: { round: 0, url } } : {}) }));
      }
      const { exp, events } = experiment({ roundLimit: 1, roundTimeoutMs: 1500, strategy: { name: 'at-least', k: 1 },
        network: { brokerUrl: sims.network.mqttUrl, uploadsUrl: `${base}/upload/` } });
      const started = Date.now();
      await exp.run();
      expect(Date.now() - started).toBeLessThan(6000);
      expectExactRounds(exp, [['node_a']]);
      expect(events.find((e) => e.type === 'node-failed')).toMatchObject({ nodeId: 'node_b', reason: 'rejected',
        message: expect.stringMatching(/^download of .*never\.mpk not finished within the round deadline/) as unknown });
      expect(held.length).toBeGreaterThan(0);
    } finally {
      held.forEach((res) => res.destroy());
      silent.closeAllConnections();
      await new Promise((r) => silent.close(r));
    }
  });
});

describe('results files only from the researcher\'s repository (issue 11)', () => {
  /** A real server on another loopback port, serving whatever file it was handed, or redirecting there. */
  async function foreignServer(): Promise<{ url: string; requests: () => number; files: Map<string, Uint8Array>; close: () => Promise<void> }> {
    const files = new Map<string, Uint8Array>();
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests += 1;
      const file = files.get(req.url ?? '');
      res.writeHead(file ? 200 : 404, { 'content-type': 'application/octet-stream' });
      res.end(file);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as import('net').AddressInfo).port}`;
    return { url, requests: () => requests, files, close: () => new Promise((r) => server.close(() => r())) };
  }

  type ForeignServer = Awaited<ReturnType<typeof foreignServer>>;

  /** node_b's real, valid round-1 results: only where they are served from (`foreign`) is wrong. */
  function roundOneResultsFrom(foreign: ForeignServer): (round: number, file: Uint8Array) => string | undefined {
    return (round, file) => {
      if (round !== 1) return undefined;
      foreign.files.set('/media/node_params.mpk', file);
      return `${foreign.url}/media/node_params.mpk`;
    };
  }

  /** node_b is dropped from round 1 only, for the URL's origin, and nothing was fetched from `foreign`. */
  function expectRoundOneRefused(exp: Experiment, events: ExperimentEvent[], foreign: ForeignServer): void {
    expectExactRounds(exp, [['node_a', 'node_b'], ['node_a'], ['node_a', 'node_b']]);
    expect(events.filter((e) => e.type === 'node-failed')).toMatchObject([{ type: 'node-failed', round: 1, nodeId: 'node_b',
      reason: 'rejected', message: `node_b's results file is refused: download refused: the URL is not on this side's file repository (${new URL(sims.network.uploadsUrl).origin})` }]);
    expect(foreign.requests()).toBe(0);
  }

  it('refuses a reply naming another port, names the node, fetches nothing there, and averages the others', async () => {
    const foreign = await foreignServer();
    try {
      await startNodes({ node_b: { paramsServedElsewhere: roundOneResultsFrom(foreign) } });
      const { exp, events } = experiment({ strategy: { name: 'at-least', k: 1 } });
      await exp.run();
      expectRoundOneRefused(exp, events, foreign);
    } finally {
      await foreign.close();
    }
  });

  it('holds a custom repository (NetworkOptions.repository) to the same origin rule', async () => {
    const foreign = await foreignServer();
    try {
      await startNodes({ node_b: { paramsServedElsewhere: roundOneResultsFrom(foreign) } });
      // A custom store that would fetch anything it is given (the default client's restriction lifted).
      const custom = new RepositoryClient({ uploadsUrl: sims.network.uploadsUrl, downloadFrom: 'any', retries: 0 });
      const { exp, events } = experiment({ strategy: { name: 'at-least', k: 1 },
        network: { brokerUrl: sims.network.mqttUrl, uploadsUrl: sims.network.uploadsUrl, repository: custom } });
      await exp.run();
      expectRoundOneRefused(exp, events, foreign);
    } finally {
      await foreign.close();
    }
  });
});

describe('dead nodes', () => {
  it('are skipped after two silent rounds (at-least K) and no longer cost the round deadline', async () => {
    await startNodes({ node_c: { dieOnRound: 1 } }, ['node_a', 'node_b', 'node_c']);
    const { exp, events } = experiment({ nodes: ['node_a', 'node_b', 'node_c'], roundLimit: 5, roundTimeoutMs: 1500,
      strategy: { name: 'at-least', k: 2 } });
    const roundMs: number[] = [];
    exp.on('round-end', (ev) => void roundMs.push(ev.summary.durationMs));
    await exp.run();
    expectExactRounds(exp, [['node_a', 'node_b', 'node_c'], ['node_a', 'node_b'], ['node_a', 'node_b'], ['node_a', 'node_b'],
      ['node_a', 'node_b']]);
    expect(nodes[2].rounds).toEqual([0, 1]);
    expect(events.filter((e) => e.type === 'node-failed').map((e) => (e as { round: number }).round)).toEqual([1, 2]);
    const skipped = events.filter((e) => e.type === 'node-skipped');
    expect(skipped.map((e) => [(e as { round: number }).round, (e as { nodeId: string }).nodeId]))
      .toEqual([[3, 'node_c'], [4, 'node_c']]);
    expect(Math.max(...roundMs.slice(3))).toBeLessThan(1000);
  });
});

describe('a broker restart that loses a round\'s replies', () => {
  async function restartableBroker(): Promise<{ url: string; restart(downMs: number): Promise<void>; close(): Promise<void> }> {
    const { startBroker } = await import('../src/transport/broker');
    const { freePort } = await import('../src/transport/testing/brokers');
    const port = await freePort();
    let broker = await startBroker({ host: '127.0.0.1', port });
    return {
      url: `mqtt://127.0.0.1:${port}`,
      restart: async (downMs) => {
        await broker.close();
        await new Promise((r) => setTimeout(r, downMs));
        broker = await startBroker({ host: '127.0.0.1', port });
      },
      close: () => broker.close(),
    };
  }

  it('asks the round once more instead of ending the experiment (at-least K)', async () => {
    const broker = await restartableBroker();
    try {
      // Both nodes lose their round-1 replies to a broker restart (real: the broker goes down for 500 ms while they
      // answer; the loss itself is scripted, as what QoS 0 does to a message published while the researcher is away).
      const restart = (() => {
        let once: Promise<void> | undefined;
        return () => (once ??= broker.restart(500));
      })();
      for (const nodeId of ['node_a', 'node_b']) {
        nodes.push(await startSimNode(broker.url, sims.network.uploadsUrl, { nodeId, sampleSize: SIZES[nodeId],
          train: affineTrain(OFFSETS[nodeId]), loseReplyOnRound: { round: 1, meanwhile: restart }, reconnectMs: 100 }));
      }
      const { exp, events } = experiment({ strategy: { name: 'at-least', k: 1 }, roundTimeoutMs: 3000,
        network: { brokerUrl: broker.url, uploadsUrl: sims.network.uploadsUrl } });
      const retried: ExperimentEvent[] = [];
      exp.on('round-retried', (ev) => void retried.push(ev));
      await exp.run();
      expectExactRounds(exp, [['node_a', 'node_b'], ['node_a', 'node_b'], ['node_a', 'node_b']]);
      expect(retried).toHaveLength(1);
      expect(retried[0]).toMatchObject({ type: 'round-retried', round: 1 });
      expect((retried[0] as { reason: string }).reason).toMatch(/^0\/2 nodes answered, 1 required, and the connection to the broker was lost/);
      for (const n of nodes) expect(n.rounds).toEqual([0, 1, 1, 2]);
      // The first attempt's timeouts are reported as they happened; nothing failed after the retry.
      expect(events.filter((e) => e.type === 'node-failed').map((e) => [(e as { round: number }).round,
        (e as { nodeId: string }).nodeId, (e as { reason: string }).reason]))
        .toEqual([[1, 'node_a', 'timeout'], [1, 'node_b', 'timeout']]);
    } finally {
      await broker.close();
    }
  });
});

describe('a repository outage', () => {
  it('while the new global weights are uploaded does not end the experiment', async () => {
    const { startRepositoryServer } = await import('../src/transport/repository-server');
    const { freePort } = await import('../src/transport/testing/brokers');
    const port = await freePort();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-outage-'));
    let repository = await startRepositoryServer({ port, dataDir });
    const uploadsUrl = `http://127.0.0.1:${port}/upload/`;
    for (const nodeId of ['node_a', 'node_b']) {
      nodes.push(await startSimNode(sims.network.mqttUrl, uploadsUrl, { nodeId, sampleSize: SIZES[nodeId], train: affineTrain(OFFSETS[nodeId]) }));
    }
    const { exp } = experiment({ roundLimit: 2, network: { brokerUrl: sims.network.mqttUrl, uploadsUrl } });
    let outage: Promise<void> | undefined;
    exp.on('node-reply', (ev) => {
      // Round 0's last contribution is in: the repository goes down for 800 ms, across the upload of the average.
      if (ev.round !== 0 || ev.done !== ev.total || outage) return;
      const closing = repository.close();
      outage = closing.then(() => new Promise((r) => setTimeout(r, 800)))
        .then(async () => { repository = await startRepositoryServer({ port, dataDir }); });
    });
    try {
      await exp.run();
      expect(outage).toBeDefined();
      expectExactRounds(exp, [['node_a', 'node_b'], ['node_a', 'node_b']]);
    } finally {
      await outage;
      await repository.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
