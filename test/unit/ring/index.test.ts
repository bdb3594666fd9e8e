import { createHash } from 'node:crypto';
import {
  bucketOfKey,
  bucketPosition,
  bucketsMax,
  buildRing,
  ownership,
  preferenceList,
  ringFromOwners,
  successorsPerBucketMax,
  type Ring,
  type RingConfig,
  type RingMember,
} from '../../../src/ring';
import { claim, claimSpacingDefault } from '../../../src/ring/claim';
import { Random } from '../../support/property';

const config = { buckets: 1024 };

function membersNamed(...ids: string[]): RingMember[] {
  return ids.map((id) => ({ id, weight: 1 }));
}

const fiveMembers = membersNamed('node-a', 'node-b', 'node-c', 'node-d', 'node-e');

// The ring depends on the set of members only, not on the order they were listed in.
test('buildRing is deterministic whatever the member order', () => {
  const forward = buildRing(fiveMembers, config);
  const backward = buildRing([...fiveMembers].reverse(), config);
  const shuffled = buildRing([fiveMembers[2], fiveMembers[4], fiveMembers[0], fiveMembers[3], fiveMembers[1]], config);
  expect(backward.successors).toEqual(forward.successors);
  expect(shuffled.successors).toEqual(forward.successors);
  expect(forward.members.map((m) => m.id)).toEqual(['node-a', 'node-b', 'node-c', 'node-d', 'node-e']);
});

/**
 * A bucket's preference order computed by hand from the owner table: the distinct owners met
 * walking buckets b, b+1, ... cyclically; then the first member met of each zone, in the order
 * met, followed by the others in the order met.
 */
function walkedList(owners: readonly string[], zoneOf: (id: string) => string, bucket: number): string[] {
  const met: string[] = [];
  for (let step = 0; step < owners.length; step++) {
    const id = owners[(bucket + step) % owners.length];
    if (!met.includes(id)) met.push(id);
  }
  const zonesSeen = new Set<string>();
  const leaders = met.filter((id) => {
    if (zonesSeen.has(zoneOf(id))) return false;
    zonesSeen.add(zoneOf(id));
    return true;
  });
  return [...leaders, ...met.filter((id) => !leaders.includes(id))].slice(0, successorsPerBucketMax);
}

// The ring walks its owner table: each bucket starts at its own position, and its successors are the distinct owners from it on.
test('successors are the distinct owners walking the buckets from the bucket', () => {
  const members = membersNamed('x', 'y', 'z');
  const small = { buckets: 64 };
  const ring = buildRing(members, small);
  expect(ring.owners).toEqual(claim(null, members, { buckets: small.buckets, spacing: claimSpacingDefault }));
  expect(ring.vnodes).toEqual(ring.owners.map((memberId, bucket) => ({ position: bucketPosition(bucket, small.buckets), memberId })));
  for (let bucket = 0; bucket < small.buckets; bucket++) {
    expect(ring.successors[bucket]).toEqual(walkedList(ring.owners, () => '', bucket));
  }
});

// On a hand-written owner table with zones, each list is the zone-spread walk: one member per zone in the order met, then the rest.
test('successors of a hand-written zoned owner table are the zone-spread walk', () => {
  const members: RingMember[] = [
    { id: 'a1', weight: 1, zone: 'a' },
    { id: 'a2', weight: 1, zone: 'a' },
    { id: 'b1', weight: 1, zone: 'b' },
    { id: 'c1', weight: 1, zone: 'c' },
  ];
  const owners = ['a1', 'a2', 'a1', 'b1', 'a2', 'c1', 'a1', 'b1'];
  const ring = ringFromOwners(members, owners, { buckets: owners.length });
  // Worked by hand for two buckets, then checked for all against the walk.
  expect(ring.successors[0]).toEqual(['a1', 'b1', 'c1', 'a2']);
  expect(ring.successors[5]).toEqual(['c1', 'a1', 'b1', 'a2']);
  for (let bucket = 0; bucket < owners.length; bucket++) {
    expect(ring.successors[bucket]).toEqual(walkedList(owners, (id) => ring.zoneOf.get(id)!, bucket));
  }
  // Random tables over more members agree with the walk too, including the cap on list length.
  const many = Array.from({ length: successorsPerBucketMax + 3 }, (_, i): RingMember => ({ id: `m${i}`, weight: 1, zone: `z${i % 3}` }));
  const random = new Random(7);
  const table = Array.from({ length: 128 }, () => random.pick(many).id);
  const zonedRing = ringFromOwners(many, table, { buckets: table.length });
  for (let bucket = 0; bucket < table.length; bucket++) {
    expect(zonedRing.successors[bucket]).toEqual(walkedList(table, (id) => zonedRing.zoneOf.get(id)!, bucket));
  }
});

