import { Coordinator } from '../../../src/coordinator';
import { casOfVersions, type StoreRequest } from '../../../src/coordinator/mutations';
import { deleteSpec, storeSpec, type SpecOf } from '../../../src/coordinator/specs';
import { LocalReplica } from '../../../src/coordinator/replica';
import { KaiError } from '../../../src/errors';
import { bucketOfKey, buildRing, preferenceList, type Ring } from '../../../src/ring';
import type { StoredRecord } from '../../../src/storage';
import type { Version } from '../../../src/storage/record';
import { ManualEnv } from '../../support/manual-env';
import { MemoryStore } from '../../support/memory-store';

const valueBytesMax = 1024;
const requestTimeoutMs = 500;
const key = Buffer.from('the-key');

type StoreMode = 'ok' | 'fail' | 'hang';

/** A memory store whose writes can be made to fail or to never finish. */
class FaultyStore extends MemoryStore {
  mode: StoreMode = 'ok';

  override write(record: StoredRecord): Promise<void> {
    if (this.mode === 'fail') return Promise.reject(new KaiError('KAI_STORAGE_FAILURE', 'disk on fire'));
    if (this.mode === 'hang') return new Promise<void>(() => undefined);
    return super.write(record);
  }
}

interface Cluster {
  readonly env: ManualEnv;
  readonly ring: Ring;
  readonly coordinator: Coordinator;
  readonly replicas: Map<string, LocalReplica>;
  readonly stores: Map<string, FaultyStore>;
  /** The key's replicas in preference order. */
  readonly order: readonly string[];
}

function cluster(memberIds: readonly string[], quorum: { n: number; r: number; w: number }): Cluster {
  const env = new ManualEnv();
  const ring = buildRing(
    memberIds.map((id) => ({ id, weight: 1 })),
    { buckets: 64 },
  );
  const stores = new Map(memberIds.map((id) => [id, new FaultyStore()]));
  const replicas = new Map(memberIds.map((id) => [id, new LocalReplica(id, stores.get(id)!, env, valueBytesMax)]));
  const order = preferenceList(ring, bucketOfKey(key, ring.config.buckets), quorum.n);
  // The key's first replica coordinates, so tests can name it.
  const coordinator = new Coordinator({
    nodeId: order[0],
    env,
    ring: () => ring,
    replicaOf: (id) => replicas.get(id)!,
    quorum,
    requestTimeoutMs,
  });
  return { env, ring, coordinator, replicas, stores, order };
}

function set(value: string): SpecOf<'store'> {
  const request: StoreRequest = { mode: 'set', value: Buffer.from(value), flags: 0, expiresAtMs: 0, casUnique: 0n };
  return storeSpec(request);
}

function addRequest(value: string): StoreRequest {
  return { mode: 'add', value: Buffer.from(value), flags: 0, expiresAtMs: 0, casUnique: 0n };
}

function versionWith(value: string, node: string, counter: number, writtenAtMs: number): Version {
  return {
    clock: [{ node, counter, timestampMs: writtenAtMs }],
    value: Buffer.from(value),
    flags: 0,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs,
  };
}

/** Lets every settled promise run its callbacks. */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Resolves to the result or the error, so a pending promise can be inspected without rejecting. */
function outcomeOf<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: unknown } {
  const outcome: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  promise.then(
    (value) => Object.assign(outcome, { settled: true, value }),
    (error: unknown) => Object.assign(outcome, { settled: true, error }),
  );
  return outcome;
}

function expectQuorumUnmet(error: unknown): void {
  expect(error).toBeInstanceOf(KaiError);
  expect((error as KaiError).code).toBe('KAI_QUORUM_UNMET');
}

const values = (versions: readonly Version[]): string[] => versions.map((v) => v.value.toString()).sort();

describe('one replica', () => {
  // A one-node ring serves reads and writes from its only replica, with no timer involved.
  test('reads and mutates', async () => {
    const { coordinator, stores, env } = cluster(['solo'], { n: 3, r: 2, w: 2 });
    expect(await coordinator.read(key)).toEqual([]);
    const applied = await coordinator.mutate(key, set('v1'));
    expect(applied.result?.result).toBe('STORED');
    expect(values(await coordinator.read(key))).toEqual(['v1']);
    expect(values(stores.get('solo')!.read(key)!.versions)).toEqual(['v1']);
    expect(env.pendingTimers).toBe(0);
    const notStored = await coordinator.mutate(key, storeSpec(addRequest('v2')));
    expect(notStored.result?.result).toBe('NOT_STORED');
    expect(notStored.written).toBeUndefined();
  });
});

