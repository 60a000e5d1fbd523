import * as fs from 'fs';
import { streamParams, WeightsStreamError } from './weights-stream';
import { foldReply } from './fold-reply';
import { StreamingFedAvg } from './aggregators/fedavg';
import { AggregationError, WeightMap } from './aggregators/tensors';
import { encodeParams, nodeParamsFile, decodeParams, modelWeightsOf } from '../src/serialize';
import { vectorPath, recordedHex, weightsHex } from './testing/vectors';
import { toModelWeights } from './weights-file';
import type { FileRepository } from './network';

const NODE_FILES = [
  'node_params_4cb80715-b55b-4038-a37a-7ed730549c93.mpk',
  'node_params_62aefac0-4368-40a5-b3ab-d3819e34f9b3.mpk',
  'node_params_d8328f38-676b-4183-a092-20b3d8710dcf.mpk',
];

async function* chunked(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

async function collect(bytes: Uint8Array, size: number): Promise<{ weights: WeightMap; fields: Record<string, unknown> }> {
  const s = streamParams(chunked(bytes, size), 'test.mpk');
  const weights: WeightMap = new Map();
  for await (const [name, t] of s.tensors) weights.set(name, t);
  return { weights, fields: s.fields() };
}

describe('streamParams', () => {
  it.each([1, 3, 7, 64, 100000])('decodes the recorded node files exactly like the whole-file decoder (chunks of %i bytes)', async (size) => {
    for (const file of NODE_FILES) {
      const bytes = fs.readFileSync(vectorPath('files', file));
      const { weights, fields } = await collect(bytes, size);
      expect(weightsHex(weights)).toEqual(recordedHex(file));
      const whole = modelWeightsOf(decodeParams(bytes));
      expect([...weights.keys()]).toEqual(Object.keys(whole));
      expect(fields).toMatchObject({ optim_aux_var: {}, encrypted: false, node_id: expect.stringMatching(/^node_peer/) });
      expect(weights.get([...weights.keys()][0])!.dtype).toBe('float32');
    }
  });

  it('handles int64, float16 and 0-d tensors written by our encoder', async () => {
    const { TorchTensor } = await import('../src/serialize');
    const file = encodeParams(
      nodeParamsFile({
        optim_aux_var: {}, encrypted: false, researcher_id: 'r', job_id: 'j', state_id: 's', node_id: 'n', optimizer_args: { lr: 0.1 },
        model_weights: {
          'bn.num_batches_tracked': new TorchTensor('int64', [], new BigInt64Array([5n])),
          half: new TorchTensor('float16', [2], new Uint16Array([0x3c00, 0xc000])),
        },
      }),
    );
    const { weights } = await collect(file, 5);
    expect(weights.get('bn.num_batches_tracked')).toMatchObject({ dtype: 'int64', shape: [] });
    expect(Array.from(weights.get('bn.num_batches_tracked')!.data as BigInt64Array)).toEqual([5n]);
    const agg = new StreamingFedAvg();
    agg.add('n', weights, 3);
    const out = agg.finalize();
    expect(Array.from(out.get('half')!.data as Float32Array)).toEqual([1, -2]);
    expect(out.get('bn.num_batches_tracked')!.dtype).toBe('int64');
    expect(Array.from(out.get('bn.num_batches_tracked')!.data as BigInt64Array)).toEqual([5n]);
  });

  it('reports truncated files, trailing bytes and non-weight files with the source named', async () => {
    const bytes = fs.readFileSync(vectorPath('files', NODE_FILES[0]));
    await expect(collect(bytes.subarray(0, bytes.length - 10), 50)).rejects.toThrow(/test\.mpk: the file ends early/);
    await expect(collect(Buffer.concat([bytes, Buffer.from([0xc0])]), 50)).rejects.toThrow(/1 unexpected bytes/);
    await expect(collect(encodeParams({ researcher_id: 'x' }), 4)).rejects.toThrow(/no "model_weights" key/);
    await expect(collect(encodeParams({ model_weights: { w: 3 } }), 4)).rejects.toThrow(/model_weights\["w"\] is not a tensor/);
    await expect(collect(Buffer.from([0xc7, 0x01, 0x01, 0x00]), 4)).rejects.toThrow(WeightsStreamError);
  });
});

/** A repository serving fixed bytes; can break a transfer after some bytes a given number of times. */
function fakeRepo(files: Record<string, Uint8Array>, breakAfter?: { bytes: number; times: number }, chunk = 16): FileRepository & { downloads: number } {
  const repo = {
    downloads: 0,
    async upload(): Promise<string> {
      throw new Error('not used');
    },
    async download(url: string): Promise<Buffer> {
      return Buffer.from(files[url]);
    },
    async *downloadChunks(url: string): AsyncIterable<Uint8Array> {
      repo.downloads += 1;
      const bytes = files[url];
      const broken = breakAfter && breakAfter.times > 0;
      if (broken) breakAfter.times -= 1;
      const end = broken ? breakAfter.bytes : bytes.length;
      for (let i = 0; i < end; i += chunk) yield bytes.subarray(i, Math.min(i + chunk, end));
      if (broken) throw new Error('connection reset');
    },
  };
  return repo;
}

describe('foldReply', () => {
  const good = (values: number[]) =>
    encodeParams(
      nodeParamsFile({
        optim_aux_var: {}, encrypted: false, researcher_id: 'r', job_id: 'j', state_id: 's', node_id: 'n', optimizer_args: {},
        model_weights: toModelWeights(new Map([
          ['a', { dtype: 'float32', shape: [2], data: new Float32Array(values.slice(0, 2)) }],
          ['b', { dtype: 'float32', shape: [1], data: new Float32Array(values.slice(2)) }],
        ])),
      }),
    );

  it('retries a broken transfer without adding tensors twice', async () => {
    const repo = fakeRepo({ u1: good([1, 2, 3]), u2: good([3, 4, 5]) }, { bytes: 96, times: 1 });
    const agg = new StreamingFedAvg();
    await foldReply(agg, 'n1', 'u1', 1, repo);
    await foldReply(agg, 'n2', 'u2', 1, repo);
    expect(repo.downloads).toBe(3);
    const out = agg.finalize();
    expect(Array.from(out.get('a')!.data as Float32Array)).toEqual([2, 3]);
    expect(Array.from(out.get('b')!.data as Float32Array)).toEqual([4]);
  });

  it('takes a bad reply back out exactly (re-reading it) and keeps the average usable', async () => {
    const missingB = encodeParams({ optim_aux_var: {}, model_weights: toModelWeights(new Map([['a', { dtype: 'float32', shape: [2], data: new Float32Array([100, 200]) }]])) });
    const repo = fakeRepo({ u1: good([1, 2, 3]), bad: missingB, u2: good([3, 4, 5]) });
    const agg = new StreamingFedAvg();
    await foldReply(agg, 'n1', 'u1', 2, repo);
    await expect(foldReply(agg, 'nbad', 'bad', 5, repo)).rejects.toThrow(/nbad: parameter b is missing/);
    await foldReply(agg, 'n2', 'u2', 2, repo);
    expect(agg.contributors.map((c) => c.nodeId)).toEqual(['n1', 'n2']);
    const out = agg.finalize();
    expect(Array.from(out.get('a')!.data as Float32Array)).toEqual([2, 3]);
  });

  it('refuses non-empty optim_aux_var and marks the average unusable if a partial reply cannot be re-read', async () => {
    const aux = encodeParams({ optim_aux_var: { scaffold: {} }, model_weights: toModelWeights(new Map([['a', { dtype: 'float32', shape: [2], data: new Float32Array([1, 1]) }], ['b', { dtype: 'float32', shape: [1], data: new Float32Array([1]) }]])) });
    const agg = new StreamingFedAvg();
    const repo = fakeRepo({ u1: good([1, 2, 3]), aux });
    await foldReply(agg, 'n1', 'u1', 1, repo);
    await expect(foldReply(agg, 'n2', 'aux', 1, repo)).rejects.toThrow(/optim_aux_var is not empty/);
    expect(agg.unusable).toBeUndefined();
    // a transfer that always breaks after the first tensor: cannot be undone → the round is marked unusable
    const file = good([7, 8, 9]);
    const flaky = fakeRepo({ u3: file }, { bytes: file.length - 8, times: 99 });
    await expect(foldReply(agg, 'n3', 'u3', 1, flaky)).rejects.toThrow(/connection reset/);
    expect(agg.unusable).toMatch(/n3's partial contribution could not be removed/);
    expect(() => agg.finalize()).toThrow(AggregationError);
  });

  it('averages independently of arrival order (bit-identical for every permutation)', () => {
    const rand = (seed: number) => () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 10;
    const nodes = [3, 5, 11, 13].map((size, k) => {
      const r = rand(k + 1);
      return { id: `n${k}`, size, w: new Map([['w', { dtype: 'float32', shape: [500], data: Float32Array.from({ length: 500 }, r) }]]) };
    });
    const perms = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]];
    const results = perms.map((p) => {
      const agg = new StreamingFedAvg();
      for (const i of p) agg.add(nodes[i].id, nodes[i].w, nodes[i].size);
      return Buffer.from((agg.finalize().get('w')!.data as Float32Array).buffer).toString('hex');
    });
    expect(new Set(results).size).toBe(1);
  });
});

