/**
 * IEEE 754 half precision, which JavaScript has no typed array for (Float16Array is not in Node 20).
 * float16 tensors are stored as raw bits in a Uint16Array; these convert them to and from float32.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Value of one half-precision bit pattern. */
export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Nearest half-precision bit pattern to a float32 value (round half to even, as numpy does). */
export function numberToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent32 = (x >>> 23) & 0xff;
  const mantissa32 = x & 0x7fffff;
  if (exponent32 === 0xff) {
    // Infinity, or NaN kept quiet (a non-zero mantissa) with the top payload bits.
    return mantissa32 === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa32 >>> 13);
  }
  const exponent = exponent32 - 127 + 15;
  if (exponent >= 0x1f) return sign | 0x7c00; // too large: infinity
  if (exponent <= 0) {
    // Result is subnormal (or zero): mantissa with the implicit 1, shifted to units of 2^-24.
    if (exponent < -10) return sign;
    const full = mantissa32 | 0x800000;
    const shift = 14 - exponent;
    return sign | roundShift(full, shift);
  }
  // Normal: a carry out of the mantissa correctly bumps the exponent (up to infinity).
  return sign | roundShift((exponent << 23) | mantissa32, 13);
}

/** value >> shift, rounded half to even. */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16BitsToNumber(bits[i]);
  return out;
}

export function float32ToFloat16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = numberToFloat16Bits(values[i]);
  return out;
}
