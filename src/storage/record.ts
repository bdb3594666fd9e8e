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

/**
 * The time after which no version of the record is readable and the row may be purged;
 * 0 when some version never expires.
 */
export function recordExpiresAtMs(versions: readonly Version[]): number {
  let latestMs = 0;
  for (const version of versions) {
    if (version.expiresAtMs === 0) return 0;
    if (version.expiresAtMs > latestMs) latestMs = version.expiresAtMs;
  }
  return latestMs;
}
