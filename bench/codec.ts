/**
 * Weight-file codec throughput: encode + decode of a `aggregated_params` file holding 100 MB of float32 tensors
 * (25 tensors of 1M floats by default), median of several runs, in GB/s of file bytes.
 *
 *   npm run bench -- codec [--tensors N] [--floats N] [--runs N]
 *
 * Figures:
 *  - encode: encodeParams (one contiguous Uint8Array: every tensor payload copied exactly once);
 *  - encode, chunks: encodeParamsChunks (payloads referenced, not copied; what writeParamsFile uses);
 *  - decode: decodeParams on a buffer as read from disk (tensors are views where the payload offset is
 *    4-byte aligned, copies elsewhere; the count is printed);
 *  - decode, misaligned: the same bytes at an odd offset, so every tensor is copied (worst case);
 *  - @msgpack/msgpack on the same tagged structure, for comparison (it cannot write Python-exact files).
 * The last line is `RESULT encode_gbps=<n> decode_gbps=<n>` (encode and decode above).
 */
import { decode as referenceDecode, encode as referenceEncode } from '@msgpack/msgpack';
import {
  ModelWeights,
  TorchTensor,
  aggregatedParamsFile,
  decodeParams,
  encodeParams,
  encodeParamsChunks,
  modelWeightsOf,
  tensorFromFloat32,
} from '../src/serialize';
import { median } from './lib/stats';

interface Options {
  tensors: number;
  floats: number;
  runs: number;
}

function parseOptions(args: string[]): Options {
  const options: Options = { tensors: 25, floats: 1 << 20, runs: 7 };
  for (let i = 0; i < args.length; i += 2) {
    const key = args[i].replace(/^--/, '') as keyof Options;
    const value = Number(args[i + 1]);
    if (!(key in options) || !Number.isInteger(value) || value <= 0) {
      throw new Error(`usage: codec [--tensors N] [--floats N] [--runs N] (bad ${args[i]} ${args[i + 1] ?? ''})`);
    }
    options[key] = value;
  }
  return options;
}

/** Median seconds of `runs` timed calls, after one untimed warm-up call. */
function time(runs: number, work: () => unknown): number {
  work();
  const seconds: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    work();
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return median(seconds);
}

function makeWeights(tensors: number, floats: number): ModelWeights {
  const weights: ModelWeights = {};
  let seed = 12345;
  for (let t = 0; t < tensors; t++) {
    const data = new Float32Array(floats);
    for (let i = 0; i < floats; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      data[i] = seed / 2 ** 32 - 0.5;
    }
    const shape = floats % 1024 === 0 ? [floats / 1024, 1024] : [floats];
    weights[`layers.${t}.weight`] = tensorFromFloat32(shape, data);
  }
  return weights;
}

/** The same document as plain tagged maps, the form a generic msgpack library would be given. */
function asPlainTags(weights: ModelWeights): unknown {
  const plain: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(weights)) {
    plain[name] = { __type__: 'torch.Tensor', value: [t.bytes(), t.dtype, t.shape] };
  }
  return { researcher_id: 'researcher_bench', model_weights: plain };
}

const gbps = (bytes: number, seconds: number): number => bytes / seconds / 1e9;
const fmt = (n: number): string => n.toFixed(2);

export async function main(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const weights = makeWeights(options.tensors, options.floats);
  const file = aggregatedParamsFile('researcher_bench', weights);

  const encoded = encodeParams(file);
  const size = encoded.byteLength;
  const payload = options.tensors * options.floats * 4;
  process.stdout.write(
    `codec: ${options.tensors} float32 tensors x ${options.floats} values = ${fmt(payload / 1e6)} MB payload, ` +
      `file ${fmt(size / 1e6)} MB, median of ${options.runs} runs\n`,
  );

  // Correctness before speed: the decoded file must hold the very values encoded.
  const check = modelWeightsOf(decodeParams(encoded));
  for (const [name, tensor] of Object.entries(weights)) {
    const back = check[name] as TorchTensor<'float32'>;
    if (!back || Buffer.compare(Buffer.from(back.bytes()), Buffer.from(tensor.bytes())) !== 0) {
      throw new Error(`round trip changed ${name}`);
    }
  }
  const views = Object.values(check).filter((t) => t.data.buffer === encoded.buffer).length;

  const encodeSeconds = time(options.runs, () => encodeParams(file));
  const chunkSeconds = time(options.runs, () => encodeParamsChunks(file));
  const decodeSeconds = time(options.runs, () => decodeParams(encoded));
  const misaligned = new Uint8Array(new ArrayBuffer(size + 1), 1, size);
  misaligned.set(encoded);
  const misalignedSeconds = time(options.runs, () => decodeParams(misaligned));

  const plain = asPlainTags(weights);
  const referenceRuns = Math.max(1, Math.min(options.runs, 3));
  const referenceEncodeSeconds = time(referenceRuns, () => referenceEncode(plain));
  const referenceDecodeSeconds = time(referenceRuns, () => referenceDecode(encoded));

  const rows: [string, number][] = [
    ['encode (contiguous)', encodeSeconds],
    ['encode (chunks, no payload copy)', chunkSeconds],
    [`decode (${views}/${options.tensors} tensors zero-copy views)`, decodeSeconds],
    ['decode (misaligned input, all copied)', misalignedSeconds],
    ['@msgpack/msgpack encode (same tagged maps)', referenceEncodeSeconds],
    ['@msgpack/msgpack decode (bins as views, untyped)', referenceDecodeSeconds],
  ];
  for (const [label, seconds] of rows) {
    process.stdout.write(`  ${label.padEnd(44)} ${fmt(seconds * 1000).padStart(9)} ms  ${fmt(gbps(size, seconds)).padStart(8)} GB/s\n`);
  }
  process.stdout.write(`RESULT encode_gbps=${fmt(gbps(size, encodeSeconds))} decode_gbps=${fmt(gbps(size, decodeSeconds))}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