// A ring built from an owner table holds exactly the members that own a bucket.
test('ringFromOwners leaves out members that own nothing', () => {
  const ring = ringFromOwners(membersNamed('c', 'a', 'b'), ['b', 'a', 'b', 'a'], { buckets: 4 });
  expect(ring.members.map((m) => m.id)).toEqual(['a', 'b']);
  expect(ring.owners).toEqual(['b', 'a', 'b', 'a']);
  expect(ring.successors).toEqual([
    ['b', 'a'],
    ['a', 'b'],
    ['b', 'a'],
    ['a', 'b'],
  ]);
  expect(ownership(ring)).toEqual(
    new Map([
      ['a', 0.5],
      ['b', 0.5],
    ]),
  );
});

// A key's bucket is always in range, the same on every call, and the top bits of its MD5 position.
test('bucketOfKey is in range, stable and spreads keys over every bucket', () => {
  const buckets = 64;
  const hits = new Array<number>(buckets).fill(0);
  const wrong: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const key = Buffer.from(`key:${i}`);
    const bucket = bucketOfKey(key, buckets);
    const topBits = createHash('md5').update(key).digest().readUInt32BE(0) >>> 26;
    if (bucket !== topBits || bucketOfKey(Buffer.from(`key:${i}`), buckets) !== bucket) wrong.push(`key:${i}`);
    if (bucket >= 0 && bucket < buckets) hits[bucket]++;
  }
  expect(wrong).toEqual([]);
  expect(hits.reduce((sum, count) => sum + count, 0)).toBe(3000);
  expect(Math.min(...hits)).toBeGreaterThan(0);
  expect(bucketOfKey(Buffer.alloc(0), bucketsMax)).toBeLessThan(bucketsMax);
});

// Preference lists hold distinct members, as many as asked or as the ring has.
test('preferenceList is distinct and of length min(n, members)', () => {
  for (const count of [1, 2, 3, 5]) {
    const ring = buildRing(fiveMembers.slice(0, count), config);
    for (const n of [1, 2, 3, 4, 7]) {
      for (let bucket = 0; bucket < config.buckets; bucket += 37) {
        const list = preferenceList(ring, bucket, n);
        expect(list.length).toBe(Math.min(n, count));
        expect(new Set(list).size).toBe(list.length);
        expect(list).toEqual(ring.successors[bucket].slice(0, list.length));
      }
    }
  }
});

// Successor lists stop at successorsPerBucketMax even on a larger ring.
test('successor lists are capped', () => {
  const many = membersNamed(...Array.from({ length: successorsPerBucketMax + 4 }, (_, i) => `m${i}`));
  const ring = buildRing(many, { buckets: 64 });
  expect(ring.members).toHaveLength(many.length);
  for (const list of ring.successors) {
    expect(list.length).toBe(successorsPerBucketMax);
    expect(new Set(list).size).toBe(successorsPerBucketMax);
  }
});

/** The number of buckets `id` owns. */
function bucketsOwned(ring: Ring, id: string): number {
  return ring.owners.filter((owner) => owner === id).length;
}

// With equal weights, each of 5 members owns its fifth of the buckets, rounded down or up.
test('ownership is balanced across equal members', () => {
  const ring = buildRing(fiveMembers, config);
  const owned = ownership(ring);
  let total = 0;
  for (const [id, share] of owned) {
    expect([204, 205]).toContain(bucketsOwned(ring, id));
    expect(share).toBe(bucketsOwned(ring, id) / config.buckets);
    total += share;
  }
  expect(total).toBeCloseTo(1, 10);
});

