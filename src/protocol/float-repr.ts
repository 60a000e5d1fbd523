/**
 * Python's `repr(float)` (what `json.dumps` writes for a float) in TypeScript.
 *
 * Both Python and ECMAScript produce the *shortest* decimal digit string that reads back to the same double;
 * they differ only in layout. Python uses positional notation when the decimal exponent is in [-4, 16) and
 * always keeps a fractional part (`1.0`), otherwise scientific notation with a signed, at least two-digit
 * exponent (`1e-05`, `1e+16`, `1.5e+300`). Non-finite values are written as json.dumps does: `NaN`,
 * `Infinity`, `-Infinity`.
 */
export function pythonFloatRepr(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';

  const sign = value < 0 ? '-' : '';
  // toExponential() without an argument yields the shortest round-tripping digits, e.g. "1.2345e+2".
  const [mantissa, exponentText] = Math.abs(value).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const exponent = Number(exponentText);

  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
    const integerDigits = exponent + 1;
    if (digits.length <= integerDigits) return `${sign}${digits}${'0'.repeat(integerDigits - digits.length)}.0`;
    return `${sign}${digits.slice(0, integerDigits)}.${digits.slice(integerDigits)}`;
  }
  const fraction = digits.length > 1 ? `.${digits.slice(1)}` : '';
  const exponentSign = exponent < 0 ? '-' : '+';
  const exponentDigits = String(Math.abs(exponent)).padStart(2, '0');
  return `${sign}${digits[0]}${fraction}e${exponentSign}${exponentDigits}`;
}
