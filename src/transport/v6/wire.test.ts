/**
 * The v6 wire layer without a network: chunk framing and its checks, the payload codec's v6 conventions, the
 * strict message checks a Python v6.3.3 peer applies. Expected bytes were produced by Python (msgpack 1.0 and
 * `int.to_bytes(ceil(bit_length/8)+1, "big", signed=True)`, the expressions are given beside them).
 */
import { ChunkAssembler, ChunkSequenceError, toChunks } from './chunks';
import { decodeV6Payload, encodeV6Payload } from './payload';
import { decodeV6Message, encodeV6Message, makeV6Message, V6MessageError, validateV6Fields } from './messages';
import { TorchTensor } from '../../serialize';
import { V6_CHUNK_BYTES } from './grpc';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('chunks', () => {
  test('a message is cut at 3,999,967 bytes and reassembled identically', () => {
    const bytes = new Uint8Array(2 * V6_CHUNK_BYTES + 10).map((_, i) => i % 251);
    const chunks = toChunks(bytes);
    expect(chunks.map((c) => [c.size, c.iteration, c.bytes_.byteLength]))
      .toEqual([[3, 1, V6_CHUNK_BYTES], [3, 2, V6_CHUNK_BYTES], [3, 3, 10]]);
    const assembler = new ChunkAssembler();
    expect(assembler.push(chunks[0])).toBeUndefined();
    expect(assembler.push(chunks[1])).toBeUndefined();
    const whole = assembler.push(chunks[2]);
    expect(whole && Buffer.compare(whole, Buffer.from(bytes))).toBe(0);
    expect(() => assembler.finish()).not.toThrow();
  });

  test('an empty message is one empty chunk', () => {
    expect(toChunks(new Uint8Array(0)).map((c) => [c.size, c.iteration, c.bytes_.byteLength])).toEqual([[1, 1, 0]]);
  });

  test.each([
    ['a gap', [{ size: 3, iteration: 1 }, { size: 3, iteration: 3 }], /chunk 3 of 3 arrived where chunk 2 was expected/],
    ['a repeat', [{ size: 2, iteration: 1 }, { size: 2, iteration: 1 }], /chunk 1 of 2 arrived where chunk 2/],
    ['a changed size', [{ size: 2, iteration: 1 }, { size: 3, iteration: 2 }], /says 3 chunks, the message started with 2/],
    ['a zero size', [{ size: 0, iteration: 1 }], /not a positive count/],
    ['a start past 1', [{ size: 2, iteration: 2 }], /arrived where chunk 1 was expected/],
  ])('%s is refused', (_name, seq, error) => {
    const assembler = new ChunkAssembler();
    expect(() => seq.forEach((c) => assembler.push({ ...c, bytes_: Buffer.from('ab') }))).toThrow(error);
  });

  test('caps: chunk size, message size, announced chunk count, and an unfinished stream', () => {
    expect(() => new ChunkAssembler({ maxChunkBytes: 4 }).push({ size: 1, iteration: 1, bytes_: Buffer.alloc(5) }))
      .toThrow(/holds 5 bytes, more than 4/);
    const small = new ChunkAssembler({ maxMessageBytes: 6, maxChunkBytes: 4 });
    small.push({ size: 2, iteration: 1, bytes_: Buffer.alloc(4) });
    expect(() => small.push({ size: 2, iteration: 2, bytes_: Buffer.alloc(4) })).toThrow(ChunkSequenceError);
    expect(() => new ChunkAssembler({ maxMessageBytes: 10, maxChunkBytes: 5 })
      .push({ size: 3, iteration: 1, bytes_: Buffer.alloc(1) })).toThrow(/3 chunks exceeds the 10-byte limit/);
    const cut = new ChunkAssembler();
    cut.push({ size: 2, iteration: 1, bytes_: Buffer.alloc(1) });
    expect(() => cut.finish()).toThrow(/ended after chunk 1 of 2/);
  });
});

