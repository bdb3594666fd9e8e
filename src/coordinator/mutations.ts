/**
 * What each memcache write does to a key's versions, as pure decisions: given the versions a
 * coordinating replica holds, return the new value to write (if any) and the client's result.
 * The replica turns the decision into a version with a vector clock that supersedes what it holds.
 */
import { KaiError } from '../errors';
import type { StorageMode, StoreOutcome } from '../protocol/command';
import { isCSpace, scanCDecimal, signBit64, strtoull, uint64Max } from '../protocol/numbers';
import { isLive, type Version } from '../storage/record';
import { contextNumber, merge } from '../vclock';

/** The content of a version to write; the replica adds its clock and write time. */
export interface VersionContent {
  readonly value: Buffer;
  readonly flags: number;
  readonly expiresAtMs: number;
  readonly tombstone: boolean;
}

export interface Decision<R> {
  readonly write: VersionContent | undefined;
  readonly result: R;
}

export interface MutationContext {
  readonly nowMs: number;
  readonly valueBytesMax: number;
}

export type Mutation<R> = (versions: readonly Version[], context: MutationContext) => Decision<R>;

/** The cas unique naming every version held, live or not. */
export function casOfVersions(versions: readonly Version[]): bigint {
  return contextNumber(merge(versions.map((version) => version.clock)));
}

/**
 * The version a read-modify-write starts from when several siblings are live: the one written
 * last. docs/architecture.md explains why this is the rule.
 */
export function latestLive(versions: readonly Version[], nowMs: number): Version | undefined {
  let latest: Version | undefined;
  for (const version of versions) {
    if (isLive(version, nowMs) && (!latest || version.writtenAtMs > latest.writtenAtMs)) latest = version;
  }
  return latest;
}

export interface StoreRequest {
  readonly mode: StorageMode;
  readonly value: Buffer;
  readonly flags: number;
  readonly expiresAtMs: number;
  readonly casUnique: bigint;
}

function storeDecision(outcome: StoreOutcome, write?: VersionContent): Decision<StoreOutcome> {
  return { write, result: outcome };
}

export function storeMutation(request: StoreRequest): Mutation<StoreOutcome> {
  return (versions, { nowMs, valueBytesMax }) => {
    const current = latestLive(versions, nowMs);
    const fresh: VersionContent = {
      value: request.value,
      flags: request.flags,
      expiresAtMs: request.expiresAtMs,
      tombstone: false,
    };
    switch (request.mode) {
      case 'set':
        return storeDecision('STORED', fresh);
      case 'add':
        return current ? storeDecision('NOT_STORED') : storeDecision('STORED', fresh);
      case 'replace':
        return current ? storeDecision('STORED', fresh) : storeDecision('NOT_STORED');
      case 'cas':
        if (!current) return storeDecision('NOT_FOUND');
        if (casOfVersions(versions) !== request.casUnique) return storeDecision('EXISTS');
        return storeDecision('STORED', fresh);
      case 'append':
      case 'prepend': {
        if (!current) return storeDecision('NOT_STORED');
        const parts = request.mode === 'append' ? [current.value, request.value] : [request.value, current.value];
        if (parts[0].length + parts[1].length > valueBytesMax) throw new KaiError('KAI_OUT_OF_MEMORY_STORING');
        // memcached keeps the stored item's flags and expiry on append and prepend.
        return storeDecision('STORED', { ...current, value: Buffer.concat(parts), tombstone: false });
      }
    }
  };
}

export const deleteMutation: Mutation<boolean> = (versions, { nowMs }) => {
  if (!latestLive(versions, nowMs)) return { write: undefined, result: false };
  return { write: { value: Buffer.alloc(0), flags: 0, expiresAtMs: 0, tombstone: true }, result: true };
};

export function touchMutation(expiresAtMs: number): Mutation<Version | undefined> {
  return (versions, { nowMs }) => {
    const current = latestLive(versions, nowMs);
    if (!current) return { write: undefined, result: undefined };
    return { write: { ...current, expiresAtMs }, result: current };
  };
}

/**
 * Reads a stored value as memcached's safe_strtoull does (the value is followed by CRLF there, so
 * digits may end at the value's end, at white space or at a NUL byte): leading white space and a
 * sign are allowed, a negative number is refused unless its 64-bit wrap is below 2^63, overflow is
 * refused.
 */
export function parseCounter(value: Buffer): bigint | undefined {
  const scanned = scanCDecimal(value);
  if (!scanned) return undefined;
  // memcached reads the value as a C string, so a NUL byte ends the number as the value's end does.
  const next = scanned.end < value.length ? value[scanned.end] : 0;
  if (next !== 0 && !isCSpace(next)) return undefined;
  const number = strtoull(scanned);
  if (number === undefined) return undefined;
  return scanned.negative && number >= signBit64 ? undefined : number;
}

/** The counter's new text: memcached rewrites a shorter number in place, padded with spaces. */
function counterText(value: bigint, previousLength: number): Buffer {
  const digits = value.toString();
  return Buffer.from(digits.length < previousLength ? digits.padEnd(previousLength, ' ') : digits, 'latin1');
}

export interface ArithRequest {
  readonly incr: boolean;
  readonly delta: bigint;
  /** Binary protocol: the value to create a missing key with; undefined to answer not found. */
  readonly initial?: { readonly value: bigint; readonly expiresAtMs: number };
}

/** incr wraps at 2^64, decr stops at 0; the result is undefined when the key is missing. */
export function arithMutation(request: ArithRequest): Mutation<bigint | undefined> {
  return (versions, { nowMs }) => {
    const current = latestLive(versions, nowMs);
    if (!current) {
      if (!request.initial) return { write: undefined, result: undefined };
      const { value, expiresAtMs } = request.initial;
      return { write: { value: counterText(value, 0), flags: 0, expiresAtMs, tombstone: false }, result: value };
    }
    const counter = parseCounter(current.value);
    if (counter === undefined) throw new KaiError('KAI_NON_NUMERIC_VALUE');
    const next = request.incr
      ? (counter + request.delta) & uint64Max
      : counter < request.delta
        ? 0n
        : counter - request.delta;
    return { write: { ...current, value: counterText(next, current.value.length), tombstone: false }, result: next };
  };
}
