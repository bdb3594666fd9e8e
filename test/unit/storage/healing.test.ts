import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { KaiError } from '../../../src/errors';
import { MerkleForest, treeShapeFor } from '../../../src/merkle';
import { bucketOfKey } from '../../../src/ring';
import type { StoredRecord, Version } from '../../../src/storage';
import { newerFirst } from '../../../src/storage/record';
import { encodeVersions } from '../../../src/storage/record-codec';
import { recordHash, segmentOfKey } from '../../../src/storage/record-hash';
import {
  databaseFileName,
  openInlineStore,
  openSqliteStore,
  type SqliteStore,
  type SqliteStoreOptions,
} from '../../../src/storage/sqlite';
import { ManualEnv } from '../../support/manual-env';
import { flushMicrotasks, tracked } from '../../support/settling';
import { version } from '../../support/versions';
import { Random } from '../../support/property';

const nowMs = 1_700_000_000_000;
const buckets = 1024;

function tombstone(writtenAtMs: number, overrides: Partial<Version> = {}): Version {
  return version(Buffer.alloc(0), { tombstone: true, writtenAtMs, ...overrides });
}

/** A record in the key's own bucket of a ring of `ringBuckets` buckets, as the coordinator places it. */
function record(key: string | Buffer, versions: Version[], ringBuckets = buckets): StoredRecord {
  const keyBytes = typeof key === 'string' ? Buffer.from(key) : key;
  return { key: keyBytes, bucket: bucketOfKey(keyBytes, ringBuckets), versions };
}

const canonical = (versions: readonly Version[]): Version[] => [...versions].sort(newerFirst);
/** The hash a committed record has: of its key and its versions in canonical order. */
const hashOf = (stored: StoredRecord): number => recordHash(stored.key, encodeVersions(canonical(stored.versions)));
/** The bytes a hint for the record counts: its key plus its encoded versions. */
const hintBytesOf = (stored: StoredRecord): number => stored.key.length + encodeVersions(canonical(stored.versions)).length;
const keyAt = (stored: StoredRecord, expectedHash = hashOf(stored)) => ({ key: stored.key, expectedHash });
/** A hash other than `hash`, still a valid 53-bit one. */
const otherHash = (hash: number): number => (hash === 0 ? 1 : hash - 1);

/** The tree a set of records gives, built from scratch. */
function forestOf(records: readonly StoredRecord[], ringBuckets = buckets): MerkleForest {
  const forest = new MerkleForest(ringBuckets);
  const { segments } = forest.shape;
  for (const stored of records) forest.apply(stored.bucket, segmentOfKey(stored.key, ringBuckets, segments), hashOf(stored));
  return forest;
}

/** Every node of every bucket's tree, to compare two forests whole. */
function everyNode(forest: MerkleForest): number[][] {
  const nodes: number[][] = [];
  for (let bucket = 0; bucket < forest.buckets; bucket++) {
    const roots = forest.nodeHash(bucket, 0, 0);
    const leaves = forest.hashes(
      bucket,
      forest.shape.levelWidths.length - 1,
      Array.from({ length: forest.shape.segments }, (_, index) => index),
    );
    if (roots !== 0 || leaves.some((leaf) => leaf !== 0)) nodes.push([bucket, roots, ...leaves]);
  }
  return nodes;
}

let dataDir: string;
const openStores: SqliteStore[] = [];
const extraDirs: string[] = [];

function open(options: Partial<SqliteStoreOptions> = {}, dir = dataDir): SqliteStore {
  const store = openSqliteStore({ dataDir: dir, buckets, ...options });
  openStores.push(store);
  return store;
}

function freshDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-healing-other-'));
  extraDirs.push(dir);
  return dir;
}

/** A second connection to the data dir's file, as an outside writer would have. */
function withSideConnection<T>(action: (db: Database.Database) => T, dir = dataDir): T {
  const db = new Database(path.join(dir, databaseFileName));
  try {
    return action(db);
  } finally {
    db.close();
  }
}

const rowCount = (db: Database.Database, table: 'items' | 'hints'): number =>
  (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-healing-test-'));
});

afterEach(async () => {
  await Promise.allSettled(openStores.splice(0).map((store) => store.close()));
  for (const dir of [dataDir, ...extraDirs.splice(0)]) fs.rmSync(dir, { recursive: true, force: true });
});

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

async function expectKaiError(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const error = await rejectionOf(promise);
  expect(error).toBeInstanceOf(KaiError);
  expect((error as KaiError).code).toBe(code);
  if (message) expect((error as KaiError).message).toMatch(message);
}

const byTarget = <T extends { readonly target: string }>(counts: readonly T[]): T[] =>
  [...counts].sort((a, b) => (a.target < b.target ? -1 : 1));

