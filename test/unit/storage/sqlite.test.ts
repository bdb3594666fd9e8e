import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { KaiError } from '../../../src/errors';
import type { StoredRecord, Version } from '../../../src/storage';
import { newerFirst } from '../../../src/storage/record';
import type { WorkerCommitExecutor } from '../../../src/storage/commit-executor';
import type { CommitRestartPolicy } from '../../../src/storage/commit-restarts';
import { cachedBytesOf } from '../../../src/storage/record-cache';
import { encodeVersions } from '../../../src/storage/record-codec';
import { databaseFileName, openSqliteStore, type SqliteStore, type StorageEvent } from '../../../src/storage/sqlite';
import { commitRestartPolicyDefault } from '../../../src/storage/commit-restarts';
import { version } from '../../support/versions';

const nowMs = 1_700_000_000_000;

function tombstone(overrides: Partial<Version> = {}): Version {
  return version(Buffer.alloc(0), { tombstone: true, ...overrides });
}

function record(key: string | Buffer, versions: Version[], bucket = 7): StoredRecord {
  return { key: typeof key === 'string' ? Buffer.from(key) : key, bucket, versions };
}

let dataDir: string;
const openStores: SqliteStore[] = [];

/** Long ago enough that any record written with it is dead whatever the grace. */
const longAgoMs = 24 * 60 * 60 * 1000;

