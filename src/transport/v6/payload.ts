/**
 * Fed-BioMed v6 payload codec (fedbiomed/common/serializer.py): msgpack with the same `{"__type__", "value"}` maps
 * as the v4.5 weight files (torch.Tensor, np.ndarray, np.generic, tuple), except that integers beyond 64 bits are
 * signed (two's complement, ceil(bit_length / 8) + 1 bytes). Other tags (set, MetricTypes, declearn's Vector and
 * AuxVar…) stay plain maps, so they round-trip unchanged.
 */
import { readMsgpack } from '../../serialize/msgpack-reader';
import { joinChunks, writeMsgpackChunks } from '../../serialize/msgpack-writer';
import { tagPythonValue, untagPythonValue } from '../../serialize/codec';

export function decodeV6Payload(bytes: Uint8Array): unknown {
  return readMsgpack(bytes, (map) => untagPythonValue(map, 'signed'));
}

export function encodeV6Payload(value: unknown): Uint8Array {
  return joinChunks(writeMsgpackChunks(value, (v) => tagPythonValue(v, 'signed')));
}
