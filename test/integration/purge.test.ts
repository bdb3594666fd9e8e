/**
 * The background reaping of a real single node (bin/kai): expired items and deleted keys leave the
 * SQLite file instead of accumulating in it. Named after the bug it covers: tombstones were never
 * purged.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { databaseFileName } from '../../src/storage/sqlite';
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

function keysOf(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT CAST(key AS TEXT) AS key FROM items ORDER BY key').all() as { key: string }[]).map((row) => row.key);
  } finally {
    db.close();
  }
}

describe('the background reaper of a node that is the only replica of its keys', () => {
  test('an expired item and a deleted key leave the file once dead', async () => {
    // Proves the real node reaps dead rows at once when no other replica could hold an older version.
    kai = await startKai({ dataDir, args: ['--log-level', 'warn'] });
    const client = await RawClient.connect(kai.memcachePort);
    try {
      expect(await client.request('set kept 0 0 1\r\nk\r\n')).toBe('STORED\r\n');
      expect(await client.request('set expiring 0 1 1\r\ne\r\n')).toBe('STORED\r\n');
      expect(await client.request('set deleted 0 0 1\r\nd\r\n')).toBe('STORED\r\n');
      expect(await client.request('delete deleted\r\n')).toBe('DELETED\r\n');
      await waitForCurrItems(client, 1);
      const file = path.join(dataDir, databaseFileName);
      const deadline = Date.now() + purgeWaitMsMax;
      while (keysOf(file).length > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, pollGapMs));
      expect(keysOf(file)).toEqual(['kept']);
      expect(statValue(await client.request('stats kai\r\n', 'END\r\n'), 'reaped')).toBe(2);
    } finally {
      client.close();
    }
  }, 60_000);
});
