import Database from 'better-sqlite3';
import { arithMutation, deleteMutation, storeMutation, type StoreRequest } from '../../../src/coordinator/mutations';
import { LocalReplica } from '../../../src/coordinator/replica';
import { KaiError } from '../../../src/errors';
import type { Version } from '../../../src/storage/record';
import { openInlineStore, type SqliteStore } from '../../../src/storage/sqlite';
import { compare, descends, type VClock } from '../../../src/vclock';
import { ManualEnv } from '../../support/manual-env';
import { MemoryStore } from '../../support/memory-store';
import { flushMicrotasks, tracked } from '../../support/settling';

const valueBytesMax = 1024;
const key = Buffer.from('k');
const bucket = 3;

function setRequest(value: string, mode: StoreRequest['mode'] = 'set'): StoreRequest {
  return { mode, value: Buffer.from(value), flags: 5, expiresAtMs: 0, casUnique: 0n };
}

function versionWith(value: string, clock: VClock, writtenAtMs: number): Version {
  return { clock, value: Buffer.from(value), flags: 0, expiresAtMs: 0, tombstone: false, writtenAtMs };
}

let env: ManualEnv;
let store: MemoryStore;
let replica: LocalReplica;

beforeEach(() => {
  env = new ManualEnv();
  store = new MemoryStore();
  replica = new LocalReplica('node-a', store, env, valueBytesMax);
});

const values = (versions: readonly Version[]): string[] => versions.map((v) => v.value.toString()).sort();

// A first write gets a one-entry clock stamped with the replica's node and the Env's time; the
// counter starts at the time in ms, so it is never below a counter this node used before.
test('apply on an empty key writes a fresh version', async () => {
  const applied = await replica.apply(key, bucket, storeMutation(setRequest('one')));
  expect(applied.result).toBe('STORED');
  expect(applied.written?.clock).toEqual([{ node: expect.stringMatching(/^node-a~[0-9a-z]+$/), counter: env.nowMs(), timestampMs: env.nowMs() }]);
  expect(applied.written?.writtenAtMs).toBe(env.nowMs());
  expect(applied.written?.flags).toBe(5);
  expect(applied.versions).toEqual([applied.written]);
  expect(store.read(key)).toEqual({ key, bucket, versions: [applied.written], actor: applied.written?.clock[0].node });
  expect(await replica.fetch(key)).toEqual([applied.written]);
  expect(await replica.fetch(Buffer.from('other'))).toEqual([]);
});

// Successive writes supersede each other: each new clock descends from the previous one.
test('successive applies supersede', async () => {
  const first = await replica.apply(key, bucket, storeMutation(setRequest('one')));
  env.advance(10);
  const second = await replica.apply(key, bucket, storeMutation(setRequest('two')));
  expect(compare(second.written!.clock, first.written!.clock)).toBe('after');
  // The same name: the replica kept the key's record, so it holds every write made under it.
  expect(second.written!.clock).toEqual([{ node: first.written!.clock[0].node, counter: env.nowMs(), timestampMs: env.nowMs() }]);
  expect(values(replica.fetchNow(key))).toEqual(['two']);
  // Two writes in the same millisecond still count up.
  const third = await replica.apply(key, bucket, storeMutation(setRequest('three')));
  expect(third.written!.clock[0].counter).toBe(env.nowMs() + 1);
});

// A node whose record of a key is gone (purged, flushed, handed off) writes under a new name: its
// next write does not claim to have seen the versions peers still hold, which would supersede
// writes it never saw; they stay siblings. One that read them first (as a coordinator's context
// read makes it) supersedes them.
test('a write after the record of a key is gone is concurrent with what peers still hold', async () => {
  let written: Version | undefined;
  for (let round = 0; round < 3; round++) {
    written = (await replica.apply(key, bucket, storeMutation(setRequest(`old-${round}`)))).written;
    env.advance(1);
  }
  const peerHolds = written!;
  const oldName = peerHolds.clock[0].node;
  store.records.clear();
  env.advance(1);
  const fresh = (await replica.apply(key, bucket, storeMutation(setRequest('new')))).written!;
  expect(compare(fresh.clock, peerHolds.clock)).toBe('concurrent');
  expect(fresh.clock.map((entry) => entry.node)).not.toContain(oldName);
  const peer = new LocalReplica('node-b', new MemoryStore(), env, valueBytesMax);
  await peer.store(key, bucket, [peerHolds]);
  await peer.store(key, bucket, [fresh]);
  expect(values(peer.fetchNow(key))).toEqual(['new', 'old-2']);
  await replica.store(key, bucket, [peerHolds]);
  const informed = (await replica.apply(key, bucket, storeMutation(setRequest('newer')))).written!;
  expect(compare(informed.clock, peerHolds.clock)).toBe('after');
});

