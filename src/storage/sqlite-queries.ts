/**
 * What a SqliteStore reads straight from its file, on its own connection, for the background
 * shells: hints to deliver, reap candidates, a segment's keys for anti-entropy, and the rows a hash
 * tree is rebuilt from. Each answers from committed rows only: decisions taken on them are carried
 * out by operations conditional on the record's hash (sqlite-batch.ts), so a write committed in
 * between is never undone.
 */
import type Database from 'better-sqlite3';
import { assertValidRecord, decodeVersions } from './record-codec';
import type { StoredRecord } from './record';

/** A committed record with the hash its row has now. */
export interface HashedRecord extends StoredRecord {
  readonly hash: number;
}

/** A hint to deliver: its key, and the record it is for (undefined when the record is gone). */
export interface PendingHint {
  readonly key: Buffer;
  readonly record: HashedRecord | undefined;
}

/** A page of a bucket's committed records, and whether the bucket holds keys after its last. */
export interface BucketPage {
  readonly records: readonly HashedRecord[];
  readonly more: boolean;
}

export interface KeyHash {
  readonly key: Buffer;
  readonly hash: number;
}

interface RecordRow {
  readonly key: Buffer;
  readonly bucket: number;
  readonly versions: Buffer;
  readonly hash: number;
}

export function decodeRecordRow(row: { key: Buffer; bucket: number; versions: Buffer; actor?: string | null }): StoredRecord {
  const versions = decodeVersions(row.versions);
  const record: StoredRecord = typeof row.actor === 'string' ? { key: row.key, bucket: row.bucket, versions, actor: row.actor } : { key: row.key, bucket: row.bucket, versions };
  assertValidRecord(record);
  return record;
}

function hashedRecordOf(row: RecordRow): HashedRecord {
  return { ...decodeRecordRow(row), hash: row.hash };
}

export class StoreQueries {
  private readonly hintsOf: Database.Statement<[string, Buffer, number], RecordRow | { key: Buffer; bucket: null; versions: null; hash: null }>;
  private readonly reapCandidatesStatement: Database.Statement<[number, number, number], RecordRow>;
  private readonly segmentKeysStatement: Database.Statement<[number, number, number], KeyHash>;
  private readonly unhintedInBucketStatement: Database.Statement<[number, Buffer, number], RecordRow>;
  private readonly inBucketStatement: Database.Statement<[number, Buffer, number], RecordRow>;
  private readonly treeRowsStatement: Database.Statement<[], { bucket: number; segment: number; hash: number }>;
  private readonly committedRecordStatement: Database.Statement<[Buffer], RecordRow>;

  constructor(db: Database.Database) {
    this.hintsOf = db.prepare(
      `SELECT hints.key AS key, items.bucket AS bucket, items.versions AS versions, items.key_hash AS hash
         FROM hints LEFT JOIN items ON items.key = hints.key
        WHERE hints.target = ? AND hints.key > ? ORDER BY hints.key LIMIT ?`,
    );
    this.reapCandidatesStatement = db.prepare(
      `SELECT key, bucket, versions, key_hash AS hash FROM items
        WHERE dead_at_ms <= ? AND (reap_after_ms IS NULL OR reap_after_ms <= ?)
          AND NOT EXISTS (SELECT 1 FROM hints WHERE hints.key = items.key)
        ORDER BY dead_at_ms LIMIT ?`,
    );
    this.segmentKeysStatement = db.prepare(
      'SELECT key, key_hash AS hash FROM items WHERE bucket = ? AND segment = ? ORDER BY key LIMIT ?',
    );
    this.unhintedInBucketStatement = db.prepare(
      `SELECT key, bucket, versions, key_hash AS hash FROM items
        WHERE bucket = ? AND key > ? AND NOT EXISTS (SELECT 1 FROM hints WHERE hints.key = items.key)
        ORDER BY key LIMIT ?`,
    );
    this.inBucketStatement = db.prepare(
      'SELECT key, bucket, versions, key_hash AS hash FROM items WHERE bucket = ? AND key > ? ORDER BY key LIMIT ?',
    );
    this.treeRowsStatement = db.prepare('SELECT bucket, segment, key_hash AS hash FROM items');
    this.committedRecordStatement = db.prepare('SELECT key, bucket, versions, key_hash AS hash FROM items WHERE key = ?');
  }

  /** Up to `limit` hints for `target`, in key order after `afterKey`. */
  hints(target: string, afterKey: Buffer, limit: number): PendingHint[] {
    return this.hintsOf.all(target, afterKey, limit).map((row) => ({
      key: row.key,
      record: row.versions === null ? undefined : hashedRecordOf(row as RecordRow),
    }));
  }

  /**
   * Records dead since `deadBeforeMs` whose reaping is not held back past `nowMs` and that hold no
   * hint (a fallback's copy is dropped by handoff, not reaped), oldest first.
   */
  reapCandidates(deadBeforeMs: number, nowMs: number, limit: number): HashedRecord[] {
    return this.reapCandidatesStatement.all(deadBeforeMs, nowMs, limit).map(hashedRecordOf);
  }

  /** The keys of one segment of a bucket with their hashes, in key order, at most `limit`. */
  segmentKeys(bucket: number, segment: number, limit: number): KeyHash[] {
    return this.segmentKeysStatement.all(bucket, segment, limit);
  }

  /** Up to `limit` records of `bucket` that hold no hint, in key order after `afterKey`. */
  unhintedInBucket(bucket: number, afterKey: Buffer, limit: number): HashedRecord[] {
    return this.unhintedInBucketStatement.all(bucket, afterKey, limit).map(hashedRecordOf);
  }

  /** Up to `limit` committed records of `bucket`, hinted or not, in key order after `afterKey`. */
  inBucket(bucket: number, afterKey: Buffer, limit: number): HashedRecord[] {
    return this.inBucketStatement.all(bucket, afterKey, limit).map(hashedRecordOf);
  }

  /**
   * Committed records of `bucket` after `afterKey`, in key order: at most `limit`, and once the first
   * is in, no more than `bytesMax` of encoded versions. Rows are read one at a time, so a page of
   * large values never holds more than its bound (and one row) in memory.
   */
  bucketPage(bucket: number, afterKey: Buffer, limit: number, bytesMax: number): BucketPage {
    const records: HashedRecord[] = [];
    let bytes = 0;
    for (const row of this.inBucketStatement.iterate(bucket, afterKey, limit + 1)) {
      bytes += row.versions.length;
      if (records.length === limit || (records.length > 0 && bytes > bytesMax)) return { records, more: true };
      records.push(hashedRecordOf(row));
    }
    return { records, more: false };
  }

  /** The record as committed, with its hash. */
  committedRecord(key: Buffer): HashedRecord | undefined {
    const row = this.committedRecordStatement.get(key);
    return row === undefined ? undefined : hashedRecordOf(row);
  }

  /** Every row's tree entry, from the bucket index alone: how a tree is rebuilt at open. */
  forEachTreeEntry(visit: (bucket: number, segment: number, hash: number) => void): void {
    for (const row of this.treeRowsStatement.iterate()) visit(row.bucket, row.segment, row.hash);
  }
}
