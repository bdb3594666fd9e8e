// A SqliteStore on a real full disk (a small tmpfs): refused commits are answered, counted and reported, and writes commit again once space is back.
import fs from 'node:fs';
import path from 'node:path';
import { KaiError } from '../../../src/errors';
import { openSqliteStore, type SqliteStore, type StorageEvent } from '../../../src/storage/sqlite';
import { fillDisk, mountTmpfs, type Tmpfs } from '../../support/tmpfs';
import { version } from '../../support/versions';

/** Writes tried before the disk must have filled up: a bound on the loop, far above what fits. */
const writesMax = 200;
const valueBytes = 16 * 1024;

let disk: Tmpfs | undefined;
let store: SqliteStore | undefined;

afterEach(async () => {
  await store?.close().catch(() => undefined);
  store = undefined;
  disk?.unmount();
  disk = undefined;
});

test('a commit the disk refuses fails its writes with KAI_STORAGE_FAILURE, counts SQLITE_FULL and reports it, and the store goes on', async () => {
  disk = mountTmpfs(2 * 1024 * 1024);
  store = openSqliteStore({ dataDir: path.join(disk.dir, 'data') });
  const events: StorageEvent[] = [];
  store.onStorageEvent((event) => events.push(event));
  // Ballast, removed later to give the space back.
  fs.writeFileSync(path.join(disk.dir, 'ballast'), Buffer.alloc(256 * 1024));
  await store.write({ key: Buffer.from('before'), bucket: 1, versions: [version('v')] });
  fillDisk(disk.dir);
  let refusal: unknown;
  for (let index = 0; index < writesMax && refusal === undefined; index++) {
    const key = Buffer.from(`key-${index}`);
    try {
      await store.write({ key, bucket: 1, versions: [version(Buffer.alloc(valueBytes, 0x62))] });
    } catch (error) {
      refusal = error;
    }
  }
  expect(refusal).toBeInstanceOf(KaiError);
  expect((refusal as KaiError).code).toBe('KAI_STORAGE_FAILURE');
  const health = store.health();
  expect(health).toMatchObject({ state: 'ok', commitFailures: 1, operationsFailed: 1, diskFullFailures: 1 });
  expect(health.lastError).toMatch(/^SQLITE_FULL/);
  expect(events).toEqual([expect.objectContaining({ kind: 'commitFailed', operations: 1, code: 'SQLITE_FULL' })]);
  // What committed before is still read; once space is back, writes commit again without a restart.
  expect(store.read(Buffer.from('before'))).toBeDefined();
  fs.rmSync(path.join(disk.dir, 'ballast'));
  fs.rmSync(path.join(disk.dir, 'fill'));
  await store.write({ key: Buffer.from('after'), bucket: 1, versions: [version('v')] });
  expect(store.committedRecord(Buffer.from('after'))).toBeDefined();
  expect(store.health().state).toBe('ok');
});
