/**
 * `fedbiomed-ts node …`: create a node directory, register datasets, review training plans, start the agent.
 * Every command works on one node directory (`--dir`, default `./fedbiomed-node` or $FEDBIOMED_TS_NODE_DIR).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command, Option } from 'commander';
import { DEFAULT_LOG_FILES, DEFAULT_LOG_MAX_BYTES, RotatingLogFile } from './log-file';
import { DATA_TYPES } from './datasets';
import type { PlanStatus } from './training-plans';
import { printable } from '../src/protocol/printable';

const DEFAULT_DIR = process.env.FEDBIOMED_TS_NODE_DIR ?? 'fedbiomed-node';

// The modules behind the commands load when a command runs: `fedbiomed-ts --help` must not pay for YAML, the MQTT
// client or the DICOM reader (the node's stores pull in the dataset inspectors).
const config = () => import('./config');
const stores = async (dir: string) => (await import('./stores')).openNodeStores(dir);

function dirOption(): Option {
  return new Option('--dir <dir>', 'node directory').default(DEFAULT_DIR);
}

function positive(name: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!(n > 0) || !Number.isFinite(n)) throw new Error(`${name} must be a positive number, got "${value}"`);
    return n;
  };
}

function print(line = ''): void {
  process.stdout.write(`${line}\n`);
}

function table(rawRows: string[][]): string {
  // Descriptions and researcher ids come from the wire: shown as text, never as terminal commands.
  const rows = rawRows.map((r) => r.map((c) => printable(c)));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

type Stores = Awaited<ReturnType<typeof stores>>;

/** A group's `list` command: JSON with --json, else a line saying there is nothing or a table of one row per entry. */
function addListCommand<T>(group: Command, description: string, entriesOf: (s: Stores) => T[], none: string,
  header: string[], row: (e: T) => string[]): void {
  group
    .command('list')
    .description(description)
    .addOption(dirOption())
    .option('--json', 'print JSON')
    .action(async (opts: { dir: string; json?: boolean }) => {
      const entries = entriesOf(await stores(opts.dir));
      if (opts.json) return print(JSON.stringify(entries, null, 2));
      if (entries.length === 0) return print(none);
      print(table([header, ...entries.map(row)]));
    });
}

/** `fedbiomed-ts node …`: one function per command group below. */
export function register(program: Command): void {
  const node = program.command('node').description('run and administer a hospital node');
  registerLifecycle(node);
  registerDatasets(node);
  registerPlans(node);
  registerQueue(node);
  registerConfig(node);
}

