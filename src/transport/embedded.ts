/**
 * The embedded network: the MQTT broker and the file repository both sides of a Fed-BioMed experiment meet on,
 * started in this process so that nothing needs installing. `fedbiomed-ts network start` runs it; tests and the
 * demo call `startEmbeddedNetwork()`.
 */
import * as os from 'os';
import { formatHostForUrl, startBroker, type EmbeddedBroker } from './broker';
import type { Logger } from './logger';
import type { BrokerAuth } from './broker-auth';
import { startRepositoryServer, type RepositoryServer } from './repository-server';

export interface EmbeddedNetworkOptions {
  /** Interface both servers bind. Default 127.0.0.1 (this machine only); 0.0.0.0 to serve other machines. */
  host?: string;
  /** MQTT port; 0 (default) picks a free one. Fed-BioMed's usual is 1883. */
  mqttPort?: number;
  /** HTTP port; 0 (default) picks a free one. Fed-BioMed's usual is 8844. */
  httpPort?: number;
  /** Where uploaded files are kept. Default: a temporary directory removed on close. */
  dataDir?: string;
  /** Largest upload accepted, in bytes. */
  maxUploadBytes?: number;
  /**
   * Host name or address put in the URLs handed to peers. Default: the bound host, or, when bound to every
   * interface, this machine's first external IPv4 address.
   */
  advertisedHost?: string;
  logger?: Logger;
  /** Per-client credentials and identities for the broker (see broker-auth.ts). */
  auth?: BrokerAuth;
}

export interface EmbeddedNetwork {
  /** `mqtt://HOST:PORT`: Fed-BioMed's MQTT_BROKER + MQTT_BROKER_PORT. */
  readonly mqttUrl: string;
  /** `http://HOST:PORT/upload/`: Fed-BioMed's UPLOADS_URL. */
  readonly uploadsUrl: string;
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly dataDir: string;
  close(): Promise<void>;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** The address peers should use to reach a server bound to `bindHost`. */
export function advertisedHostFor(bindHost: string): string {
  if (!WILDCARDS.has(bindHost)) return bindHost;
  for (const addresses of Object.values(os.networkInterfaces())) {
    const external = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (external) return external.address;
  }
  return '127.0.0.1';
}

/**
 * Starts an MQTT broker and a file repository in this process (127.0.0.1 unless told otherwise): the network a
 * researcher and nodes meet on, for a test bench or a single-machine study.
 *
 * @example
 * ```ts
 * import { startEmbeddedNetwork } from 'fedbiomed-ts';
 * const net = await startEmbeddedNetwork({ mqttPort: 0, httpPort: 0 }); // 0: any free port
 * console.log(net.mqttUrl, net.uploadsUrl);
 * await net.close();
 * ```
 */
export async function startEmbeddedNetwork(options: EmbeddedNetworkOptions = {}): Promise<EmbeddedNetwork> {
  const host = options.host ?? '127.0.0.1';
  const advertised = formatHostForUrl(options.advertisedHost ?? advertisedHostFor(host));
  let broker: EmbeddedBroker | undefined;
  let repository: RepositoryServer | undefined;
  try {
    broker = await startBroker({ host, port: options.mqttPort ?? 0, auth: options.auth,
      onRefused: (m) => options.logger?.warn(`broker: ${m}`) });
    repository = await startRepositoryServer({
      host,
      port: options.httpPort ?? 0,
      dataDir: options.dataDir,
      maxUploadBytes: options.maxUploadBytes,
      advertisedHost: options.advertisedHost ?? advertisedHostFor(host),
      logger: options.logger,
    });
  } catch (err) {
    await broker?.close();
    throw err;
  }
  const startedBroker = broker;
  const startedRepository = repository;
  let closing: Promise<void> | undefined;
  return {
    mqttUrl: `mqtt://${advertised}:${startedBroker.port}`,
    uploadsUrl: `http://${advertised}:${startedRepository.port}/upload/`,
    mqttPort: startedBroker.port,
    httpPort: startedRepository.port,
    dataDir: startedRepository.dataDir,
    close() {
      closing ??= Promise.all([startedBroker.close(), startedRepository.close()]).then(() => undefined);
      return closing;
    },
  };
}
