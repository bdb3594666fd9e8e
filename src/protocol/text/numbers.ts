/**
 * Number parsing exactly as memcached 1.6 does it: its safe_strto* helpers wrap C's strtol and
 * strtoul on a 64-bit machine and then store the result in a narrower integer. Clients see the
 * consequences (flags 4294967296 is stored as 0, exptime 2147483648 is already expired, `-1` is
 * refused where an unsigned number is wanted), so kai reproduces them rather than tidying them up.
 */

const uint64Modulus = 1n << 64n;
const uint64Max = uint64Modulus - 1n;
const int64Min = -(1n << 63n);
const int64Max = (1n << 63n) - 1n;
const signBit64 = 1n << 63n;
/** Longest run of digits that is parsed as a plain number without loss (well inside 2^53). */
const fastPathDigitsMax = 15;
/** Digits in 2^64 - 1. */
const uint64Digits = 20;

const minus = 0x2d;
const plus = 0x2b;
const digitZero = 0x30;
const digitNine = 0x39;

/** C's isspace in the "C" locale. */
function isCSpace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d);
}

interface Scanned {
  readonly negative: boolean;
  /** The digits' value, or undefined when it exceeds every 64-bit range (C's ERANGE). */
  readonly magnitude: bigint | undefined;
}

/**
 * strtol's reading of a decimal number: leading white space, an optional sign, at least one digit,
 * and then either the end of the token or white space (memcached accepts "1\t" but not "1x").
 */
function scanDecimal(token: Buffer): Scanned | undefined {
  let index = 0;
  while (index < token.length && isCSpace(token[index])) index++;
  let negative = false;
  if (index < token.length && (token[index] === plus || token[index] === minus)) {
    negative = token[index] === minus;
    index++;
  }
  const digitsStart = index;
  while (index < token.length && token[index] >= digitZero && token[index] <= digitNine) index++;
  if (index === digitsStart) return undefined;
  if (index < token.length && !isCSpace(token[index])) return undefined;
  let significantStart = digitsStart;
  while (significantStart < index - 1 && token[significantStart] === digitZero) significantStart++;
  // More digits than 2^64 has cannot fit: no need to build a huge BigInt to know that.
  if (index - significantStart > uint64Digits) return { negative, magnitude: undefined };
  const digits = token.toString('latin1', significantStart, index);
  if (digits.length <= fastPathDigitsMax) return { negative, magnitude: BigInt(Number(digits)) };
  const magnitude = BigInt(digits);
  return { negative, magnitude: magnitude > uint64Max ? undefined : magnitude };
}

/** C's strtoull: the magnitude in 64 bits, a minus sign negating it modulo 2^64. */
function strtoull(token: Buffer): bigint | undefined {
  const scanned = scanDecimal(token);
  if (!scanned || scanned.magnitude === undefined) return undefined;
  return scanned.negative ? (uint64Modulus - scanned.magnitude) % uint64Modulus : scanned.magnitude;
}

/** memcached's safe_strtoull: a 64-bit unsigned number (cas uniques, incr/decr deltas). */
export function parseUint64(token: Buffer): bigint | undefined {
  const value = strtoull(token);
  if (value === undefined) return undefined;
  // A value with the top bit set that came from a minus sign was a negative number.
  if (value >= signBit64 && token.includes(minus)) return undefined;
  return value;
}

/** memcached's safe_strtoul into a uint32_t: parsed as 64 bits, then truncated to 32 (flags, verbosity). */
export function parseUint32(token: Buffer): number | undefined {
  const fast = parsePlainDigits(token);
  if (fast !== undefined && fast <= 0xffffffff) return fast;
  const value = parseUint64(token);
  return value === undefined ? undefined : Number(value & 0xffffffffn);
}

/** memcached's safe_strtol into an int32_t: parsed as a 64-bit long, then truncated to 32 bits (exptime, length). */
export function parseInt32(token: Buffer): number | undefined {
  const fast = parsePlainDigits(token);
  if (fast !== undefined && fast <= 0x7fffffff) return fast;
  const scanned = scanDecimal(token);
  if (!scanned || scanned.magnitude === undefined) return undefined;
  const value = scanned.negative ? -scanned.magnitude : scanned.magnitude;
  if (value < int64Min || value > int64Max) return undefined;
  return Number(BigInt.asIntN(32, value));
}

/** The common case, a short run of plain digits, without BigInt. */
function parsePlainDigits(token: Buffer): number | undefined {
  if (token.length === 0 || token.length > fastPathDigitsMax) return undefined;
  let value = 0;
  for (const byte of token) {
    if (byte < digitZero || byte > digitNine) return undefined;
    value = value * 10 + (byte - digitZero);
  }
  return value;
}
