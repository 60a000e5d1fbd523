/**
 * An https:// file repository signed by the network's own CA: the researcher's RepositoryClient trusts it when given
 * the CA file (--ca), and refuses it otherwise.
 */
import * as fs from 'fs';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import { RepositoryClient } from '../src/transport/repository';
import { makeCredentials } from '../src/transport/testing/tls';

describe('https repository with the network CA', () => {
  let server: https.Server;
  let base: string;
  let ca: string;

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-https-'));
    const credentials = makeCredentials(dir);
    ca = credentials.ca;
    server = https.createServer({ cert: fs.readFileSync(credentials.cert), key: fs.readFileSync(credentials.key) },
      (req, res) => {
        if (req.method === 'POST') {
          req.resume();
          req.on('end', () => res.end(JSON.stringify({ file: `${base}/media/uploaded.mpk` })));
          return;
        }
        res.end('weights');
      });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `https://localhost:${(server.address() as import('net').AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('the researcher client does the same', async () => {
    const trusted = new RepositoryClient({ uploadsUrl: `${base}/upload/`, tls: { caFile: ca } });
    expect((await trusted.download(`${base}/media/a.mpk`)).toString()).toBe('weights');
    expect(await trusted.upload(Buffer.from('x'), 'x.mpk')).toBe(`${base}/media/uploaded.mpk`);
    await expect(new RepositoryClient({ uploadsUrl: `${base}/upload/`, retries: 0 }).download(`${base}/media/a.mpk`))
      .rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });


});
