import { UsageError } from '../errors.js';

/**
 * Strict parsing of numeric options. `Number()` accepts '1e3', '0x10', ' 12 ', '' (as 0) and more; an
 * operator who typed one of those meant something else, so only plain decimal digits are accepted, and
 * the message says the range.
 */
export function intOption(name: string, value: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a decimal integer in ${min}..${max === Number.MAX_SAFE_INTEGER ? '2^53-1' : max}, got '${value}'`);
  }
  return n;
}

/** A plain decimal fraction (digits, at most one point): '0.5', '1', '.25' — never '5e-1' or '0x1'. */
export function fractionOption(name: string, value: string, min: number, max: number): number {
  const n = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`--${name} must be a decimal number in [${min}, ${max}], got '${value}'`);
  return n;
}

/** TCP ports: 0 asks the system for a free one. */
export const portOption = (name: string, value: string) => intOption(name, value, 0, 65_535);
