/**
 * Three coordinators over the simulated network, driven through their dispatchers as memcache
 * clients would be: quorum reads and writes through any node, crashes, a partition with siblings
 * on both sides reconciled by gets + cas, and forwarding from a node outside the preference
 * list. Every scenario runs over many seeds and ends with the history checker.
 */
import { KaiError } from '../../src/errors';
import type { Reply } from '../../src/protocol/command';
import { bucketOfKey, preferenceList } from '../../src/ring';
import { assertNoLostWrites, History, simSeeds, withSeed, type FinalVersion } from './index';
import { KvCluster } from './kv-cluster';

const addresses = ['n1:7001', 'n2:7002', 'n3:7003'];
const [n1, n2, n3] = addresses;
const seedCount = 20;
const delayingNetwork = { delayMsMin: 1, delayMsMax: 20, lossProbability: 0 };

function storedOrThrow(reply: Reply): void {
  if (reply.kind !== 'stored' || reply.outcome !== 'STORED') throw new Error(`not stored: ${JSON.stringify(reply)}`);
}

function finalOf(cluster: KvCluster): (key: string) => FinalVersion[] {
  return (key) =>
    cluster.finalVersions(key).map((version) => ({ value: version.tombstone ? null : version.value.toString() }));
}

/** Records a set through `via` in the history; resolves to whether it was acknowledged. */
async function recordedSet(cluster: KvCluster, history: History, via: string, key: string): Promise<string | undefined> {
  const value = history.uniqueValue(via);
  const stored = await history.record(via, 'write', key, value, async () => {
    storedOrThrow(await cluster.set(via, key, value));
    return true;
  });
  return stored ? value : undefined;
}

function pick<T>(cluster: KvCluster, items: readonly T[]): T {
  return items[cluster.world.scheduler.random.int(0, items.length - 1)];
}

/** The KaiError a rejected promise carries, or fails. */
async function kaiErrorOf(promise: Promise<unknown>): Promise<KaiError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof KaiError)) throw new Error(`expected a KaiError, got ${String(error)}`);
  return error;
}

