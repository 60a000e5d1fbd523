/**
 * An https:// file repository signed by the network's own CA: the researcher's RepositoryClient trusts it when given
 * the CA file (--ca), and refuses it otherwise.
 */
import { RepositoryClient } from '../src/transport/repository';
import { useHttpsRepository } from '../src/transport/testing/https-repository';

describe('https repository with the network CA', () => {
  const repository = useHttpsRepository();

  it('the researcher client does the same', async () => {
    const { base, ca } = repository;
    const trusted = new RepositoryClient({ uploadsUrl: `${base}/upload/`, tls: { caFile: ca } });
    expect((await trusted.download(`${base}/media/a.mpk`)).toString()).toBe('weights');
    expect(await trusted.upload(Buffer.from('x'), 'x.mpk')).toBe(`${base}/media/uploaded.mpk`);
    await expect(new RepositoryClient({ uploadsUrl: `${base}/upload/`, retries: 0 }).download(`${base}/media/a.mpk`))
      .rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });
});