/** init, start, status, service: the node's own life. */
function registerLifecycle(node: Command): void {
  node
    .command('init')
    .description('create a node directory with its config.yaml')
    .addOption(dirOption())
    .option('--id <id>', 'node id (default node_<uuid4>)')
    .option('--broker <url>', 'MQTT broker URL', 'mqtt://localhost:1883')
    .option('--uploads-url <url>', 'file repository upload URL', 'http://localhost:8844/upload/')
    .addOption(new Option('--approval <on|off>', 'training-plan approval').choices(['on', 'off']).default('on'))
    .addOption(new Option('--protocol <v4.5|v6>', 'Fed-BioMed network: v4.5 (MQTT) or v6 (gRPC)')
      .choices(['v4.5', 'v6']).default('v4.5'))
    .option('--researcher <host:port>', 'v6: the researcher\'s gRPC endpoint (host as in its certificate)')
    .option('--name <name>', 'v6: the node name researchers see (default: the node id)')
    .action(async (opts: { dir: string; id?: string; broker: string; uploadsUrl: string; approval: string;
      protocol: 'v4.5' | 'v6'; researcher?: string; name?: string }) => {
      const { ConfigError, defaultConfig, writeConfig } = await config();
      if (opts.protocol === 'v6' && !opts.researcher) throw new ConfigError('--protocol v6 needs --researcher HOST:PORT');
      const nodeConfig = defaultConfig({
        ...(opts.id ? { nodeId: opts.id } : {}),
        broker: opts.broker,
        uploadsUrl: opts.uploadsUrl,
        approval: opts.approval === 'on',
        ...(opts.protocol === 'v6' ? { protocol: 'v6' as const, researcher: opts.researcher } : {}),
        ...(opts.name ? { nodeName: opts.name } : {}),
      });
      const file = writeConfig(opts.dir, nodeConfig);
      print(`node ${nodeConfig.nodeId} created in ${path.dirname(file)}`);
      if (nodeConfig.protocol === 'v6') {
        print(`  Fed-BioMed v6 researcher ${nodeConfig.researcher}, approval ${nodeConfig.approval ? 'on' : 'off'}`);
      } else {
        print(`  broker ${nodeConfig.broker}, uploads ${nodeConfig.uploadsUrl}, approval ${nodeConfig.approval ? 'on' : 'off'}`);
      }
    });

  node
    .command('start')
    .description('start the node agent (Ctrl-C or SIGTERM to stop); one node per folder')
    .addOption(dirOption())
    .option('--log-file <file>', 'log file, rotated by size (default: <dir>/logs/node.log; "-" for none)')
    .option('--log-max-mb <n>', 'size of one log file before rotation, in MB', positive('--log-max-mb'), DEFAULT_LOG_MAX_BYTES / 1024 / 1024)
    .option('--log-files <n>', 'log files kept, the current one included', positive('--log-files'), DEFAULT_LOG_FILES)
    .action(async (opts: { dir: string; logFile?: string; logMaxMb: number; logFiles: number }) => {
      const logFile = opts.logFile === '-' ? undefined
        : new RotatingLogFile(opts.logFile ?? path.join(path.resolve(opts.dir), 'logs', 'node.log'),
          { maxBytes: Math.round(opts.logMaxMb * 1024 * 1024), files: Math.round(opts.logFiles) });
      // Loaded lazily: the agent pulls in TensorFlow.js, which the administrative commands do not need.
      const { runNodeUntilSignal } = await import('./agent');
      await runNodeUntilSignal(opts.dir, {
        localLog: (line) => {
          process.stderr.write(`${line}\n`);
          logFile?.write(line);
        },
      });
    });

  node
    .command('status')
    .description('whether the node runs, its broker connection, last message, round in progress, datasets and plans')
    .addOption(dirOption())
    .option('--json', 'print JSON')
    .action(async (opts: { dir: string; json?: boolean }) => {
      const { nodeStatus, formatNodeStatus } = await import('./status');
      const report = nodeStatus(opts.dir);
      print(opts.json ? JSON.stringify(report, null, 2) : formatNodeStatus(report));
    });

  node
    .command('service')
    .description('write a systemd unit that runs this node (restart on failure, logs to the journal) and say how to enable it')
    .addOption(dirOption())
    .option('--user <user>', 'system user the node runs as (default: the current user)')
    .option('--out <file>', 'where to write the unit (default: <dir>/fedbiomed-ts-node-<id>.service)')
    .action(async (opts: { dir: string; user?: string; out?: string }) => {
      const { loadConfig } = await config();
      const { systemdUnit } = await import('./service');
      const unit = systemdUnit({ dir: path.resolve(opts.dir), nodeId: loadConfig(opts.dir).nodeId, user: opts.user ?? os.userInfo().username,
        env: process.env });
      const file = path.resolve(opts.out ?? path.join(opts.dir, unit.fileName));
      fs.writeFileSync(file, unit.text);
      print(`systemd unit written to ${file}`);
      print(`to install and start it (as root):`);
      for (const line of unit.enableCommands(file)) print(`  ${line}`);
    });
}

function registerDatasets(node: Command): void {
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
    .addOption(new Option('--unreadable <policy>', 'dicom / medical-folder / images: a round skips the patients (pictures) with unreadable files, or fails')
      .choices(['skip', 'fail']))
    .option('--series-rules <json-file>', 'dicom: series -> plan modality rules, [{"role", "modality"?, "description"?, "tags"?}]')
    .addOption(new Option('--pet <values>', 'dicom: PET values as SUV body weight or activity (Bq/mL)').choices(['suv', 'activity']))
    .option('--volumes <json>', 'medical-folder: 4-D images, {"<modality>": <volume index> | "channels"} (channels: <modality>_0, _1, …)')
    .option('--resample-to <modality>', 'medical-folder / dicom: resample the other modalities onto this one\'s voxel grid (e.g. PET onto CT)')
    .action(async (opts: { dir: string; type: string; path: string; tags: string; name: string;
      description: string; tabularFile?: string; indexCol?: string; unreadable?: 'skip' | 'fail';
      seriesRules?: string; pet?: 'suv' | 'activity'; volumes?: string; resampleTo?: string }) => {
      const { datasets } = await stores(opts.dir);
      const tabular = opts.tabularFile
        ? { tabular_file: path.resolve(opts.tabularFile),
          index_col: opts.indexCol === undefined ? 0 : /^\d+$/.test(opts.indexCol) ? Number(opts.indexCol) : opts.indexCol }
        : null;
      const readerParameters = {
        ...(opts.unreadable ? { unreadable: opts.unreadable } : {}),
        ...(opts.pet ? { pet: opts.pet } : {}),
        ...(opts.seriesRules ? { series_rules: JSON.parse(fs.readFileSync(opts.seriesRules, 'utf8')) as unknown } : {}),
        ...(opts.volumes ? { volumes: JSON.parse(opts.volumes) as unknown } : {}),
        ...(opts.resampleTo ? { resample_to: opts.resampleTo } : {}),
      };
      const parameters = Object.keys(readerParameters).length > 0 ? { ...tabular, ...readerParameters } : tabular;
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
        const policy = opts.unreadable === 'fail' ? 'rounds will fail until they are fixed' : opts.type === 'images' ? 'those pictures are skipped in rounds' : 'their patients are skipped in rounds';
        // A DICOM site also names the patients lacking a series the rules ask for (always skipped).
        const what = opts.type === 'dicom' ? 'unreadable file(s) or incomplete patient(s)' : 'unreadable file(s)';
        print(`${unreadable.length} ${what}, ${policy}:`);
        for (const why of unreadable) print(`  ${why}`);
      }
    });
  addListCommand(dataset, 'list registered datasets', (s) => s.datasets.list(), 'no dataset registered',
    ['DATASET ID', 'NAME', 'TYPE', 'TAGS', 'SHAPE'],
    (e) => [e.dataset_id, e.name, e.data_type, e.tags.join(','), JSON.stringify(e.shape)]);
  dataset
    .command('rm <datasetId>')
    .description('remove a dataset from the registry (the data itself is not touched)')
    .addOption(dirOption())
    .action(async (datasetId: string, opts: { dir: string }) => {
      if (!(await stores(opts.dir)).datasets.remove(datasetId)) {
        throw new Error(`no dataset with id ${datasetId}`);
      }
      print(`dataset ${datasetId} removed`);
    });
}

