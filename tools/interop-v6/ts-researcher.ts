/**
 * Dev tool: our v6 researcher (gRPC server) drives the nodes run.sh started (a real Fed-BioMed v6.3.3 node and a
 * fedbiomed-ts node): ping, list, search, approval + status, 2 FedAvg rounds + validation with the plan
 * tools/interop-v6/lin-plan.ts. Prints TSR_* lines and writes what it received to OUT_JSON.
 *   npx ts-node --transpile-only tools/interop-v6/ts-researcher.ts RESEARCHER_DIR PORT NODE_COUNT OUT_JSON
 */
import * as fs from 'fs';
import * as path from 'path';
import { decodeV6Message } from '../../src/transport/v6/messages';
import { V6Federation, v6TrainingArgs } from '../../researcher/v6-federation';
import { consoleLogger } from '../../src/transport/logger';
import { TorchTensor } from '../../src/serialize';
import { initBackend } from '../../src/engine/backend';
import spec from './lin-plan';

const [dir, port, count, out] = process.argv.slice(2);
const floats = (t: unknown) => Array.from((t as TorchTensor).data as Float32Array);

void (async () => {
  await initBackend(() => undefined);
  // TSR_RECORD=DIR: every task sent and reply received, per node, as NNN-task|reply-<Class>.mpk.
  const record = process.env.TSR_RECORD;
  let n = 0;
  const fed = await V6Federation.start({ dir, port: Number(port), logger: consoleLogger('ts-researcher', 'warn'),
    tap: record ? ({ kind, nodeId, bytes }) => {
      const cls = decodeV6Message(bytes).className;
      fs.mkdirSync(path.join(record, nodeId), { recursive: true });
      fs.writeFileSync(path.join(record, nodeId, `${String(++n).padStart(3, '0')}-${kind}-${cls}.mpk`), bytes);
    } : undefined });
  fed.server.on('feedback', (f) => {
    if (f.log) process.stdout.write(`TSR_NODE_LOG ${f.log.node_id} ${f.log.level} ${JSON.parse(f.log.msg).message}\n`);
  });
  const started = Date.now();
  const nodes = await fed.waitForNodes(Number(count), 60_000);
  console.log('TSR_NODES', nodes.sort().join(' '));
  console.log('TSR_PING', [...(await fed.ping()).keys()].sort().join(' '));
  console.log('TSR_LIST', [...(await fed.list())].map(([n, r]) => `${n}:${String(r.fields['count'])}`).sort().join(' '));
  const datasets = await fed.search(['#ts']);
  console.log('TSR_SEARCH', [...datasets.keys()].sort().join(' '));
  const approvals = await fed.approve([...datasets.keys()], spec, 'fedbiomed-ts researcher, v6 interop');
  console.log('TSR_APPROVAL', [...approvals].map(([n, r]) => `${n}:${r.className}:${String(r.fields['success'])}`).sort().join(' '));
  const status = await fed.status([...datasets.keys()], spec, 'exp_ts_v6');
  console.log('TSR_STATUS', [...status].map(([n, r]) => `${n}:${String(r.fields['status'])}`).sort().join(' '));
  const dump: Record<string, unknown> = { rounds: {} };
  const t0 = Date.now();
  const results = await fed.runFedAvg({ spec, datasets, rounds: 2, experimentId: 'exp_ts_v6', seed: 7, validate: true,
    trainingArgs: v6TrainingArgs({ loader_args: { batch_size: 20 }, optimizer_args: { lr: 0.05 }, epochs: 1,
      test_ratio: 0.25, test_on_global_updates: true, test_on_local_updates: true, random_seed: 1234 }),
    onRound: (r) => {
      console.log(`TSR_ROUND ${r.round} ${[...r.replies].map(([n, x]) => `${n}:${String(x.fields['sample_size'])}`).join(' ')}`);
      (dump['rounds'] as Record<string, unknown>)[r.round] = {
        replies: Object.fromEntries([...r.replies].map(([n, x]) => [n, { sample_size: x.fields['sample_size'], params:
          Object.fromEntries(Object.entries(x.fields['params'] as Record<string, unknown>).map(([k, t]) => [k, floats(t)])) }])),
        aggregated: Object.fromEntries([...r.weights].map(([k, t]) => [k, Array.from(t.data as ArrayLike<number>)])),
      };
    } });
  console.log('TSR_ROUNDS_DONE', results.length, `${Date.now() - t0} ms for 2 rounds + validation,`,
    `${Date.now() - started} ms in all`);
  fs.writeFileSync(out, JSON.stringify(dump));
  await fed.close();
  process.exit(0);
})().catch((err) => {
  console.error('TSR_FAILED', err);
  process.exit(1);
});
