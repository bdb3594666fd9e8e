/**
 * What each memcache write does to a key's versions, as pure decisions: given the versions a
 * coordinating replica holds, return the new value to write (if any) and the client's result, or
 * the operating error the client gets instead (a value, never thrown). The replica turns the
 * decision into a version with a vector clock that supersedes what it holds.
 */
import { arithmeticOf, counterFrom, counterSetTo, counterValue, type Counter } from '../counter';
import { KaiError } from '../errors';
import type { ArithOutcome, DeleteOutcome, StorageMode, StoreOutcome } from '../protocol/command';
import { isCSpace, scanCDecimal, signBit64, strtoull } from '../protocol/numbers';
import { isLive, versionMarks, type Version } from '../storage/record';
import { contextNumber, merge } from '../vclock';

/** The content of a version to write; the replica adds its clock and write time. */
export interface VersionContent {
  readonly value: Buffer;
  readonly flags: number;
  readonly expiresAtMs: number;
  readonly tombstone: boolean;
  /** The counter state, when incr or decr wrote the value (src/counter). */
  readonly counter?: Counter;
  /** The meta protocol's marks (storage/record.ts versionMarks). */
  readonly marks?: number;
}

/** A write (or none) and the client's result; or an operating error, which writes nothing. */
export type Decision<R> =
  | { readonly write: VersionContent | undefined; readonly result: R; readonly error?: undefined }
  | { readonly write: undefined; readonly result?: undefined; readonly error: KaiError };

function refusal(code: 'KAI_OUT_OF_MEMORY_STORING' | 'KAI_NON_NUMERIC_VALUE'): Decision<never> {
  return { write: undefined, error: new KaiError(code) };
}

export interface MutationContext {
  readonly nowMs: number;
  readonly valueBytesMax: number;
  /** The node applying the mutation: the actor a counter credits the operation to. */
  readonly actor: string;
}

export type Mutation<R> = (versions: readonly Version[], context: MutationContext) => Decision<R>;

/** The cas unique naming every version held, live or not. */
export function casOfVersions(versions: readonly Version[]): bigint {
  let cas = casByVersions.get(versions);
  if (cas === undefined) {
    cas = contextNumber(merge(versions.map((version) => version.clock)));
    casByVersions.set(versions, cas);
  }
  return cas;
}

/**
 * The cas unique hashes every clock entry, and the store hands out the same versions list for a
 * key until a write replaces it, so it is computed once per list. Versions are immutable, so a
 * list's cas never changes; entries go when their list is collected.
 */
const casByVersions = new WeakMap<readonly Version[], bigint>();

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
  /** Only if the key's cas unique is this one; 0n = unconditionally (except in mode `cas`). */
  readonly casUnique: bigint;
  /**
   * The meta `I` flag: a cas unique that does not match still stores, keeping the item's expiry,
   * and the value is marked stale. memcached takes only a cas older than the item's; kai's cas
   * uniques name contexts and have no order, so any other one is taken as older.
   */
  readonly invalidate?: boolean;
  /** The meta `b` flag: the key was given in base64, and is shown so. */
  readonly keyBase64?: boolean;
}

/**
 * Whether a store compares cas uniques as `cas` does: mode `cas` always, and a set, add or
 * replace naming a cas unique, which memcached's binary protocol turns into a `cas`.
 */
export function storesAsCas(mode: StorageMode, casUnique: bigint): boolean {
  return mode === 'cas' || (casUnique !== 0n && (mode === 'set' || mode === 'add' || mode === 'replace'));
}

/** Whether a conditional write must give way: it names a cas unique that is not the key's. */
function casMismatch(casUnique: bigint, versions: readonly Version[]): boolean {
  return casUnique !== 0n && casOfVersions(versions) !== casUnique;
}

function storeDecision(outcome: StoreOutcome, write?: VersionContent): Decision<StoreOutcome> {
  return { write, result: outcome };
}

export function storeMutation(request: StoreRequest): Mutation<StoreOutcome> {
  return (versions, { nowMs, valueBytesMax }) => {
    const current = latestLive(versions, nowMs);
    const keyMarks = request.keyBase64 ? versionMarks.keyBase64 : 0;
    const fresh: VersionContent = {
      value: request.value,
      flags: request.flags,
      expiresAtMs: request.expiresAtMs,
      tombstone: false,
      ...(keyMarks ? { marks: keyMarks } : {}),
    };
    if (storesAsCas(request.mode, request.casUnique)) {
      if (!current) return storeDecision('NOT_FOUND');
      if (casOfVersions(versions) === request.casUnique) return storeDecision('STORED', fresh);
      if (!request.invalidate) return storeDecision('EXISTS');
      // Stored, but stale: it keeps the item's expiry, and a recache already won stays won.
      const marks = keyMarks | versionMarks.stale | ((current.marks ?? 0) & versionMarks.winTokenSent);
      return storeDecision('STORED', { ...fresh, expiresAtMs: current.expiresAtMs, marks });
    }
    switch (request.mode) {
      case 'set':
        return storeDecision('STORED', fresh);
      case 'add':
        return current ? storeDecision('NOT_STORED') : storeDecision('STORED', fresh);
      case 'replace':
        return current ? storeDecision('STORED', fresh) : storeDecision('NOT_STORED');
      case 'cas':
        throw new Error('assertion failed: mode cas is decided by storesAsCas');
      case 'append':
      case 'prepend': {
        if (!current) return storeDecision('NOT_STORED');
        if (casMismatch(request.casUnique, versions)) return storeDecision('EXISTS');
        const parts = request.mode === 'append' ? [current.value, request.value] : [request.value, current.value];
        if (parts[0].length + parts[1].length > valueBytesMax) return refusal('KAI_OUT_OF_MEMORY_STORING');
        // memcached keeps the stored item's flags and expiry on append and prepend. The new text
        // is a value set like any other: a counter it was stops being one.
        const { flags, expiresAtMs } = current;
        return storeDecision('STORED', { value: Buffer.concat(parts), flags, expiresAtMs, tombstone: false });
      }
    }
  };
}