function registerPlans(node: Command): void {
  const plan = node.command('plan').description('review training plans sent by researchers');
  addListCommand(plan, 'list the training plans received and their status', (s) => s.plans.list(), 'no training plan received',
    ['TRAINING PLAN ID', 'STATUS', 'HASH', 'RESEARCHER', 'DESCRIPTION'],
    (p) => [p.training_plan_id, p.training_plan_status, p.hash.slice(0, 12), p.researcher_id ?? '', p.description]);
  plan
    .command('show <id>')
    .description('print a training plan (id, id prefix or hash prefix)')
    .addOption(dirOption())
    .action(async (id: string, opts: { dir: string }) => {
      const entry = (await stores(opts.dir)).plans.lookup(id);
      const { describeStoredPlan } = await import('./plan-review');
      print(printable(describeStoredPlan(entry), { multiline: true }));
    });
  for (const [verb, status] of [['approve', 'Approved'], ['reject', 'Rejected']] as [string, PlanStatus][]) {
    plan
      .command(`${verb} <id>`)
      .description(`${verb} a training plan`)
      .addOption(dirOption())
      .option('--notes <text>', 'notes kept with the decision')
      .action(async (id: string, opts: { dir: string; notes?: string }) => {
        const entry = (await stores(opts.dir)).plans.setStatus(id, status, opts.notes);
        print(`training plan ${entry.training_plan_id} ${status.toLowerCase()}`);
      });
  }
}

function registerQueue(node: Command): void {
  const queue = node.command('queue').description('train requests waiting (or running) on this node');
  queue
    .command('list')
    .addOption(dirOption())
    .action(async (opts: { dir: string }) => {
      const { readQueueFile } = await import('./task-queue');
      const { nodePaths } = await config();
      const tasks = readQueueFile<{ job_id?: string; researcher_id?: string; round?: number }>(nodePaths(opts.dir).queue);
      if (tasks.length === 0) return print('no train request queued');
      print(table([['#', 'RECEIVED', 'STATE', 'RESEARCHER', 'JOB', 'ROUND'],
        ...tasks.map((t) => [String(t.id), t.receivedAt, t.startedAt ? `started ${t.startedAt}` : 'waiting',
          String(t.task.researcher_id ?? ''), String(t.task.job_id ?? ''), String(t.task.round ?? '')])]));
    });
  queue
    .command('clear')
    .description('drop every queued train request (stop the node first: a running node keeps its own copy)')
    .addOption(dirOption())
    .action(async (opts: { dir: string }) => {
      const { readQueueFile, writeQueueFile } = await import('./task-queue');
      const { nodePaths } = await config();
      const file = nodePaths(opts.dir).queue;
      const dropped = readQueueFile(file).length;
      writeQueueFile(file, []);
      print(`${dropped} train request(s) dropped`);
    });
}

function registerConfig(node: Command): void {
  node
    .command('config')
    .description('print the effective configuration (file + environment)')
    .addOption(dirOption())
    .action(async (opts: { dir: string }) => {
      const { loadConfig, nodePaths } = await config();
      const effective = loadConfig(opts.dir);
      print(JSON.stringify({ ...effective, brokerPassword: effective.brokerPassword ? '***' : undefined,
        paths: nodePaths(opts.dir) }, null, 2));
    });
}
