/**
 * An https:// file repository signed by the network's own CA: the node's RepositoryClient trusts it when given the
 * CA file, and refuses it otherwise (researcher/https-repository.test.ts: the same for the researcher's client).
 */
import { RepositoryClient } from './repository';
import { useHttpsRepository } from './testing/https-repository';

describe('https repository with the network CA', () => {
  const repository = useHttpsRepository();

  it('the node client downloads and uploads with the CA, and refuses without it', async () => {
    const { base, ca } = repository;
    const trusted = new RepositoryClient({ uploadsUrl: `${base}/upload/`, retries: 0, tls: { caFile: ca } });
    expect((await trusted.download(`${base}/media/a.mpk`)).toString()).toBe('weights');
    expect(await trusted.upload(Buffer.from('x'), 'x.mpk')).toBe(`${base}/media/uploaded.mpk`);
    const untrusted = new RepositoryClient({ uploadsUrl: `${base}/upload/`, retries: 0 });
    await expect(untrusted.download(`${base}/media/a.mpk`)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });
});
