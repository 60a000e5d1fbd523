/**
 * `fedbiomed-ts researcher …`:
 *   run EXPERIMENT.yaml [--resume DIR]   run (or resume) a federated experiment described in a YAML/JSON file
 *   ping | list | search --tags a,b      talk to the nodes on the network
 *   approve PLAN [--description TEXT]    upload a plan (.ts/.json/generated .py) and ask nodes to register it
 *   status PLAN                          each node's approval status for that plan
 * Broker and repository come from --broker / --uploads, else the experiment file, else Fed-BioMed's environment
 * (MQTT_BROKER, MQTT_BROKER_PORT, UPLOADS_URL). Exit codes: 0 ok, 1 the experiment failed, 2 bad input (file,
 * options), 3 the network cannot be reached, 4 some requested nodes did not answer.
 */
import { printable } from '../src/protocol/printable';
import { redactBrokerUrl } from '../src/transport/connection';
import * as fs from 'fs';
import * as path from 'path';
import { randomUUID } from 'crypto';
import type { Command } from 'commander';
// Only light modules at load time: every `fedbiomed-ts` command registers this module, so the experiment
// machinery (plans, tfjs, msgpack, MQTT) is loaded inside the actions that need it.
import { DEFAULT_DISCOVERY_TIMEOUT_MS, PLAN_REQUEST_TIMEOUT_MS, NetworkConfigError, isV6Network, networkFromEnvironment } from './network';
import type { MqttNetworkOptions, NetworkOptions } from './network';
import type { ExperimentNetwork } from './config';
import { formatTable } from './monitoring/summary';
import { consoleLogger } from '../src/transport/logger';
import { RepositoryError } from '../src/transport/repository';
import type { DatasetEntry } from '../src/protocol/messages';
import type { PlanStatusResult, Researcher } from './requests/researcher';
import type { Experiment } from './experiment';
import { FedbiomedTsError } from '../src/errors';


export const EXIT = { ok: 0, failed: 1, usage: 2, network: 3, missing: 4 } as const;

interface NetworkFlags {
  protocol?: string;
  broker?: string;
  uploads?: string;
  researcherId?: string;
  ca?: string;
  cert?: string;
  key?: string;
  host?: string;
  port?: number;
  researcherDir?: string;
  minNodes?: number;
  nodeWaitMs?: number;
  verbose?: boolean;
}

function fail(code: number, message: string, json = false): void {
  // Messages may quote the wire (a node's msg) or a configured URL with credentials: both neutralised.
  const text = printable(message, { multiline: true });
  process.stderr.write(`fedbiomed-ts researcher: ${text}\n`);
  // `--json` callers parse stdout: a failure is JSON too, never silence.
  if (json) process.stdout.write(`${JSON.stringify({ error: text, exitCode: code })}\n`);
  process.exitCode = code;
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`expected a TCP port, got ${JSON.stringify(value)}`);
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function networkOptions(flags: NetworkFlags, fromFile: ExperimentNetwork = {}): NetworkOptions {
  const protocol = flags.protocol ?? fromFile.protocol ?? 'v4.5';
  if (protocol !== 'v4.5' && protocol !== 'v6') throw new NetworkConfigError(`--protocol must be v4.5 or v6, got ${JSON.stringify(protocol)}`);
  const logger = flags.verbose ? consoleLogger('researcher', 'info') : undefined;
  if (protocol === 'v6') {
    const v45 = (['broker', 'uploads', 'researcherId', 'ca', 'cert', 'key'] as const).filter((k) => flags[k] !== undefined);
    if (v45.length > 0) throw new NetworkConfigError(`--${v45.join(', --')}: not used on a v6 network (no broker nor repository; the researcher id is in its certificate)`);
    return {
      protocol: 'v6',
      host: flags.host ?? fromFile.host,
      port: flags.port ?? fromFile.port,
      dir: flags.researcherDir ? path.resolve(flags.researcherDir) : fromFile.dir,
      minNodes: flags.minNodes ?? fromFile.minNodes,
      nodeWaitMs: flags.nodeWaitMs ?? fromFile.nodeWaitMs,
      ...(logger ? { logger } : {}),
    };
  }
  const v6 = (['host', 'port', 'researcherDir', 'minNodes', 'nodeWaitMs'] as const).filter((k) => flags[k] !== undefined);
  if (v6.length > 0) throw new NetworkConfigError(`--${v6.map((k) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)).join(', --')}: only with --protocol v6`);
  const explicit: Partial<MqttNetworkOptions> = {
    brokerUrl: flags.broker ?? fromFile.brokerUrl,
    uploadsUrl: flags.uploads ?? fromFile.uploadsUrl,
    researcherId: flags.researcherId ?? fromFile.researcherId,
    caFile: flags.ca,
    certFile: flags.cert,
    keyFile: flags.key,
  };
  const options = networkFromEnvironment(explicit);
  if (logger) options.logger = logger;
  return options;
}

