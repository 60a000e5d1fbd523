/** The standard check values ("123456789") of both CRCs, and their empty-input value. */
import { crc32, crc32c } from './crc';

test('CRC-32 (PNG) and CRC-32C (TFRecord) of "123456789"', () => {
  expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  expect(crc32(new Uint8Array(0))).toBe(0);
  expect(crc32c(new Uint8Array(0))).toBe(0);
});
