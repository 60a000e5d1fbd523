/**
 * Node configuration: `<node dir>/config.yaml`, overridden by Fed-BioMed's environment variables
 * (`MQTT_BROKER`, `MQTT_BROKER_PORT`, `UPLOADS_URL`, `NODE_ID`, `ENABLE_TRAINING_PLAN_APPROVAL`; v6:
 * `FBM_RESEARCHER_IP`, `FBM_RESEARCHER_PORT`), so a TS node
 * drops into a deployment scripted for Python nodes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomUUID } from 'crypto';
import YAML from 'yaml';
import { nodeIdProblem } from '../src/transport/topics';
import { FedbiomedTsError } from '../src/errors';

export const CONFIG_VERSION = 1;
export const CONFIG_FILE = 'config.yaml';

export interface NodeConfig {
  version: number;
  nodeId: string;
  /** `mqtt://host:port` or `mqtts://host:port`. */
  broker: string;
  brokerUsername?: string;
  brokerPassword?: string;
  /** CA certificate file for mqtts:// (and for an https:// repository unless repositoryCa is given). */
  brokerCa?: string;
  /** Client certificate and key, for a broker or repository that requires one. */
  clientCert?: string;
  clientKey?: string;
  /** CA certificate file for an https:// repository signed by another CA than the broker's. */
  repositoryCa?: string;
  uploadsUrl: string;
  /** Training-plan approval; on by default (a hospital must opt out, not in). */
  approval: boolean;
  /** Which Fed-BioMed network the node joins: v4.5 (MQTT + file repository, the default) or v6 (gRPC). */
  protocol?: 'v4.5' | 'v6';
  /** v6: the researcher's gRPC endpoint, `HOST:PORT` (the host must match its certificate's CN). */
  researcher?: string;
  /** v6: the node's display name (`node_name` in replies); the node id when unset. */
  nodeName?: string;
  /** What this node accepts from the network; defaults in DEFAULT_LIMITS, overridden by `limits:` in config.yaml. */
  limits: NodeLimits;
}