/** Connects, mapping failures to exit code 3 with the broker (or the v6 port) named. */
async function connect(network: NetworkOptions, json = false): Promise<Researcher | undefined> {
  const { Researcher } = await import('./requests/researcher');
  try {
    return await Researcher.connect(isV6Network(network) ? network : { ...network, connectTimeoutMs: network.connectTimeoutMs ?? 5000 });
  } catch (err) {
    const where = isV6Network(network) ? `start the v6 researcher (port ${network.port ?? 'default'})` : `connect to the broker at ${redactBrokerUrl(network.brokerUrl)}`;
    fail(EXIT.network, `cannot ${where}: ${(err as Error).message}`, json);
    return undefined;
  }
}

function classify(err: unknown): number {
  const name = (err as Error)?.name ?? '';
  if (err instanceof NetworkConfigError) return EXIT.usage;
  const usage = ['ExperimentFileError', 'TrainingArgsError', 'AggregationError', 'StrategyError', 'PlanSourceError', 'PlanValidationError', 'PlanLoadError', 'BreakpointError', 'EmbeddedPlanError', 'PlanFileError'];
  if (usage.includes(name)) return EXIT.usage;
  if (name === 'ExperimentError' && /^(FB407|FB408|FB401)/.test((err as Error).message)) return EXIT.failed;
  if (err instanceof RepositoryError && err.errorCode === 'FB201') return EXIT.network;
  if (/FB201|ECONNREFUSED|cannot connect|cannot reach/i.test((err as Error)?.message ?? '')) return EXIT.network;
  return EXIT.failed;
}

function printDatasets(found: Map<string, DatasetEntry[]>, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(Object.fromEntries(found), null, 2) + '\n');
    return;
  }
  const rows: string[][] = [];
  for (const [nodeId, dbs] of found) {
    for (const d of dbs) {
      rows.push([nodeId, d.dataset_id, String(d.name ?? ''), String(d.data_type ?? ''), JSON.stringify(d.tags ?? []), JSON.stringify(d.shape ?? '')]);
    }
  }
  process.stdout.write(rows.length === 0 ? 'no dataset found\n' : formatTable(['node', 'dataset_id', 'name', 'type', 'tags', 'shape'], rows) + '\n');
}

interface DiscoveryFlags extends NetworkFlags {
  nodes?: string[];
  timeout?: number;
  json?: boolean;
  tags?: string[];
}

function reportMissing(asked: string[] | undefined, answered: Set<string>): void {
  const missing = (asked ?? []).filter((n) => !answered.has(n));
  if (missing.length > 0) fail(EXIT.missing, `no answer from ${missing.join(', ')}`);
}

async function discovery(flags: DiscoveryFlags, run: (r: Researcher) => Promise<void>): Promise<void> {
  let network: NetworkOptions;
  try {
    network = networkOptions(flags);
  } catch (err) {
    return fail(EXIT.usage, (err as Error).message);
  }
  const researcher = await connect(network);
  if (!researcher) return;
  try {
    await run(researcher);
  } catch (err) {
    fail(classify(err), (err as Error).message);
  } finally {
    await researcher.close();
  }
}

