/**
 * What the researcher needs from the network, and how it finds it. The message bus is src/transport's
 * `Messaging`; files go through a `FileRepository` (src/transport's RepositoryClient, or anything that can POST a
 * file and GET a URL). Options come from code, CLI flags or Fed-BioMed's environment variables
 * (MQTT_BROKER, MQTT_BROKER_PORT, UPLOADS_URL, UPLOADS_IP, RESEARCHER_ID).
 */
import type { Logger } from '../src/transport/logger';
import type { V6ResearcherServer } from '../src/transport/v6/researcher-server';
import { urlForMessage } from '../src/transport/url';
import { FedbiomedTsError } from '../src/errors';
import { RepositoryError } from '../src/transport/repository';

/** How long a broadcast discovery request (ping, list, search) waits when no node list says whom to expect. */
export const DEFAULT_DISCOVERY_TIMEOUT_MS = 1500;

/**
 * Default wait for approval and training-plan-status answers: each node downloads the plan before answering, which
 * takes longer than a ping (with the discovery default of 1.5 s, `approve` said "no node answered" while a node's
 * reply came 3 s later). A collection with a node list ends as soon as they all answered.
 */
export const PLAN_REQUEST_TIMEOUT_MS = 10_000;

export interface FileRepository {
  /**
   * Uploads `data` (one buffer, or chunks to be concatenated — weight files are written as chunks that view the
   * tensors' memory, to avoid one more copy of the model) under `fileName`; resolves to the absolute download URL
   * nodes will GET.
   */
  upload(data: Uint8Array | readonly Uint8Array[], fileName: string): Promise<string>;
  /** Downloads a URL (a node's results file). */
  download(url: string): Promise<Buffer>;
  /** The same as a stream of chunks, so a big file is never held whole (optional; download() otherwise). */
  downloadChunks?(url: string): AsyncIterable<Uint8Array>;
}

/** A Fed-BioMed v4.5 network: MQTT broker + HTTP file repository (the default). */
export interface MqttNetworkOptions {
  protocol?: 'v4.5';
  /** `mqtt://host:port` or `mqtts://…`. */
  brokerUrl: string;
  /** Fed-BioMed upload endpoint, e.g. `http://localhost:8844/upload/`. */
  uploadsUrl: string;
  username?: string;
  password?: string;
  /** CA file for mqtts / https. */
  caFile?: string;
  /** Client certificate and key (PEM files) for a broker or repository that requires one. */
  certFile?: string;
  keyFile?: string;
  /** Researcher id; `researcher_<uuid4>` when absent. */
  researcherId?: string;
  logger?: Logger;
  /** How long connecting to the broker may take before it is an error (ms). Default 10 s. */
  connectTimeoutMs?: number;
  /** Replaces the HTTP repository client (tests, custom stores). */
  repository?: FileRepository;
}

/**
 * A Fed-BioMed v6 network (gRPC): the researcher is the server nodes dial (researcher/v6-link.ts). Either this
 * process starts one (its id and TLS certificate kept in `dir`), or it uses one already running (`server`, e.g.
 * the embedded network's), which it then does not close.
 */
export interface V6NetworkOptions {
  protocol: 'v6';
  /** Researcher directory: id and certificate, created on first use and kept (nodes pin the certificate). */
  dir?: string;
  /** Host name nodes dial, written in the certificate. Default localhost. */
  host?: string;
  /** gRPC port (default 50051; 0 = any free port). */
  port?: number;
  /** A running v6 researcher server to use instead of starting one. */
  server?: V6ResearcherServer;
  /** Nodes to wait for before the first request (v6 nodes dial in; none is known before it polls). Default 1. */
  minNodes?: number;
  /** Particular nodes to wait for as well (an Experiment with a `nodes` list waits for those). */
  nodeIds?: string[];
  /** How long to wait for them (ms). Default 20 s, as a v6 researcher. */
  nodeWaitMs?: number;
  logger?: Logger;
}

export type NetworkOptions = MqttNetworkOptions | V6NetworkOptions;

export function isV6Network(options: NetworkOptions): options is V6NetworkOptions {
  return options.protocol === 'v6';
}

export class NetworkConfigError extends FedbiomedTsError {}

/**
 * Network options from explicit values first, then Fed-BioMed's environment variables, then its defaults
 * (localhost:1883, http://localhost:8844/upload/).
 */
export function networkFromEnvironment(
  explicit: Partial<MqttNetworkOptions> = {},
  env: NodeJS.ProcessEnv = process.env,
): MqttNetworkOptions {
  let brokerUrl = explicit.brokerUrl;
  if (!brokerUrl) {
    const host = env.MQTT_BROKER || 'localhost';
    const portText = env.MQTT_BROKER_PORT || '1883';
    const port = Number(portText);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new NetworkConfigError(`MQTT_BROKER_PORT must be a TCP port number, got ${JSON.stringify(portText)}`);
    }
    brokerUrl = /^mqtts?:\/\//.test(host) ? host : `mqtt://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  }
  let uploadsUrl = explicit.uploadsUrl;
  if (!uploadsUrl) {
    uploadsUrl = env.UPLOADS_URL || (env.UPLOADS_IP ? `http://${env.UPLOADS_IP}:8844/upload/` : 'http://localhost:8844/upload/');
  }
  for (const [what, url, schemes] of [
    ['broker URL', brokerUrl, ['mqtt:', 'mqtts:']],
    ['uploads URL', uploadsUrl, ['http:', 'https:']],
  ] as const) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new NetworkConfigError(`invalid ${what} ${JSON.stringify(urlForMessage(url))}`);
    }
    if (!(schemes as readonly string[]).includes(parsed.protocol)) {
      throw new NetworkConfigError(`${what} ${JSON.stringify(urlForMessage(url))} must start with ${schemes.map((s) => s + '//').join(' or ')}`);
    }
  }
  const researcherId = explicit.researcherId ?? (env.RESEARCHER_ID || undefined);
  return { ...explicit, brokerUrl, uploadsUrl, ...(researcherId ? { researcherId } : {}) };
}

/**
 * A custom repository held to the same rule as the default client (issue 11): the researcher downloads only from
 * its repository's origin, that of `uploadsUrl` or of a URL the repository's own uploads returned, so a node's
 * reply cannot make it fetch another host or port through a custom store either. The refusal says which origins
 * are allowed, never anything about the foreign one.
 */
export function originCheckedRepository(repository: FileRepository, uploadsUrl: string): FileRepository {
  const allowed = new Set([new URL(uploadsUrl).origin]);
  const check = (url: string): void => {
    let origin: string | undefined;
    try {
      origin = new URL(url).origin;
    } catch {
      origin = undefined;
    }
    if (origin === undefined || !allowed.has(origin)) {
      throw new RepositoryError(`download refused: the URL is not on this side's file repository (${[...allowed].join(', ')})`,
        'foreign-origin', [...allowed][0]);
    }
  };
  const checked: FileRepository = {
    upload: async (data, fileName) => {
      const url = await repository.upload(data, fileName);
      try {
        allowed.add(new URL(url).origin);
      } catch {
        // Not a URL: nodes cannot download it either; nothing to allow.
      }
      return url;
    },
    download: async (url) => {
      check(url);
      return repository.download(url);
    },
  };
  const chunks = repository.downloadChunks?.bind(repository);
  if (chunks) {
    checked.downloadChunks = (url) => (async function* () {
      check(url);
      yield* chunks(url);
    })();
  }
  return checked;
}
