/**
 * `npm run bench -- soak [--rounds 300] [--time-limit-s 1200]`: three TS node agents train FedAvg rounds on a
 * real broker and repository while faults are injected at random: broker restarts, node restarts, repository
 * outages, replayed and duplicated train replies from a spoofing client. Checks, for every aggregated round, that
 * the researcher's average equals an independent float64 recomputation from the nodes' uploaded files; at the
 * end, that every node answers a ping with an empty queue. Bounded by the round count and a time limit.
 * Ends with `RESULT rounds=… wrong_aggregates=0 stuck_nodes=0 crashes=0 max_rss_mb=…`.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import mqtt from 'mqtt';
import { startBroker, type EmbeddedBroker } from '../src/transport/broker';
import { startRepositoryServer, type RepositoryServer } from '../src/transport/repository-server';
import { freePort } from '../src/transport/testing/brokers';
import { RepositoryClient } from '../src/transport/repository';
import { decodeParams, modelWeightsOf } from '../src/serialize';
import { mlpPlan } from '../src/plan/testing/plans';
import { defaultConfig, writeConfig } from '../node-agent/config';
import { openNodeStores } from '../node-agent/stores';
import { NodeAgent } from '../node-agent/agent';
import { Experiment } from '../researcher/experiment';
import { Researcher } from '../researcher/requests/researcher';

const ROUNDS_PER_EXPERIMENT = 25;
const FAULT_PROBABILITY = 0.2;
const NODES: Record<string, number> = { soak_a: 40, soak_b: 48, soak_c: 64 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));

function argValue(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 && Number.isFinite(Number(args[i + 1])) ? Number(args[i + 1]) : fallback;
}

function writeCsv(file: string, rows: number, shift: number): void {
  const lines = ['f0,f1,f2,f3,label'];
  for (let i = 0; i < rows; i++) {
    const label = (i + shift) % 2;
    lines.push([i * 0.05 + shift, label + 0.3 * Math.sin(i + shift), 1 - label, ((i + shift) % 7) / 7, label].join(','));
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

export async function main(args: string[]): Promise<void> {
  const roundTarget = argValue(args, '--rounds', 300);
  const timeLimitMs = argValue(args, '--time-limit-s', 1200) * 1000;
  const started = Date.now();
  let crashes = 0;
  const crash = (what: string) => (err: unknown) => {
    crashes += 1;
    process.stderr.write(`CRASH ${what}: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  };
  process.on('uncaughtException', crash('uncaught exception'));
  process.on('unhandledRejection', crash('unhandled rejection'));
  let maxRss = 0;
  const rssTimer = setInterval(() => (maxRss = Math.max(maxRss, process.memoryUsage().rss)), 250);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-soak-'));
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const uploadsUrl = `http://127.0.0.1:${httpPort}/upload/`;
  let broker: EmbeddedBroker | undefined = await startBroker({ port: mqttPort });
  const repoDir = path.join(dir, 'repo');
  let repository: RepositoryServer | undefined = await startRepositoryServer({ port: httpPort, dataDir: repoDir });

  const agents = new Map<string, NodeAgent | undefined>();
  const startAgent = async (nodeId: string) => {
    agents.set(nodeId, await NodeAgent.start({ dir: path.join(dir, nodeId), env: {}, localLog: () => undefined }));
  };
  let shift = 0;
  for (const [nodeId, rows] of Object.entries(NODES)) {
    const nodeDir = path.join(dir, nodeId);
    writeConfig(nodeDir, defaultConfig({ nodeId, broker: mqttUrl, uploadsUrl, approval: false,
      limits: { ...defaultConfig().limits, roundTimeoutS: 20 } }));
    const csv = path.join(dir, `${nodeId}.csv`);
    writeCsv(csv, rows, shift++);
    await openNodeStores(nodeDir, {}).datasets.add({ name: nodeId, dataType: 'csv', tags: ['soak'], path: csv });
    await startAgent(nodeId);
  }

  // The spoofer: captures train replies and sends old ones again (replays) or the last one twice (duplicates).
  const captured: string[] = [];
  const spoofer = mqtt.connect(mqttUrl, { protocolVersion: 4, reconnectPeriod: 200 });
  spoofer.on('connect', () => void spoofer.subscribe('general/researcher'));
  spoofer.on('message', (_t, payload) => {
    const text = payload.toString('utf8');
    if (text.includes('"command": "train"') && text.includes('"success": true')) captured.push(text);
  });

  const faults: Record<string, number> = { broker: 0, node: 0, repository: 0, replay: 0, duplicate: 0 };
  let faultRunning: Promise<void> = Promise.resolve();
  const injectFault = (): void => {
    const kind = ['broker', 'node', 'repository', 'replay', 'duplicate'][between(0, 5)];
    faults[kind] += 1;
    faultRunning = faultRunning.then(async () => {
      await sleep(between(0, 400));
      if (kind === 'broker') {
        await broker?.close();
        broker = undefined;
        await sleep(between(500, 3000));
        broker = await startBroker({ port: mqttPort });
      } else if (kind === 'node') {
        const nodeId = Object.keys(NODES)[between(0, 3)];
        await agents.get(nodeId)?.stop('signal');
        agents.set(nodeId, undefined);
        await sleep(between(200, 1500));
        await startAgent(nodeId);
      } else if (kind === 'repository') {
        await repository?.close();
        repository = undefined;
        await sleep(between(500, 2500));
        repository = await startRepositoryServer({ port: httpPort, dataDir: repoDir });
      } else if (kind === 'replay' && captured.length > 0) {
        spoofer.publish('general/researcher', captured[between(0, captured.length)]);
      } else if (kind === 'duplicate' && captured.length > 0) {
        spoofer.publish('general/researcher', captured[captured.length - 1]);
      }
    }).catch(crash(`fault ${kind}`));
  };

  const files = new RepositoryClient({ uploadsUrl, retries: 5 });
  let rounds = 0;
  let failedRounds = 0;
  /** Rounds asked again after losing their replies to a broker restart (instead of ending the experiment). */
  let retriedRounds = 0;
  let wrongAggregates = 0;
  let experiments = 0;
  while (rounds < roundTarget && Date.now() - started < timeLimitMs) {
    experiments += 1;
    const researcher = await Researcher.connect({ brokerUrl: mqttUrl, uploadsUrl, connectTimeoutMs: 30_000 });
    const exp = new Experiment({
      tags: ['soak'], plan: mlpPlan(),
      trainingArgs: { loader_args: { batch_size: 8 }, optimizer_args: { lr: 0.05 }, num_updates: 4, test_ratio: 0.0 },
      roundLimit: Math.min(ROUNDS_PER_EXPERIMENT, roundTarget - rounds), discoveryTimeoutMs: 3000, roundTimeoutMs: 8000,
      strategy: { name: 'at-least', k: 1 }, network: researcher,
    });
    exp.on('round-start', () => {
      if (Math.random() < FAULT_PROBABILITY) injectFault();
    });
    exp.on('round-retried', () => void (retriedRounds += 1));
    try {
      await exp.run();
    } catch (err) {
      // A round with no contribution at all (every reply lost to a broker restart) ends an experiment: a fault
      // outcome, not a failure of the soak, as long as no aggregate was wrong.
      failedRounds += 1;
      process.stderr.write(`experiment ${experiments} ended early: ${(err as Error).message.slice(0, 200)}\n`);
    }
    await faultRunning;
    for (const summary of exp.summaries) {
      if (!summary.training || !summary.aggregated) continue;
      rounds += 1;
      const used = summary.nodes.filter((n) => n.status === 'ok').map((n) => n.nodeId);
      const replies = exp.replies.get(summary.round);
      const reference = new Map<string, Float64Array>();
      let total = 0;
      for (const nodeId of used) {
        const reply = replies?.get(nodeId);
        if (!reply?.params_url || reply.sample_size === null) continue;
        const weights = modelWeightsOf(decodeParams(await files.download(reply.params_url)));
        total += reply.sample_size;
        for (const [name, t] of Object.entries(weights)) {
          const acc = reference.get(name) ?? new Float64Array(t.data.length);
          const data = t.data as ArrayLike<number | bigint>;
          for (let i = 0; i < acc.length; i++) acc[i] += reply.sample_size * Number(data[i]);
          reference.set(name, acc);
        }
      }
      const got = exp.roundWeights.get(summary.round);
      let worst = got && reference.size === got.size ? 0 : Infinity;
      for (const [name, acc] of reference) {
        const actual = got?.get(name)?.data as ArrayLike<number | bigint> | undefined;
        if (!actual) { worst = Infinity; continue; }
        for (let i = 0; i < acc.length; i++) worst = Math.max(worst, Math.abs(Number(actual[i]) - acc[i] / total));
      }
      if (!(worst < 1e-5)) {
        wrongAggregates += 1;
        process.stderr.write(`WRONG aggregate: experiment ${experiments} round ${summary.round} (max difference ${worst})\n`);
      }
    }
    await exp.close();
    await researcher.close();
    process.stderr.write(`after experiment ${experiments}: ${rounds} rounds aggregated, faults ${JSON.stringify(faults)}\n`);
  }

  // Nothing stuck: every node's queue drains and every node answers a ping.
  await faultRunning;
  const settleUntil = Date.now() + 30_000;
  while ([...agents.values()].some((a) => (a?.pendingTasks ?? 0) > 0) && Date.now() < settleUntil) await sleep(200);
  // A node reconnecting after the last broker restart may still be in its backoff: "stuck" means it has not
  // answered within 30 s.
  const researcher = await Researcher.connect({ brokerUrl: mqttUrl, uploadsUrl, connectTimeoutMs: 30_000 });
  const answered = new Set<string>();
  while (answered.size < Object.keys(NODES).length && Date.now() < settleUntil + 30_000) {
    const pong = await researcher.ping({ nodes: Object.keys(NODES).filter((n) => !answered.has(n)), timeoutMs: 2000 });
    for (const n of pong.nodes.keys()) answered.add(n);
  }
  const pong = { nodes: answered };
  const stuck = Object.keys(NODES).filter((n) => !pong.nodes.has(n) || (agents.get(n)?.pendingTasks ?? 0) > 0);
  for (const n of stuck) {
    process.stderr.write(`STUCK ${n}: ${pong.nodes.has(n) ? 'answered the ping' : 'no pong'}, ` +
      `${agents.get(n)?.pendingTasks ?? 'no agent'} task(s) pending\n`);
  }
  await researcher.close();

  clearInterval(rssTimer);
  spoofer.end(true);
  for (const agent of agents.values()) await agent?.stop();
  await broker?.close();
  await repository?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  process.stdout.write(`soak: ${rounds} rounds aggregated in ${seconds} s over ${experiments} experiment(s); ` +
    `${failedRounds} experiment(s) ended by a round short of contributions, ${retriedRounds} round(s) asked again after ` +
    `a broker restart; faults ${JSON.stringify(faults)}\n`);
  process.stdout.write(`RESULT rounds=${rounds} wrong_aggregates=${wrongAggregates} stuck_nodes=${stuck.length} ` +
    `crashes=${crashes} max_rss_mb=${Math.round(maxRss / 1024 / 1024)}\n`);
  process.exit(0);
}
