/**
 * `fedbiomed-ts node …`: create a node directory, register datasets, review training plans, start the agent.
 * Every command works on one node directory (`--dir`, default `./fedbiomed-node` or $FEDBIOMED_TS_NODE_DIR).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import { defaultConfig, loadConfig, nodePaths, writeConfig } from './config';
import { openNodeStores } from './stores';
import { DATA_TYPES } from './datasets';
import type { PlanStatus } from './training-plans';

const DEFAULT_DIR = process.env.FEDBIOMED_TS_NODE_DIR ?? 'fedbiomed-node';

function dirOption(): Option {
  return new Option('--dir <dir>', 'node directory').default(DEFAULT_DIR);
}

function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

export function register(program: Command): void {
  const node = program.command('node').description('run and administer a hospital node');

  node
    .command('init')
    .description('create a node directory with its config.yaml')
    .addOption(dirOption())
    .option('--id <id>', 'node id (default node_<uuid4>)')
    .option('--broker <url>', 'MQTT broker URL', 'mqtt://localhost:1883')
    .option('--uploads-url <url>', 'file repository upload URL', 'http://localhost:8844/upload/')
    .addOption(new Option('--approval <on|off>', 'training-plan approval').choices(['on', 'off']).default('on'))
    .action((opts: { dir: string; id?: string; broker: string; uploadsUrl: string; approval: string }) => {
      const config = defaultConfig({
        ...(opts.id ? { nodeId: opts.id } : {}),
        broker: opts.broker,
        uploadsUrl: opts.uploadsUrl,
        approval: opts.approval === 'on',
      });
      const file = writeConfig(opts.dir, config);
      print(`node ${config.nodeId} created in ${path.dirname(file)}`);
      print(`  broker ${config.broker}, uploads ${config.uploadsUrl}, approval ${config.approval ? 'on' : 'off'}`);
    });

  node
    .command('start')
    .description('start the node agent (Ctrl-C or SIGTERM to stop)')
    .addOption(dirOption())
    .action(async (opts: { dir: string }) => {
      // Loaded lazily: the agent pulls in TensorFlow.js, which the administrative commands do not need.
      const { runNodeUntilSignal } = await import('./agent');
      await runNodeUntilSignal(opts.dir);
    });

  const dataset = node.command('dataset').description('register, list and remove datasets');
  dataset
    .command('add')
    .description('register a dataset (its shape and types are read now)')
    .addOption(dirOption())
    .addOption(new Option('--type <type>', 'dataset type').choices([...DATA_TYPES]).makeOptionMandatory())
    .requiredOption('--path <path>', 'file or folder')
    .requiredOption('--tags <tags>', 'comma-separated tags')
    .requiredOption('--name <name>', 'dataset name')
    .option('--description <text>', 'description', '')
    .option('--tabular-file <csv>', 'medical-folder / dicom: demographics CSV')
    .option('--index-col <col>', 'medical-folder / dicom: index column of the demographics CSV (name or number)')
    .addOption(new Option('--unreadable <policy>', 'dicom / medical-folder: a round skips patients with unreadable files, or fails')
      .choices(['skip', 'fail']))
    .option('--series-rules <json-file>', 'dicom: series -> plan modality rules, [{"role", "modality"?, "description"?, "tags"?}]')
    .addOption(new Option('--pet <values>', 'dicom: PET values as SUV body weight or activity (Bq/mL)').choices(['suv', 'activity']))
    .action(async (opts: { dir: string; type: string; path: string; tags: string; name: string;
      description: string; tabularFile?: string; indexCol?: string; unreadable?: 'skip' | 'fail';
      seriesRules?: string; pet?: 'suv' | 'activity' }) => {
      const { datasets } = openNodeStores(opts.dir);
      const tabular = opts.tabularFile
        ? { tabular_file: path.resolve(opts.tabularFile),
          index_col: opts.indexCol === undefined ? 0 : /^\d+$/.test(opts.indexCol) ? Number(opts.indexCol) : opts.indexCol }
        : null;
      const dicom = {
        ...(opts.unreadable ? { unreadable: opts.unreadable } : {}),
        ...(opts.pet ? { pet: opts.pet } : {}),
        ...(opts.seriesRules ? { series_rules: JSON.parse(fs.readFileSync(opts.seriesRules, 'utf8')) as unknown } : {}),
      };
      const parameters = Object.keys(dicom).length > 0 ? { ...tabular, ...dicom } : tabular;
      const unreadable: string[] = [];
      const entry = await datasets.add({
        name: opts.name,
        dataType: opts.type,
        tags: opts.tags.split(','),
        description: opts.description,
        path: path.resolve(opts.path),
        parameters,
      }, unreadable);
      print(`dataset ${entry.dataset_id} added: ${entry.name} [${entry.tags.join(', ')}] shape ${JSON.stringify(entry.shape)}`);
      if (unreadable.length > 0) {
        const policy = opts.unreadable === 'fail' ? 'rounds will fail until they are fixed' : 'their patients are skipped in rounds';
        print(`${unreadable.length} unreadable file(s), ${policy}:`);
        for (const why of unreadable) print(`  ${why}`);
      }
    });
  dataset
    .command('list')
    .description('list registered datasets')
    .addOption(dirOption())
    .option('--json', 'print JSON')
    .action((opts: { dir: string; json?: boolean }) => {
      const entries = openNodeStores(opts.dir).datasets.list();
      if (opts.json) return print(JSON.stringify(entries, null, 2));
      if (entries.length === 0) return print('no dataset registered');
      print(table([['DATASET ID', 'NAME', 'TYPE', 'TAGS', 'SHAPE'],
        ...entries.map((e) => [e.dataset_id, e.name, e.data_type, e.tags.join(','), JSON.stringify(e.shape)])]));
    });
  dataset
    .command('rm <datasetId>')
    .description('remove a dataset from the registry (the data itself is not touched)')
    .addOption(dirOption())
    .action((datasetId: string, opts: { dir: string }) => {
      if (!openNodeStores(opts.dir).datasets.remove(datasetId)) {
        throw new Error(`no dataset with id ${datasetId}`);
      }
      print(`dataset ${datasetId} removed`);
    });

  const plan = node.command('plan').description('review training plans sent by researchers');
  plan
    .command('list')
    .addOption(dirOption())
    .option('--json', 'print JSON')
    .action((opts: { dir: string; json?: boolean }) => {
      const plans = openNodeStores(opts.dir).plans.list();
      if (opts.json) return print(JSON.stringify(plans, null, 2));
      if (plans.length === 0) return print('no training plan received');
      print(table([['TRAINING PLAN ID', 'STATUS', 'HASH', 'RESEARCHER', 'DESCRIPTION'],
        ...plans.map((p) => [p.training_plan_id, p.training_plan_status, p.hash.slice(0, 12), p.researcher_id ?? '',
          p.description])]));
    });
  plan
    .command('show <id>')
    .description('print a training plan (id, id prefix or hash prefix)')
    .addOption(dirOption())
    .action(async (id: string, opts: { dir: string }) => {
      const entry = openNodeStores(opts.dir).plans.lookup(id);
      const { describeStoredPlan } = await import('./plan-review');
      print(describeStoredPlan(entry));
    });
  for (const [verb, status] of [['approve', 'Approved'], ['reject', 'Rejected']] as [string, PlanStatus][]) {
    plan
      .command(`${verb} <id>`)
      .description(`${verb} a training plan`)
      .addOption(dirOption())
      .option('--notes <text>', 'notes kept with the decision')
      .action((id: string, opts: { dir: string; notes?: string }) => {
        const entry = openNodeStores(opts.dir).plans.setStatus(id, status, opts.notes);
        print(`training plan ${entry.training_plan_id} ${status.toLowerCase()}`);
      });
  }

  node
    .command('config')
    .description('print the effective configuration (file + environment)')
    .addOption(dirOption())
    .action((opts: { dir: string }) => {
      const config = loadConfig(opts.dir);
      print(JSON.stringify({ ...config, brokerPassword: config.brokerPassword ? '***' : undefined,
        paths: nodePaths(opts.dir) }, null, 2));
    });
}