function addNetworkOptions(cmd: Command): Command {
  return cmd
    .option('--broker <url>', 'MQTT broker, mqtt://HOST:PORT (default: $MQTT_BROKER:$MQTT_BROKER_PORT, or localhost:1883)')
    .option('--uploads <url>', 'file repository upload URL (default: $UPLOADS_URL, or http://localhost:8844/upload/)')
    .option('--researcher-id <id>', 'researcher id (default: $RESEARCHER_ID, or researcher_<uuid>)')
    .option('--ca <file>', 'PEM CA of the network, trusted for mqtts:// and https:// (besides the system CAs for https)')
    .option('--cert <file>', 'PEM client certificate, for a broker or repository that requires one')
    .option('--key <file>', 'PEM key of the client certificate')
    .option('--protocol <version>', 'Fed-BioMed network: v4.5 (MQTT + file repository, default) or v6 (gRPC: this process is the server nodes dial)')
    .option('--host <host>', 'v6: host name nodes dial, written in the certificate (default localhost)')
    .option('--port <port>', 'v6: gRPC port (default 50051)', portNumber)
    .option('--researcher-dir <dir>', 'v6: researcher directory, id and certificate kept across runs (default ./fbm-researcher-ts)')
    .option('--min-nodes <n>', 'v6: nodes to wait for before the first request (default 1)', positiveInt)
    .option('--node-wait-ms <ms>', 'v6: how long to wait for them (default 20000)', positiveInt)
    .option('--verbose', 'log transport activity on stderr');
}

function addDiscoveryOptions(cmd: Command): Command {
  return addNetworkOptions(cmd)
    .option('--nodes <ids>', 'only these nodes (comma-separated); finishes as soon as they all answered', list)
    .option('--timeout <ms>', `how long to wait for answers (default ${DEFAULT_DISCOVERY_TIMEOUT_MS}; approve and status: ${PLAN_REQUEST_TIMEOUT_MS})`, positiveInt)
    .option('--json', 'print JSON');
}

interface RunFlags extends NetworkFlags {
  resume?: string;
  history?: string;
  tensorboard?: string;
  breakpoints?: string;
  weights?: string;
  progress?: boolean;
  json?: boolean;
}

async function runExperiment(file: string, flags: RunFlags): Promise<void> {
  const { loadExperimentFile } = await import('./config');
  const { Experiment } = await import('./experiment');
  const { encodeAggregatedParams } = await import('./weights-file');
  let loaded;
  let network: NetworkOptions;
  try {
    loaded = loadExperimentFile(file);
    network = networkOptions(flags, loaded.network);
    // v6 nodes dial in: wait for the experiment's own nodes, when the file names them.
    if (isV6Network(network) && loaded.options.nodes) network.nodeIds = loaded.options.nodes;
  } catch (err) {
    return fail(EXIT.usage, (err as Error).message, flags.json);
  }
  const researcher = await connect(network, flags.json);
  if (!researcher) return;
  const sinks = {
    history: flags.history ? path.resolve(flags.history) : loaded.options.history,
    tensorboard: flags.tensorboard ? path.resolve(flags.tensorboard) : loaded.options.tensorboard,
    breakpointDir: flags.breakpoints ? path.resolve(flags.breakpoints) : loaded.options.breakpointDir,
    console: flags.progress === false ? false : { out: process.stderr },
    keepRoundWeights: false,
  };
  let exp: Experiment;
  try {
    exp = flags.resume
      ? await Experiment.load(path.resolve(flags.resume), { ...sinks, network: researcher })
      : new Experiment({ ...loaded.options, ...sinks, network: researcher });
  } catch (err) {
    await researcher.close();
    return fail(classify(err), (err as Error).message, flags.json);
  }
  try {
    const result = await exp.run();
    const weightsOut = flags.weights ? path.resolve(flags.weights) : loaded.weightsOut;
    if (weightsOut) {
      fs.mkdirSync(path.dirname(weightsOut), { recursive: true });
      fs.writeFileSync(weightsOut, Buffer.concat(encodeAggregatedParams(researcher.id, result.weights)));
    }
    if (flags.json) {
      process.stdout.write(
        JSON.stringify({ jobId: exp.jobId, roundsCompleted: result.roundsCompleted, paramsUrl: result.paramsUrl, weightsFile: weightsOut ?? null, summaries: result.summaries, privacy: result.privacy }, null, 2) + '\n',
      );
    }
  } catch (err) {
    const hint = sinks.breakpointDir ? ` (resume with --resume ${sinks.breakpointDir})` : '';
    fail(classify(err), `${(err as Error).message}${hint}`, flags.json);
  } finally {
    await exp.close();
    await researcher.close();
  }
}

interface PlanFlags extends DiscoveryFlags {
  description?: string;
  className?: string;
}

/** A plan file that cannot be shipped as it is (exit 2). */
class PlanFileError extends FedbiomedTsError {}