describe('payload', () => {
  test.each([
    // Python: (2**64).to_bytes(10, "big", signed=True) and so on
    [BigInt(2) ** BigInt(64), '00010000000000000000'],
    [-(BigInt(2) ** BigInt(63)) - BigInt(1), 'ff7fffffffffffffff'],
    [-(BigInt(2) ** BigInt(70)), 'ffc00000000000000000'],
    [BigInt(2) ** BigInt(100) + BigInt(5), '0010000000000000000000000005'],
  ])('big int %s travels signed as Python writes it', (value, expected) => {
    const bytes = encodeV6Payload([value]);
    const tagged = decodeV6Payload(bytes);
    expect(tagged).toEqual([value]);
    expect(hex(bytes)).toContain(expected);
  });

  test('tensors and unknown tags round-trip', () => {
    const t = new TorchTensor('float32', [2], new Float32Array([1.5, -2]));
    const value = { w: t, m: { __type__: 'MetricTypes', value: 'ACCURACY' } };
    const back = decodeV6Payload(encodeV6Payload(value)) as { w: TorchTensor; m: unknown };
    expect(Array.from(back.w.data as Float32Array)).toEqual([1.5, -2]);
    expect(back.m).toEqual({ __type__: 'MetricTypes', value: 'ACCURACY' });
  });
});

describe('messages', () => {
  test('a PingRequest has the bytes msgpack-python writes for the same dict', () => {
    const ping = makeV6Message('PingRequest', { request_id: 'r1', researcher_id: 'RESEARCHER_x' });
    // msgpack.packb({'protocol_version': '7', 'request_id': 'r1', 'researcher_id': 'RESEARCHER_x',
    //   '__type_message__': {'module': 'fedbiomed.common.message', 'class': 'PingRequest'}}).hex()
    expect(hex(encodeV6Message(ping))).toBe('84b070726f746f636f6c5f76657273696f6ea137aa726571756573745f6964a27231ad' +
      '726573656172636865725f6964ac524553454152434845525f78b05f5f747970655f6d6573736167655f5f82a66d6f64756c65b866656462' +
      '696f6d65642e636f6d6d6f6e2e6d657373616765a5636c617373ab50696e6752657175657374');
    expect(decodeV6Message(encodeV6Message(ping))).toEqual(ping);
  });

  test('defaults are sent explicitly, in dataclass order', () => {
    const reply = makeV6Message('TrainReply', { request_id: 'r', researcher_id: 'R', experiment_id: 'e',
      success: false, node_id: 'N', node_name: 'n', dataset_id: 'd', timing: {}, msg: 'no' });
    expect(Object.keys(reply.fields)).toEqual(['protocol_version', 'request_id', 'researcher_id', 'experiment_id',
      'success', 'node_id', 'node_name', 'dataset_id', 'timing', 'msg', 'state_id', 'sample_size', 'encrypted',
      'params', 'optimizer_args', 'optim_aux_var', 'encryption_factor']);
    expect(reply.fields['encrypted']).toBe(false);
  });

  test.each([
    ['an unknown class', 'Surprise', {}, /unknown message class "Surprise"/],
    ['an extra key', 'PingRequest', { protocol_version: '7', researcher_id: 'R', extra: 1 }, /unexpected field\(s\) extra/],
    ['a missing key', 'SearchRequest', { protocol_version: '7', researcher_id: 'R' }, /missing field tags/],
    ['a wrong type', 'SearchRequest', { protocol_version: '7', researcher_id: 'R', tags: 'x' }, /tags must be list, got string/],
    ['None where not Optional', 'PingRequest', { protocol_version: '7', researcher_id: null }, /researcher_id must be str/],
    ['another major version', 'PingRequest', { protocol_version: '6', researcher_id: 'R' }, /incompatible/],
    ['a newer minor version', 'PingRequest', { protocol_version: '7.1', researcher_id: 'R' }, /incompatible/],
  ])('%s is refused', (_name, cls, fields, error) => {
    expect(() => validateV6Fields(cls, fields)).toThrow(V6MessageError);
    expect(() => validateV6Fields(cls, fields)).toThrow(error);
  });

  test('a payload without the envelope is refused', () => {
    expect(() => decodeV6Message(encodeV6Payload({ protocol_version: '7', researcher_id: 'R' })))
      .toThrow(/no __type_message__/);
  });
});