function open(writesPerCommitMax?: number, cacheBytesMax?: number, commitRestartPolicy?: CommitRestartPolicy): SqliteStore {
  const store = openSqliteStore({ dataDir, writesPerCommitMax, cacheBytesMax, commitRestartPolicy });
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

/** The store's read connection and commit worker, to inject faults into them. */
function internals(store: SqliteStore): { db: Database.Database; worker: Worker; executor: WorkerCommitExecutor } {
  const parts = store as unknown as { db: Database.Database; pipeline: { executor: WorkerCommitExecutor } };
  const executor = parts.pipeline.executor;
  return { db: parts.db, worker: executor.worker, executor };
}

/** Polls `condition` every few ms until it holds, for `timeoutMs` at most. */
async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
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
        // The store keeps a key's versions in one canonical order (newest first).
      ].sort(newerFirst),
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

  test('purgeExpired deletes up to limit dead records and skips keys with a pending write', async () => {
    // Proves purge honours the dead time, records that never expire, the limit, and pending writes.
    const store = open();
    const expired = (key: string) =>
      record(key, [version('v', { expiresAtMs: nowMs - 10 }), tombstone({ writtenAtMs: nowMs - longAgoMs })]);
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

  test('a deleted key is purged once it has been dead since the time given', async () => {
    // Proves tombstone-only records, and records of tombstones and expired values, leave the file.
    const store = open();
    const deletedAtMs = nowMs;
    await Promise.all([
      store.write(record('deleted', [tombstone({ writtenAtMs: deletedAtMs })])),
      store.write(record('value-and-delete', [version('v', { expiresAtMs: nowMs + 50 }), tombstone({ writtenAtMs: deletedAtMs })])),
    ]);
    expect(await store.purgeExpired(deletedAtMs - 1, 100)).toBe(0);
    expect(await store.purgeExpired(deletedAtMs, 100)).toBe(1);
    expect(store.read(Buffer.from('deleted'))).toBeUndefined();
    expect(store.read(Buffer.from('value-and-delete'))).toBeDefined();
    expect(await store.purgeExpired(nowMs + 50, 100)).toBe(1);
    await store.close();
    withSideConnection((db) => {
      expect(db.prepare('SELECT COUNT(*) AS rows FROM items').get()).toEqual({ rows: 0 });
    });
  });

  test('a version 1 file is migrated at open: every record stays readable and gets its hash, segment and dead time', async () => {
    // Proves files written before hash trees and reaping keep their data and join the new scheme.
    const file = path.join(dataDir, databaseFileName);
    const legacy = new Database(file);
    legacy.pragma('journal_mode = WAL');
    legacy.exec(`CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value NOT NULL) WITHOUT ROWID;
      CREATE TABLE items (key BLOB PRIMARY KEY NOT NULL, bucket INTEGER NOT NULL, record_expires_at_ms INTEGER,
        item_bytes INTEGER, versions BLOB NOT NULL) WITHOUT ROWID;
      CREATE INDEX items_by_bucket ON items (bucket);
      INSERT INTO meta (name, value) VALUES ('schemaVersion', 1), ('note:members', '[]');`);
    const insert = legacy.prepare('INSERT INTO items (key, bucket, record_expires_at_ms, item_bytes, versions) VALUES (?, ?, ?, ?, ?)');
    const keys = Array.from({ length: 2500 }, (_, index) => `key-${index}`);
    for (const key of keys) insert.run(Buffer.from(key), 7, null, key.length + 1, encodeVersions([version('v')]));
    insert.run(Buffer.from('deleted'), 7, nowMs + 1000, null, encodeVersions([tombstone({ writtenAtMs: nowMs })]));
    legacy.close();

    const reopened = open();
    expect(reopened.read(Buffer.from('key-2499'))?.versions[0].value.toString()).toBe('v');
    expect(reopened.counts().items).toBe(keys.length);
    expect(reopened.readNote('members')).toBe('[]');
    // Every record is in the hash tree: the tree equals one built from a fresh file of the same records.
    const fresh = openSqliteStore({ dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'kai-sqlite-fresh-')) });
    openStores.push(fresh);
    await Promise.all([
      ...keys.map((key) => fresh.write(record(key, [version('v')]))),
      fresh.write(record('deleted', [tombstone({ writtenAtMs: nowMs })])),
    ]);
    expect(reopened.tree.roots([7])).toEqual(fresh.tree.roots([7]));
    expect(reopened.tree.roots([7])[0]).not.toBe(0);
    expect(await reopened.purgeExpired(nowMs, 10)).toBe(1);
    expect(reopened.read(Buffer.from('deleted'))).toBeUndefined();
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

  test('a closed read connection fails reads of uncached keys without crashing, and writes still commit', async () => {
    // Proves reads of cached keys never touch SQLite, and a lost read connection is an answered error.
    const store = open();
    await store.write(record('cached', [version('v')]));
    internals(store).db.close();
    expect(store.read(Buffer.from('cached'))?.versions[0].value.toString()).toBe('v');
    expect(() => store.read(Buffer.from('uncached'))).toThrow(KaiError);
    await store.write(record('later', [version('w')]));
    expect(store.read(Buffer.from('later'))?.versions[0].value.toString()).toBe('w');
    expect(store.counts().items).toBe(2);
  });

  test('a commit waiting on a locked file does not block the event loop', async () => {
    // Proves the commit runs in the worker: timers fire and reads answer while it waits for the lock.
    // The worker waits for the lock far longer than the default, so a stalled test cannot outlast it.
    const store = openSqliteStore({ dataDir, busyTimeoutMs: 60_000 });
    openStores.push(store);
    await store.write(record('k', [version('old')]));
    const side = new Database(path.join(dataDir, databaseFileName));
    try {
      side.exec('BEGIN IMMEDIATE');
      let settled = false;
      const write = store.write(record('k', [version('new')])).finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(settled).toBe(false);
      expect(store.read(Buffer.from('k'))?.versions[0].value.toString()).toBe('new');
      side.exec('COMMIT');
      await write;
    } finally {
      side.close();
    }
    expect(store.stats()).toMatchObject({ commits: 2, commitFailures: 0 });
  });

  test('writes accepted while a batch is in flight form the next batch', async () => {
    // Proves one batch in flight at a time: writes issued during a commit share the following one.
    const store = open();
    const first = store.write(record('first', [version('v')]));
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.stats().operationsQueued).toBe(1);
    const later = Array.from({ length: 50 }, (_, index) => store.write(record(`later-${index}`, [version('v')])));
    await Promise.all([first, ...later]);
    expect(store.stats()).toMatchObject({ commits: 2, operationsCommitted: 51 });
    expect(store.counts().items).toBe(51);
  });

  test('a commit worker that dies, with no restarts allowed, fails the writes in flight, queued and later, without hanging', async () => {
    // Proves a lost worker the store may not replace turns into KAI_STORAGE_FAILURE for every unsettled and later write, and close still ends.
    const store = open(1, undefined, { ...commitRestartPolicyDefault, restartsMax: 0 });
    const events: StorageEvent[] = [];
    store.onStorageEvent((event) => events.push(event));
    await store.write(record('k', [version('committed')]));
    const unsettled = [store.write(record('k', [version('lost')])), store.write(record('other', [version('lost')]))];
    const purge = store.purgeExpired(nowMs, 10);
    const exitCode = internals(store).worker.terminate();
    for (const write of unsettled) await expectKaiError(write, 'KAI_STORAGE_FAILURE');
    await expectKaiError(purge, 'KAI_STORAGE_FAILURE');
    await exitCode;
    await expectKaiError(store.write(record('later', [version('v')])), 'KAI_STORAGE_FAILURE');
    await expectKaiError(store.removeAll(), 'KAI_STORAGE_FAILURE');
    expect(store.stats()).toMatchObject({ pendingKeys: 0, operationsQueued: 0 });
    expect(store.read(Buffer.from('k'))?.versions[0].value.toString()).toBe('committed');
    expect(store.health()).toMatchObject({ state: 'failed', workersLost: 1, workerRestarts: 0 });
    expect(events.map((event) => event.kind)).toEqual(['failed']);
    await store.close();
  });

  test('a commit worker that dies is replaced: the batch in flight fails, the queued ones commit on the new worker', async () => {
    // Proves a lost worker costs only the batch whose outcome is unknown: what was queued behind it, and later writes, commit.
    const store = open(1);
    const events: StorageEvent[] = [];
    store.onStorageEvent((event) => events.push(event));
    await store.write(record('k', [version('committed')]));
    // The worker is told to end just before the batch is handed to it: it never runs the batch, so
    // the batch is surely in flight when the worker is lost, however the threads are scheduled.
    // (Ending a worker inside a SQLite call that then fails aborts the process: better-sqlite3
    // cannot raise the error in a thread being torn down. So the worker is never ended mid-statement.)
    const executor = internals(store).executor;
    const commit = executor.commit.bind(executor);
    let queued: Promise<void> | undefined;
    executor.commit = (batchId, operations) => {
      void executor.terminate();
      commit(batchId, operations);
      // Accepted while the batch is in flight, it waits in the queue for the next worker.
      queued ??= store.write(record('queued', [version('v')]));
    };
    const inFlight = store.write(record('k', [version('lost')]));
    await expectKaiError(inFlight, 'KAI_STORAGE_FAILURE');
    await queued;
    await store.write(record('later', [version('v')]));
    expect(store.read(Buffer.from('queued'))?.versions[0].value.toString()).toBe('v');
    expect(store.committedRecord(Buffer.from('later'))).toBeDefined();
    expect(store.health()).toMatchObject({ state: 'ok', workersLost: 1, workerRestarts: 1 });
    expect(events.map((event) => event.kind)).toEqual(['workerLost', 'workerRestarted']);
    await store.close();
  });

  test('a commit worker lost again and again within the window makes the store give up and say why', async () => {
    // Proves the restarts are bounded: past restartsMax losses in the window the store fails for good, loudly.
    const store = open(undefined, undefined, { restartsMax: 2, windowMs: 60_000, backoffMsMin: 10, backoffMsMax: 20 });
    const events: StorageEvent[] = [];
    store.onStorageEvent((event) => events.push(event));
    for (let loss = 0; loss < 3; loss++) {
      const worker = internals(store).worker;
      await worker.terminate();
      if (loss < 2) await waitFor(() => internals(store).worker !== worker, 5000);
    }
    expect(store.health()).toMatchObject({ state: 'failed', workersLost: 3, workerRestarts: 2 });
    expect(store.health().reason).toMatch(/lost 3 times within 60 s/);
    expect(events.map((event) => event.kind)).toEqual(['workerLost', 'workerRestarted', 'workerLost', 'workerRestarted', 'failed']);
    await expectKaiError(store.write(record('refused', [version('v')])), 'KAI_STORAGE_FAILURE');
    await store.close();
  });

  test('a commit worker that throws fails the batch with KAI_STORAGE_FAILURE instead of crashing', async () => {
    // Proves an uncaught error inside the worker reaches the waiting writes as an answered error.
    const store = open();
    const write = store.write(record('k', [version('v')]));
    const malformed = new Uint8Array([0xee]).buffer;
    internals(store).worker.postMessage({ type: 'commit', batchId: 0, operations: malformed }, [malformed]);
    await expectKaiError(write, 'KAI_STORAGE_FAILURE');
    expect(store.read(Buffer.from('k'))).toBeUndefined();
    await store.close();
  });

  test('close ends the commit worker', async () => {
    // Proves close leaves no thread behind: the worker exits once the queued writes committed.
    const store = open();
    const { worker } = internals(store);
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    const write = store.write(record('k', [version('v')]));
    await store.close();
    await expect(write).resolves.toBeUndefined();
    expect(await exited).toBe(0);
  });

  test('a version 2 file gains the actor column, keeps its rows, and keeps actors written after', async () => {
    // Proves the migration to schema 3, and that a record's actor survives a reopen (cache and file).
    const first = open();
    await first.write(record('old', [version('kept')]));
    await first.close();
    withSideConnection((db) => {
      db.prepare('ALTER TABLE items DROP COLUMN actor').run();
      db.prepare(`UPDATE meta SET value = 2 WHERE name = 'schemaVersion'`).run();
    });
    const migrated = open();
    expect(migrated.read(Buffer.from('old'))).toEqual(record('old', [version('kept')]));
    await migrated.write({ ...record('new', [version('v')]), actor: 'node-a~abc' });
    expect(migrated.read(Buffer.from('new'))?.actor).toBe('node-a~abc');
    await migrated.close();
    const reopened = open();
    expect(reopened.read(Buffer.from('new'))?.actor).toBe('node-a~abc');
    expect(reopened.read(Buffer.from('old'))?.actor).toBeUndefined();
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

describe('SqliteStore read cache', () => {
  const read = (store: SqliteStore, key: string) => store.read(Buffer.from(key))?.versions[0].value.toString();

  test('committed and absent keys are answered from the cache after one lookup', async () => {
    // Proves a hot key costs one SQLite lookup at most, whether present or absent.
    await open().write(record('k', [version('v')]));
    const store = open();
    expect(read(store, 'k')).toBe('v');
    expect(read(store, 'k')).toBe('v');
    expect(read(store, 'absent')).toBeUndefined();
    expect(read(store, 'absent')).toBeUndefined();
    expect(store.stats()).toMatchObject({ cacheHits: 2, cacheMisses: 2, cacheEntries: 2 });
    await store.write(record('written', [version('w')]));
    expect(read(store, 'written')).toBe('w');
    expect(store.stats()).toMatchObject({ cacheHits: 3, cacheMisses: 2 });
  });

  test('cacheBytesMax bounds the cache and evicts the least recently used key first', async () => {
    // Proves the byte budget: with room for three records, the fourth evicts the one read longest ago.
    const recordOf = (key: string) => record(key, [version('value')]);
    const store = open(undefined, 3 * cachedBytesOf('a', recordOf('a')));
    for (const key of ['a', 'b', 'c']) await store.write(recordOf(key));
    expect(store.stats().cacheEntries).toBe(3);
    expect(read(store, 'a')).toBe('value');
    await store.write(recordOf('d'));
    expect(store.stats().cacheEntries).toBe(3);
    expect(store.stats().cacheBytes).toBeLessThanOrEqual(3 * cachedBytesOf('a', recordOf('a')));
    const missesBefore = store.stats().cacheMisses;
    for (const key of ['a', 'c', 'd']) expect(read(store, key)).toBe('value');
    expect(store.stats().cacheMisses).toBe(missesBefore);
    expect(read(store, 'b')).toBe('value');
    expect(store.stats().cacheMisses).toBe(missesBefore + 1);
  });

  test('a record larger than the whole budget is not cached and evicts nothing', async () => {
    // Proves the budget holds for any single record.
    const store = open(undefined, 2 * cachedBytesOf('small', record('small', [version('v')])));
    await store.write(record('small', [version('v')]));
    await store.write(record('large', [version(Buffer.alloc(4096))]));
    expect(store.stats().cacheEntries).toBe(1);
    expect(store.read(Buffer.from('large'))?.versions[0].value.length).toBe(4096);
  });

  test('cacheBytesMax 0 disables the cache', async () => {
    // Proves every read goes to SQLite when the cache is off.
    const store = open(undefined, 0);
    await store.write(record('k', [version('v')]));
    expect(read(store, 'k')).toBe('v');
    expect(read(store, 'k')).toBe('v');
    expect(read(store, 'absent')).toBeUndefined();
    expect(store.stats()).toMatchObject({ cacheHits: 0, cacheMisses: 3, cacheEntries: 0, cacheBytes: 0 });
  });

  test('the cache follows overwrites, removeAll and purgeExpired', async () => {
    // Proves cached records and cached absences change exactly when the committed state does.
    const store = open();
    await store.write(record('k', [version('1')]));
    expect(read(store, 'absent')).toBeUndefined();
    await store.write(record('k', [version('2')]));
    await store.write(record('absent', [version('now present')]));
    expect(read(store, 'k')).toBe('2');
    expect(read(store, 'absent')).toBe('now present');

    await store.removeAll();
    expect(read(store, 'k')).toBeUndefined();
    expect(read(store, 'absent')).toBeUndefined();

    await store.write(record('expiring', [version('v', { expiresAtMs: nowMs - 1 })]));
    expect(read(store, 'expiring')).toBe('v');
    expect(await store.purgeExpired(nowMs, 10)).toBe(1);
    expect(read(store, 'expiring')).toBeUndefined();
    await store.close();

    const reopened = open();
    for (const key of ['k', 'absent', 'expiring']) expect(reopened.read(Buffer.from(key))).toBeUndefined();
  });

  test('a failed commit leaves only committed records in the cache', async () => {
    // Proves uncommitted data never reaches the cache, even for keys that were cached before.
    const store = open();
    await store.write(record('k', [version('committed')]));
    expect(read(store, 'absent')).toBeUndefined();
    withSideConnection((db) =>
      db.exec(`CREATE TRIGGER refuse BEFORE UPDATE ON items BEGIN SELECT RAISE(ABORT, 'disk says no'); END`),
    );
    const failed = [store.write(record('k', [version('lost')])), store.write(record('absent', [version('lost')]))];
    await expectKaiError(failed[0], 'KAI_STORAGE_FAILURE');
    await expectKaiError(failed[1], 'KAI_STORAGE_FAILURE');
    for (let attempt = 0; attempt < 2; attempt += 1) {
      expect(read(store, 'k')).toBe('committed');
      expect(read(store, 'absent')).toBeUndefined();
    }
  });

  test('cached records own their bytes instead of viewing the buffers they were written from', async () => {
    // Proves the cache neither pins a large buffer a value was sliced from nor sees later changes to it.
    const store = open();
    const large = Buffer.alloc(64 * 1024, 'x');
    await store.write(record(large.subarray(0, 3), [version(large.subarray(3, 13))]));
    large.fill('y');
    const cached = store.read(Buffer.from('xxx'))!;
    expect(store.stats().cacheHits).toBe(1);
    expect(cached.versions[0].value.toString()).toBe('x'.repeat(10));
    expect(cached.versions[0].value.buffer.byteLength).toBeLessThan(1024);
    expect(cached.key.buffer.byteLength).toBeLessThan(1024);
  });
});
