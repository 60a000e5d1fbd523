/**
 * The embedded network on Fed-BioMed v6 (gRPC): there is no broker nor repository, the researcher is the server
 * nodes dial. This starts that server in this process (its id and self-signed certificate in `dir`), for nodes to
 * dial (`node init --protocol v6 --researcher <researcherAddress>`) and for an Experiment to use
 * (`network: { protocol: 'v6', server }`): the v6 counterpart of `startEmbeddedNetwork()`.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Logger } from './logger';
import type { V6ResearcherServer } from './v6/researcher-server';

export interface EmbeddedV6NetworkOptions {
  /** Researcher directory (id and certificate, kept). Default: a temporary directory removed on close. */
  dir?: string;
  /** Host name nodes dial; it is written in the certificate they check. Default localhost. */
  host?: string;
  /** gRPC port; 0 (default) picks a free one. Fed-BioMed v6's usual is 50051. */
  port?: number;
  logger?: Logger;
}

export interface EmbeddedV6Network {
  readonly protocol: 'v6';
  /** `HOST:PORT` nodes dial (a v6 node's FBM_RESEARCHER_IP / FBM_RESEARCHER_PORT). */
  readonly researcherAddress: string;
  /** The researcher directory (id and certificate). */
  readonly dir: string;
  /** The running researcher server, for `Experiment({ network: { protocol: 'v6', server } })`. */
  readonly server: V6ResearcherServer;
  close(): Promise<void>;
}

/**
 * @example
 * ```ts
 * import { startEmbeddedV6Network, Experiment } from 'fedbiomed-ts';
 * const net = await startEmbeddedV6Network();                     // nodes: --researcher net.researcherAddress
 * const exp = new Experiment({ …, network: { protocol: 'v6', server: net.server, minNodes: 3 } });
 * ```
 */
export async function startEmbeddedV6Network(options: EmbeddedV6NetworkOptions = {}): Promise<EmbeddedV6Network> {
  const host = options.host ?? 'localhost';
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fedbiomed-ts-v6-researcher-'));
  /** Ours to delete on close (or on a failed start): the directory made above, never the caller's. */
  const temporary = options.dir === undefined ? dir : undefined;
  let server: V6ResearcherServer;
  try {
    // Loaded on use: gRPC is not needed by v4.5 users of the transport layer.
    const { V6ResearcherServer } = await import('./v6/researcher-server');
    server = await V6ResearcherServer.start({ dir, host, port: options.port ?? 0,
      logger: options.logger });
  } catch (err) {
    if (temporary) fs.rmSync(temporary, { recursive: true, force: true });
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    protocol: 'v6',
    researcherAddress: `${host.includes(':') ? `[${host}]` : host}:${server.port}`,
    dir,
    server,
    close() {
      closing ??= server.close().finally(() => {
        if (temporary) fs.rmSync(temporary, { recursive: true, force: true });
      });
      return closing;
    },
  };
}
