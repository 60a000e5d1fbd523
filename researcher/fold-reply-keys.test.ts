import { foldReply } from './fold-reply';
import { StreamingFedAvg } from './aggregators/fedavg';
import { toModelWeights } from './weights-file';
import { encodeParams } from '../src/serialize';
import type { FileRepository } from './network';

// The results file is served from memory: a stand-in for the HTTP repository, whose transfer is not what is tested.
function memoryRepo(files: Record<string, Uint8Array>): FileRepository {
  return {
    upload: () => Promise.reject(new Error('not used')),
    download: (url: string) => Promise.resolve(Buffer.from(files[url])),
  };
}

const weights = () => toModelWeights(new Map([['a', { dtype: 'float32' as const, shape: [1], data: new Float32Array([1]) }]]));

describe('foldReply and map keys that are not plain strings', () => {
  // The shared msgpack reader returns such a map as a Map (Python allows any key); Object.keys would see it empty.
  it('refuses an optim_aux_var with an integer key as not empty', async () => {
    const file = encodeParams({ optim_aux_var: new Map([[1, 'state']]), model_weights: weights() });
    await expect(foldReply(new StreamingFedAvg(), 'n1', 'aux', 1, memoryRepo({ aux: file }))).rejects.toThrow(/optim_aux_var is not empty/);
  });

  it('still folds a reply whose optim_aux_var is empty', async () => {
    const agg = new StreamingFedAvg();
    await foldReply(agg, 'n1', 'ok', 1, memoryRepo({ ok: encodeParams({ optim_aux_var: {}, model_weights: weights() }) }));
    expect(Array.from(agg.finalize().get('a')!.data as Float32Array)).toEqual([1]);
  });
});
