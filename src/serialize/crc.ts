/**
 * Table-driven reflected CRC-32 checksums of the binary formats the project reads and writes: CRC-32 (PNG chunks,
 * polynomial 0xEDB88320) and CRC-32C (TensorBoard's TFRecord framing, Castagnoli polynomial 0x82F63B78).
 */
function reflectedCrc32(polynomial: number): (bytes: Uint8Array) => number {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? polynomial ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return (bytes) => {
    let crc = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
    return (crc ^ 0xffffffff) >>> 0;
  };
}

export const crc32 = reflectedCrc32(0xedb88320);
export const crc32c = reflectedCrc32(0x82f63b78);
