import type { Counter } from '../counter';
import type { VClock } from '../vclock';


/**
 * One version of a key's value. A key holds one or more versions (siblings) that no other
 * version's clock dominates; a deletion is a version too (a tombstone), so it can supersede
 * concurrent writes on other replicas.
 */
export interface Version {
  readonly clock: VClock;
  /** Value bytes; empty for a tombstone. */
  readonly value: Buffer;
  /** memcached's 32-bit client flags. */
  readonly flags: number;
  /** Absolute unix time in ms after which the version is gone; 0 means never. */
  readonly expiresAtMs: number;
  readonly tombstone: boolean;
  /** When the coordinating node wrote this version (unix ms); orders versions for last-write-wins. */
  readonly writtenAtMs: number;
  /**
   * Set once incr or decr has worked on the value: its counter state (src/counter), of which
   * `value` is the decimal text. Absent for every other value.
   */
  readonly counter?: Counter;
  /**
   * The meta protocol's marks on the item (versionMarks): stale, win token sent, key given in
   * base64. Absent when none is set. They travel and are stored with the version, so every
   * replica answers `mg` alike.
   */
  readonly marks?: number;
}

/**
 * The bits of Version.marks. `stale`: an `md I` or `ms I` invalidated the value, and `mg` shows X.
 * `winTokenSent`: some client has been told it won the right to recache the item (W), so others
 * are told Z. `keyBase64`: the key was written with the meta `b` flag, so `mg k` and `me` show it
 * in base64, as memcached remembers per item.
 */
export const versionMarks = { stale: 1, winTokenSent: 2, keyBase64: 4 } as const;
/** Every defined mark bit: a peer's version with another bit set is refused. */
export const versionMarksAll = 7;

export function hasMark(version: Version, mark: number): boolean {
  return ((version.marks ?? 0) & mark) !== 0;
}

/** Everything stored under one key. */
export interface StoredRecord {
  readonly key: Buffer;
  /** The ring bucket of the key, kept so a bucket can be listed, hashed and transferred. */
  readonly bucket: number;
  readonly versions: readonly Version[];
  /**
   * The name this node writes the key's clock entry and counter totals under, once it has
   * written the key: this node's own, never sent to others (coordinator/replica.ts says why).
   */
  readonly actor?: string;
}

/** True when the version holds a value a client may read at `nowMs`. */
export function isLive(version: Version, nowMs: number): boolean {
  return !version.tombstone && (version.expiresAtMs === 0 || version.expiresAtMs > nowMs);
}

/** Whether the key holds no live value, but a value that has expired (memcached's get_expired). */
export function holdsOnlyExpired(versions: readonly Version[], nowMs: number): boolean {
  let expired = false;
  for (const version of versions) {
    if (isLive(version, nowMs)) return false;
    if (!version.tombstone) expired = true;
  }
  return expired;
}

/**
 * How long a dead record (only tombstones and expired values) is kept at least, even once every
 * replica holds it: the margin for copies the replicas cannot see, a fallback's hinted copy not yet
 * delivered or a replica restored from a backup, which would otherwise bring an older value back
 * after the record that superseded it was reaped. docs/architecture.md states the rule.
 */
export const reapGraceMsDefault = 60 * 60 * 1000;

/**
 * When the record stops holding anything live: the latest of its versions' ends (a tombstone ends
 * when its delete was written, an expiring value when it expires); null while some version never
 * ends. A dead record is not removed at once: it supersedes older versions that other replicas may
 * still hold, so the reaper (src/antientropy/reaper.ts) removes it only once every replica has
 * something that supersedes them, and a grace period has passed (docs/architecture.md).
 */
export function recordDeadAtMs(versions: readonly Version[]): number | null {
  let latestMs = 0;
  for (const version of versions) {
    const endMs = version.tombstone ? version.writtenAtMs : version.expiresAtMs;
    if (endMs === 0) return null;
    if (endMs > latestMs) latestMs = endMs;
  }
  return latestMs;
}

function clockText(clock: VClock): string {
  return clock.map((entry) => `${entry.node}\u0000${entry.counter}\u0000${entry.timestampMs}`).join('\u0001');
}

/**
 * The canonical order of a key's versions, newest first: by write time, then by content, then by
 * clock, so that every node orders the same versions alike. Records are stored in this order, so
 * two replicas holding the same versions hold the same bytes (and the same hash-tree entry). The
 * first of this order is also last-write-wins' winner, so ties in write time are broken by
 * content before clock: a winner's clock grows as it absorbs the clocks of the versions it beat,
 * and a choice made on clocks could then fall differently on two replicas that merged the same
 * versions in another order.
 */
export function newerFirst(a: Version, b: Version): number {
  if (a.writtenAtMs !== b.writtenAtMs) return b.writtenAtMs - a.writtenAtMs;
  if (a.tombstone !== b.tombstone) return a.tombstone ? 1 : -1;
  const byContent =
    Buffer.compare(b.value, a.value) || b.flags - a.flags || b.expiresAtMs - a.expiresAtMs || (b.marks ?? 0) - (a.marks ?? 0);
  if (byContent !== 0) return byContent;
  const clockA = clockText(a.clock);
  const clockB = clockText(b.clock);
  return clockA === clockB ? 0 : clockA < clockB ? 1 : -1;
}

/**
 * Whether every version is dead and has been so for `graceMs`: such versions may be reaped, so
 * a replica that holds nothing for the key need not take them (it holds nothing they supersede).
 */
export function deadPastGrace(versions: readonly Version[], nowMs: number, graceMs: number): boolean {
  const deadAtMs = recordDeadAtMs(versions);
  return deadAtMs !== null && deadAtMs + graceMs <= nowMs;
}
