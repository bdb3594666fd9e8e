/**
 * Decimal numbers read as C's strtol and strtoull read them on a 64-bit machine, which is how
 * memcached reads every number: numeric tokens of the text protocol (./text/numbers) and the
 * stored value of a counter (coordinator/mutations). Each caller adds its own rule for what may
 * follow the digits and for which results it refuses; the scan itself is shared so that both
 * read leading white space, signs, leading zeros and overflow the same way.
 */

export const uint64Modulus = 1n << 64n;
export const uint64Max = uint64Modulus - 1n;
/** The bit that makes a 64-bit value negative when read as signed. */
export const signBit64 = 1n << 63n;
/** Longest run of digits that is parsed as a plain number without loss (well inside 2^53). */
export const fastPathDigitsMax = 15;
/** Digits in 2^64 - 1. */
const uint64Digits = 20;

export const minus = 0x2d;
const plus = 0x2b;
export const digitZero = 0x30;
const digitNine = 0x39;

/** C's isspace in the "C" locale. */
export function isCSpace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

export function isDigit(byte: number): boolean {
  return byte >= digitZero && byte <= digitNine;
}

export interface ScannedDecimal {
  readonly negative: boolean;
  /** The digits' value, or undefined when it exceeds every 64-bit range (C's ERANGE). */
  readonly magnitude: bigint | undefined;
  /** Index of the first byte after the digits: what strtol reports as its end pointer. */
  readonly end: number;
}

/**
 * strtol's scan of a decimal number: leading white space, an optional sign, then at least one
 * digit (undefined when there is none). What follows the digits is left to the caller to judge.
 */
export function scanCDecimal(bytes: Buffer): ScannedDecimal | undefined {
  let index = 0;
  while (index < bytes.length && isCSpace(bytes[index])) index++;
  let negative = false;
  if (index < bytes.length && (bytes[index] === plus || bytes[index] === minus)) {
    negative = bytes[index] === minus;
    index++;
  }
  const digitsStart = index;
  while (index < bytes.length && isDigit(bytes[index])) index++;
  if (index === digitsStart) return undefined;
  return { negative, magnitude: magnitudeOf(bytes, digitsStart, index), end: index };
}

/** The value of the digits in bytes[start, end), or undefined above 2^64 - 1. */
function magnitudeOf(bytes: Buffer, start: number, end: number): bigint | undefined {
  let significantStart = start;
  while (significantStart < end - 1 && bytes[significantStart] === digitZero) significantStart++;
  // More digits than 2^64 has cannot fit: no need to build a huge BigInt to know that.
  if (end - significantStart > uint64Digits) return undefined;
  const digits = bytes.toString('latin1', significantStart, end);
  if (digits.length <= fastPathDigitsMax) return BigInt(Number(digits));
  const magnitude = BigInt(digits);
  return magnitude > uint64Max ? undefined : magnitude;
}

/** C's strtoull result: the magnitude in 64 bits, a minus sign negating it modulo 2^64. */
export function strtoull(scanned: ScannedDecimal): bigint | undefined {
  if (scanned.magnitude === undefined) return undefined;
  return scanned.negative ? (uint64Modulus - scanned.magnitude) % uint64Modulus : scanned.magnitude;
}
