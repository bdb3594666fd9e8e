// A page of a bucket's committed records: key order after a key, within a count and a byte bound, and whether more follow.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore, type SqliteStore } from '../../../src/storage/sqlite';
import { version } from '../../support/versions';

let dataDir: string;
let store: SqliteStore;

beforeEach(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-bucket-page-'));
  store = openSqliteStore({ dataDir });
  const record = (key: string, bucket: number, bytes: number) => ({ key: Buffer.from(key), bucket, versions: [version(Buffer.alloc(bytes, 0x61))] });
  await Promise.all([
    store.write(record('a', 3, 10)),
    store.write(record('b', 3, 5000)),
    store.write(record('c', 3, 10)),
    store.write(record('d', 3, 10)),
    store.write(record('other', 4, 10)),
  ]);
});

afterEach(async () => {
  await store.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const keysOf = (page: { records: readonly { key: Buffer }[] }): string[] => page.records.map((record) => record.key.toString());

test('pages by count, in key order after the given key, saying when more follow', () => {
  const first = store.bucketPage(3, Buffer.alloc(0), 2, 1 << 20);
  expect([keysOf(first), first.more]).toEqual([['a', 'b'], true]);
  const last = store.bucketPage(3, Buffer.from('b'), 2, 1 << 20);
  expect([keysOf(last), last.more]).toEqual([['c', 'd'], false]);
});

test('stops before the record that would pass the byte bound, but always takes one', () => {
  const small = store.bucketPage(3, Buffer.alloc(0), 10, 1000);
  expect([keysOf(small), small.more]).toEqual([['a'], true]);
  const large = store.bucketPage(3, Buffer.from('a'), 10, 1000);
  expect([keysOf(large), large.more]).toEqual([['b'], true]);
});
