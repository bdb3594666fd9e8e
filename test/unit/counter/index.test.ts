// The PN-counter behind incr and decr: its merge is a CRDT's, and replicas converge on the sum.
import { arithMutation, deleteMutation, storeMutation, touchMutation } from '../../../src/coordinator/mutations';
import { LocalReplica } from '../../../src/coordinator/replica';
import { resolveVersions } from '../../../src/coordinator/siblings';
import {
  arithmeticOf,
  counterActorsMax,
  counterFrom,
  counterSetTo,
  counterSum,
  counterValue,
  mergeCounters,
  type Counter,
} from '../../../src/counter';
import { counterFromTuple, counterToTuple } from '../../../src/counter/codec';
import { versionFromWire, versionToWire } from '../../../src/coordinator/wire';
import { decodeVersions, encodeVersions } from '../../../src/storage/record-codec';
import type { Version } from '../../../src/storage/record';
import { uint64Max } from '../../../src/protocol/numbers';
import { ManualEnv } from '../../support/manual-env';
import { MemoryStore } from '../../support/memory-store';
import { checkProperty, ensure, Random } from '../../support/property';

const actors = ['a', 'b', 'c', 'd'];

/** A counter of one origin that random actors changed a random number of times. */
function randomCounter(random: Random): Counter {
  let counter = counterFrom(1000n, 5);
  for (let step = random.int(0, 8); step > 0; step--) {
    const actor = random.pick(actors);
    counter = counterSetTo(counter, actor, counterSum(counter) + BigInt(random.int(-20, 20)), random.int(0, 100));
  }
  return counter;
}

const text = (counter: Counter): string => JSON.stringify(counterToTuple(counter));

describe('mergeCounters', () => {
  // The merge of a state-based CRDT: commutative, associative and idempotent.
  test('merge is commutative, associative and idempotent', () => {
    checkProperty(300, (random) => {
      const [x, y, z] = [randomCounter(random), randomCounter(random), randomCounter(random)];
      ensure(text(mergeCounters(x, y)) === text(mergeCounters(y, x)), 'commutative');
      ensure(text(mergeCounters(mergeCounters(x, y), z)) === text(mergeCounters(x, mergeCounters(y, z))), 'associative');
      ensure(text(mergeCounters(x, x)) === text(x), 'idempotent');
      ensure(text(mergeCounters(mergeCounters(x, y), y)) === text(mergeCounters(x, y)), 'absorbs what it has seen');
    });
  });

  // Operations of different actors on copies of one counter all count once merged, in any order.
  test('the merged value is the base plus every operation applied', () => {
    checkProperty(300, (random) => {
      const origin = counterFrom(1_000_000n, 7);
      const copies = new Map(actors.map((actor) => [actor, origin]));
      let expected = 1_000_000n;
      for (let step = random.int(1, 40); step > 0; step--) {
        const actor = random.pick(actors);
        const delta = BigInt(random.int(1, 50));
        const incr = random.chance(0.6);
        const copy = copies.get(actor)!;
        copies.set(actor, counterSetTo(copy, actor, arithmeticOf(counterValue(copy), incr, delta), step));
        expected += incr ? delta : -delta;
        // Now and then an actor learns another's copy, as replicas exchange versions.
        if (random.chance(0.3)) {
          const other = random.pick(actors);
          copies.set(actor, mergeCounters(copies.get(actor)!, copies.get(other)!));
        }
      }
      const merged = random.shuffle([...copies.values()]).reduce(mergeCounters);
      ensure(counterValue(merged) === expected, `merged ${counterValue(merged)}, applied ${expected}`);
    });
  });
});