describe('coordinators over the simulated network, N=3 R=2 W=2', () => {
  // A value written through any node is read back through any other, siblings aside.
  test.each(simSeeds(seedCount))('writes through any node read back through any other, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new KvCluster({ seed, addresses, quorum: { n: 3, r: 2, w: 2 }, network: delayingNetwork });
      const history = new History(() => cluster.world.scheduler.nowMs());
      const keys = ['a', 'b', 'c', 'd'];
      for (let round = 0; round < 24; round++) {
        const key = pick(cluster, keys);
        const writer = pick(cluster, addresses);
        const value = await recordedSet(cluster, history, writer, key);
        expect(value).toBeDefined();
        const reader = pick(cluster, addresses.filter((address) => address !== writer));
        const read = await cluster.gets(reader, key);
        // R + W > N: the read overlaps the write's quorum, so the acknowledged value is among what it sees.
        expect(read.values).toContain(value);
      }
      await cluster.settle();
      assertNoLostWrites(history, finalOf(cluster), cluster.world.scheduler.seedNote());
    }),
  );

  // With one node crashed, reads and writes through the others succeed, whether or not they know it is down.
  test.each(simSeeds(seedCount))('one node crashed: reads and writes succeed, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new KvCluster({ seed, addresses, quorum: { n: 3, r: 2, w: 2 }, network: delayingNetwork });
      const history = new History(() => cluster.world.scheduler.nowMs());
      await recordedSet(cluster, history, n3, 'k');
      cluster.crash(n3);
      for (const knowsItIsDown of [false, true]) {
        cluster.setViews(knowsItIsDown ? [n3] : []);
        for (let round = 0; round < 6; round++) {
          const via = pick(cluster, [n1, n2]);
          const key = pick(cluster, ['k', 'l']);
          expect(await recordedSet(cluster, history, via, key)).toBeDefined();
          const last = history.acknowledged('write').filter((write) => write.key === key).at(-1)!;
          const other = via === n1 ? n2 : n1;
          expect((await cluster.gets(other, key)).values).toContain(last.value);
        }
      }
      cluster.restart(n3);
      cluster.setViews([]);
      await cluster.settle();
      assertNoLostWrites(history, finalOf(cluster), cluster.world.scheduler.seedNote());
    }),
  );

  // With two nodes crashed, writes fail naming the unmet quorum and are never acknowledged; reads fail too.
  test.each(simSeeds(seedCount))('two nodes crashed: writes fail with KAI_QUORUM_UNMET, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new KvCluster({ seed, addresses, quorum: { n: 3, r: 2, w: 2 }, network: delayingNetwork });
      const history = new History(() => cluster.world.scheduler.nowMs());
      expect(await recordedSet(cluster, history, n1, 'k')).toBeDefined();
      cluster.crash(n2);
      cluster.crash(n3);
      // Not yet known down: the write is tried, and its context read times out waiting for a
      // second replica, before anything is written.
      const tried = history.invoke(n1, 'write', 'k', history.uniqueValue(n1));
      const stale = await kaiErrorOf(cluster.set(n1, 'k', tried.value!));
      history.fail(tried, stale);
      expect(stale.code).toBe('KAI_QUORUM_UNMET');
      expect(stale.textReply()).toMatch(/^SERVER_ERROR quorum not met \(context read 2 of 3: 1 answered within \d+ ms\)$/);
      // Known down: refused at once, before anything is written.
      cluster.setView(n1, [n2, n3]);
      const refusedWrite = history.invoke(n1, 'write', 'k', history.uniqueValue(n1));
      const refused = await kaiErrorOf(cluster.set(n1, 'k', refusedWrite.value!));
      history.fail(refusedWrite, refused);
      expect(refused.textReply()).toBe('SERVER_ERROR quorum not met (write 2 of 3: 1 up)');
      const value = refusedWrite.value!;
      expect((await kaiErrorOf(cluster.gets(n1, 'k'))).textReply()).toBe('SERVER_ERROR quorum not met (read 2 of 3: 1 up)');
      expect(cluster.stores.get(n1)!.read(Buffer.from('k'))!.versions.map((v) => v.value.toString())).not.toContain(value);
      cluster.restart(n2);
      cluster.restart(n3);
      cluster.setViews([]);
      await cluster.settle();
      assertNoLostWrites(history, finalOf(cluster), cluster.world.scheduler.seedNote());
    }),
  );
});

describe('concurrent clients under message loss and a crash', () => {
  // Three clients write and read at once through random nodes while messages are lost and a node crashes and restarts.
  test.each(simSeeds(seedCount))('no acknowledged write is lost, seed %i', (seed) =>
    withSeed(seed, async () => {
      const network = { delayMsMin: 1, delayMsMax: 30, lossProbability: 0.05 };
      const cluster = new KvCluster({ seed, addresses, quorum: { n: 3, r: 2, w: 2 }, network });
      const history = new History(() => cluster.world.scheduler.nowMs());
      const random = cluster.world.scheduler.random;
      const client = async (name: string): Promise<void> => {
        for (let step = 0; step < 12; step++) {
          const via = pick(cluster, addresses.filter((address) => cluster.world.isUp(address)));
          const key = pick(cluster, ['p', 'q', 'r']);
          if (random.int(0, 2) === 0) {
            await history.record(name, 'read', key, undefined, () => cluster.gets(via, key, false), (read) => ({ readValues: read.values }));
          } else {
            const value = history.uniqueValue(name);
            await history.record(name, 'write', key, value, async () => storedOrThrow(await cluster.set(via, key, value, 0n, false)));
          }
        }
      };
      const clients = Promise.all(['c1', 'c2', 'c3'].map((name) => client(name)));
      let done = false;
      void clients.finally(() => {
        done = true;
      });
      await cluster.world.runFor(random.int(20, 200));
      cluster.crash(n2);
      await cluster.world.runFor(random.int(100, 1_000));
      cluster.restart(n2);
      await cluster.world.runUntil(() => done, 120_000);
      await clients;
      await cluster.settle();
      expect(history.acknowledged('write').length).toBeGreaterThan(0);
      assertNoLostWrites(history, finalOf(cluster), cluster.world.scheduler.seedNote());
    }),
  );
});

