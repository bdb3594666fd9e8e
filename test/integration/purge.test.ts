/**
 * The background purge of a real node (bin/kai): expired items and deleted keys leave the SQLite
 * file instead of accumulating in it. Named after the bug it covers: tombstones were never purged.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { tombstoneRetentionMs } from '../../src/storage/record';
import { databaseFileName, openSqliteStore } from '../../src/storage/sqlite';
import { killStartedKai, startKai, type KaiProcess } from '../support/process';
import { RawClient } from '../support/raw-client';

/** The node purges every second; this leaves room for a slow machine. */
const purgeWaitMsMax = 15_000;
const pollGapMs = 100;

let dataDir: string;
let kai: KaiProcess | undefined;

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-purge-'));
});

afterEach(async () => {
  await kai?.stop().catch(() => undefined);
  kai = undefined;
  await killStartedKai();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function statValue(reply: string, name: string): number {
  const match = new RegExp(`^STAT ${name} (\\d+)\\r$`, 'm').exec(reply);
  if (!match) throw new Error(`no ${name} in ${JSON.stringify(reply)}`);
  return Number(match[1]);
}

/** Asks `stats` until curr_items is `items`, for at most purgeWaitMsMax. */
async function waitForCurrItems(client: RawClient, items: number): Promise<void> {
  const deadline = Date.now() + purgeWaitMsMax;
  let seen = -1;
  while (Date.now() < deadline) {
    seen = statValue(await client.request('stats\r\n', 'END\r\n'), 'curr_items');
    if (seen === items) return;
    await new Promise((resolve) => setTimeout(resolve, pollGapMs));
  }
  throw new Error(`curr_items still ${seen}, not ${items}, after ${purgeWaitMsMax} ms`);
}

interface ItemRow {
  readonly key: string;
  readonly purgeAtMs: number | null;
}

function rowsOf(file: string): ItemRow[] {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare("SELECT CAST(key AS TEXT) AS key, record_expires_at_ms AS purgeAtMs FROM items ORDER BY key")
      .all() as ItemRow[];
  } finally {
    db.close();
  }
}

describe('the background purge', () => {
  test('an expired item leaves the file, and a deleted key is scheduled to leave it after the retention', async () => {
    // Proves the real node purges expired rows and gives a deleted key's tombstone a purge time.
    kai = await startKai({ dataDir, args: ['--log-level', 'warn'] });
    const client = await RawClient.connect(kai.memcachePort);
    try {
      expect(await client.request('set kept 0 0 1\r\nk\r\n')).toBe('STORED\r\n');
      expect(await client.request('set expiring 0 1 1\r\ne\r\n')).toBe('STORED\r\n');
      expect(await client.request('set deleted 0 0 1\r\nd\r\n')).toBe('STORED\r\n');
      const deletedFromMs = Date.now();
      expect(await client.request('delete deleted\r\n')).toBe('DELETED\r\n');
      const deletedToMs = Date.now();
      await waitForCurrItems(client, 1);

      await kai.stop();
      kai = undefined;
      const file = path.join(dataDir, databaseFileName);
      const rows = rowsOf(file);
      expect(rows.map((row) => row.key)).toEqual(['deleted', 'kept']);
      const deleted = rows[0];
      expect(deleted.purgeAtMs).not.toBeNull();
      expect(deleted.purgeAtMs).toBeGreaterThanOrEqual(deletedFromMs + tombstoneRetentionMs);
      expect(deleted.purgeAtMs).toBeLessThanOrEqual(deletedToMs + tombstoneRetentionMs);

      // The purge the node runs every second, as it will run once the retention has passed.
      const store = openSqliteStore({ dataDir });
      try {
        expect(await store.purgeExpired(deletedToMs + tombstoneRetentionMs, 100)).toBe(1);
      } finally {
        await store.close();
      }
      expect(rowsOf(file).map((row) => row.key)).toEqual(['kept']);
    } finally {
      client.close();
    }
  }, 60_000);
});