describe('counter values', () => {
  // An operation records what it changed, so that one node's answers are memcached's exactly.
  test('decr floors at 0 and incr wraps, on one node as in memcached', () => {
    let counter = counterFrom(5n, 1);
    counter = counterSetTo(counter, 'a', arithmeticOf(counterValue(counter), false, 10n), 2);
    expect(counterValue(counter)).toBe(0n);
    counter = counterSetTo(counter, 'a', arithmeticOf(counterValue(counter), true, 3n), 3);
    expect(counterValue(counter)).toBe(3n);
    counter = counterSetTo(counter, 'a', arithmeticOf(counterValue(counter), true, uint64Max), 4);
    expect(counterValue(counter)).toBe(2n);
    // 3 + (2^64 - 1) wraps to 2: one taken away.
    expect(counter.actors).toEqual([{ actor: 'a', added: 3n, taken: 6n, atMs: 4 }]);
  });

  // Concurrent decrements can take more than the counter held: it reads 0, and the next
  // operation starts from 0, as the client saw it.
  test('concurrent decrements past 0 read 0, and the next operation starts from 0', () => {
    const origin = counterFrom(5n, 1);
    const left = counterSetTo(origin, 'a', 0n, 2);
    const right = counterSetTo(origin, 'b', 0n, 2);
    const merged = mergeCounters(left, right);
    expect(counterSum(merged)).toBe(-5n);
    expect(counterValue(merged)).toBe(0n);
    expect(counterValue(counterSetTo(merged, 'c', arithmeticOf(counterValue(merged), true, 3n), 3))).toBe(3n);
  });

  // Concurrent increments past 2^64 - 1 wrap, as one node's would.
  test('concurrent increments past 2^64 wrap', () => {
    const origin = counterFrom(uint64Max - 1n, 1);
    const merged = mergeCounters(counterSetTo(origin, 'a', uint64Max, 2), counterSetTo(origin, 'b', uint64Max, 2));
    expect(counterValue(merged)).toBe(0n);
  });

  // The actors are bounded: past the bound the counter starts again from its value.
  test('actors are bounded', () => {
    let counter = counterFrom(0n, 1);
    for (let index = 0; index < counterActorsMax; index++) counter = counterSetTo(counter, `actor-${String(index).padStart(3, '0')}`, BigInt(index + 1), 2);
    expect(counter.actors).toHaveLength(counterActorsMax);
    const rebased = counterSetTo(counter, 'one-more', 100n, 3);
    expect(rebased).toEqual({ base: 100n, setAtMs: 3, actors: [] });
    expect(counterValue(rebased)).toBe(100n);
  });
});

describe('counter codec', () => {
  // A counter survives the trip through its tuple, on disk and on the wire.
  test('round trips through storage and the wire', () => {
    const counter = counterSetTo(counterFrom(uint64Max, 9), 'node/x', 2n ** 70n, 10);
    const version: Version = { clock: [{ node: 'n', counter: 1, timestampMs: 10 }], value: Buffer.from('5'), flags: 1, expiresAtMs: 0, tombstone: false, writtenAtMs: 10, counter };
    expect(decodeVersions(encodeVersions([version]))).toEqual([version]);
    expect(versionFromWire(versionToWire(version), 1024)).toEqual(version);
  });

  // What a peer sends is input: malformed counters are named, never used.
  test('malformed counters are refused', () => {
    expect(counterFromTuple(['1', 1, [['a', '1', '0', 1]]])).toEqual({ base: 1n, setAtMs: 1, actors: [{ actor: 'a', added: 1n, taken: 0n, atMs: 1 }] });
    expect(counterFromTuple(['18446744073709551616', 1, []])).toMatch(/base/);
    expect(counterFromTuple(['-1', 1, []])).toMatch(/base/);
    expect(counterFromTuple(['1', -1, []])).toMatch(/set time/);
    expect(counterFromTuple(['1', 1, [['a', '1'.repeat(41), '0', 1]]])).toMatch(/totals/);
    expect(counterFromTuple(['1', 1, [['b', '1', '0', 1], ['a', '1', '0', 1]]])).toMatch(/sorted/);
    expect(counterFromTuple(['1', 1, Array.from({ length: counterActorsMax + 1 }, (_, i) => [`a${i}`, '1', '0', 1])])).toMatch(/actors/);
    const wire = { ...versionToWire({ clock: [{ node: 'n', counter: 1, timestampMs: 1 }], value: Buffer.alloc(0), flags: 0, expiresAtMs: 0, tombstone: true, writtenAtMs: 1 }), counter: counterToTuple(counterFrom(1n, 1)) };
    expect(() => versionFromWire(wire, 1024)).toThrow(/tombstone carries a counter/);
  });
});

