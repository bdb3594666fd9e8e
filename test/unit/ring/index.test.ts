import { createHash } from 'node:crypto';
import {
  bucketOfKey,
  bucketPosition,
  bucketsMax,
  buildRing,
  ownership,
  preferenceList,
  successorsPerBucketMax,
  vnodesPerNodeMax,
  type Ring,
  type RingMember,
} from '../../../src/ring';

const config = { buckets: 1024, vnodesPerNode: 128 };

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

// Successors match an independent computation from node:crypto's MD5 of "<id>#<index>".
test('successors are the distinct members clockwise from the bucket position', () => {
  const members = membersNamed('x', 'y', 'z');
  const small = { buckets: 64, vnodesPerNode: 8 };
  const ring = buildRing(members, small);
  const vnodes = members
    .flatMap((m) =>
      Array.from({ length: small.vnodesPerNode }, (_, index) => ({
        position: createHash('md5').update(`${m.id}#${index}`).digest().readUInt32BE(0),
        id: m.id,
      })),
    )
    .sort((a, b) => a.position - b.position);
  for (let bucket = 0; bucket < small.buckets; bucket++) {
    const position = bucketPosition(bucket, small.buckets);
    const start = vnodes.findIndex((v) => v.position >= position);
    const expected: string[] = [];
    for (let step = 0; expected.length < members.length; step++) {
      const id = vnodes[((start === -1 ? 0 : start) + step) % vnodes.length].id;
      if (!expected.includes(id)) expected.push(id);
    }
    expect(ring.successors[bucket]).toEqual(expected);
  }
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
  const ring = buildRing(many, { buckets: 16, vnodesPerNode: 4 });
  for (const list of ring.successors) {
    expect(list.length).toBe(successorsPerBucketMax);
    expect(new Set(list).size).toBe(successorsPerBucketMax);
  }
});

// With equal weights, each of 5 members owns close to a fifth of the buckets.
test('ownership is balanced across equal members', () => {
  const owned = ownership(buildRing(fiveMembers, config));
  let total = 0;
  for (const share of owned.values()) {
    expect(share).toBeGreaterThan(0.14);
    expect(share).toBeLessThan(0.26);
    total += share;
  }
  expect(total).toBeCloseTo(1, 10);
});

// A member of weight 2 owns about twice the share of a member of weight 1.
test('weights scale ownership', () => {
  const weighted = fiveMembers.map((m) => (m.id === 'node-c' ? { ...m, weight: 2 } : m));
  const owned = ownership(buildRing(weighted, config));
  const heavy = owned.get('node-c')!;
  expect(heavy).toBeGreaterThan(0.26);
  expect(heavy).toBeLessThan(0.41);
  for (const [id, share] of owned) if (id !== 'node-c') expect(share).toBeLessThan(heavy);
  const halved = ownership(buildRing([...membersNamed('p', 'q'), { id: 'r', weight: 0.5 }], config));
  expect(halved.get('r')!).toBeLessThan(halved.get('p')!);
  expect(halved.get('r')!).toBeLessThan(halved.get('q')!);
});

function firstReplicaMoves(before: Ring, after: Ring): number {
  let moved = 0;
  for (let bucket = 0; bucket < before.config.buckets; bucket++) {
    if (before.successors[bucket][0] !== after.successors[bucket][0]) moved++;
  }
  return moved;
}

// A joining member only takes buckets for itself: every other member keeps its relative order.
test('a join moves only buckets to the new member, about 1/(k+1) of them', () => {
  const before = buildRing(fiveMembers, config);
  const after = buildRing([...fiveMembers, { id: 'node-f', weight: 1 }], config);
  for (let bucket = 0; bucket < config.buckets; bucket++) {
    const oldList = before.successors[bucket];
    const newList = after.successors[bucket];
    expect(newList.filter((id) => id !== 'node-f')).toEqual(oldList);
    if (newList[0] !== oldList[0]) expect(newList[0]).toBe('node-f');
  }
  const movedShare = firstReplicaMoves(before, after) / config.buckets;
  expect(movedShare).toBeGreaterThan(0.1);
  expect(movedShare).toBeLessThan(0.25);
});

// A leaving member's buckets go to the others; no other bucket changes its first replica.
test('a leave moves only the buckets the member held', () => {
  const before = buildRing(fiveMembers, config);
  const after = buildRing(
    fiveMembers.filter((m) => m.id !== 'node-b'),
    config,
  );
  let moved = 0;
  for (let bucket = 0; bucket < config.buckets; bucket++) {
    const oldList = before.successors[bucket];
    expect(after.successors[bucket]).toEqual(oldList.filter((id) => id !== 'node-b'));
    if (oldList[0] === 'node-b') moved++;
    else expect(after.successors[bucket][0]).toBe(oldList[0]);
  }
  expect(firstReplicaMoves(before, after)).toBe(moved);
  expect(moved / config.buckets).toBeCloseTo(ownership(before).get('node-b')!, 10);
});

// Invalid ring configurations are programmer errors and fail loudly.
test('buildRing rejects bad configurations', () => {
  const bad: Array<[RingMember[], { buckets: number; vnodesPerNode: number }]> = [
    [[], config],
    [fiveMembers, { buckets: 0, vnodesPerNode: 8 }],
    [fiveMembers, { buckets: 1.5, vnodesPerNode: 8 }],
    [fiveMembers, { buckets: bucketsMax + 1, vnodesPerNode: 8 }],
    [fiveMembers, { buckets: 16, vnodesPerNode: 0 }],
    [fiveMembers, { buckets: 16, vnodesPerNode: 2.5 }],
    [fiveMembers, { buckets: 16, vnodesPerNode: vnodesPerNodeMax + 1 }],
    [membersNamed('a', 'b', 'a'), config],
    [[{ id: 'a', weight: 0 }], config],
    [[{ id: 'a', weight: -1 }], config],
    [[{ id: 'a', weight: Number.NaN }], config],
    [[{ id: 'a', weight: Number.POSITIVE_INFINITY }], config],
  ];
  for (const [members, ringConfig] of bad) {
    expect(() => buildRing(members, ringConfig)).toThrow(/assertion failed/);
  }
  expect(() => buildRing(membersNamed('solo'), { buckets: 1, vnodesPerNode: 1 })).not.toThrow();
});