/**
 * The source `researcher run` would upload for this plan file, so a node hashes the same bytes at approval,
 * status and train time: a plan spec (.ts/.json, or a generated .py carrying PLAN_SPEC) goes through the same
 * generator; a hand-written Fed-BioMed plan (.py without PLAN_SPEC, run's `plan: { python: … }`) goes as is.
 * Errors name the file and are usage errors (exit 2).
 */
async function planSource(file: string, flags: PlanFlags): Promise<string> {
  const { loadPlanFile } = await import('../src/plan/load');
  const { findEmbeddedPlan } = await import('../src/plan/embed');
  const { shippedPlan } = await import('./plan-source');
  try {
    if (/\.py$/i.test(file) && fs.existsSync(file)) {
      const text = fs.readFileSync(file, 'utf8');
      if (!findEmbeddedPlan(text)) return handWrittenPlan(text, flags.className);
    }
    // The file `run` would send on this network: v6 nodes get the v6 PyTorch file (and hash that one).
    const fedbiomed = flags.protocol === 'v6' ? 'v6' : 'v4.5';
    return shippedPlan(loadPlanFile(file), { className: flags.className, fedbiomed }).source;
  } catch (err) {
    const e = err as Error;
    if (!e.message.startsWith(file)) e.message = `${file}: ${e.message}`;
    throw e;
  }
}

/** A hand-written plan is sent untouched; it must at least define the class the nodes will import. */
function handWrittenPlan(text: string, className: string | undefined): string {
  if (className !== undefined && !/^[A-Za-z_]\w*$/.test(className)) {
    throw new PlanFileError(`--class-name ${JSON.stringify(className)} is not a Python identifier`);
  }
  const wanted = className ? new RegExp(`^class\\s+${className}\\b`, 'm') : /^class\s+[A-Za-z_]\w*/m;
  if (!wanted.test(text)) {
    throw new PlanFileError(className ? `the Python plan defines no class ${className}` : 'the Python plan defines no class');
  }
  return text;
}

/** Loads the plan first (a bad file is a usage error, reported before touching the network), then connects. */
async function withPlan(file: string, flags: PlanFlags, run: (r: Researcher, source: string) => Promise<void>): Promise<void> {
  let source: string;
  try {
    source = await planSource(file, flags);
  } catch (err) {
    return fail(classify(err), (err as Error).message);
  }
  return discovery(flags, (r) => run(r, source));
}

async function approve(r: Researcher, source: string, flags: PlanFlags): Promise<void> {
  const result = await r.requestApproval({ source }, { nodes: flags.nodes, timeoutMs: flags.timeout, description: flags.description });
  const replies = [...result.replies.values()];
  if (flags.json) {
    const byNode = Object.fromEntries(replies.map((m) => [m.node_id, { status: m.status, success: m.success }]));
    process.stdout.write(JSON.stringify({ planUrl: result.planUrl, replies: byNode, missing: result.missing }, null, 2) + '\n');
  } else if (replies.length > 0) {
    process.stdout.write(formatTable(['node', 'status', 'success'], replies.map((m) => [m.node_id, String(m.status), String(m.success)])) + '\n');
  }
  if (replies.length === 0) return fail(EXIT.missing, 'no node answered the approval request');
  const refused = replies.filter((m) => !m.success).map((m) => m.node_id);
  // A missing node is the more actionable problem (wrong id, node down), so it decides the exit code.
  reportMissing(flags.nodes, new Set(result.replies.keys()));
  if (refused.length > 0 && process.exitCode !== EXIT.missing) fail(EXIT.failed, `the plan was not stored by ${refused.join(', ')}`);
}

async function status(r: Researcher, source: string, flags: PlanFlags): Promise<void> {
  // training-plan-status goes to each node's own topic: without --nodes, ask whoever answers a ping.
  const nodes = flags.nodes ?? [...(await r.ping({ timeoutMs: flags.timeout })).nodes.keys()];
  if (nodes.length === 0) return fail(EXIT.missing, 'no node answered the ping');
  const planUrl = await r.repository.upload(Buffer.from(source, 'utf8'), `training_plan_${randomUUID()}.py`);
  const { statuses } = await r.planStatus(planUrl, { nodes, timeoutMs: flags.timeout });
  printStatuses([...statuses.values()], Boolean(flags.json));
  if (statuses.size === 0) return fail(EXIT.missing, `no node answered the status request (asked ${nodes.join(', ')})`);
  reportMissing(nodes, new Set(statuses.keys()));
  const failed = [...statuses.values()].filter((s) => !s.success).map((s) => s.nodeId);
  if (failed.length > 0 && process.exitCode !== EXIT.missing) fail(EXIT.failed, `status check failed on ${failed.join(', ')}`);
}