const key = Buffer.from('ctr');
const bucket = 0;

/** Replicas on one Env, each crediting its operations to its own actor. */
function replicas(count: number): { env: ManualEnv; nodes: LocalReplica[] } {
  const env = new ManualEnv();
  const nodes = Array.from({ length: count }, (_, index) => new LocalReplica(`n${index}`, new MemoryStore(), env, 1024));
  return { env, nodes };
}

async function setOn(replica: LocalReplica, value: string): Promise<void> {
  await replica.apply(key, bucket, storeMutation({ mode: 'set', value: Buffer.from(value), flags: 0, expiresAtMs: 0, casUnique: 0n }));
}

async function incrOn(replica: LocalReplica, delta: bigint, incr = true): Promise<bigint | undefined> {
  const applied = await replica.apply(key, bucket, arithMutation({ incr, delta }));
  return applied.result?.outcome === 'OK' ? applied.result.value : undefined;
}

/** Sends what `from` holds to `to`, as read repair, handoff and anti-entropy do. */
async function sync(from: LocalReplica, to: LocalReplica): Promise<void> {
  const held = from.fetchNow(key);
  if (held.length > 0) await to.store(key, bucket, held);
}

const textOf = (replica: LocalReplica): string[] => replica.fetchNow(key).map((version) => version.value.toString());

