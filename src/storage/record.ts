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
}

/** Everything stored under one key. */
export interface StoredRecord {
  readonly key: Buffer;
  /** The ring bucket of the key, kept so a bucket can be listed, hashed and transferred. */
  readonly bucket: number;
  readonly versions: readonly Version[];
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
 * How long a tombstone is kept after its delete. A tombstone must outlive every copy of the value it
 * deleted: once it is purged, an older version still held by a replica that missed the delete (down,
 * partitioned, or behind in hinted handoff) would come back through read repair or anti-entropy.
 * One day covers a replica down overnight or a handoff queue drained after a long partition, at the
 * cost of one small row per deleted key for a day. Riak keeps them 3 s by default (delete_mode)
 * and relies on its repair being quick; kai prefers the wider margin. docs/architecture.md.
 */
export const tombstoneRetentionMs = 24 * 60 * 60 * 1000;

/**
 * The time after which the record's row may be purged: no version is readable and every
 * tombstone has been kept `retentionMs` past its delete. 0 while some version never
 * expires.
 */
export function recordPurgeAtMs(versions: readonly Version[], retentionMs: number = tombstoneRetentionMs): number {
  let latestMs = 0;
  for (const version of versions) {
    const goneAtMs = version.tombstone ? version.writtenAtMs + retentionMs : version.expiresAtMs;
    if (goneAtMs === 0) return 0;
    if (goneAtMs > latestMs) latestMs = goneAtMs;
  }
  return latestMs;
}
