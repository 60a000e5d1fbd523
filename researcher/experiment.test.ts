/**
 * Experiment behaviour over a real broker and repository with simulated nodes whose "training" is a known
 * function, so every expected average is computed independently here (float64) and compared.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Experiment, ExperimentError, ExperimentOptions } from './experiment';
import { WeightMap } from './aggregators/tensors';
import { readHistory } from './monitoring/history';
import { readScalarEvents } from './monitoring/tensorboard';
import type { ExperimentEvent } from './events';
import { INITIAL, OFFSETS, SIZES, simFederation } from './testing/sim-federation';
import { asArrays, referenceRound as reference } from './testing/fedavg-reference';

const sims = simFederation();
const { nodes, startNodes } = sims;

function options(over: Partial<ExperimentOptions> = {}): ExperimentOptions {
  return {
    tags: ['sim'],
    nodes: ['node_a', 'node_b', 'node_c'],
    plan: { python: 'import torch\nclass SimPlan:\n    pass\n', className: 'SimPlan', initialWeights: INITIAL },
    trainingArgs: { loader_args: { batch_size: 4 }, epochs: 1 },
    roundLimit: 2,
    discoveryTimeoutMs: 3000,
    roundTimeoutMs: 5000,
    network: { brokerUrl: sims.network.mqttUrl, uploadsUrl: sims.network.uploadsUrl },
    ...over,
  };
}

const referenceRound = (global: Map<string, number[]>, round: number, participants: string[]): Map<string, number[]> =>
  reference(global, round, participants, SIZES, OFFSETS);

function expectClose(actual: WeightMap, expected: Map<string, number[]>): void {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  for (const [name, values] of expected) {
    const got = Array.from(actual.get(name)!.data as Float32Array);
    got.forEach((v, i) => expect(Math.abs(v - values[i])).toBeLessThan(1e-6));
  }
}

describe('Experiment over simulated nodes', () => {
  it('aggregates FedAvg weighted by sample_size, tracks state ids, reports metrics, history and TensorBoard', async () => {
    await startNodes();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-exp-'));
    const exp = new Experiment(options({ history: path.join(dir, 'history.jsonl'), tensorboard: path.join(dir, 'runs') }));
    const roundEnds: number[] = [];
    exp.on('round-end', (ev) => roundEnds.push(ev.summary.round));
    const result = await exp.run();

    let ref = asArrays(INITIAL);
    ref = referenceRound(ref, 0, ['node_a', 'node_b', 'node_c']);
    expectClose(exp.roundWeights.get(0)!, ref);
    ref = referenceRound(asArrays(exp.roundWeights.get(0)!), 1, ['node_a', 'node_b', 'node_c']);
    expectClose(result.weights, ref);
    expect(roundEnds).toEqual([0, 1]);

    // state_id: null first, then the id the node returned in the previous round.
    for (const n of nodes) {
      expect(n.stateIdsReceived[0]).toBeNull();
      expect(n.stateIdsReceived[1]).toBe(exp.replies.get(0)!.get(n.peer.nodeId)!.state_id);
    }
    expect(result.summaries[1].nodes.map((s) => s.lastLoss)).toEqual([0.5, 0.5, 0.5]);
    expect(exp.metrics).toHaveLength(6);

    const history = readHistory(path.join(dir, 'history.jsonl'));
    expect(history.filter((h) => h.type === 'round-end')).toHaveLength(2);
    expect(history[history.length - 1].type).toBe('experiment-end');
    const runFiles = fs.readdirSync(path.join(dir, 'runs', 'node_b'));
    const tb = readScalarEvents(path.join(dir, 'runs', 'node_b', runFiles[0]));
    expect(tb.scalars.map((s) => [s.tag, s.step, s.value])).toEqual([['TRAINING/Loss', 1, 1], ['TRAINING/Loss', 2, 0.5]]);
  });

  it('"at least K": a node dying mid-experiment is dropped at its deadline and the round continues', async () => {
    await startNodes({ node_c: { dieOnRound: 1 } });
    const exp = new Experiment(options({ strategy: { name: 'at-least', k: 2 }, roundLimit: 3, roundTimeoutMs: 700 }));
    const failures: ExperimentEvent[] = [];
    exp.on('node-failed', (ev) => failures.push(ev));
    const result = await exp.run();

    let ref = referenceRound(asArrays(INITIAL), 0, ['node_a', 'node_b', 'node_c']);
    expectClose(exp.roundWeights.get(0)!, ref);
    ref = referenceRound(ref, 1, ['node_a', 'node_b']);
    expectClose(exp.roundWeights.get(1)!, ref);
    ref = referenceRound(asArrays(exp.roundWeights.get(1)!), 2, ['node_a', 'node_b']);
    expectClose(result.weights, ref);
    expect(result.summaries[1].nodes.map((n) => n.status)).toEqual(['ok', 'ok', 'timeout']);
    expect(failures.map((f) => f.type === 'node-failed' && [f.round, f.nodeId, f.reason])).toEqual([[1, 'node_c', 'timeout'], [2, 'node_c', 'timeout']]);
  });

  it('a node announcing its shutdown (FB312 error) is dropped at once, without waiting for its deadline', async () => {
    await startNodes({ node_b: { shutdownOnRound: 1 } });
    const exp = new Experiment(options({ strategy: { name: 'at-least', k: 2 }, roundLimit: 2, roundTimeoutMs: 30_000 }));
    const result = await exp.run();
    const round1 = result.summaries[1];
    expect(round1.nodes.find((n) => n.nodeId === 'node_b')).toMatchObject({ status: 'error', message: 'FB312: Node stopped in SIGTERM signal handler' });
    expect(round1.durationMs).toBeLessThan(10_000);
    expectClose(result.weights, referenceRound(asArrays(exp.roundWeights.get(0)!), 1, ['node_a', 'node_c']));
  });

  it('with the default strategy a silent node stops the experiment (FB408) at its deadline', async () => {
    await startNodes({ node_c: { dieOnRound: 0 } });
    const exp = new Experiment(options({ roundTimeoutMs: 500 }));
    const err = await exp.run().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ExperimentError);
    expect((err as Error).message).toMatch(/^FB408: .* round 0: 2\/3 nodes succeeded, 3 required; failed: node_c \(timeout: no reply within 500 ms\)/);
  });

  it('a late reply to an abandoned request is ignored and the node\'s next reply counts', async () => {
    // Round 0 gives up on node_b at 800 ms; its reply comes at ~1200 ms, inside round 1, followed by its
    // round-1 reply (a node answers its queue in order), well before round 1's deadline (~1600 ms).
    await startNodes({ node_b: { replyDelayMs: (r) => (r === 0 ? 1200 : 0) } });
    const exp = new Experiment(options({ strategy: { name: 'at-least', k: 2 }, roundTimeoutMs: 800, roundLimit: 2 }));
    const result = await exp.run();
    expect(result.summaries[0].nodes.find((n) => n.nodeId === 'node_b')!.status).toBe('timeout');
    expect(result.summaries[1].nodes.map((n) => n.status)).toEqual(['ok', 'ok', 'ok']);
    const ref0 = referenceRound(asArrays(INITIAL), 0, ['node_a', 'node_c']);
    expectClose(exp.roundWeights.get(0)!, ref0);
    // If the stale round-0 reply had been taken for round 1, this average would differ.
    expectClose(result.weights, referenceRound(asArrays(exp.roundWeights.get(0)!), 1, ['node_a', 'node_b', 'node_c']));
  });

  it('resuming from a breakpoint gives exactly the weights of an uninterrupted run (FedAdam, random fraction)', async () => {
    await startNodes();
    const common = {
      aggregator: { name: 'fedadam' as const, lr: 0.05 },
      strategy: { name: 'random-fraction' as const, fraction: 0.6, seed: 7 },
      roundLimit: 4,
      jobId: 'job_resume_test',
    };
    const full = await new Experiment(options(common)).run();

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-bp-'));
    const first = new Experiment(options(common));
    await first.runOnce();
    await first.runOnce();
    await first.breakpoint(dir);
    await first.close();
    expect(fs.existsSync(path.join(dir, 'server_optimizer.mpk'))).toBe(true);

    const resumed = await Experiment.load(dir, { network: { brokerUrl: sims.network.mqttUrl, uploadsUrl: sims.network.uploadsUrl } });
    expect(resumed.currentRoundIndex).toBe(2);
    const rest = await resumed.run();
    expect(rest.roundsCompleted).toBe(4);
    for (const [name, t] of full.weights) {
      expect(Buffer.from((rest.weights.get(name)!.data as Float32Array).buffer).equals(Buffer.from((t.data as Float32Array).buffer))).toBe(true);
    }
    expect(rest.summaries.map((s) => s.round)).toEqual([0, 1, 2, 3]);
    // The selection really varied (2 of 3 nodes per round), so the stored seed mattered.
    expect(full.summaries.every((s) => s.nodes.length === 2)).toBe(true);
  });

  it('runs the final validation-only request when test_on_global_updates is on', async () => {
    await startNodes();
    const exp = new Experiment(options({ roundLimit: 1, trainingArgs: { loader_args: { batch_size: 4 }, epochs: 1, test_on_global_updates: true, test_ratio: 0.2 } }));
    const result = await exp.run();
    expect(result.summaries.map((s) => [s.round, s.training])).toEqual([[0, true], [1, false]]);
    for (const n of nodes) expect(n.rounds).toEqual([0, 1]);
    expect(exp.finished).toBe(true);
    await expect(exp.runOnce()).rejects.toThrow(/experiment is closed|round limit reached/);
  });

  it('an lr schedule sends each round its rate in optimizer_args.lr, the other optimizer_args kept', async () => {
    await startNodes();
    const trainingArgs = { loader_args: { batch_size: 4 }, epochs: 1, optimizer_args: { lr: 0.1, momentum: 0.9 } };
    const exp = new Experiment(options({ roundLimit: 3, trainingArgs, lrSchedule: { type: 'step', stepSize: 1, gamma: 0.5 } }));
    await exp.run();
    for (const n of nodes) {
      expect(n.trainingArgsReceived.map((a) => a.optimizer_args)).toEqual([
        { lr: 0.1, momentum: 0.9 },
        { lr: 0.05, momentum: 0.9 },
        { lr: 0.025, momentum: 0.9 },
      ]);
    }
    expect(() => new Experiment(options({ lrSchedule: { type: 'cosine', tMax: 3 } }))).toThrow(/lrSchedule needs a learning rate to start from/);
  });

  it('refuses bad options with clear messages', () => {
    expect(() => new Experiment(options({ roundLimit: -1 }))).toThrow(/roundLimit must be an integer/);
    expect(() => new Experiment(options({ tags: 'sim' as never }))).toThrow(/tags must be an array/);
    expect(() => new Experiment(options({ trainingArgs: { epochs: 1 } }))).toThrow(/loader_args.batch_size is required/);
    expect(() => new Experiment(options({ aggregator: { name: 'fedprox', mu: 0.1 }, trainingArgs: { loader_args: { batch_size: 1 }, epochs: 1, fedprox_mu: 0.2 } }))).toThrow(/disagree/);
    const prox = new Experiment(options({ aggregator: { name: 'fedprox', mu: 1 } }));
    expect(String(prox.trainingArgs.fedprox_mu)).toBe('1');
  });
});