describe('big tensors streamed chunk by chunk into the accumulator', () => {
  const N = 100_000; // 400 kB: above the streaming threshold
  const big = (seed: number, dtype: 'float32' | 'float64' = 'float32', shape: number[] = [N / 4, 4]) => {
    const data = dtype === 'float32' ? new Float32Array(N) : new Float64Array(N);
    for (let i = 0; i < N; i++) data[i] = Math.fround(Math.sin(i * 0.37 + seed) * 3);
    return encodeParams(
      nodeParamsFile({
        optim_aux_var: {}, encrypted: false, researcher_id: 'r', job_id: 'j', state_id: 's', node_id: 'n', optimizer_args: {},
        model_weights: toModelWeights(new Map([
          ['small', { dtype: 'float32', shape: [3], data: new Float32Array([seed, seed + 1, seed + 2]) }],
          ['big', { dtype, shape, data }],
        ])),
      }),
    );
  };
  const whole = (file: Uint8Array) => {
    const w = modelWeightsOf(decodeParams(file));
    return new Map(Object.entries(w)) as WeightMap;
  };
  const hex = (w: WeightMap) => weightsHex(w);

  it.each([4093, 1000, 65536])('gives exactly the whole-file result (chunks of %i bytes, unaligned too)', async (chunk) => {
    const files = { u1: big(1), u2: big(2), u3: big(3) };
    const streamedAgg = new StreamingFedAvg();
    const repo = fakeRepo(files, undefined, chunk);
    for (const [i, url] of ['u1', 'u2', 'u3'].entries()) await foldReply(streamedAgg, `n${i}`, url, 10 + i, repo);
    const reference = new StreamingFedAvg();
    for (const [i, url] of ['u1', 'u2', 'u3'].entries()) reference.add(`n${i}`, whole(files[url as keyof typeof files]), 10 + i);
    const out = streamedAgg.finalize();
    expect(out.get('big')!.shape).toEqual([N / 4, 4]);
    expect(hex(out)).toEqual(hex(reference.finalize()));
  });

  it('a streamed tensor with the wrong shape is taken back out exactly; a big float64 tensor falls back to whole reads', async () => {
    const files = { u1: big(1), bad: big(5, 'float32', [N / 2, 2]), f64: big(7, 'float64'), u2: big(2) };
    const agg = new StreamingFedAvg();
    const repo = fakeRepo(files, undefined, 3000);
    await foldReply(agg, 'n1', 'u1', 4, repo);
    await expect(foldReply(agg, 'bad', 'bad', 9, repo)).rejects.toThrow(/bad: parameter big has shape \[50000, 2\], expected \[25000, 4\]/);
    await foldReply(agg, 'f64', 'f64', 3, repo);
    await foldReply(agg, 'n2', 'u2', 4, repo);
    expect(agg.unusable).toBeUndefined();
    const reference = new StreamingFedAvg();
    reference.add('n1', whole(files.u1), 4);
    reference.add('f64', whole(files.f64), 3);
    reference.add('n2', whole(files.u2), 4);
    expect(hex(agg.finalize())).toEqual(hex(reference.finalize()));

    // First node with a big float64 tensor: streamed as float32 by assumption, detected at its end, re-read whole.
    const agg2 = new StreamingFedAvg();
    await foldReply(agg2, 'f64', 'f64', 3, repo);
    await foldReply(agg2, 'n1', 'u1', 4, repo);
    const reference2 = new StreamingFedAvg();
    reference2.add('f64', whole(files.f64), 3);
    reference2.add('n1', whole(files.u1), 4);
    expect(hex(agg2.finalize())).toEqual(hex(reference2.finalize()));
  });

  it('a transfer broken inside a streamed tensor is undone and retried', async () => {
    const files = { u1: big(1), u2: big(2) };
    const agg = new StreamingFedAvg();
    await foldReply(agg, 'n1', 'u1', 1, fakeRepo(files, undefined, 5000));
    const flaky = fakeRepo(files, { bytes: 200_000, times: 1 }, 5000);
    await foldReply(agg, 'n2', 'u2', 1, flaky);
    expect(flaky.downloads).toBe(3); // broken, re-read to undo, retried
    const reference = new StreamingFedAvg();
    reference.add('n1', whole(files.u1), 1);
    reference.add('n2', whole(files.u2), 1);
    expect(hex(agg.finalize())).toEqual(hex(reference.finalize()));
  });
});
