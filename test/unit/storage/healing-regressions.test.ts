/**
 * Regressions of the SQLite store's healing layer, each named after the bug it covers: a record
 * with a bucket outside the ring reached the disk and broke every later open of the file, and a
 * newer copy of an already hinted key was refused at the hint cap although it adds no hint.
 */
import Database from 'better-sqlite3';
import { KaiError } from '../../../src/errors';
import { bucketOfKey } from '../../../src/ring';
import type { StoredRecord, Version } from '../../../src/storage';
import { openInlineStore } from '../../../src/storage/sqlite';
import { ManualEnv } from '../../support/manual-env';

const nowMs = 1_700_000_000_000;
const buckets = 1024;

function version(value: string, counter = 1): Version {
  return {
    clock: [{ node: 'node-a', counter, timestampMs: nowMs }],
    value: Buffer.from(value),
    flags: 0,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs: nowMs,
  };
}

function record(key: string, versions: Version[]): StoredRecord {
  return { key: Buffer.from(key), bucket: bucketOfKey(Buffer.from(key), buckets), versions };
}

/** Lets settled promises run their callbacks. */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

// src/storage/sqlite.ts write() (and assertValidRecord in record-codec.ts) accepts any bucket >= 0:
// a bucket past the store's count is committed to the file, then MerkleForest.apply's assertion
// throws out of the commit report (settleCommitted), the write never settles, and the file can no
// longer be opened (the tree rebuild at open hits the same assertion). A peer's replicaStore or
// storeMany reaches it: message-shapes.ts checks the bucket only as a non-negative integer.
test('a write with a bucket outside the ring is refused before it reaches the disk', async () => {
  // Proves (when fixed) a bad bucket is refused at the store's boundary and cannot poison the file.
  const database = new Database(':memory:');
  const env = new ManualEnv();
  const store = openInlineStore({ database, env, commitDelayMs: () => 1, buckets });
  const outside: StoredRecord = { key: Buffer.from('k'), bucket: buckets, versions: [version('v')] };
  let refusal: unknown;
  try {
    store.write(outside).catch((error: unknown) => (refusal = error));
  } catch (error) {
    refusal = error;
  }
  // The commit report must not throw out of the Env's timer; with the worker executor the same
  // throw escapes the worker's 'message' listener as an uncaught exception.
  expect(() => env.advance(1)).not.toThrow();
  await flushMicrotasks();
  expect(refusal).toBeDefined();
  expect(database.prepare('SELECT COUNT(*) AS n FROM items').get()).toEqual({ n: 0 });
  expect(() => openInlineStore({ database, env: new ManualEnv(), commitDelayMs: () => 1, buckets })).not.toThrow();
  database.close();
});

// src/storage/sqlite.ts hintsFull() counts every hinted write as one more hint (committed + queued
// + 1) and adds its full bytes, even when the target already holds a hint for the key, which the
// commit only replaces (sqlite-apply.ts write(): count += 0 when the hint is held). At the cap, a
// fallback then refuses a newer version of a key it already stands in for with KAI_HINTS_FULL,
// although keeping it would add no hint; the config text says the bound is on "hinted copies kept".
test('a hinted overwrite of a key already hinted for the target is taken at the hint cap', async () => {
  // Proves (when fixed) the count bound limits hints kept, not rewrites of hints already held.
  const database = new Database(':memory:');
  const env = new ManualEnv();
  const store = openInlineStore({ database, env, commitDelayMs: () => 1, buckets, hintsPerTargetMax: 2 });
  void store.write(record('a', [version('1')]), { hintFor: 'target' });
  void store.write(record('b', [version('1')]), { hintFor: 'target' });
  env.advance(1);
  await flushMicrotasks();
  expect(store.hintCounts()).toEqual([{ target: 'target', count: 2, bytes: expect.any(Number) }]);

  let refusal: unknown;
  const overwrite = store.write(record('a', [version('2', 2)]), { hintFor: 'target' }).catch((error: unknown) => (refusal = error));
  env.advance(1);
  await overwrite;
  expect(refusal instanceof KaiError ? refusal.code : refusal).toBeUndefined();
  expect(store.hintCounts()).toMatchObject([{ target: 'target', count: 2 }]);
  expect(store.read(Buffer.from('a'))?.versions[0].value.toString()).toBe('2');
  database.close();
});

test('a merge only into a present copy does not re-create a copy a queued removal deletes', async () => {
  // Proves the reaper's merge into a fallback copy cannot leave a copy behind that handoff dropped.
  const env = new ManualEnv(nowMs);
  const database = new Database(':memory:');
  const store = openInlineStore({ database, env, commitDelayMs: () => 1, buckets });
  const copy = record('copy', [version('v')]);
  const written = store.write(copy, { hintFor: 'primary:1' });
  env.advance(1);
  await written;
  const hash = store.committedRecord(copy.key)!.hash;
  // Handoff's removal is queued first; the merge, decided on what reads still show, after it.
  const handedOff = store.handedOff('primary:1', true, [{ key: copy.key, expectedHash: hash }]);
  expect(store.read(copy.key)).toBeDefined();
  const merged = store.write(record('copy', [version('v'), version('w', 2)]), { onlyIfPresent: true });
  env.advance(1);
  await Promise.all([handedOff, merged]);
  expect(store.read(copy.key)).toBeUndefined();
  expect(store.committedRecord(copy.key)).toBeUndefined();
  expect(store.hintCounts()).toEqual([]);
  // Without the removal, the same merge applies.
  const kept = record('kept', [version('v')]);
  const keptWritten = store.write(kept);
  env.advance(1);
  await keptWritten;
  const keptMerge = store.write(record('kept', [version('w', 2)]), { onlyIfPresent: true });
  env.advance(1);
  await keptMerge;
  expect(store.read(kept.key)?.versions.map((v) => v.value.toString())).toEqual(['w']);
  await store.close();
  database.close();
});