describe('three replicas, n=3 w=2', () => {
  const members = ['node-a', 'node-b', 'node-c'];

  // The ring gives every key all three members, and a write lands on all three stores.
  test('a write reaches all replicas', async () => {
    const { coordinator, stores, order, env } = cluster(members, { n: 3, r: 2, w: 2 });
    expect([...order].sort()).toEqual(members);
    const applied = await coordinator.mutate(key, set('v1'));
    expect(applied.result?.result).toBe('STORED');
    expect(applied.written!.clock.map((entry) => entry.node.split('~')[0])).toEqual([order[0]]);
    await flush();
    for (const id of members) expect(stores.get(id)!.read(key)!.versions).toEqual([applied.written]);
    expect(env.pendingTimers).toBe(0);
  });

  // One replica whose store rejects still leaves the first replica plus one: W=2 is met.
  test('one failing replica does not fail the write', async () => {
    const { coordinator, stores, order } = cluster(members, { n: 3, r: 2, w: 2 });
    stores.get(order[2])!.mode = 'fail';
    const applied = await coordinator.mutate(key, set('v1'));
    expect(applied.result?.result).toBe('STORED');
    expect(stores.get(order[1])!.read(key)!.versions).toEqual([applied.written]);
    expect(stores.get(order[2])!.read(key)).toBeUndefined();
  });

  // With both other replicas failing, only one copy exists: the write is reported as unmet.
  test('two failing replicas fail the write with KAI_QUORUM_UNMET', async () => {
    const { coordinator, stores, order } = cluster(members, { n: 3, r: 2, w: 2 });
    stores.get(order[1])!.mode = 'fail';
    stores.get(order[2])!.mode = 'fail';
    const error = await coordinator.mutate(key, set('v1')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expectQuorumUnmet(error);
  });

  // The first replica decides the write; when its own store fails, that error is the answer.
  test('a failing first replica fails the write with its error', async () => {
    const { coordinator, stores, order } = cluster(members, { n: 3, r: 2, w: 2 });
    stores.get(order[0])!.mode = 'fail';
    await expect(coordinator.mutate(key, set('v1'))).rejects.toMatchObject({ code: 'KAI_STORAGE_FAILURE' });
  });

  // A replica that never answers is given up on when the Env's timer fires, not before.
  test('a silent replica times out through the Env timer', async () => {
    const { coordinator, stores, order, env } = cluster(members, { n: 3, r: 2, w: 2 });
    stores.get(order[1])!.mode = 'fail';
    stores.get(order[2])!.mode = 'hang';
    const outcome = outcomeOf(coordinator.mutate(key, set('v1')));
    await flush();
    expect(outcome.settled).toBe(false);
    expect(env.pendingTimers).toBe(1);
    env.advance(requestTimeoutMs - 1);
    await flush();
    expect(outcome.settled).toBe(false);
    env.advance(1);
    await flush();
    expect(outcome.settled).toBe(true);
    expectQuorumUnmet(outcome.error);
    expect(env.pendingTimers).toBe(0);
  });

  // With W=3 a single silent replica is enough to time the write out.
  test('w=3 times out on one silent replica', async () => {
    const { coordinator, stores, order, env } = cluster(members, { n: 3, r: 2, w: 3 });
    stores.get(order[2])!.mode = 'hang';
    const outcome = outcomeOf(coordinator.mutate(key, set('v1')));
    await flush();
    expect(outcome.settled).toBe(false);
    env.advance(requestTimeoutMs);
    await flush();
    expectQuorumUnmet(outcome.error);
  });

  // A silent replica beyond the W needed does not delay the answer.
  test('w=2 answers without waiting for a silent third replica', async () => {
    const { coordinator, stores, order, env } = cluster(members, { n: 3, r: 2, w: 2 });
    stores.get(order[2])!.mode = 'hang';
    const applied = await coordinator.mutate(key, set('v1'));
    expect(applied.result?.result).toBe('STORED');
    expect(env.pendingTimers).toBe(0);
  });

  // Concurrent versions held by different replicas come back together as siblings, and the read
  // repairs every replica that lacked some, so a later set supersedes all of them.
  test('reads reconcile siblings from different replicas and repair the replicas that lack some', async () => {
    const { coordinator, replicas, order } = cluster(members, { n: 3, r: 3, w: 3 });
    const base = versionWith('base', 'node-x', 1, 10);
    const left = versionWith('left', order[0], 1, 20);
    const right = versionWith('right', order[2], 1, 30);
    await replicas.get(order[0])!.store(key, 0, [base, left]);
    await replicas.get(order[1])!.store(key, 0, [base]);
    await replicas.get(order[2])!.store(key, 0, [right]);
    expect(values(await coordinator.read(key))).toEqual(['base', 'left', 'right']);
    await flush();
    for (const node of order) expect(values(replicas.get(node)!.fetchNow(key))).toEqual(['base', 'left', 'right']);
    expect(coordinator.readRepairs.counters.readRepairs).toBe(3);
    const applied = await coordinator.mutate(key, set('resolved'));
    await flush();
    expect(values(await coordinator.read(key))).toEqual(['resolved']);
    for (const node of order) expect(replicas.get(node)!.fetchNow(key)).toEqual([applied.written]);
  });

  // A version only another replica holds (the coordinating one missed its write) is learned by
  // the write's context read, so the set supersedes it instead of leaving it as a sibling. With
  // W=1 the context read asks all three (N - W + 1), so it cannot miss the replica that holds it.
  test('a set supersedes a version only another replica held, learned by its context read', async () => {
    const { coordinator, replicas, order } = cluster(members, { n: 3, r: 2, w: 1 });
    const right = versionWith('right', order[2], 1, 30);
    await replicas.get(order[2])!.store(key, 0, [right]);
    const applied = await coordinator.mutate(key, set('resolved'));
    await flush();
    expect(applied.written?.clock.map((entry) => entry.node)).toContain(order[2]);
    expect(replicas.get(order[0])!.fetchNow(key)).toEqual([applied.written]);
    expect(coordinator.counters.contextReads).toBe(1);
  });

  // A delete through a replica that never received the key's write still finds it by its context
  // read: it answers DELETED, and the value is gone from every replica.
  test('a delete through a replica that missed the write deletes it everywhere', async () => {
    const { coordinator, replicas, order } = cluster(members, { n: 3, r: 2, w: 2 });
    const missed = versionWith('missed', order[1], 1, 30);
    await replicas.get(order[1])!.store(key, 0, [missed]);
    await replicas.get(order[2])!.store(key, 0, [missed]);
    const deleted = await coordinator.mutate(key, deleteSpec(0n));
    expect(deleted.result?.result).toBe('DELETED');
    await flush();
    expect(await coordinator.read(key)).toEqual([expect.objectContaining({ tombstone: true })]);
  });

  // A dominated version on one replica is dropped in favour of its descendant on another. R=3, so
  // the read hears the replica holding the descendant, whose values come after its digest.
  test('reads drop versions another replica has superseded', async () => {
    const { coordinator, replicas, order } = cluster(members, { n: 3, r: 3, w: 2 });
    const old = versionWith('old', 'node-x', 1, 10);
    const newer = versionWith('newer', 'node-x', 2, 20);
    await replicas.get(order[0])!.store(key, 0, [old]);
    await replicas.get(order[1])!.store(key, 0, [newer]);
    expect(values(await coordinator.read(key))).toEqual(['newer']);
    // order[0] (this node) sent the values; order[1]'s digest named a version they lacked.
    expect(coordinator.counters.digestMismatches).toBe(1);
  });

  // Digest reads: replicas other than the one sending values answer with clocks and write times
  // only; when they hold the same versions, no value is fetched from them, and the read repairs a
  // replica that lacked them as it would on values.
  test('a digest read matches versions without their values and still repairs', async () => {
    const { coordinator, replicas, order } = cluster(members, { n: 3, r: 2, w: 2 });
    const held = versionWith('held', 'node-x', 1, 10);
    await replicas.get(order[0])!.store(key, 0, [held]);
    await replicas.get(order[1])!.store(key, 0, [held]);
    const fetched: string[] = [];
    for (const id of order) {
      const replica = replicas.get(id)!;
      const fetch = replica.fetch.bind(replica);
      replica.fetch = (asked) => {
        fetched.push(id);
        return fetch(asked);
      };
    }
    expect(values(await coordinator.read(key))).toEqual(['held']);
    await flush();
    expect(fetched).toEqual([order[0]]);
    expect(coordinator.counters.digestMismatches).toBe(0);
    // order[2] held nothing: the read's final action sent it the version.
    expect(values(replicas.get(order[2])!.fetchNow(key))).toEqual(['held']);
  });

  // R=3 with a replica that cannot answer: the read fails as unmet after the timeout.
  test('a read times out when R replicas do not answer', async () => {
    const { coordinator, replicas, order, env } = cluster(members, { n: 3, r: 3, w: 2 });
    const silent = replicas.get(order[1])!;
    silent.fetch = () => new Promise<readonly Version[]>(() => undefined);
    silent.fetchDigests = () => new Promise(() => undefined);
    const outcome = outcomeOf(Promise.resolve(coordinator.read(key)));
    await flush();
    expect(outcome.settled).toBe(false);
    env.advance(requestTimeoutMs);
    await flush();
    expectQuorumUnmet(outcome.error);
  });

  // R=2 with one replica failing still answers from the other two.
  test('a read succeeds with one failing replica', async () => {
    const { coordinator, replicas, order } = cluster(members, { n: 3, r: 2, w: 2 });
    await coordinator.mutate(key, set('v1'));
    replicas.get(order[0])!.fetch = () => Promise.reject(new Error('down'));
    expect(values(await coordinator.read(key))).toEqual(['v1']);
  });
});

describe('siblings and contexts', () => {
  const members = ['node-a', 'node-b', 'node-c'];

  // A cas naming the context read through R replicas supersedes siblings the coordinating replica never held.
  test('cas compares against the context a quorum read sees', async () => {
    const { coordinator, replicas, order } = cluster(members, { n: 3, r: 3, w: 2 });
    const left = versionWith('left', order[0], 1, 20);
    const right = versionWith('right', order[2], 1, 30);
    await replicas.get(order[0])!.store(key, 0, [left]);
    await replicas.get(order[1])!.store(key, 0, [right]);
    await replicas.get(order[2])!.store(key, 0, [right]);
    const read = await coordinator.read(key);
    expect(values(read)).toEqual(['left', 'right']);
    const cas = casOfVersions(read);
    const request: StoreRequest = { mode: 'cas', value: Buffer.from('merged'), flags: 0, expiresAtMs: 0, casUnique: cas };
    const applied = await coordinator.mutate(key, storeSpec(request));
    expect(applied.result?.result).toBe('STORED');
    await flush();
    expect(values(await coordinator.read(key))).toEqual(['merged']);
    expect(coordinator.counters.contextReads).toBe(1);
  });

  // A conditional write places the key again after its context read, which waited on peers: if
  // this node has left the key's replicas meanwhile, it refuses rather than write to a stale set.
  test('a cas whose replicas changed during its context read is refused', async () => {
    const { env, replicas, order, ring } = cluster(members, { n: 2, r: 2, w: 2 });
    const outsider = members.find((id) => !order.includes(id))!;
    let down = new Set<string>();
    const coordinator = new Coordinator({
      nodeId: order[0],
      env,
      ring: () => ring,
      isUp: (id) => !down.has(id),
      replicaOf: (id) => replicas.get(id)!,
      quorum: { n: 2, r: 2, w: 2 },
      requestTimeoutMs,
    });
    await replicas.get(order[0])!.store(key, 0, [versionWith('v', order[0], 1, 20)]);
    await replicas.get(order[1])!.store(key, 0, [versionWith('v', order[0], 1, 20)]);
    const cas = casOfVersions(await coordinator.read(key));
    // The second replica's answer to the context read comes after this node is taken for down:
    // its next placement no longer includes itself as a holder alongside the others.
    const second = replicas.get(order[1])!;
    // It answers a digest (another replica sends the values).
    const fetchDigests = second.fetchDigests.bind(second);
    second.fetchDigests = async (fetched) => {
      const digests = await fetchDigests(fetched);
      down = new Set([order[1], outsider]);
      return digests;
    };
    const request: StoreRequest = { mode: 'cas', value: Buffer.from('new'), flags: 0, expiresAtMs: 0, casUnique: cas };
    const outcome = outcomeOf(coordinator.mutate(key, storeSpec(request)));
    await flush();
    expectQuorumUnmet(outcome.error);
    expect(values(replicas.get(order[0])!.fetchNow(key))).toEqual(['v']);
  });

  // Under lww a read answers only the latest of concurrent versions.
  test('lww reads answer one version', async () => {
    const { env, replicas, order, ring } = cluster(members, { n: 3, r: 3, w: 2 });
    const coordinator = new Coordinator({
      nodeId: order[0],
      env,
      ring: () => ring,
      replicaOf: (id) => replicas.get(id)!,
      quorum: { n: 3, r: 3, w: 2 },
      requestTimeoutMs,
      siblings: { conflictResolution: 'lww', siblingsMax: 25 },
    });
    await replicas.get(order[0])!.store(key, 0, [versionWith('older', order[0], 1, 20)]);
    await replicas.get(order[1])!.store(key, 0, [versionWith('newer', order[1], 1, 30)]);
    expect(values(await coordinator.read(key))).toEqual(['newer']);
    expect(new Map(coordinator.statistics()).get('conflict_resolution')).toBe('lww');
  });
});

describe('a forwarded write', () => {
  // A node asked to coordinate a key it does not replicate by its own view refuses, writes
  // nothing, and so never counts itself toward W (the forwarding node's view was different).
  test('is refused by a node that is not one of the key\'s replicas', async () => {
    const { ring, replicas, stores, env } = cluster(['node-a', 'node-b', 'node-c'], { n: 2, r: 1, w: 1 });
    const outsider = ['node-a', 'node-b', 'node-c'].find((id) => !preferenceList(ring, bucketOfKey(key, ring.config.buckets), 2).includes(id))!;
    const coordinator = new Coordinator({
      nodeId: outsider,
      env,
      ring: () => ring,
      replicaOf: (id) => replicas.get(id)!,
      quorum: { n: 2, r: 1, w: 1 },
      requestTimeoutMs,
    });
    const refusal = await coordinator.coordinate(key, set('v')).then(
      () => undefined,
      (error: unknown) => error,
    );
    expectQuorumUnmet(refusal);
    expect((refusal as KaiError).detail).toBe(`write 1 of 2: forwarded to ${outsider}, not a replica of the key in its view`);
    for (const store of stores.values()) expect(store.read(key)).toBeUndefined();
    expect(coordinator.counters.writesCoordinatedForPeers).toBe(0);
  });
});

describe('writes whose answer depends on the key being there', () => {
  // After a ring change only one of the key's replicas may hold it; a quorum of the others holds
  // nothing. delete and add must still see it: their context read waits for every replica.
  test('delete and add see the one replica that holds the key', async () => {
    const { coordinator, replicas, order } = cluster(['node-a', 'node-b', 'node-c'], { n: 3, r: 2, w: 2 });
    const holder = replicas.get(order[2])!;
    await holder.store(key, 0, [versionWith('only-here', 'node-old', 1, 1000)]);
    const added = await coordinator.mutate(key, storeSpec(addRequest('second')));
    expect(added.result?.result).toBe('NOT_STORED');
    const deleted = await coordinator.mutate(key, deleteSpec(0n));
    expect(deleted.result?.result).toBe('DELETED');
    for (const id of order) expect([id, replicas.get(id)!.fetchNow(key).every((version) => version.tombstone)]).toEqual([id, true]);
  });

  // A replica that never answers holds such a write up only until the request timeout; the
  // quorum of answers it has then decides.
  test('a silent replica delays the answer to the request timeout, not past it', async () => {
    const { coordinator, replicas, order, env } = cluster(['node-a', 'node-b', 'node-c'], { n: 3, r: 2, w: 2 });
    await coordinator.mutate(key, set('v1'));
    const silent = replicas.get(order[2])!;
    silent.fetch = () => new Promise(() => undefined);
    silent.fetchDigests = () => new Promise(() => undefined);
    const pending = outcomeOf(coordinator.mutate(key, deleteSpec(0n)));
    await flush();
    expect(pending.settled).toBe(false);
    env.advance(requestTimeoutMs);
    for (let turn = 0; turn < 10 && !pending.settled; turn++) await flush();
    expect(pending.value?.result?.result).toBe('DELETED');
  });
});