/**
 * The meta `md I`: rather than removed, the item is marked stale (with a new cas unique, as any
 * write gives it) and may take a new expiry; a recache already won is open again.
 */
export interface Invalidation {
  readonly expiresAtMs?: number;
}

/** Deletes the key, only if its cas unique is `casUnique` unless that is 0n; or invalidates it. */
export function deleteMutation(casUnique: bigint, invalidation?: Invalidation): Mutation<DeleteOutcome> {
  return (versions, { nowMs }) => {
    const current = latestLive(versions, nowMs);
    if (!current) return { write: undefined, result: 'NOT_FOUND' };
    if (casMismatch(casUnique, versions)) return { write: undefined, result: 'EXISTS' };
    if (invalidation) {
      const marks = ((current.marks ?? 0) | versionMarks.stale) & ~versionMarks.winTokenSent;
      const expiresAtMs = invalidation.expiresAtMs ?? current.expiresAtMs;
      return { write: { ...contentOf(current), expiresAtMs, marks }, result: 'DELETED' };
    }
    return { write: { value: Buffer.alloc(0), flags: 0, expiresAtMs: 0, tombstone: true }, result: 'DELETED' };
  };
}

/** A version's content, to write again with changes: the replica gives it a new clock. */
export function contentOf(version: Version): VersionContent {
  const { value, flags, expiresAtMs, tombstone, counter, marks } = version;
  return { value, flags, expiresAtMs, tombstone, ...(counter ? { counter } : {}), ...(marks ? { marks } : {}) };
}

export function touchMutation(expiresAtMs: number): Mutation<Version | undefined> {
  return (versions, { nowMs }) => {
    const current = latestLive(versions, nowMs);
    if (!current) return { write: undefined, result: undefined };
    return { write: { ...contentOf(current), expiresAtMs }, result: current };
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
  /** Only if the key's cas unique is this one; 0n (or absent) = unconditionally. */
  readonly casUnique?: bigint;
  /** Binary protocol: the value to create a missing key with; undefined to answer not found. */
  readonly initial?: { readonly value: bigint; readonly expiresAtMs: number };
  /** The meta `T` flag: the expiry the counter takes when the operation succeeds. */
  readonly expiresAtMs?: number;
}

export interface ArithResult {
  readonly outcome: ArithOutcome;
  /** The counter after the operation; 0n unless the outcome is OK. */
  readonly value: bigint;
  /** Whether the key was missing and created with the initial value. */
  readonly created: boolean;
  /** The counter's expiry before the operation (unix ms; 0 for never, or when there was none). */
  readonly previousExpiresAtMs: number;
}

const arithNotFound: Decision<ArithResult> = {
  write: undefined,
  result: { outcome: 'NOT_FOUND', value: 0n, created: false, previousExpiresAtMs: 0 },
};
const arithExists: Decision<ArithResult> = {
  write: undefined,
  result: { outcome: 'EXISTS', value: 0n, created: false, previousExpiresAtMs: 0 },
};

/**
 * incr wraps at 2^64, decr stops at 0. A missing key is NOT_FOUND, or created with the initial
 * value when one is given; a cas unique that does not match is EXISTS, checked before the value
 * is read, as memcached's do_add_delta does. The written value is a counter (src/counter): the
 * first incr or decr of a set value grows one from it, crediting the operation to this node.
 */
export function arithMutation(request: ArithRequest): Mutation<ArithResult> {
  return (versions, { nowMs, actor }) => {
    const current = latestLive(versions, nowMs);
    if (!current) {
      if (!request.initial) return arithNotFound;
      const { value, expiresAtMs } = request.initial;
      // Created from nothing, at no set time: concurrent creations with one initial value are
      // one origin and merge, so the increments made through each of them all count.
      return {
        write: { value: counterText(value, 0), flags: 0, expiresAtMs, tombstone: false, counter: counterFrom(value, 0) },
        result: { outcome: 'OK', value, created: true, previousExpiresAtMs: 0 },
      };
    }
    if (casMismatch(request.casUnique ?? 0n, versions)) return arithExists;
    let counter = current.counter;
    if (!counter) {
      const parsed = parseCounter(current.value);
      if (parsed === undefined) return refusal('KAI_NON_NUMERIC_VALUE');
      counter = counterFrom(parsed, current.writtenAtMs);
    }
    const next = arithmeticOf(counterValue(counter), request.incr, request.delta);
    const { flags } = current;
    return {
      write: {
        value: counterText(next, current.value.length),
        flags,
        expiresAtMs: request.expiresAtMs ?? current.expiresAtMs,
        tombstone: false,
        counter: counterSetTo(counter, actor, next, nowMs),
      },
      result: { outcome: 'OK', value: next, created: false, previousExpiresAtMs: current.expiresAtMs },
    };
  };
}