/** `HOST:PORT` of a v6 researcher, checked. */
export function parseResearcherAddress(address: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new ConfigError(`researcher address ${JSON.stringify(address)} is not HOST:PORT (e.g. localhost:50051)`);
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/**
 * The node's own bounds on what a request may cost it. None of them exists in Fed-BioMed v4.5, which lets a
 * request hold a node for ever or grow it until the kernel kills it; each is checked before the cost is paid.
 */
export interface NodeLimits {
  /** A train request not answered after this long is answered `success:false` and the queue moves on. */
  roundTimeoutS: number;
  /** One download, every retry included. */
  downloadTimeoutS: number;
  /** Largest training plan file downloaded (approval, status, train). */
  maxPlanBytes: number;
  /** Longest approval description stored (characters). */
  maxDescriptionChars: number;
  /** Plans waiting for a review; an approval request past it is refused until some are reviewed. */
  maxPendingPlans: number;
  /** Largest model accepted for training (number of parameters). */
  maxParameters: number;
  /** Largest estimated training memory (weights, gradients, optimizer state, activations of one batch), MB. */
  maxTrainingMemoryMb: number;
  /**
   * Memory a round may add to the node process while it runs (resident set, dataset reading included), MB: the
   * run-time cap behind the estimate. Past it the round's training worker is terminated and the round fails.
   */
  maxRoundMemoryMb: number;
}

export const DEFAULT_LIMITS: NodeLimits = {
  roundTimeoutS: 3600,
  downloadTimeoutS: 300,
  maxPlanBytes: 4 * 1024 * 1024,
  maxDescriptionChars: 4096,
  maxPendingPlans: 20,
  maxParameters: 100_000_000,
  maxTrainingMemoryMb: 4096,
  maxRoundMemoryMb: 8192,
};

/** config.yaml names of the limits (snake_case, like the rest of the file). */
const LIMIT_KEYS: Record<keyof NodeLimits, string> = {
  roundTimeoutS: 'round_timeout_s',
  downloadTimeoutS: 'download_timeout_s',
  maxPlanBytes: 'max_plan_bytes',
  maxDescriptionChars: 'max_description_chars',
  maxPendingPlans: 'max_pending_plans',
  maxParameters: 'max_parameters',
  maxTrainingMemoryMb: 'max_training_memory_mb',
  maxRoundMemoryMb: 'max_round_memory_mb',
};

export class ConfigError extends FedbiomedTsError {}

export interface NodePaths {
  dir: string;
  config: string;
  db: string;
  plans: string;
  queue: string;
  tmp: string;
  states: string;
}

export function nodePaths(dir: string): NodePaths {
  const abs = path.resolve(dir);
  return {
    dir: abs,
    config: path.join(abs, CONFIG_FILE),
    db: path.join(abs, 'db.json'),
    plans: path.join(abs, 'training_plans'),
    queue: path.join(abs, 'queue.json'),
    tmp: path.join(abs, 'tmp'),
    states: path.join(abs, 'node_states'),
  };
}

/** A node id becomes an MQTT topic level: the transport's rule decides (no `/`, `+`, `#`, not a reserved level). */
export function checkNodeId(id: string): string {
  const problem = nodeIdProblem(id);
  if (problem) throw new ConfigError(problem);
  return id;
}

export function defaultConfig(overrides: Partial<NodeConfig> = {}): NodeConfig {
  return {
    version: CONFIG_VERSION,
    nodeId: `node_${randomUUID()}`,
    broker: 'mqtt://localhost:1883',
    uploadsUrl: 'http://localhost:8844/upload/',
    approval: true,
    ...overrides,
    limits: { ...DEFAULT_LIMITS, ...overrides.limits },
  };
}

export function writeConfig(dir: string, config: NodeConfig): string {
  const file = nodePaths(dir).config;
  if (fs.existsSync(file)) throw new ConfigError(`${file} exists already: this directory holds a node`);
  checkNodeId(config.nodeId);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const doc = {
    version: config.version,
    node_id: config.nodeId,
    broker: config.broker,
    ...(config.brokerUsername ? { broker_username: config.brokerUsername } : {}),
    ...(config.brokerPassword ? { broker_password: config.brokerPassword } : {}),
    ...(config.brokerCa ? { broker_ca: config.brokerCa } : {}),
    ...(config.clientCert ? { client_cert: config.clientCert } : {}),
    ...(config.clientKey ? { client_key: config.clientKey } : {}),
    ...(config.repositoryCa ? { repository_ca: config.repositoryCa } : {}),
    uploads_url: config.uploadsUrl,
    approval: config.approval,
    ...(config.protocol === 'v6' ? { protocol: 'v6', researcher: config.researcher } : {}),
    ...(config.nodeName ? { node_name: config.nodeName } : {}),
    ...(limitsChanged(config.limits) ? { limits: limitsDoc(config.limits) } : {}),
  };
  if (config.protocol === 'v6') parseResearcherAddress(config.researcher ?? '');
  fs.writeFileSync(file, YAML.stringify(doc), { mode: 0o600 });
  return file;
}

/** Reads the config file and applies environment overrides. */
export function loadConfig(dir: string, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const file = nodePaths(dir).config;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new ConfigError(`no node in ${path.resolve(dir)}: ${CONFIG_FILE} not found (run "fedbiomed-ts node init")`);
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object') throw new ConfigError(`${file}: expected a mapping`);
  const doc = raw as Record<string, unknown>;
  const optionalStr = (key: string): string | undefined => {
    const v = doc[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new ConfigError(`${file}: "${key}" must be a string`);
    return v;
  };
  const str = (key: string): string => {
    const v = optionalStr(key);
    if (v === undefined) throw new ConfigError(`${file}: "${key}" is missing`);
    return v;
  };
  const version = doc['version'];
  if (typeof version !== 'number' || Math.trunc(version) !== CONFIG_VERSION) {
    throw new ConfigError(`${file}: config version ${String(version)} is not supported (expected ${CONFIG_VERSION})`);
  }
  if (typeof doc['approval'] !== 'boolean') throw new ConfigError(`${file}: "approval" must be true or false`);
  const config: NodeConfig = {
    version: CONFIG_VERSION,
    nodeId: str('node_id'),
    broker: str('broker'),
    brokerUsername: optionalStr('broker_username'),
    brokerPassword: optionalStr('broker_password'),
    brokerCa: optionalStr('broker_ca'),
    clientCert: optionalStr('client_cert'),
    clientKey: optionalStr('client_key'),
    repositoryCa: optionalStr('repository_ca'),
    uploadsUrl: str('uploads_url'),
    approval: doc['approval'],
    limits: readLimits(doc['limits'], file),
  };
  const protocol = optionalStr('protocol');
  if (protocol !== undefined) {
    if (protocol !== 'v4.5' && protocol !== 'v6') throw new ConfigError(`${file}: "protocol" must be "v4.5" or "v6"`);
    config.protocol = protocol;
    if (protocol === 'v6') {
      config.researcher = str('researcher');
      parseResearcherAddress(config.researcher);
    }
  }
  const nodeName = optionalStr('node_name');
  if (nodeName !== undefined) config.nodeName = nodeName;
  return applyEnvironment(config, env);
}

function limitsChanged(limits: NodeLimits | undefined): limits is NodeLimits {
  return limits !== undefined && (Object.keys(DEFAULT_LIMITS) as (keyof NodeLimits)[])
    .some((k) => limits[k] !== DEFAULT_LIMITS[k]);
}

function limitsDoc(limits: NodeLimits): Record<string, number> {
  return Object.fromEntries((Object.keys(LIMIT_KEYS) as (keyof NodeLimits)[]).map((k) => [LIMIT_KEYS[k], limits[k]]));
}

function readLimits(raw: unknown, file: string): NodeLimits {
  if (raw === undefined || raw === null) return { ...DEFAULT_LIMITS };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${file}: "limits" must be a mapping`);
  const doc = raw as Record<string, unknown>;
  const known = new Set(Object.values(LIMIT_KEYS));
  const unknown = Object.keys(doc).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new ConfigError(`${file}: unknown limit(s) ${unknown.join(', ')}; known: ${[...known].join(', ')}`);
  }
  const limits = { ...DEFAULT_LIMITS };
  for (const [field, key] of Object.entries(LIMIT_KEYS) as [keyof NodeLimits, string][]) {
    const v = doc[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new ConfigError(`${file}: limits.${key} must be a positive number`);
    }
    limits[field] = v;
  }
  return limits;
}

/** Fed-BioMed's variables win over the file; booleans are true for "true", "1", "t" (any case). */
export function applyEnvironment(config: NodeConfig, env: NodeJS.ProcessEnv): NodeConfig {
  const out = { ...config };
  if (env.NODE_ID) out.nodeId = env.NODE_ID;
  if (env.UPLOADS_URL) out.uploadsUrl = env.UPLOADS_URL;
  if (env.MQTT_BROKER || env.MQTT_BROKER_PORT) {
    const current = new URL(out.broker);
    if (env.MQTT_BROKER) current.hostname = env.MQTT_BROKER;
    if (env.MQTT_BROKER_PORT) {
      if (!/^\d+$/.test(env.MQTT_BROKER_PORT)) {
        throw new ConfigError(`MQTT_BROKER_PORT="${env.MQTT_BROKER_PORT}" is not a port number`);
      }
      current.port = env.MQTT_BROKER_PORT;
    }
    out.broker = current.toString().replace(/\/$/, '');
  }
  if (out.protocol === 'v6' && (env.FBM_RESEARCHER_IP || env.FBM_RESEARCHER_PORT)) {
    // Fed-BioMed v6's own variables for the researcher endpoint.
    const current = parseResearcherAddress(out.researcher ?? '');
    const host = env.FBM_RESEARCHER_IP || current.host;
    const port = env.FBM_RESEARCHER_PORT || String(current.port);
    out.researcher = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    parseResearcherAddress(out.researcher);
  }
  if (env.ENABLE_TRAINING_PLAN_APPROVAL !== undefined) {
    out.approval = ['true', '1', 't'].includes(env.ENABLE_TRAINING_PLAN_APPROVAL.toLowerCase());
  }
  checkNodeId(out.nodeId);
  return out;
}
