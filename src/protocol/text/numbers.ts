/**
 * Number parsing exactly as memcached 1.6 does it: its safe_strto* helpers wrap C's strtol and
 * strtoul on a 64-bit machine and then store the result in a narrower integer. Clients see the
 * consequences (flags 4294967296 is stored as 0, exptime 2147483648 is already expired, `-1` is
 * refused where an unsigned number is wanted), so kai reproduces them rather than tidying them up.
 */
import {
  digitZero,
  fastPathDigitsMax,
  isCSpace,
  isDigit,
  minus,
  scanCDecimal,
  signBit64,
  strtoull,
  type ScannedDecimal,
} from '../numbers';

const int64Min = -(1n << 63n);
const int64Max = (1n << 63n) - 1n;

/**
 * A token read as a decimal number: the digits must be followed by the end of the token or by
 * white space (memcached accepts "1\t" but not "1x").
 */
function scanToken(token: Buffer): ScannedDecimal | undefined {
  const scanned = scanCDecimal(token);
  if (!scanned || (scanned.end < token.length && !isCSpace(token[scanned.end]))) return undefined;
  return scanned;
}

/** memcached's safe_strtoull: a 64-bit unsigned number (cas uniques, incr/decr deltas). */
export function parseUint64(token: Buffer): bigint | undefined {
  const scanned = scanToken(token);
  const value = scanned && strtoull(scanned);
  if (value === undefined) return undefined;
  // A value with the top bit set that came from a minus sign was a negative number. memcached
  // looks for the '-' anywhere in the token, not only before the digits.
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
  const scanned = scanToken(token);
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
    if (!isDigit(byte)) return undefined;
    value = value * 10 + (byte - digitZero);
  }
  return value;
}