function printStatuses(statuses: PlanStatusResult[], json: boolean): void {
  if (json) {
    const byNode = Object.fromEntries(
      statuses.map((s) => [s.nodeId, { status: s.status, approval_obligation: s.approvalObligation, success: s.success, msg: s.message, can_train: s.canTrain }]),
    );
    process.stdout.write(JSON.stringify(byNode, null, 2) + '\n');
    return;
  }
  if (statuses.length === 0) return;
  const rows = statuses.map((s) => [s.nodeId, s.status, String(s.approvalObligation), s.canTrain ? 'yes' : 'no', s.message]);
  process.stdout.write(formatTable(['node', 'status', 'approval_obligation', 'can train', 'msg'], rows) + '\n');
}

export function register(program: Command): void {
  const researcher = program.command('researcher').description('run federated experiments and query nodes (researcher side)');

  addNetworkOptions(
    researcher
      .command('run')
      .argument('<experiment>', 'experiment file (YAML or JSON, see schemas/experiment.schema.json)')
      .description('run a federated experiment'),
  )
    .option('--resume <dir>', 'resume from a breakpoint directory instead of starting over')
    .option('--history <file>', 'append every event to this JSON-lines file')
    .option('--tensorboard <dir>', 'write TensorBoard scalars under this directory')
    .option('--breakpoints <dir>', 'save a breakpoint here after every round')
    .option('--weights <file>', 'write the final global weights (.mpk) here')
    .option('--no-progress', 'no progress bar, logs or summary tables on stderr')
    .option('--json', 'print a JSON summary on stdout at the end')
    .action((file: string, flags: RunFlags) => runExperiment(file, flags));

  addDiscoveryOptions(researcher.command('ping').description('ping the nodes and show who answered')).action((flags: DiscoveryFlags) =>
    discovery(flags, async (r) => {
      const result = await r.ping({ nodes: flags.nodes, timeoutMs: flags.timeout });
      if (flags.json) process.stdout.write(JSON.stringify(Object.fromEntries(result.nodes), null, 2) + '\n');
      else if (result.nodes.size === 0) process.stdout.write('no node answered\n');
      else process.stdout.write(formatTable(['node', 'reply ms'], [...result.nodes].map(([n, ms]) => [n, String(ms)])) + '\n');
      reportMissing(flags.nodes, new Set(result.nodes.keys()));
    }),
  );

  addDiscoveryOptions(researcher.command('list').description("list the nodes' datasets")).action((flags: DiscoveryFlags) =>
    discovery(flags, async (r) => {
      const found = await r.listDatasets({ nodes: flags.nodes, timeoutMs: flags.timeout });
      printDatasets(found, Boolean(flags.json));
      reportMissing(flags.nodes, new Set(found.keys()));
    }),
  );

  addDiscoveryOptions(researcher.command('search').description('find datasets carrying every given tag'))
    .requiredOption('--tags <tags>', 'comma-separated tags', list)
    .action((flags: DiscoveryFlags) =>
      discovery(flags, async (r) => {
        const found = await r.search(flags.tags ?? [], { nodes: flags.nodes, timeoutMs: flags.timeout });
        printDatasets(found, Boolean(flags.json));
        reportMissing(flags.nodes, new Set(found.keys()));
      }),
    );

  const planCommand = (name: string, description: string): Command =>
    addDiscoveryOptions(
      researcher
        .command(name)
        .argument('<plan>', 'plan file: .ts/.js module, .json spec, or a generated PyTorch plan (.py)')
        .description(description),
    ).option('--class-name <name>', "Python class name of the generated plan, as the experiment's planClassName (default: the plan's name)");

  planCommand('approve', 'upload a plan and ask the nodes to register it for approval')
    .option('--description <text>', 'description shown to the node operators')
    .action((file: string, flags: PlanFlags) => withPlan(file, flags, (r, source) => approve(r, source, flags)));

  planCommand('status', "show each node's approval status for a plan").action((file: string, flags: PlanFlags) =>
    withPlan(file, flags, (r, source) => status(r, source, flags)),
  );
}