// A write over siblings resolves them: its clock dominates every version held.
test('apply writes a version whose clock dominates all held versions', async () => {
  const left = versionWith('left', [{ node: 'node-b', counter: 3, timestampMs: 1 }], 1);
  const right = versionWith('right', [{ node: 'node-c', counter: 1, timestampMs: 2 }], 2);
  await replica.store(key, bucket, [left, right]);
  expect(values(replica.fetchNow(key))).toEqual(['left', 'right']);
  const applied = await replica.apply(key, bucket, storeMutation(setRequest('resolved')));
  for (const held of [left, right]) expect(compare(applied.written!.clock, held.clock)).toBe('after');
  expect(values(replica.fetchNow(key))).toEqual(['resolved']);
  // A tombstone supersedes the same way.
  const deleted = await replica.apply(key, bucket, deleteMutation(0n));
  expect(deleted.result).toBe('DELETED');
  expect(replica.fetchNow(key).map((v) => v.tombstone)).toEqual([true]);
  expect(descends(deleted.written!.clock, applied.written!.clock)).toBe(true);
});

// A decision without a write leaves the store untouched.
test('apply without a write stores nothing', async () => {
  const applied = await replica.apply(key, bucket, storeMutation(setRequest('x', 'replace')));
  expect(applied).toEqual({ result: 'NOT_STORED', versions: [], written: undefined });
  expect(store.records.size).toBe(0);
});

// A mutation refused with an error value (append past the size limit) writes nothing and passes it on.
test("apply passes a mutation's error value on without writing", async () => {
  await replica.apply(key, bucket, storeMutation(setRequest('x'.repeat(valueBytesMax))));
  const before = store.read(key);
  const applied = await replica.apply(key, bucket, storeMutation(setRequest('y', 'append')));
  expect(applied.error?.code).toBe('KAI_OUT_OF_MEMORY_STORING');
  expect(applied.written).toBeUndefined();
  expect(store.read(key)).toBe(before);
});

// store() keeps concurrent versions as siblings, drops dominated ones and deduplicates equal ones.
test('store merges incoming versions with held ones', async () => {
  const mine = (await replica.apply(key, bucket, storeMutation(setRequest('mine')))).written!;
  const concurrent = versionWith('theirs', [{ node: 'node-b', counter: 1, timestampMs: 5 }], 5);
  await replica.store(key, bucket, [concurrent]);
  expect(values(replica.fetchNow(key))).toEqual(['mine', 'theirs']);
  await replica.store(key, bucket, [concurrent, mine]);
  expect(replica.fetchNow(key)).toHaveLength(2);
  const stale = versionWith('stale', [], 0);
  await replica.store(key, bucket, [stale]);
  expect(values(replica.fetchNow(key))).toEqual(['mine', 'theirs']);
  const descendant = versionWith('merged', [...mine.clock, ...concurrent.clock], 9);
  await replica.store(key, bucket, [descendant]);
  expect(values(replica.fetchNow(key))).toEqual(['merged']);
  expect(store.read(key)?.bucket).toBe(bucket);
});

