import { float16BitsToNumber, float16ToFloat32, float32ToFloat16, numberToFloat16Bits } from './float16';

describe('float16', () => {
  test('every one of the 65536 bit patterns survives bits → number → bits (NaNs stay NaN)', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = float16BitsToNumber(bits);
      const isNaNPattern = (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
      if (isNaNPattern) {
        expect(Number.isNaN(value)).toBe(true);
        expect(Number.isNaN(float16BitsToNumber(numberToFloat16Bits(value)))).toBe(true);
      } else if (numberToFloat16Bits(value) !== bits) {
        throw new Error(`bits 0x${bits.toString(16)} → ${value} → 0x${numberToFloat16Bits(value).toString(16)}`);
      }
    }
  });

  test.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff], // largest finite
    [65519.99, 0x7bff], // rounds down below the halfway point
    [65520, 0x7c00], // halfway to 65536: ties to even → infinity
    [1e6, 0x7c00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // halfway to it: ties to even → 0
    [1.5 * 2 ** -24, 0x0002], // ties to even → 2
    [2 ** -14, 0x0400], // smallest normal
    [1 / 3, 0x3555],
    [-0, 0x8000],
  ])('%p rounds to 0x%s', (value, bits) => {
    expect(numberToFloat16Bits(value)).toBe(bits);
  });

  test('array helpers convert element-wise', () => {
    const bits = float32ToFloat16(Float32Array.of(0.5, -1, Infinity));
    expect(Array.from(bits)).toEqual([0x3800, 0xbc00, 0x7c00]);
    expect(Array.from(float16ToFloat32(bits))).toEqual([0.5, -1, Infinity]);
  });
});
