/**
 * An https:// file repository signed by the network's own CA: the researcher's HttpRepository trusts it when given
 * the CA file (--ca), and refuses it otherwise.
 */
import { httpsAgentFor } from '../src/transport/repository';
import { HttpRepository } from './requests/http-repository';
import { useHttpsRepository } from '../src/transport/testing/https-repository';

describe('https repository with the network CA', () => {
  const repository = useHttpsRepository();

  it('the researcher client does the same', async () => {
    const { base, ca } = repository;
    const trusted = new HttpRepository(`${base}/upload/`, httpsAgentFor({ caFile: ca }));
    expect((await trusted.download(`${base}/media/a.mpk`)).toString()).toBe('weights');
    expect(await trusted.upload(Buffer.from('x'), 'x.mpk')).toBe(`${base}/media/uploaded.mpk`);
    await expect(new HttpRepository(`${base}/upload/`).download(`${base}/media/a.mpk`))
      .rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });
});
