import type Database from 'better-sqlite3';
import { KaiError } from '../errors';

/** Bumped whenever a table or the versions blob layout (record-codec.ts) changes. */
export const schemaVersion = 1;

const schemaVersionName = 'schemaVersion';

/**
 * One row per key. The bucket is indexed because buckets are listed, hashed and handed off as
 * units; the purge time is indexed (only where set) so purging reads only what it deletes.
 * `item_bytes` (key plus value bytes, NULL when only tombstones remain) lets counts be
 * initialized by one aggregate at open and kept up to date without decoding versions.
 */
const createStatements = [
  `CREATE TABLE IF NOT EXISTS meta (
     name TEXT PRIMARY KEY NOT NULL,
     value NOT NULL
   ) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS items (
     key BLOB PRIMARY KEY NOT NULL,
     bucket INTEGER NOT NULL,
     record_expires_at_ms INTEGER,
     item_bytes INTEGER,
     versions BLOB NOT NULL
   ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS items_by_bucket ON items (bucket)`,
  `CREATE INDEX IF NOT EXISTS items_by_purge_time ON items (record_expires_at_ms)
     WHERE record_expires_at_ms IS NOT NULL`,
];

/** Creates the tables of a new file, or refuses a file written with another schema version. */
export function prepareSchema(db: Database.Database): void {
  db.transaction(() => {
    for (const statement of createStatements) db.prepare(statement).run();
    const row = db.prepare('SELECT value FROM meta WHERE name = ?').get(schemaVersionName) as
      | { value: unknown }
      | undefined;
    if (row === undefined) {
      db.prepare('INSERT INTO meta (name, value) VALUES (?, ?)').run(schemaVersionName, schemaVersion);
      return;
    }
    if (row.value !== schemaVersion) {
      throw new KaiError(
        'KAI_STORAGE_FAILURE',
        `database schema version ${String(row.value)} is not the supported version ${schemaVersion}`,
      );
    }
  })();
}

/** The committed counts, computed once at open; after that they are kept up to date per commit. */
export const selectCountsSql =
  'SELECT COUNT(item_bytes) AS items, COALESCE(SUM(item_bytes), 0) AS bytes FROM items';