describe('counters across replicas', () => {
  // The first scenario: a replica that missed 95 increments learns them before it adds.
  test('increments through replicas that exchange versions in any order sum exactly, without siblings', async () => {
    for (let seed = 1; seed <= 100; seed++) {
      const { env, nodes } = replicas(3);
      await setOn(nodes[0], '1000');
      for (const node of nodes.slice(1)) await sync(nodes[0], node);
      let expected = 1000n;
      const random = new Random(seed);
      for (let step = 0; step < 30; step++) {
        env.advance(random.int(0, 3));
        const node = random.pick(nodes);
        const delta = BigInt(random.int(1, 9));
        const incr = random.chance(0.7);
        expect(await incrOn(node, delta, incr)).toBeDefined();
        expected += incr ? delta : -delta;
        if (random.chance(0.4)) await sync(random.pick(nodes), random.pick(nodes));
      }
      for (let round = 0; round < 2; round++) for (const from of nodes) for (const to of nodes) await sync(from, to);
      const held = nodes.map((node) => node.fetchNow(key));
      expect(held.every((versions) => versions.length === 1)).toBe(true);
      expect(held.map((versions) => versions[0].value.toString().trim())).toEqual(nodes.map(() => expected.toString()));
      // Every replica holds the same bytes: the same record, the same hash-tree entry.
      expect(new Set(held.map((versions) => encodeVersions(versions).toString('hex'))).size).toBe(1);
    }
  });

  // A set concurrent with increments: the later set wins, whichever side it was on.
  test('the later set wins over a concurrent counter, and its own increments count', async () => {
    const { env, nodes } = replicas(2);
    await setOn(nodes[0], '10');
    await sync(nodes[0], nodes[1]);
    env.advance(5);
    await incrOn(nodes[0], 5n);
    env.advance(5);
    await setOn(nodes[1], '100');
    env.advance(5);
    await incrOn(nodes[1], 1n);
    await sync(nodes[0], nodes[1]);
    await sync(nodes[1], nodes[0]);
    expect(textOf(nodes[0])).toEqual(['101']);
    expect(textOf(nodes[1])).toEqual(['101']);
    // Increments made later on the losing origin still lose: they follow the earlier set.
    const { env: env2, nodes: other } = replicas(2);
    await setOn(other[0], '10');
    await sync(other[0], other[1]);
    env2.advance(5);
    await setOn(other[1], '100');
    env2.advance(5);
    await incrOn(other[0], 5n);
    await sync(other[0], other[1]);
    await sync(other[1], other[0]);
    expect(textOf(other[0])).toEqual(['100']);
    expect(textOf(other[1])).toEqual(['100']);
  });

  // A set after the counter (one that saw it) replaces it; append makes a plain value.
  test('set and append on a counter make plain values', async () => {
    const { nodes } = replicas(1);
    await setOn(nodes[0], '7');
    await incrOn(nodes[0], 1n);
    expect(nodes[0].fetchNow(key)[0].counter).toBeDefined();
    await nodes[0].apply(key, bucket, storeMutation({ mode: 'append', value: Buffer.from('0'), flags: 0, expiresAtMs: 0, casUnique: 0n }));
    expect(nodes[0].fetchNow(key).map((version) => [version.value.toString(), version.counter])).toEqual([['80', undefined]]);
    expect(await incrOn(nodes[0], 1n)).toBe(81n);
    await setOn(nodes[0], 'text');
    expect(nodes[0].fetchNow(key)[0].counter).toBeUndefined();
    const refused = await nodes[0].apply(key, bucket, arithMutation({ incr: true, delta: 1n }));
    expect(refused.error?.code).toBe('KAI_NON_NUMERIC_VALUE');
  });

  // touch keeps a counter a counter; merged with a concurrent increment, the expiry of the
  // version written last stands, and both increments count.
  test('touch keeps the counter, and a concurrent touch and increment keep both', async () => {
    const { env, nodes } = replicas(2);
    await setOn(nodes[0], '1');
    await incrOn(nodes[0], 1n);
    await sync(nodes[0], nodes[1]);
    env.advance(5);
    await incrOn(nodes[1], 1n);
    env.advance(5);
    await nodes[0].apply(key, bucket, touchMutation(env.nowMs() + 60_000));
    await sync(nodes[0], nodes[1]);
    await sync(nodes[1], nodes[0]);
    const [merged] = nodes[0].fetchNow(key);
    expect(nodes[0].fetchNow(key)).toHaveLength(1);
    expect(merged.value.toString()).toBe('3');
    expect(merged.expiresAtMs).toBe(env.nowMs() + 60_000);
  });

  // A delete concurrent with increments leaves the increments readable beside the tombstone, as
  // any concurrent write does; a delete that saw them removes the counter.
  test('deletes and counters', async () => {
    const { nodes } = replicas(2);
    await setOn(nodes[0], '1');
    await sync(nodes[0], nodes[1]);
    await nodes[0].apply(key, bucket, arithMutation({ incr: true, delta: 1n }));
    await nodes[1].apply(key, bucket, deleteMutation(0n));
    await sync(nodes[0], nodes[1]);
    const held = nodes[1].fetchNow(key);
    expect(held.map((version) => (version.tombstone ? '<tombstone>' : version.value.toString())).sort()).toEqual(['2', '<tombstone>']);
    await nodes[1].apply(key, bucket, deleteMutation(0n));
    expect(nodes[1].fetchNow(key).every((version) => version.tombstone)).toBe(true);
  });

  // Under lww, counters of one origin still merge rather than one winning.
  test('lww merges counters too', () => {
    const base: Omit<Version, 'clock' | 'counter' | 'writtenAtMs'> = { value: Buffer.from('0'), flags: 0, expiresAtMs: 0, tombstone: false };
    const origin = counterFrom(10n, 1);
    const left: Version = { ...base, clock: [{ node: 'a', counter: 1, timestampMs: 2 }], writtenAtMs: 2, counter: counterSetTo(origin, 'a', 11n, 2) };
    const right: Version = { ...base, clock: [{ node: 'b', counter: 1, timestampMs: 3 }], writtenAtMs: 3, counter: counterSetTo(origin, 'b', 12n, 3) };
    const { versions } = resolveVersions([left, right], { conflictResolution: 'lww', siblingsMax: 25 });
    expect(versions.map((version) => version.value.toString())).toEqual(['13']);
  });
});