// An operating error a mutation decides on comes back as a value, and nothing is written.
test('apply returns a refused mutation as an error value and leaves the key as it was', async () => {
  await replica.apply(key, bucket, storeMutation(setRequest('not a number')));
  const held = store.read(key);
  const applied = await replica.apply(key, bucket, arithMutation({ incr: true, delta: 1n }));
  expect(applied.error).toBeInstanceOf(KaiError);
  expect(applied.error?.code).toBe('KAI_NON_NUMERIC_VALUE');
  expect(applied.result).toBeUndefined();
  expect(applied.written).toBeUndefined();
  expect(store.read(key)).toBe(held);
});

describe('LocalReplica.store on a store whose commits take time', () => {
  const commitDelayMs = 10;
  const reapGraceMs = 60_000;
  let database: Database.Database;
  let sqlite: SqliteStore;
  let onDisk: LocalReplica;

  beforeEach(() => {
    database = new Database(':memory:');
    sqlite = openInlineStore({ database, env, commitDelayMs: () => commitDelayMs, buckets: 1024 });
    onDisk = new LocalReplica('node-a', sqlite, env, valueBytesMax, undefined, reapGraceMs);
  });

  afterEach(() => database.close());

  const committedRows = (): number => (database.prepare('SELECT COUNT(*) AS n FROM items').get() as { n: number }).n;

  // "Stored" means committed: versions already held but not yet committed are acknowledged only after that commit.
  test('a store of versions already held resolves only after their commit', async () => {
    const held = versionWith('held', [{ node: 'node-b', counter: 2, timestampMs: env.nowMs() }], env.nowMs());
    const older = versionWith('older', [{ node: 'node-b', counter: 1, timestampMs: env.nowMs() }], env.nowMs() - 1);
    const firstWrite = tracked(onDisk.store(key, bucket, [held]));
    expect(sqlite.stats().operationsQueued).toBe(1);
    const same = tracked(onDisk.store(key, bucket, [held]));
    const superseded = tracked(onDisk.store(key, bucket, [older]));
    // Neither queued a write of its own: the held version covers what they bring.
    expect(sqlite.stats().operationsQueued).toBe(1);
    env.advance(commitDelayMs - 1);
    await flushMicrotasks();
    expect([firstWrite(), same(), superseded()]).toEqual(['pending', 'pending', 'pending']);
    expect(committedRows()).toBe(0);
    env.advance(1);
    await flushMicrotasks();
    expect([firstWrite(), same(), superseded()]).toEqual(['resolved', 'resolved', 'resolved']);
    expect(sqlite.stats()).toMatchObject({ commits: 1, operationsCommitted: 1 });
    expect(values(onDisk.fetchNow(key))).toEqual(['held']);
    // Once committed, a store of covered versions answers at once and writes nothing.
    const again = tracked(onDisk.store(key, bucket, [older, held]));
    await flushMicrotasks();
    expect(again()).toBe('resolved');
    expect(sqlite.stats().operationsQueued).toBe(0);
  });

  // A store that waited on a held version's commit fails with it, rather than acknowledge what never reached the disk.
  test('a store waiting on a held version fails when that commit fails', async () => {
    const held = versionWith('held', [{ node: 'node-b', counter: 1, timestampMs: env.nowMs() }], env.nowMs());
    database.exec(`CREATE TRIGGER refuse BEFORE INSERT ON items BEGIN SELECT RAISE(ABORT, 'disk says no'); END`);
    const first = onDisk.store(key, bucket, [held]);
    const waiting = onDisk.store(key, bucket, [held]);
    first.catch(() => undefined);
    waiting.catch(() => undefined);
    env.advance(commitDelayMs);
    await expect(first).rejects.toMatchObject({ code: 'KAI_STORAGE_FAILURE' });
    await expect(waiting).rejects.toMatchObject({ code: 'KAI_STORAGE_FAILURE' });
    expect(onDisk.fetchNow(key)).toEqual([]);
  });

  // Versions dead for longer than reapGraceMs are not written into a replica that holds nothing for the key.
  test('versions dead past the grace are not written into a replica that holds nothing', async () => {
    const longDeleted: Version = {
      ...versionWith('', [{ node: 'node-b', counter: 2, timestampMs: 1 }], env.nowMs() - reapGraceMs - 1),
      tombstone: true,
    };
    const longExpired: Version = {
      ...versionWith('gone', [{ node: 'node-c', counter: 1, timestampMs: 1 }], env.nowMs() - 2 * reapGraceMs),
      expiresAtMs: env.nowMs() - reapGraceMs,
    };
    const stored = tracked(onDisk.store(key, bucket, [longDeleted, longExpired]));
    await flushMicrotasks();
    expect(stored()).toBe('resolved');
    expect(sqlite.stats().operationsQueued).toBe(0);
    expect(onDisk.fetchNow(key)).toEqual([]);
    env.advance(commitDelayMs);
    expect(committedRows()).toBe(0);

    // Dead for less than the grace, the same kind of version is taken.
    const recentlyDeleted: Version = {
      ...longDeleted,
      clock: [{ node: 'node-d', counter: 1, timestampMs: 1 }],
      writtenAtMs: env.nowMs() - reapGraceMs + 1,
    };
    const recent = onDisk.store(Buffer.from('recent'), bucket, [recentlyDeleted]);
    env.advance(commitDelayMs);
    await recent;
    expect(sqlite.read(Buffer.from('recent'))?.versions).toEqual([recentlyDeleted]);
    // A replica holding something for the key takes them: the tombstone supersedes what it holds.
    const live = versionWith('live', [{ node: 'node-b', counter: 1, timestampMs: 1 }], 1);
    const withLive = onDisk.store(Buffer.from('held'), bucket, [live]);
    env.advance(commitDelayMs);
    await withLive;
    const superseding = onDisk.store(Buffer.from('held'), bucket, [longDeleted]);
    env.advance(commitDelayMs);
    await superseding;
    expect(sqlite.read(Buffer.from('held'))?.versions).toEqual([longDeleted]);
  });

  // A hinted store writes even when the versions are already held, and records a hint naming the primary.
  test('a hinted store always writes and records the hint', async () => {
    const held = versionWith('held', [{ node: 'node-b', counter: 1, timestampMs: env.nowMs() }], env.nowMs());
    const plain = onDisk.store(key, bucket, [held]);
    env.advance(commitDelayMs);
    await plain;
    expect(sqlite.hintCounts()).toEqual([]);
    expect(sqlite.stats().commits).toBe(1);

    const hinted = tracked(onDisk.store(key, bucket, [held], 'node-c:11011'));
    expect(sqlite.stats().operationsQueued).toBe(1);
    env.advance(commitDelayMs);
    await flushMicrotasks();
    expect(hinted()).toBe('resolved');
    expect(sqlite.stats().commits).toBe(2);
    expect(sqlite.hintCounts()).toMatchObject([{ target: 'node-c:11011', count: 1 }]);
    const hints = sqlite.hintsFor('node-c:11011', Buffer.alloc(0), 10);
    expect(hints.map((hint) => hint.key)).toEqual([key]);
    expect(hints[0].record?.versions).toEqual([held]);
    // A hinted store into an empty replica writes the versions with the hint too.
    const fresh = versionWith('fresh', [{ node: 'node-d', counter: 1, timestampMs: env.nowMs() }], env.nowMs());
    const other = onDisk.store(Buffer.from('other'), bucket, [fresh], 'node-e:11011');
    env.advance(commitDelayMs);
    await other;
    expect(sqlite.hintsFor('node-e:11011', Buffer.alloc(0), 10).map((hint) => hint.record?.versions)).toEqual([[fresh]]);
  });

  // The same on the map-backed store double: a hinted store of held versions writes, and hints.
  test('a hinted store of held versions writes on any store', async () => {
    const held = versionWith('held', [{ node: 'node-b', counter: 1, timestampMs: 1 }], 1);
    await replica.store(key, bucket, [held]);
    const recordBefore = store.read(key);
    await replica.store(key, bucket, [held]);
    expect(store.read(key)).toBe(recordBefore);
    await replica.store(key, bucket, [held], 'node-c');
    expect(store.read(key)).not.toBe(recordBefore);
    expect([...(store.hints.get('node-c') ?? [])]).toEqual([key.toString('hex')]);
  });
});
