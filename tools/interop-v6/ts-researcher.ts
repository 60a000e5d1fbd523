/**
 * Dev tool: our researcher on a v6 network (the `Experiment` API over researcher/v6-link.ts, this process being
 * the gRPC server) drives the nodes run.sh started (a real Fed-BioMed v6.3.3 node and a fedbiomed-ts node): ping,
 * list, search, approval + status, 2 FedAvg rounds + validation with the plan tools/interop-v6/lin-plan.ts.
 * Prints TSR_* lines and writes what it received to OUT_JSON (check_fedavg.py recomputes FedAvg from it).
 *   npx ts-node --transpile-only tools/interop-v6/ts-researcher.ts RESEARCHER_DIR PORT NODE_COUNT OUT_JSON
 */
import * as fs from 'fs';
import * as path from 'path';
import { decodeV6Message } from '../../src/transport/v6/messages';
import { V6ResearcherServer } from '../../src/transport/v6/researcher-server';
import { consoleLogger } from '../../src/transport/logger';
import { initBackend } from '../../src/engine/backend';
import { Researcher } from '../../researcher/requests/researcher';
import { Experiment } from '../../researcher/experiment';
import { decodeNodeParams } from '../../researcher/weights-file';
import spec from './lin-plan';

const [dir, port, count, out] = process.argv.slice(2);
const floats = (t: { data: unknown }) => Array.from(t.data as ArrayLike<number>);

void (async () => {
  await initBackend(() => undefined);
  // TSR_RECORD=DIR: every task sent and reply received, per node, as NNN-task|reply-<Class>.mpk.
  const record = process.env.TSR_RECORD;
  let n = 0;
  const server = await V6ResearcherServer.start({ dir, port: Number(port), logger: consoleLogger('ts-researcher', 'warn'),
    tap: record ? ({ kind, nodeId, bytes }) => {
      const cls = decodeV6Message(bytes).className;
      fs.mkdirSync(path.join(record, nodeId), { recursive: true });
      fs.writeFileSync(path.join(record, nodeId, `${String(++n).padStart(3, '0')}-${kind}-${cls}.mpk`), bytes);
    } : undefined });
  server.on('feedback', (f) => {
    if (f.log) process.stdout.write(`TSR_NODE_LOG ${f.log.node_id} ${f.log.level} ${JSON.parse(f.log.msg).message}\n`);
  });
  const started = Date.now();
  const researcher = await Researcher.connect({ protocol: 'v6', server, minNodes: Number(count), nodeWaitMs: 60_000 });
  console.log('TSR_NODES', server.activeNodes().sort().join(' '));
  console.log('TSR_PING', [...(await researcher.ping({ timeoutMs: 5_000 })).nodes.keys()].sort().join(' '));
  console.log('TSR_LIST', [...(await researcher.listDatasets({ timeoutMs: 5_000 }))].map(([node, dbs]) => `${node}:${dbs.length}`).sort().join(' '));
  const exp = new Experiment({ tags: ['#ts'], plan: spec, roundLimit: 2, seed: 7, jobId: 'exp_ts_v6', network: researcher,
    discoveryTimeoutMs: 5_000,
    trainingArgs: { loader_args: { batch_size: 20 }, optimizer_args: { lr: 0.05 }, epochs: 1, test_ratio: 0.25,
      test_on_global_updates: true, test_on_local_updates: true, random_seed: 1234 } });
  await exp.setup();
  console.log('TSR_SEARCH', exp.nodes.join(' '));
  const approvals = await exp.requestApproval({ description: 'fedbiomed-ts researcher, v6 interop', timeoutMs: 5_000 });
  console.log('TSR_APPROVAL', [...approvals.replies].map(([node, r]) => `${node}:${String(r.success)}`).sort().join(' '));
  const status = await exp.planStatus({ timeoutMs: 5_000 });
  console.log('TSR_STATUS', [...status.statuses].map(([node, s]) => `${node}:${s.status}`).sort().join(' '));
  const rounds: Record<string, unknown> = {};
  const dumps: Promise<void>[] = [];
  exp.on('round-end', ({ summary }) => {
    if (!summary.training || !summary.aggregated) return;
    const replies = exp.replies.get(summary.round) ?? new Map();
    console.log(`TSR_ROUND ${summary.round} ${[...replies].map(([node, x]) => `${node}:${String(x.sample_size)}`).join(' ')}`);
    const aggregated = exp.roundWeights.get(summary.round);
    // The nodes' parameters, as received (kept by the v6 link for the current and previous rounds).
    dumps.push(Promise.all([...replies].map(async ([node, x]) => [node, { sample_size: x.sample_size, params:
      Object.fromEntries([...decodeNodeParams(await researcher.repository.download(x.params_url), node)].map(([k, t]) => [k, floats(t)])) }] as const))
      .then((entries) => {
        rounds[summary.round] = { replies: Object.fromEntries(entries),
          aggregated: Object.fromEntries([...(aggregated ?? [])].map(([k, t]) => [k, floats(t)])) };
      }));
  });
  const t0 = Date.now();
  const result = await exp.run();
  await Promise.all(dumps);
  console.log('TSR_ROUNDS_DONE', result.roundsCompleted, `${Date.now() - t0} ms for 2 rounds + validation,`,
    `${Date.now() - started} ms in all`);
  fs.writeFileSync(out, JSON.stringify({ rounds }));
  await exp.close();
  await researcher.close();
  await server.close();
  process.exit(0);
})().catch((err) => {
  console.error('TSR_FAILED', err);
  process.exit(1);
});
