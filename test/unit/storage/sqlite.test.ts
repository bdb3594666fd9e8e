import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { KaiError } from '../../../src/errors';
import type { StoredRecord, Version } from '../../../src/storage';
import { databaseFileName, openSqliteStore, type SqliteStore } from '../../../src/storage/sqlite';

const nowMs = 1_700_000_000_000;

function version(value: string | Buffer, overrides: Partial<Version> = {}): Version {
  return {
    clock: [{ node: 'node-a', counter: 1, timestampMs: nowMs }],
    value: typeof value === 'string' ? Buffer.from(value) : value,
    flags: 0,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs: nowMs,
    ...overrides,
  };
}

function tombstone(overrides: Partial<Version> = {}): Version {
  return version(Buffer.alloc(0), { tombstone: true, ...overrides });
}

function record(key: string | Buffer, versions: Version[], bucket = 7): StoredRecord {
  return { key: typeof key === 'string' ? Buffer.from(key) : key, bucket, versions };
}

let dataDir: string;
const openStores: SqliteStore[] = [];

function open(writesPerCommitMax?: number): SqliteStore {
  const store = openSqliteStore({ dataDir, writesPerCommitMax });
  openStores.push(store);
  return store;
}

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-sqlite-test-'));
});

afterEach(async () => {
  await Promise.allSettled(openStores.splice(0).map((store) => store.close()));
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function expectKaiError(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  expect(error).toBeInstanceOf(KaiError);
  expect((error as KaiError).code).toBe(code);
}

/** A second connection to the same file, to inject faults the way an outside writer would. */
function withSideConnection(action: (db: Database.Database) => void): void {
  const db = new Database(path.join(dataDir, databaseFileName));
  try {
    action(db);
  } finally {
    db.close();
  }
}

describe('SqliteStore', () => {
  test('round-trips records with siblings, binary keys and binary values through a reopen', async () => {
    // Proves every field of every version, and arbitrary key and value bytes, survive storage.
    const binaryKey = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80, 0x00]);
    const binaryValue = Buffer.from(Array.from({ length: 256 }, (_, index) => index));
    const siblings = record(
      binaryKey,
      [
        version(binaryValue, {
          clock: [
            { node: 'node-a', counter: 3, timestampMs: nowMs - 5 },
            { node: 'node-b', counter: 9, timestampMs: nowMs },
          ],
          flags: 0xffff_ffff,
          expiresAtMs: nowMs + 60_000,
        }),
        tombstone({ clock: [{ node: 'node-c', counter: 1, timestampMs: nowMs + 1 }], writtenAtMs: nowMs + 1 }),
        version('', { clock: [], flags: 42 }),
      ],
      1023,
    );
    const plain = record('plain', [version('hello')], 0);
    const store = open();
    await Promise.all([store.write(siblings), store.write(plain)]);
    expect(store.stats().pendingKeys).toBe(0);
    expect(store.read(binaryKey)).toEqual(siblings);
    expect(store.read(Buffer.from('plain'))).toEqual(plain);
    expect(store.read(Buffer.from([0x00, 0xff]))).toBeUndefined();
    await store.close();

    const reopened = open();
    expect(reopened.read(binaryKey)).toEqual(siblings);
    expect(reopened.read(Buffer.from('plain'))).toEqual(plain);
  });

  test('a write is readable as soon as it is accepted, before its commit', async () => {
    // Proves read-your-writes on one node: reads answer from pending records until the commit lands.
    const store = open();
    await store.write(record('k', [version('old')]));
    const first = store.write(record('k', [version('new')]));
    const second = store.write(record('other', [version('x')]));
    expect(store.read(Buffer.from('k'))?.versions[0].value.toString()).toBe('new');
    expect(store.read(Buffer.from('other'))?.versions[0].value.toString()).toBe('x');
    expect(store.stats()).toMatchObject({ pendingKeys: 2, operationsQueued: 2 });
    await Promise.all([first, second]);
    expect(store.stats()).toMatchObject({ pendingKeys: 0, operationsQueued: 0 });
    expect(store.read(Buffer.from('k'))?.versions[0].value.toString()).toBe('new');
  });

  test('the latest of several writes to one key stays pending until its own commit', async () => {
    // Proves an earlier write's commit does not drop a later write's pending record.
    const store = open(1);
    const writes = [store.write(record('k', [version('1')])), store.write(record('k', [version('2')]))];
    await writes[0];
    expect(store.stats().pendingKeys).toBe(1);
    expect(store.read(Buffer.from('k'))?.versions[0].value.toString()).toBe('2');
    await writes[1];
    expect(store.read(Buffer.from('k'))?.versions[0].value.toString()).toBe('2');
  });

  test('writes accepted in one turn of the event loop commit in one transaction', async () => {
    // Proves group commit: 500 writes issued together cost one transaction.
    const store = open();
    const writes = Array.from({ length: 500 }, (_, index) => store.write(record(`key-${index}`, [version('v')])));
    await Promise.all(writes);
    expect(store.stats()).toMatchObject({ commits: 1, operationsCommitted: 500 });
    await store.write(record('later', [version('v')]));
    expect(store.stats().commits).toBe(2);
  });

  test('writesPerCommitMax bounds the size of one transaction', async () => {
    // Proves the cap: 250 writes with a cap of 100 take three transactions, all committed.
    const store = open(100);
    const writes = Array.from({ length: 250 }, (_, index) => store.write(record(`key-${index}`, [version('v')])));
    await Promise.all(writes);
    expect(store.stats()).toMatchObject({ commits: 3, operationsCommitted: 250 });
    expect(store.counts().items).toBe(250);
  });

  test('close waits for queued writes, later writes are refused, and a reopen sees the data', async () => {
    // Proves close does not lose accepted writes and shuts the door on new ones.
    const store = open();
    const write = store.write(record('k', [version('v')]));
    const closed = store.close();
    await expectKaiError(store.write(record('late', [version('v')])), 'KAI_SHUTTING_DOWN');
    await expectKaiError(store.removeAll(), 'KAI_SHUTTING_DOWN');
    await expect(write).resolves.toBeUndefined();
    await closed;
    expect(() => store.read(Buffer.from('late'))).toThrow(KaiError);

    const reopened = open();
    expect(reopened.read(Buffer.from('k'))?.versions[0].value.toString()).toBe('v');
    expect(reopened.read(Buffer.from('late'))).toBeUndefined();
  });

  test('purgeExpired deletes up to limit expired records and skips keys with a pending write', async () => {
    // Proves purge honours the purge time, records that never expire, the limit, and pending writes.
    const store = open();
    const expired = (key: string) =>
      record(key, [version('v', { expiresAtMs: nowMs - 10 }), tombstone({ expiresAtMs: nowMs - 5 })]);
    await Promise.all([
      store.write(expired('e1')),
      store.write(expired('e2')),
      store.write(expired('e3')),
      store.write(expired('rewritten')),
      store.write(record('mixed', [version('v', { expiresAtMs: nowMs - 10 }), version('w')])),
      store.write(record('future', [version('v', { expiresAtMs: nowMs + 10 })])),
      store.write(record('forever', [version('v')])),
    ]);
    expect(store.counts().items).toBe(7);

    const rewrite = store.write(record('rewritten', [version('fresh')]));
    expect(await store.purgeExpired(nowMs, 2)).toBe(2);
    expect(await store.purgeExpired(nowMs, 100)).toBe(1);
    expect(await store.purgeExpired(nowMs, 100)).toBe(0);
    await rewrite;
    for (const key of ['e1', 'e2', 'e3']) expect(store.read(Buffer.from(key))).toBeUndefined();
    for (const key of ['rewritten', 'mixed', 'future', 'forever']) expect(store.read(Buffer.from(key))).toBeDefined();
    expect(store.counts()).toEqual({ items: 4, bytes: 'rewritten'.length + 5 + 'mixed'.length + 2 + 6 + 1 + 7 + 1 });
    expect(await store.purgeExpired(nowMs + 10, 100)).toBe(1);
    expect(store.read(Buffer.from('future'))).toBeUndefined();
  });

  test('removeAll removes writes accepted before it and keeps writes accepted after it', async () => {
    // Proves removeAll is ordered with writes, both for reads before the commit and on disk after.
    const store = open();
    await store.write(record('committed', [version('v')]));
    const before = store.write(record('before', [version('v')]));
    const removed = store.removeAll();
    const after = store.write(record('after', [version('v')]));
    expect(store.read(Buffer.from('committed'))).toBeUndefined();
    expect(store.read(Buffer.from('before'))).toBeUndefined();
    expect(store.read(Buffer.from('after'))).toBeDefined();
    await Promise.all([before, removed, after]);
    expect(store.counts()).toEqual({ items: 1, bytes: 'after'.length + 1 });
    await store.close();

    const reopened = open();
    expect(reopened.read(Buffer.from('committed'))).toBeUndefined();
    expect(reopened.read(Buffer.from('before'))).toBeUndefined();
    expect(reopened.read(Buffer.from('after'))).toBeDefined();
    expect(reopened.counts()).toEqual({ items: 1, bytes: 'after'.length + 1 });
  });

  test('removeAll stays ordered when the cap splits it from the writes around it', async () => {
    // Proves ordering holds across transactions, not only within one.
    const store = open(1);
    const operations = [
      store.write(record('before', [version('v')])),
      store.removeAll(),
      store.write(record('after', [version('v')])),
    ];
    await Promise.all(operations);
    expect(store.stats().commits).toBe(3);
    expect(store.read(Buffer.from('before'))).toBeUndefined();
    expect(store.read(Buffer.from('after'))).toBeDefined();
  });

  test('counts follow writes, overwrites, tombstones, siblings and a reopen', async () => {
    // Proves the incrementally kept counts match the definition: non-tombstone records, key plus value bytes.
    const store = open();
    expect(store.counts()).toEqual({ items: 0, bytes: 0 });
    await store.write(record('ab', [version('1234')]));
    expect(store.counts()).toEqual({ items: 1, bytes: 6 });
    await store.write(record('ab', [version('12345678')]));
    expect(store.counts()).toEqual({ items: 1, bytes: 10 });
    await store.write(record('cd', [version('x'), tombstone()]));
    expect(store.counts()).toEqual({ items: 2, bytes: 13 });
    await store.write(record('ab', [tombstone()]));
    expect(store.counts()).toEqual({ items: 1, bytes: 3 });
    await Promise.all([store.write(record('ef', [version('12')])), store.write(record('ef', [version('1')]))]);
    expect(store.counts()).toEqual({ items: 2, bytes: 6 });
    await store.close();

    const reopened = open();
    expect(reopened.counts()).toEqual({ items: 2, bytes: 6 });
  });

  test('a failed commit rejects every write of its batch and hides them from reads', async () => {
    // Proves a storage failure is an answered error, rolled back from reads, and the store recovers after it.
    const store = open();
    await store.write(record('k', [version('committed')]));
    withSideConnection((db) =>
      db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON items BEGIN SELECT RAISE(ABORT, 'disk says no'); END`),
    );
    const failed = [store.write(record('k', [version('lost')])), store.write(record('new', [version('lost')]))];
    expect(store.read(Buffer.from('k'))?.versions[0].value.toString()).toBe('lost');
    await expectKaiError(failed[0], 'KAI_STORAGE_FAILURE');
    await expectKaiError(failed[1], 'KAI_STORAGE_FAILURE');
    expect(store.stats()).toMatchObject({ commitFailures: 1, pendingKeys: 0, operationsQueued: 0 });
    expect(store.read(Buffer.from('k'))?.versions[0].value.toString()).toBe('committed');
    expect(store.read(Buffer.from('new'))).toBeUndefined();
    expect(store.counts()).toEqual({ items: 1, bytes: 'k'.length + 'committed'.length });

    withSideConnection((db) => db.exec('DROP TRIGGER refuse'));
    await store.write(record('new', [version('kept')]));
    expect(store.read(Buffer.from('new'))?.versions[0].value.toString()).toBe('kept');
  });

  test('a failed removeAll leaves the records readable', async () => {
    // Proves a removeAll that did not commit stops hiding the records it would have removed.
    const store = open();
    await store.write(record('k', [version('v')]));
    withSideConnection((db) =>
      db.exec(`CREATE TRIGGER refuse BEFORE DELETE ON items BEGIN SELECT RAISE(ABORT, 'disk says no'); END`),
    );
    const removed = store.removeAll();
    expect(store.read(Buffer.from('k'))).toBeUndefined();
    await expectKaiError(removed, 'KAI_STORAGE_FAILURE');
    expect(store.read(Buffer.from('k'))).toBeDefined();
    expect(store.counts().items).toBe(1);
  });

  test('a closed underlying database fails commits without crashing the process', async () => {
    // Proves even a lost connection turns into rejected writes rather than an exception.
    const store = open();
    (store as unknown as { db: Database.Database }).db.close();
    await expectKaiError(store.write(record('k', [version('v')])), 'KAI_STORAGE_FAILURE');
    expect(() => store.read(Buffer.from('k'))).toThrow(KaiError);
    await expectKaiError(store.purgeExpired(nowMs, 10), 'KAI_STORAGE_FAILURE');
  });

  test('a file with another schema version is refused at open', async () => {
    // Proves the schema version check: the store will not misread a file it does not understand.
    await open().close();
    withSideConnection((db) => db.prepare(`UPDATE meta SET value = 999 WHERE name = 'schemaVersion'`).run());
    expect(() => openSqliteStore({ dataDir })).toThrow(/schema version 999/);
  });

  test('the data dir is created when missing', async () => {
    // Proves a fresh node can start with a data dir that does not exist yet.
    const nested = path.join(dataDir, 'a', 'b');
    const store = openSqliteStore({ dataDir: nested });
    openStores.push(store);
    await store.write(record('k', [version('v')]));
    expect(fs.existsSync(path.join(nested, databaseFileName))).toBe(true);
  });

  test('records that break an invariant are refused before they reach the disk', () => {
    // Proves the boundary assertions: empty key, no versions, bad bucket.
    const store = open();
    expect(() => store.write(record('', [version('v')]))).toThrow(/assertion failed/);
    expect(() => store.write(record('k', []))).toThrow(/assertion failed/);
    expect(() => store.write(record('k', [version('v')], -1))).toThrow(/assertion failed/);
    expect(() => store.write(record('k', [version('v')], 1.5))).toThrow(/assertion failed/);
    expect(store.stats().operationsQueued).toBe(0);
  });
});
