/** A tiny https:// file repository signed by a test CA, for the node's and the researcher's repository clients. */
import * as fs from 'fs';
import * as https from 'https';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { makeCredentials } from './tls';

export interface HttpsRepository {
  /** https://localhost:PORT, the certificate valid for that name. */
  base: string;
  /** The CA file that signed the server certificate. */
  ca: string;
  close(): Promise<void>;
}

/** Answers a POST (upload) with `{file: BASE/media/uploaded.mpk}` and any other request with the body `weights`. */
async function startHttpsRepository(): Promise<HttpsRepository> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-https-'));
  const credentials = makeCredentials(dir);
  let base = '';
  const server = https.createServer({ cert: fs.readFileSync(credentials.cert), key: fs.readFileSync(credentials.key) },
    (req, res) => {
      if (req.method === 'POST') {
        req.resume();
        req.on('end', () => res.end(JSON.stringify({ file: `${base}/media/uploaded.mpk` })));
        return;
      }
      res.end('weights');
    });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://localhost:${(server.address() as AddressInfo).port}`;
  return {
    base,
    ca: credentials.ca,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One repository for the enclosing describe block: started before its tests, closed after them. */
export function useHttpsRepository(): Pick<HttpsRepository, 'base' | 'ca'> {
  let repository: HttpsRepository | undefined;
  beforeAll(async () => {
    repository = await startHttpsRepository();
  });
  afterAll(() => repository?.close());
  const started = (): HttpsRepository => {
    if (!repository) throw new Error('the https repository is used before its beforeAll hook ran');
    return repository;
  };
  return {
    get base() {
      return started().base;
    },
    get ca() {
      return started().ca;
    },
  };
}
