import type Database from 'better-sqlite3';
import { KaiError } from '../errors';
import { treeShapeFor } from '../merkle';
import { decodeVersions, encodeVersions } from './record-codec';
import { newerFirst, recordDeadAtMs } from './record';
import { recordHash, segmentOfKey } from './record-hash';

/** Bumped whenever a table or the versions blob layout (record-codec.ts) changes. */
export const schemaVersion = 3;

const schemaVersionName = 'schemaVersion';
/** The ring's bucket count the file's bucket and segment columns were computed for. */
const bucketsName = 'buckets';

/**
 * One row per key. `bucket` and `segment` place the key in its bucket's hash tree (src/merkle) and
 * are indexed with the record's hash, so a tree is rebuilt and a segment's keys listed from the
 * index alone. `dead_at_ms` (set once no version is live; NULL while one never ends) is indexed
 * (only where set) so the reaper reads only candidates; `reap_after_ms` holds a candidate back
 * after a reap attempt that could not finish. `item_bytes` (key plus value bytes, NULL when only
 * tombstones remain) lets counts be initialized by one aggregate at open and kept up to date
 * without decoding versions.
 *
 * `actor` is the name this node writes the key's clock entry and counter totals under
 * (StoredRecord.actor); it is this node's alone, so it is kept beside the versions, out of the
 * record's hash.
 *
 * `hints` names, for a copy this node holds in place of a primary that was down (a fallback's
 * copy), the primary it is for; hinted handoff delivers the copy and removes the row.
 */
const createStatements = [
  `CREATE TABLE IF NOT EXISTS meta (
     name TEXT PRIMARY KEY NOT NULL,
     value NOT NULL
   ) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS items (
     key BLOB PRIMARY KEY NOT NULL,
     bucket INTEGER NOT NULL,
     segment INTEGER NOT NULL,
     key_hash INTEGER NOT NULL,
     dead_at_ms INTEGER,
     reap_after_ms INTEGER,
     item_bytes INTEGER,
     versions BLOB NOT NULL,
     actor TEXT
   ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS items_by_bucket ON items (bucket, segment, key_hash)`,
  `CREATE INDEX IF NOT EXISTS items_by_dead_time ON items (dead_at_ms) WHERE dead_at_ms IS NOT NULL`,
  `CREATE TABLE IF NOT EXISTS hints (
     target TEXT NOT NULL,
     key BLOB NOT NULL,
     bytes INTEGER NOT NULL,
     PRIMARY KEY (target, key)
   ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS hints_by_key ON hints (key)`,
];

/** Rows copied per statement batch while migrating; one transaction holds the whole migration. */
const rowsPerMigrationStepMax = 1000;

interface VersionOneRow {
  readonly key: Buffer;
  readonly bucket: number;
  readonly item_bytes: number | null;
  readonly versions: Buffer;
}

/**
 * Version 1 files kept `record_expires_at_ms` (a purge time) and no hash-tree columns: every row
 * is rewritten with its versions in canonical order, its hash, segment and dead time. One
 * transaction, so a crash mid-way leaves the version 1 file as it was.
 */
function migrateFromVersionOne(db: Database.Database, buckets: number): void {
  const { segments } = treeShapeFor(buckets);
  db.prepare('ALTER TABLE items RENAME TO items_v1').run();
  db.prepare('DROP INDEX IF EXISTS items_by_bucket').run();
  db.prepare('DROP INDEX IF EXISTS items_by_purge_time').run();
  for (const statement of createStatements) db.prepare(statement).run();
  const select = db.prepare<[Buffer, number], VersionOneRow>(
    'SELECT key, bucket, item_bytes, versions FROM items_v1 WHERE key > ? ORDER BY key LIMIT ?',
  );
  const insert = db.prepare(
    `INSERT INTO items (key, bucket, segment, key_hash, dead_at_ms, reap_after_ms, item_bytes, versions)
     VALUES (?, ?, ?, ?, ?, NULL, ?, ?)`,
  );
  for (let after: Buffer | undefined = Buffer.alloc(0); after !== undefined; ) {
    const rows = select.all(after, rowsPerMigrationStepMax);
    for (const row of rows) {
      const versions = decodeVersions(row.versions).sort(newerFirst);
      const blob = encodeVersions(versions);
      insert.run(row.key, row.bucket, segmentOfKey(row.key, buckets, segments), recordHash(row.key, blob), recordDeadAtMs(versions), row.item_bytes, blob);
    }
    after = rows.length === rowsPerMigrationStepMax ? rows[rows.length - 1].key : undefined;
  }
  db.prepare('DROP TABLE items_v1').run();
  db.prepare("DELETE FROM meta WHERE name = 'tombstonesScheduled'").run();
}

function metaValue(db: Database.Database, name: string): unknown {
  const row = db.prepare('SELECT value FROM meta WHERE name = ?').get(name) as { value: unknown } | undefined;
  return row?.value;
}

function setMeta(db: Database.Database, name: string, value: number): void {
  db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value').run(name, value);
}

/**
 * Creates the tables of a new file, migrates a version 1 file, or refuses a file written with
 * another schema version or for another bucket count (its bucket and segment columns would place
 * keys where this node's ring does not).
 */
export function prepareSchema(db: Database.Database, buckets: number): void {
  db.transaction(() => {
    db.prepare(createStatements[0]).run();
    const version = metaValue(db, schemaVersionName);
    if (version === 1) {
      migrateFromVersionOne(db, buckets);
    } else if (version === 2) {
      // Version 3 adds the counter item to a version tuple (every version 2 blob is a valid one)
      // and the column naming the actor this node writes a key under.
      db.prepare('ALTER TABLE items ADD COLUMN actor TEXT').run();
    } else if (version === undefined) {
      for (const statement of createStatements) db.prepare(statement).run();
    } else if (version !== schemaVersion) {
      throw new KaiError(
        'KAI_STORAGE_FAILURE',
        `database schema version ${String(version)} is not the supported version ${schemaVersion}`,
      );
    }
    setMeta(db, schemaVersionName, schemaVersion);
    const recordedBuckets = metaValue(db, bucketsName);
    if (recordedBuckets === undefined) {
      setMeta(db, bucketsName, buckets);
    } else if (recordedBuckets !== buckets) {
      throw new KaiError(
        'KAI_STORAGE_FAILURE',
        `the data dir was written with --buckets ${String(recordedBuckets)}, not ${buckets}: start with --buckets ${String(recordedBuckets)}, or with an empty data dir`,
      );
    }
  })();
}

/** The committed counts, computed once at open; after that they are kept up to date per commit. */
export const selectCountsSql =
  'SELECT COUNT(item_bytes) AS items, COALESCE(SUM(item_bytes), 0) AS bytes FROM items';

/** Committed hints per target, computed once at open; after that kept up to date per commit. */
export const selectHintCountsSql = 'SELECT target, COUNT(*) AS count, COALESCE(SUM(bytes), 0) AS bytes FROM hints GROUP BY target';