// A member owns its weight share of the buckets, rounded down or up: weight 2 owns twice what weight 1 does.
test('weights scale ownership', () => {
  const weighted = fiveMembers.map((m) => (m.id === 'node-c' ? { ...m, weight: 2 } : m));
  const ring = buildRing(weighted, config);
  // 1024 buckets over a weight of 6: 341.33 for node-c, 170.67 for each other member.
  expect([341, 342]).toContain(bucketsOwned(ring, 'node-c'));
  for (const member of fiveMembers) if (member.id !== 'node-c') expect([170, 171]).toContain(bucketsOwned(ring, member.id));
  const halved = buildRing([...membersNamed('p', 'q'), { id: 'r', weight: 0.5 }], config);
  // A weight of 2.5: 409.6 for p and q, 204.8 for r.
  expect([409, 410]).toContain(bucketsOwned(halved, 'p'));
  expect([409, 410]).toContain(bucketsOwned(halved, 'q'));
  expect([204, 205]).toContain(bucketsOwned(halved, 'r'));
});

/** The ring after the claim moves `before`'s buckets to `members`, as the claimant plans a change. */
function claimedFrom(before: Ring, members: readonly RingMember[]): Ring {
  const owners = claim(before.owners, members, { buckets: before.config.buckets, spacing: claimSpacingDefault });
  return ringFromOwners(members, owners, before.config);
}

// A joining member only takes buckets for itself, about 1/(k+1) of them, and only the replica sets it enters change.
test('a join moves only buckets to the new member', () => {
  const before = buildRing(fiveMembers, config);
  const after = claimedFrom(before, [...fiveMembers, { id: 'node-f', weight: 1 }]);
  let moved = 0;
  for (let bucket = 0; bucket < config.buckets; bucket++) {
    if (after.owners[bucket] !== before.owners[bucket]) {
      expect(after.owners[bucket]).toBe('node-f');
      moved++;
    }
    for (const n of [1, 3, 5]) {
      const newList = preferenceList(after, bucket, n);
      if (!newList.includes('node-f')) expect(newList).toEqual(preferenceList(before, bucket, n));
    }
  }
  // 1024 buckets over 6 members: 170 or 171 each.
  expect([170, 171]).toContain(moved);
  expect(bucketsOwned(after, 'node-f')).toBe(moved);
});

// A leaving member's buckets go to the others; no other bucket changes owner, and only the replica sets it was in change.
test('a leave moves only the buckets the member held', () => {
  const before = buildRing(fiveMembers, config);
  const after = claimedFrom(
    before,
    fiveMembers.filter((m) => m.id !== 'node-b'),
  );
  let moved = 0;
  for (let bucket = 0; bucket < config.buckets; bucket++) {
    if (before.owners[bucket] === 'node-b') moved++;
    else expect(after.owners[bucket]).toBe(before.owners[bucket]);
    for (const n of [1, 3, 5]) {
      const oldList = preferenceList(before, bucket, n);
      if (!oldList.includes('node-b')) expect(preferenceList(after, bucket, n)).toEqual(oldList);
    }
  }
  expect(after.members.map((m) => m.id)).not.toContain('node-b');
  expect(moved / config.buckets).toBeCloseTo(ownership(before).get('node-b')!, 10);
  // 1024 buckets over 4 members: exactly 256 each.
  for (const member of after.members) expect(bucketsOwned(after, member.id)).toBe(256);
});

// Invalid ring configurations and owner tables are programmer errors and fail loudly.
test('buildRing and ringFromOwners reject bad configurations', () => {
  const bad: Array<[RingMember[], RingConfig]> = [
    [[], config],
    [fiveMembers, { buckets: 0 }],
    [fiveMembers, { buckets: 1.5 }],
    [fiveMembers, { buckets: bucketsMax + 1 }],
    [membersNamed('a', 'b', 'a'), config],
    [[{ id: 'a', weight: 0 }], config],
    [[{ id: 'a', weight: -1 }], config],
    [[{ id: 'a', weight: Number.NaN }], config],
    [[{ id: 'a', weight: Number.POSITIVE_INFINITY }], config],
  ];
  for (const [members, ringConfig] of bad) {
    expect(() => buildRing(members, ringConfig)).toThrow(/assertion failed/);
  }
  expect(() => buildRing(membersNamed('solo'), { buckets: 1 })).not.toThrow();
  const pair = membersNamed('a', 'b');
  expect(() => ringFromOwners(pair, ['a', 'b', 'a'], { buckets: 4 })).toThrow(/assertion failed/);
  expect(() => ringFromOwners(pair, ['a', 'b', 'a', 'c'], { buckets: 4 })).toThrow(/assertion failed/);
  expect(() => ringFromOwners([], [], { buckets: 0 })).toThrow(/assertion failed/);
  expect(() => ringFromOwners(pair, ['a', 'b', 'a', 'b'], { buckets: 4 })).not.toThrow();
});