describe('hints', () => {
  test('a hinted write records its hint beside the record, and an unhinted one records none', async () => {
    // Proves write(record, {hintFor}) commits the record and a hint naming the primary it stands in for.
    const store = open();
    const hinted = record('hinted', [version('v')]);
    const plain = record('plain', [version('w')]);
    await Promise.all([store.write(hinted, { hintFor: 'node-b:11011' }), store.write(plain)]);
    expect(store.hintCounts()).toEqual([{ target: 'node-b:11011', count: 1, bytes: hintBytesOf(hinted) }]);
    expect(store.hintsFor('node-b:11011', Buffer.alloc(0), 10)).toEqual([{ key: hinted.key, record: { ...hinted, hash: hashOf(hinted) } }]);
    expect(store.hintsFor('node-c:11011', Buffer.alloc(0), 10)).toEqual([]);
    withSideConnection((db) => {
      expect(db.prepare('SELECT target, key, bytes FROM hints').all()).toEqual([
        { target: 'node-b:11011', key: hinted.key, bytes: hintBytesOf(hinted) },
      ]);
    });
  });

  test.each([
    ['the hint', 'hints'],
    ['the record', 'items'],
  ])('a hinted write whose commit fails on %s leaves neither the record nor the hint', async (_, table) => {
    // Proves the record and its hint commit in one transaction: a failure on either leaves neither.
    const store = open({ hintsPerTargetMax: 1 });
    await store.write(record('before', [version('kept')]));
    const rootBefore = store.tree.roots([record('k', [version('v')]).bucket]);
    withSideConnection((db) => db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON ${table} BEGIN SELECT RAISE(ABORT, 'disk says no'); END`));
    const failed = record('k', [version('lost')]);
    const write = store.write(failed, { hintFor: 'node-b' });
    await expectKaiError(write, 'KAI_STORAGE_FAILURE', /disk says no/);
    withSideConnection((db) => {
      expect(db.prepare('SELECT key FROM items').all()).toEqual([{ key: Buffer.from('before') }]);
      expect(rowCount(db, 'hints')).toBe(0);
      db.exec('DROP TRIGGER refuse');
    });
    expect(store.read(failed.key)).toBeUndefined();
    expect(store.committedRecord(failed.key)).toBeUndefined();
    expect(store.hintCounts()).toEqual([]);
    expect(store.hintsFor('node-b', Buffer.alloc(0), 10)).toEqual([]);
    expect(store.counts()).toEqual({ items: 1, bytes: 'before'.length + 'kept'.length });
    expect(store.tree.roots([failed.bucket])).toEqual(rootBefore);

    // The failed hint no longer counts against the target's bound: the one place it may hold is free.
    const retried = record('k', [version('kept')]);
    await store.write(retried, { hintFor: 'node-b' });
    expect(store.hintCounts()).toEqual([{ target: 'node-b', count: 1, bytes: hintBytesOf(retried) }]);
  });

  test('hint counts follow writes, overwrites, handoffs and removeAll, and survive a reopen', async () => {
    // Proves the per-target counts the store keeps incrementally match the hints table at every step.
    const one = record('one', [version('1')]);
    const two = record('two', [version('22')]);
    const store = open();
    await Promise.all([
      store.write(one, { hintFor: 'target-1' }),
      store.write(two, { hintFor: 'target-1' }),
      store.write(record('plain', [version('x')])),
    ]);
    await store.write(one, { hintFor: 'target-2' });
    expect(byTarget(store.hintCounts())).toEqual([
      { target: 'target-1', count: 2, bytes: hintBytesOf(one) + hintBytesOf(two) },
      { target: 'target-2', count: 1, bytes: hintBytesOf(one) },
    ]);

    // An overwrite of a hinted key for the same target replaces its hint: one hint, new bytes.
    const oneLarger = record('one', [version('a much longer value', { clock: [{ node: 'node-a', counter: 2, timestampMs: nowMs }] })]);
    await store.write(oneLarger, { hintFor: 'target-1' });
    const afterOverwrite = [
      { target: 'target-1', count: 2, bytes: hintBytesOf(oneLarger) + hintBytesOf(two) },
      { target: 'target-2', count: 1, bytes: hintBytesOf(one) },
    ];
    expect(byTarget(store.hintCounts())).toEqual(afterOverwrite);
    await store.close();

    const reopened = open();
    expect(byTarget(reopened.hintCounts())).toEqual(afterOverwrite);
    expect(await reopened.handedOff('target-1', false, [keyAt(two)])).toBe(1);
    expect(byTarget(reopened.hintCounts())).toEqual([
      { target: 'target-1', count: 1, bytes: hintBytesOf(oneLarger) },
      { target: 'target-2', count: 1, bytes: hintBytesOf(one) },
    ]);
    expect(await reopened.handedOff('target-2', false, [keyAt(oneLarger)])).toBe(1);
    expect(reopened.hintCounts()).toEqual([{ target: 'target-1', count: 1, bytes: hintBytesOf(oneLarger) }]);
    await reopened.close();

    const again = open();
    expect(again.hintCounts()).toEqual([{ target: 'target-1', count: 1, bytes: hintBytesOf(oneLarger) }]);
    await again.write(two, { hintFor: 'target-3' });
    await again.removeAll();
    expect(again.hintCounts()).toEqual([]);
    await again.write(one, { hintFor: 'target-1' });
    expect(again.hintCounts()).toEqual([{ target: 'target-1', count: 1, bytes: hintBytesOf(one) }]);
    await again.close();
    expect(open().hintCounts()).toEqual([{ target: 'target-1', count: 1, bytes: hintBytesOf(one) }]);
    withSideConnection((db) => expect(rowCount(db, 'hints')).toBe(1));
  });

  test('hintsFor pages through one target\'s hints in key byte order', async () => {
    // Proves paging by afterKey visits every hint of the target once, in bytewise key order, and no other target's.
    const random = new Random(7);
    const keys = [
      Buffer.from([0x00]),
      Buffer.from([0x00, 0x00]),
      Buffer.from([0xff]),
      Buffer.from([0x7f, 0x80]),
      Buffer.from('B'),
      Buffer.from('a'),
      Buffer.from('ab'),
      ...Array.from({ length: 30 }, (_, index) => Buffer.from(`key-${random.int(0, 1e6)}-${index}`)),
    ];
    const store = open();
    await Promise.all([
      ...random.shuffle(keys).map((key) => store.write(record(key, [version(key)]), { hintFor: 'target' })),
      ...Array.from({ length: 5 }, (_, index) => store.write(record(`other-${index}`, [version('o')]), { hintFor: 'other' })),
    ]);
    const pages: Buffer[][] = [];
    for (let after: Buffer = Buffer.alloc(0); ; ) {
      const page = store.hintsFor('target', after, 7);
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(7);
      for (const hint of page) {
        const stored = store.read(hint.key)!;
        expect(hint.record).toEqual({ ...stored, hash: hashOf(stored) });
      }
      pages.push(page.map((hint) => hint.key));
      after = page[page.length - 1].key;
    }
    expect(pages).toHaveLength(Math.ceil(keys.length / 7));
    expect(pages.flat()).toEqual([...keys].sort(Buffer.compare));
    expect(store.hintsFor('other', Buffer.alloc(0), 100).map((hint) => hint.key.toString())).toEqual(
      ['other-0', 'other-1', 'other-2', 'other-3', 'other-4'],
    );
  });

  test('hintsFor reports a hint whose record is gone, and handedOff then removes it', async () => {
    // Proves a hint left without its record (removed behind the store's back) is still listed, and can be cleared.
    const store = open();
    const gone = record('gone', [version('v')]);
    const kept = record('kept', [version('v')]);
    await Promise.all([store.write(gone, { hintFor: 'target' }), store.write(kept, { hintFor: 'target' })]);
    withSideConnection((db) => db.prepare('DELETE FROM items WHERE key = ?').run(gone.key));
    expect(store.hintsFor('target', Buffer.alloc(0), 10)).toEqual([
      { key: gone.key, record: undefined },
      { key: kept.key, record: { ...kept, hash: hashOf(kept) } },
    ]);
    // -1 stands for "no record": the hint of a record that is gone counts as delivered.
    expect(await store.handedOff('target', true, [{ key: gone.key, expectedHash: -1 }])).toBe(1);
    expect(store.copiesDropped).toBe(0);
    expect(store.hintCounts()).toEqual([{ target: 'target', count: 1, bytes: hintBytesOf(kept) }]);
    expect(store.hintsFor('target', Buffer.alloc(0), 10).map((hint) => hint.key)).toEqual([kept.key]);
  });

  test('KAI_HINTS_FULL past hintsPerTargetMax, counting hints queued and not yet committed', async () => {
    // Proves the count bound holds before commits land, per target, and frees up as hints are delivered.
    const store = open({ hintsPerTargetMax: 3 });
    const hinted = ['h1', 'h2', 'h3'].map((key) => record(key, [version('v')]));
    const writes = hinted.map((stored) => store.write(stored, { hintFor: 'target' }));
    // Nothing has committed yet: the three queued hints already fill the target's bound.
    expect(store.hintCounts()).toEqual([]);
    await expectKaiError(store.write(record('h4', [version('v')]), { hintFor: 'target' }), 'KAI_HINTS_FULL', /target has 3 hints/);
    expect(store.hintsRefused).toBe(1);
    expect(store.read(Buffer.from('h4'))).toBeUndefined();
    // Other targets and unhinted writes are not bounded by this target's hints.
    await store.write(record('elsewhere', [version('v')]), { hintFor: 'other' });
    await store.write(record('unhinted', [version('v')]));
    await Promise.all(writes);
    expect(byTarget(store.hintCounts()).map(({ target, count }) => ({ target, count }))).toEqual([
      { target: 'other', count: 1 },
      { target: 'target', count: 3 },
    ]);
    await expectKaiError(store.write(record('h4', [version('v')]), { hintFor: 'target' }), 'KAI_HINTS_FULL');
    expect(store.hintsRefused).toBe(2);

    expect(await store.handedOff('target', false, [keyAt(hinted[0])])).toBe(1);
    await store.write(record('h4', [version('v')]), { hintFor: 'target' });
    expect(store.hintCounts().find((count) => count.target === 'target')?.count).toBe(3);
  });

  test('KAI_HINTS_FULL past hintBytesPerTargetMax, counting hints queued and not yet committed', async () => {
    // Proves the byte bound: key plus encoded versions of every hint held or queued for the target.
    const first = record('first', [version('x'.repeat(100))]);
    const second = record('second', [version('y'.repeat(100))]);
    const small = record('s', [version('z')]);
    const bytesMax = hintBytesOf(first) + hintBytesOf(second) + hintBytesOf(small);
    const store = open({ hintBytesPerTargetMax: bytesMax });
    const writes = [store.write(first, { hintFor: 'target' }), store.write(second, { hintFor: 'target' })];
    const third = record('third', [version('w'.repeat(100))]);
    await expectKaiError(store.write(third, { hintFor: 'target' }), 'KAI_HINTS_FULL', new RegExp(`target has ${bytesMax} bytes of hints`));
    // A hint that still fits is taken, up to the bound exactly.
    const fitting = store.write(small, { hintFor: 'target' });
    await Promise.all([...writes, fitting]);
    expect(store.hintCounts()).toEqual([{ target: 'target', count: 3, bytes: bytesMax }]);
    await expectKaiError(store.write(record('t', [version('')]), { hintFor: 'target' }), 'KAI_HINTS_FULL');
    expect(store.hintsRefused).toBe(2);
  });
});

describe('unhintedInBucket', () => {
  test('pages a bucket\'s records that hold no hint, in key order', async () => {
    // Proves handoff reads exactly the copies it may hand to a bucket's primaries and remove.
    const store = open();
    const inBucket = (key: string): StoredRecord => ({ key: Buffer.from(key), bucket: 5, versions: [version(key)] });
    await Promise.all([store.write(inBucket('b')), store.write(inBucket('a')), store.write(inBucket('c'), { hintFor: 'primary:1' })]);
    await store.write({ key: Buffer.from('elsewhere'), bucket: 6, versions: [version('e')] });
    const first = store.unhintedInBucket(5, Buffer.alloc(0), 1);
    expect(first.map((found) => found.key.toString())).toEqual(['a']);
    expect(first[0].hash).toBe(hashOf(inBucket('a')));
    expect(store.unhintedInBucket(5, first[0].key, 10).map((found) => found.key.toString())).toEqual(['b']);
    expect(store.tree.bucketsHoldingKeys()).toEqual([5, 6]);
  });
});

describe('handedOff', () => {
  test('removes a hint only while the record still has the hash that was sent', async () => {
    // Proves a write committed after the copy was sent keeps the hint, so the newer copy is delivered too.
    const store = open();
    const sent = record('k', [version('sent')]);
    await store.write(sent, { hintFor: 'target' });
    const newer = record('k', [version('newer', { clock: [{ node: 'node-a', counter: 2, timestampMs: nowMs }] })]);
    await store.write(newer);
    expect(await store.handedOff('target', false, [keyAt(sent)])).toBe(0);
    expect(store.hintsFor('target', Buffer.alloc(0), 10)).toEqual([{ key: sent.key, record: { ...newer, hash: hashOf(newer) } }]);
    expect(store.hintCounts()).toHaveLength(1);
    expect(await store.handedOff('target', false, [keyAt(newer)])).toBe(1);
    expect(store.hintCounts()).toEqual([]);
    // Without dropCopy the record stays.
    expect(store.read(sent.key)).toEqual(newer);
    expect(store.copiesDropped).toBe(0);
    // A second report of the same delivery changes nothing.
    expect(await store.handedOff('target', false, [keyAt(newer)])).toBe(0);
  });

  test('dropCopy drops the record only when no other target\'s hint holds it, and counts it', async () => {
    // Proves a fallback's copy outlives its hints only while another primary still waits for it.
    const store = open();
    const shared = record('shared', [version('v')]);
    const single = record('single', [version('w')]);
    const own = record('own', [version('x')]);
    await Promise.all([
      store.write(shared, { hintFor: 'target-1' }),
      store.write(single, { hintFor: 'target-1' }),
      store.write(own),
    ]);
    await store.write(shared, { hintFor: 'target-2' });
    expect(store.counts().items).toBe(3);

    expect(await store.handedOff('target-1', true, [keyAt(shared), keyAt(single), keyAt(own)])).toBe(2);
    expect(store.copiesDropped).toBe(1);
    expect(store.read(single.key)).toBeUndefined();
    expect(store.committedRecord(single.key)).toBeUndefined();
    expect(store.read(shared.key)).toEqual(shared);
    // A record with no hint for the target is this node's own: dropCopy never touches it.
    expect(store.read(own.key)).toEqual(own);
    expect(store.counts()).toEqual({ items: 2, bytes: 'shared'.length + 1 + 'own'.length + 1 });

    expect(await store.handedOff('target-2', true, [keyAt(shared)])).toBe(1);
    expect(store.copiesDropped).toBe(2);
    expect(store.read(shared.key)).toBeUndefined();
    expect(store.hintCounts()).toEqual([]);
    expect(store.counts()).toEqual({ items: 1, bytes: 'own'.length + 1 });
    // The tree lost the dropped copies: it is the tree of the one record left.
    expect(everyNode(store.tree)).toEqual(everyNode(forestOf([own])));
    await store.close();
    const reopened = open();
    expect(reopened.read(shared.key)).toBeUndefined();
    expect(everyNode(reopened.tree)).toEqual(everyNode(forestOf([own])));
  });

  test('dropCopy keeps a record whose hash changed since it was sent', async () => {
    // Proves a delivery report for an older copy neither removes the hint nor drops the newer record.
    const store = open();
    const sent = record('k', [version('sent')]);
    await store.write(sent, { hintFor: 'target' });
    const newer = record('k', [version('newer', { writtenAtMs: nowMs + 1, clock: [{ node: 'node-z', counter: 1, timestampMs: nowMs }] })]);
    await store.write(newer, { hintFor: 'target' });
    expect(await store.handedOff('target', true, [keyAt(sent)])).toBe(0);
    expect(store.read(sent.key)).toEqual(newer);
    expect(store.copiesDropped).toBe(0);
    expect(store.hintCounts()).toEqual([{ target: 'target', count: 1, bytes: hintBytesOf(newer) }]);
  });
});

describe('reaping', () => {
  test('reap removes only records that still have the expected hash and hold no hint', async () => {
    // Proves the conditions a reap is carried out on, checked at commit: hash unchanged, no hint.
    const store = open();
    const reaped = record('reaped', [tombstone(nowMs - 10_000)]);
    const wrongHash = record('wrong-hash', [tombstone(nowMs - 10_000)]);
    const hinted = record('hinted', [tombstone(nowMs - 10_000)]);
    const rewritten = record('rewritten', [tombstone(nowMs - 10_000)]);
    const live = record('live', [version('v')]);
    await Promise.all([
      store.write(reaped),
      store.write(wrongHash),
      store.write(hinted, { hintFor: 'target' }),
      store.write(rewritten),
      store.write(live),
    ]);
    // A write committed after the decision changes the record's hash: the reap no longer applies.
    const revived = record('rewritten', [version('back', { clock: [{ node: 'node-b', counter: 1, timestampMs: nowMs }] })]);
    await store.write(revived);
    const removed = await store.reap([
      keyAt(reaped),
      keyAt(wrongHash, otherHash(hashOf(wrongHash))),
      keyAt(hinted),
      keyAt(rewritten),
      { key: Buffer.from('absent'), expectedHash: 5 },
    ]);
    expect(removed).toBe(1);
    expect(store.read(reaped.key)).toBeUndefined();
    expect(store.read(wrongHash.key)).toEqual(wrongHash);
    expect(store.read(hinted.key)).toEqual(hinted);
    expect(store.read(rewritten.key)).toEqual(revived);
    expect(await store.reap([])).toBe(0);
    expect(everyNode(store.tree)).toEqual(everyNode(forestOf([wrongHash, hinted, revived, live])));
    expect(store.counts()).toEqual({ items: 2, bytes: 'rewritten'.length + 4 + 'live'.length + 1 });
    withSideConnection((db) => expect(rowCount(db, 'items')).toBe(4));
  });

  test('reapCandidates lists dead, unhinted, not deferred records, oldest death first, up to the limit', async () => {
    // Proves which records the reaper is offered, in which order, and with the hashes a reap needs.
    const store = open();
    const deadOldest = record('dead-oldest', [tombstone(nowMs - 3000)]);
    const deadMiddle = record('dead-middle', [version('v', { expiresAtMs: nowMs - 2000 }), tombstone(nowMs - 2500)]);
    const deadNewest = record('dead-newest', [version('v', { expiresAtMs: nowMs - 1000 })]);
    const deadLater = record('dead-later', [tombstone(nowMs + 1000)]);
    const hintedDead = record('hinted-dead', [tombstone(nowMs - 4000)]);
    const forever = record('forever', [version('v'), tombstone(nowMs - 5000, { clock: [{ node: 'node-b', counter: 1, timestampMs: 1 }] })]);
    const live = record('live', [version('v', { expiresAtMs: nowMs + 60_000 })]);
    await Promise.all([
      store.write(deadNewest),
      store.write(deadLater),
      store.write(deadOldest),
      store.write(hintedDead, { hintFor: 'target' }),
      store.write(deadMiddle),
      store.write(forever),
      store.write(live),
    ]);
    const candidates = store.reapCandidates(nowMs, nowMs, 100);
    expect(candidates.map((candidate) => candidate.key.toString())).toEqual(['dead-oldest', 'dead-middle', 'dead-newest']);
    for (const candidate of candidates) {
      const { hash, ...stored } = candidate;
      expect(stored).toEqual(store.read(candidate.key));
      expect(hash).toBe(hashOf(candidate));
      expect(hash).toBe(store.committedRecord(candidate.key)?.hash);
    }
    expect(store.reapCandidates(nowMs, nowMs, 2).map((candidate) => candidate.key.toString())).toEqual(['dead-oldest', 'dead-middle']);
    expect(store.reapCandidates(nowMs - 2000, nowMs, 100).map((candidate) => candidate.key.toString())).toEqual([
      'dead-oldest',
      'dead-middle',
    ]);
    expect(store.reapCandidates(nowMs - 2001, nowMs, 100).map((candidate) => candidate.key.toString())).toEqual(['dead-oldest']);
    expect(store.reapCandidates(nowMs + 1000, nowMs, 100).map((candidate) => candidate.key.toString())).toEqual([
      'dead-oldest',
      'dead-middle',
      'dead-newest',
      'dead-later',
    ]);
    // Once its hint is delivered, the fallback's dead copy is a candidate like any other.
    expect(await store.handedOff('target', false, [keyAt(hintedDead)])).toBe(1);
    expect(store.reapCandidates(nowMs, nowMs, 1).map((candidate) => candidate.key.toString())).toEqual(['hinted-dead']);
    // The candidates reap cleanly at the hashes they were listed with.
    expect(await store.reap(store.reapCandidates(nowMs, nowMs, 100).map((candidate) => keyAt(candidate, candidate.hash)))).toBe(4);
    expect(store.reapCandidates(nowMs + 1000, nowMs, 100).map((candidate) => candidate.key.toString())).toEqual(['dead-later']);
  });

  test('deferReap holds a candidate back until its time, only at the hash it was deferred at', async () => {
    // Proves a deferral hides the candidate before untilMs, shows it from then on, and a rewrite clears it.
    const store = open();
    const deferred = record('deferred', [tombstone(nowMs - 1000)]);
    const other = record('other', [tombstone(nowMs - 500)]);
    await Promise.all([store.write(deferred), store.write(other)]);
    const listed = (atMs: number): string[] => store.reapCandidates(nowMs, atMs, 100).map((candidate) => candidate.key.toString());
    expect(listed(nowMs)).toEqual(['deferred', 'other']);

    expect(await store.deferReap([keyAt(deferred), keyAt(other, otherHash(hashOf(other)))], nowMs + 60_000)).toBe(1);
    expect(listed(nowMs)).toEqual(['other']);
    expect(listed(nowMs + 59_999)).toEqual(['other']);
    expect(listed(nowMs + 60_000)).toEqual(['deferred', 'other']);
    expect(await store.deferReap([], nowMs)).toBe(0);

    // Written again, even with the same versions, the record is a new candidate: the deferral is gone.
    await store.write(deferred);
    expect(listed(nowMs)).toEqual(['deferred', 'other']);
    // Deferred again and reopened, the deferral is on disk.
    expect(await store.deferReap([keyAt(deferred)], nowMs + 60_000)).toBe(1);
    await store.close();
    const reopened = open();
    expect(reopened.reapCandidates(nowMs, nowMs, 100).map((candidate) => candidate.key.toString())).toEqual(['other']);
    // A deferral does not stop a reap the reaper carries out.
    expect(await reopened.reap([keyAt(deferred)])).toBe(1);
  });
});

describe('hash trees', () => {
  test('the tree follows commits, not accepted writes, and equals the tree rebuilt at reopen', async () => {
    // Proves store.tree is the XOR of the committed records' hashes per segment, kept up to date incrementally.
    const random = new Random(11);
    const store = open();
    const records = new Map<string, StoredRecord>();
    for (let round = 0; round < 5; round++) {
      const writes: Promise<void>[] = [];
      for (let index = 0; index < 60; index++) {
        const key = `key-${random.int(0, 120)}`;
        const versions = random.chance(0.2)
          ? [tombstone(nowMs - random.int(0, 1000))]
          : [version(`v${round}-${index}`, { clock: [{ node: 'node-a', counter: round + 1, timestampMs: nowMs }] })];
        const stored = record(key, versions);
        records.set(key, stored);
        writes.push(store.write(stored, random.chance(0.1) ? { hintFor: 'target' } : {}));
      }
      if (round === 0) {
        // Accepted, not committed: the tree has not moved.
        expect(everyNode(store.tree)).toEqual([]);
      }
      await Promise.all(writes);
      expect(everyNode(store.tree)).toEqual(everyNode(forestOf([...records.values()])));
    }
    // Records removed by a reap or a handoff leave the tree.
    const dead = [...records.values()].filter((stored) => stored.versions[0].tombstone);
    const hinted = store.hintsFor('target', Buffer.alloc(0), 1000).map((hint) => hint.record!);
    await store.reap(dead.map((stored) => keyAt(stored)));
    await store.handedOff('target', true, hinted.map((stored) => keyAt(stored, stored.hash)));
    const left = [...records.values()].filter((stored) => store.read(stored.key) !== undefined);
    expect(left.length).toBeLessThan(records.size);
    expect(everyNode(store.tree)).toEqual(everyNode(forestOf(left)));
    const live = everyNode(store.tree);
    await store.close();
    expect(everyNode(open().tree)).toEqual(live);
  });

  test('two stores holding the same records after different write orders have equal trees', async () => {
    // Proves the trees of two replicas depend on what they hold, not on the history that led there.
    const random = new Random(3);
    const finalRecords = Array.from({ length: 80 }, (_, index) => {
      // Some keys hold siblings, which each store receives in a different order.
      const versions = [version(`v${index}`, { writtenAtMs: nowMs + index })];
      if (index % 5 === 0) versions.push(version(`s${index}`, { clock: [{ node: 'node-b', counter: 1, timestampMs: nowMs }] }));
      return record(`key-${index}`, versions);
    });
    const first = open();
    const second = open({}, freshDir());
    // The first store sees older values first, then the final ones, in one order.
    const stale = (stored: StoredRecord): StoredRecord => record(stored.key, [version('stale', { clock: [], writtenAtMs: 1 })]);
    await Promise.all(random.shuffle(finalRecords).map((stored) => first.write(stale(stored))));
    await Promise.all(random.shuffle(finalRecords).map((stored) => first.write(stored)));
    // The second store only the final ones, in another order and with siblings reversed.
    await Promise.all(
      random.shuffle(finalRecords).map((stored) => second.write({ ...stored, versions: [...stored.versions].reverse() })),
    );
    const allBuckets = Array.from({ length: buckets }, (_, bucket) => bucket);
    expect(first.tree.roots(allBuckets)).toEqual(second.tree.roots(allBuckets));
    expect(everyNode(first.tree)).toEqual(everyNode(second.tree));
    expect(everyNode(first.tree)).toEqual(everyNode(forestOf(finalRecords)));
    expect(first.tree.roots(allBuckets).some((root) => root !== 0)).toBe(true);
  });

  test('removeAll empties the tree, and writes after it start a new one', async () => {
    // Proves a removal of all data leaves no stale tree entries, and is ordered with the writes around it.
    const store = open();
    await Promise.all(Array.from({ length: 20 }, (_, index) => store.write(record(`key-${index}`, [version('v')]))));
    const after = record('after', [version('v')]);
    await Promise.all([store.write(record('before', [version('v')])), store.removeAll(), store.write(after)]);
    expect(everyNode(store.tree)).toEqual(everyNode(forestOf([after])));
    await store.close();
    expect(everyNode(open().tree)).toEqual(everyNode(forestOf([after])));
  });

  test('segmentKeys lists a segment\'s keys in key order with their hashes, up to the limit', async () => {
    // Proves anti-entropy's view of one leaf: exactly the keys whose position falls in it.
    const ringBuckets = 16;
    const { segments } = treeShapeFor(ringBuckets);
    const slots = new Map<string, Buffer[]>();
    for (let index = 0; index < 20_000; index++) {
      const key = Buffer.from(`key-${index}`);
      const slot = `${bucketOfKey(key, ringBuckets)}/${segmentOfKey(key, ringBuckets, segments)}`;
      slots.set(slot, [...(slots.get(slot) ?? []), key]);
    }
    const [fullest, keys] = [...slots.entries()].reduce((best, entry) => (entry[1].length > best[1].length ? entry : best));
    expect(keys.length).toBeGreaterThanOrEqual(5);
    const [bucket, segment] = fullest.split('/').map(Number);
    const neighbours = [...slots.entries()]
      .filter(([slot]) => slot !== fullest && (slot.startsWith(`${bucket}/`) || slot.endsWith(`/${segment}`)))
      .slice(0, 20)
      .map(([, slotKeys]) => slotKeys[0]);
    const store = open({ buckets: ringBuckets });
    const written = [...keys, ...neighbours].map((key) => record(key, [version(key)], ringBuckets));
    await Promise.all(written.map((stored) => store.write(stored)));
    const expected = written
      .filter((stored) => keys.some((key) => key.equals(stored.key)))
      .sort((a, b) => Buffer.compare(a.key, b.key))
      .map((stored) => ({ key: stored.key, hash: hashOf(stored) }));
    expect(store.segmentKeys(bucket, segment, 1000)).toEqual(expected);
    expect(store.segmentKeys(bucket, segment, 2)).toEqual(expected.slice(0, 2));
    // The segment's leaf in the tree is the XOR of exactly those hashes.
    const leaf = expected.reduce((hash, entry) => Number(BigInt(hash) ^ BigInt(entry.hash)), 0);
    expect(store.tree.nodeHash(bucket, store.tree.shape.levelWidths.length - 1, segment)).toBe(leaf);
    const nextSegment = store.segmentKeys(bucket, (segment + 1) % segments, 1000);
    expect(nextSegment.some((entry) => keys.some((key) => key.equals(entry.key)))).toBe(false);
  });
});

describe('inline store', () => {
  /** A store committing inline on `database` after `commitDelayMs` of `env`'s time. */
  function inline(database: Database.Database, env: ManualEnv, commitDelayMs = 10, extra: { buckets?: number } = {}): SqliteStore {
    return openInlineStore({ database, env, commitDelayMs: () => commitDelayMs, buckets, ...extra });
  }

  const committedKeys = (database: Database.Database): string[] =>
    (database.prepare('SELECT key FROM items ORDER BY key').all() as { key: Buffer }[]).map((row) => row.key.toString());

  test('a write is readable at once and committed only after commitDelayMs of the env\'s time', async () => {
    // Proves the simulated disk: the commit lands when the Env's clock has advanced by the delay, not before.
    const database = new Database(':memory:');
    const env = new ManualEnv();
    const store = inline(database, env, 10);
    const stored = record('k', [version('v')]);
    const write = tracked(store.write(stored));
    expect(store.read(stored.key)).toEqual(stored);
    expect(store.committedRecord(stored.key)).toBeUndefined();
    env.advance(9);
    await flushMicrotasks();
    expect(write()).toBe('pending');
    expect(committedKeys(database)).toEqual([]);
    expect(everyNode(store.tree)).toEqual([]);
    expect(store.counts().items).toBe(0);
    env.advance(1);
    await flushMicrotasks();
    expect(write()).toBe('resolved');
    expect(committedKeys(database)).toEqual(['k']);
    expect(store.committedRecord(stored.key)).toEqual({ ...stored, hash: hashOf(stored) });
    expect(everyNode(store.tree)).toEqual(everyNode(forestOf([stored])));
    expect(store.counts()).toEqual({ items: 1, bytes: 2 });
  });

  test('committedRecord shows the committed record while an overwrite is pending', async () => {
    // Proves background shells read committed rows only, never a write that may still be lost.
    const database = new Database(':memory:');
    const env = new ManualEnv();
    const store = inline(database, env, 5);
    const old = record('k', [version('old')]);
    void store.write(old);
    env.advance(5);
    await flushMicrotasks();
    const newer = record('k', [version('new', { clock: [{ node: 'node-a', counter: 2, timestampMs: nowMs }] })]);
    void store.write(newer, { hintFor: 'target' });
    expect(store.read(newer.key)).toEqual(newer);
    expect(store.committedRecord(newer.key)).toEqual({ ...old, hash: hashOf(old) });
    expect(store.hintCounts()).toEqual([]);
    expect(store.hintsFor('target', Buffer.alloc(0), 10)).toEqual([]);
    env.advance(5);
    await flushMicrotasks();
    expect(store.committedRecord(newer.key)).toEqual({ ...newer, hash: hashOf(newer) });
    expect(store.hintCounts()).toEqual([{ target: 'target', count: 1, bytes: hintBytesOf(newer) }]);
  });

  test('whenCommitted settles with the latest pending write of the key', async () => {
    // Proves whenCommitted waits for the key's latest accepted write, and is immediate when none is pending.
    const database = new Database(':memory:');
    const env = new ManualEnv();
    const store = inline(database, env, 10);
    const key = Buffer.from('k');
    const idle = tracked(store.whenCommitted(key));
    await flushMicrotasks();
    expect(idle()).toBe('resolved');

    void store.write(record(key, [version('1')]));
    env.advance(5);
    // The first write is in flight; the second joins the next batch.
    void store.write(record(key, [version('2', { writtenAtMs: nowMs + 1 })]));
    const latest = tracked(store.whenCommitted(key));
    const otherKey = tracked(store.whenCommitted(Buffer.from('other')));
    env.advance(5);
    await flushMicrotasks();
    expect(otherKey()).toBe('resolved');
    expect(committedKeys(database)).toEqual(['k']);
    expect(latest()).toBe('pending');
    env.advance(10);
    await flushMicrotasks();
    expect(latest()).toBe('resolved');
    expect(store.committedRecord(key)?.versions[0].value.toString()).toBe('2');
  });

  test('whenCommitted rejects when the pending write fails', async () => {
    // Proves a replica waiting on a held version's commit hears of its failure instead of answering "stored".
    const database = new Database(':memory:');
    const env = new ManualEnv();
    const store = inline(database, env, 10);
    database.exec(`CREATE TRIGGER refuse BEFORE INSERT ON items BEGIN SELECT RAISE(ABORT, 'disk says no'); END`);
    const key = Buffer.from('k');
    const write = store.write(record(key, [version('v')]));
    const waited = store.whenCommitted(key);
    env.advance(10);
    await expectKaiError(write, 'KAI_STORAGE_FAILURE', /disk says no/);
    await expectKaiError(waited, 'KAI_STORAGE_FAILURE');
    expect(store.read(key)).toBeUndefined();
    await expect(store.whenCommitted(key)).resolves.toBeUndefined();
  });

  test('a store abandoned before its commit loses the write; a new one sees everything committed before', async () => {
    // Proves a crash before the simulated fsync loses exactly the uncommitted batch, and nothing else.
    const database = new Database(':memory:');
    const crashedEnv = new ManualEnv();
    const crashed = inline(database, crashedEnv, 10);
    const committed = record('committed', [version('v')]);
    const hinted = record('hinted', [version('h')]);
    void crashed.write(committed);
    void crashed.write(hinted, { hintFor: 'target' });
    crashedEnv.advance(10);
    await flushMicrotasks();
    const lost = record('lost', [version('gone')]);
    const overwrittenLost = record('committed', [version('overwrite', { writtenAtMs: nowMs + 5 })]);
    const lostWrite = tracked(crashed.write(lost));
    void crashed.write(overwrittenLost);
    crashedEnv.advance(9);
    await flushMicrotasks();
    expect(crashed.read(lost.key)).toEqual(lost);
    // The process dies here: its timers never run again. A new process opens the same disk.
    const env = new ManualEnv(crashedEnv.nowMs());
    const restarted = inline(database, env, 10);
    expect(restarted.read(lost.key)).toBeUndefined();
    expect(restarted.read(committed.key)).toEqual(committed);
    expect(restarted.read(hinted.key)).toEqual(hinted);
    expect(restarted.hintCounts()).toEqual([{ target: 'target', count: 1, bytes: hintBytesOf(hinted) }]);
    expect(restarted.counts()).toEqual({ items: 2, bytes: 'committed'.length + 1 + 'hinted'.length + 1 });
    expect(everyNode(restarted.tree)).toEqual(everyNode(forestOf([committed, hinted])));
    expect(lostWrite()).toBe('pending');
    // The new store commits on the same disk as usual.
    const again = tracked(restarted.write(lost));
    env.advance(10);
    await flushMicrotasks();
    expect(again()).toBe('resolved');
    expect(committedKeys(database)).toEqual(['committed', 'hinted', 'lost']);
  });

  test('a store opened with another bucket count than its file\'s is refused, naming --buckets', async () => {
    // Proves a data dir written for one ring layout is not read with another, whose buckets and segments would differ.
    const first = open({ buckets: 512 });
    await first.write(record('k', [version('v')], 512));
    await first.close();
    expect(() => openSqliteStore({ dataDir, buckets: 1024 })).toThrow(/--buckets 512, not 1024: start with --buckets 512/);
    const refusal = (() => {
      try {
        openSqliteStore({ dataDir, buckets: 2048 });
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(refusal).toBeInstanceOf(KaiError);
    expect((refusal as KaiError).code).toBe('KAI_STORAGE_FAILURE');
    // The file was left as it was: opened with its own count, it still holds the record.
    expect(open({ buckets: 512 }).read(Buffer.from('k'))?.versions[0].value.toString()).toBe('v');

    const database = new Database(':memory:');
    inline(database, new ManualEnv(), 1, { buckets: 64 });
    expect(() => inline(database, new ManualEnv(), 1, { buckets: 128 })).toThrow(/--buckets 64/);
  });
});
