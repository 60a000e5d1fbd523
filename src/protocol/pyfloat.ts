/**
 * Python distinguishes `1` (int) from `1.0` (float) and Fed-BioMed type-checks message fields with isinstance,
 * so a whole-valued float must travel as `1.0` in JSON and as float64 in msgpack. JavaScript has one number type;
 * `PyFloat` marks a number that must be written as a Python float wherever no schema says so.
 * It behaves as a number in arithmetic (`+x`, `x * 2`) through valueOf().
 */
export class PyFloat {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value;
  }
  toJSON(): number {
    return this.value;
  }
  toString(): string {
    return String(this.value);
  }
}

/** The plain number inside a number or a PyFloat. */
export function numberOf(value: number | PyFloat): number {
  return value instanceof PyFloat ? value.value : value;
}