describe('a partition with W=1 on both sides', () => {
  // Writes on both sides come back as siblings after healing, and gets + cas through another node merges them.
  test.each(simSeeds(seedCount))('siblings, then cas with the context merges them, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new KvCluster({ seed, addresses, quorum: { n: 3, r: 3, w: 1 }, network: delayingNetwork });
      const history = new History(() => cluster.world.scheduler.nowMs());
      const key = 'split';
      await recordedSet(cluster, history, n1, key);
      await cluster.settle();
      cluster.world.network.partition([n1], [n2, n3]);
      cluster.setView(n1, [n2, n3]);
      cluster.setView(n2, [n1]);
      cluster.setView(n3, [n1]);
      const left = await recordedSet(cluster, history, n1, key);
      const right = await recordedSet(cluster, history, n2, key);
      expect(left).toBeDefined();
      expect(right).toBeDefined();
      await cluster.settle();
      cluster.world.network.heal();
      cluster.setViews([]);
      const reader = pick(cluster, addresses);
      const read = await cluster.gets(reader, key);
      expect(read.values).toEqual([left, right].sort());
      const merged = history.uniqueValue('merger');
      const writer = pick(cluster, addresses.filter((address) => address !== reader));
      await history.record('merger', 'write', key, merged, async () => storedOrThrow(await cluster.set(writer, key, merged, read.cas)));
      await cluster.settle();
      expect((await cluster.gets(pick(cluster, addresses), key)).values).toEqual([merged]);
      for (const address of addresses) {
        const held = cluster.stores.get(address)!.read(Buffer.from(key))!.versions;
        expect(held.map((version) => version.value.toString())).toEqual([merged]);
      }
      // A cas naming the old context is refused now that the key has moved on.
      const stale = await cluster.set(reader, key, 'late', read.cas);
      expect(stale).toMatchObject({ kind: 'stored', outcome: 'EXISTS' });
      assertNoLostWrites(history, finalOf(cluster), cluster.world.scheduler.seedNote());
    }),
  );
});

describe('a node outside the preference list', () => {
  // N=2 of 3: a write through the third node is forwarded, so clock entries name only the key's replicas.
  test.each(simSeeds(seedCount))('forwards writes to the first up node of the list, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new KvCluster({ seed, addresses, quorum: { n: 2, r: 2, w: 2 }, network: delayingNetwork });
      const history = new History(() => cluster.world.scheduler.nowMs());
      const keys = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5'];
      for (const key of keys) {
        for (const via of addresses) expect(await recordedSet(cluster, history, via, key)).toBeDefined();
        const list = preferenceList(cluster.ring, bucketOfKey(Buffer.from(key), cluster.ring.config.buckets), 2);
        for (const version of cluster.finalVersions(key)) {
          for (const entry of version.clock) expect(list).toContain(entry.node.split('~')[0]);
        }
        const outsider = addresses.find((address) => !list.includes(address))!;
        const last = history.acknowledged('write').at(-1)!;
        expect((await cluster.gets(outsider, key)).values).toContain(last.value);
      }
      const forwarded = addresses.reduce((sum, address) => sum + cluster.node(address).coordinator.counters.writesForwarded, 0);
      expect(forwarded).toBe(keys.length);
      await cluster.settle();
      assertNoLostWrites(history, finalOf(cluster), cluster.world.scheduler.seedNote());
    }),
  );
});

describe('flush_all in a cluster', () => {
  // A flush_all through one node empties every node; a delayed one hides older writes on every node once due.
  test.each(simSeeds(5))('reaches every node, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new KvCluster({ seed, addresses, quorum: { n: 3, r: 2, w: 2 }, network: delayingNetwork });
      storedOrThrow(await cluster.set(n1, 'x', 'one'));
      await cluster.settle();
      expect(await cluster.execute(n2, { op: 'flush_all', delaySeconds: 0, noreply: false })).toEqual({ kind: 'ok' });
      for (const address of addresses) expect(cluster.stores.get(address)!.records.size).toBe(0);
      storedOrThrow(await cluster.set(n3, 'y', 'two'));
      expect(await cluster.execute(n1, { op: 'flush_all', delaySeconds: 2, noreply: false })).toEqual({ kind: 'ok' });
      expect((await cluster.gets(n2, 'y')).values).toEqual(['two']);
      await cluster.world.runFor(2_500);
      for (const via of addresses) expect((await cluster.gets(via, 'y')).values).toEqual([]);
    }),
  );
});
