import {
  buildRing,
  ownership,
  preferenceList,
  preferenceListUp,
  ringFromOwners,
  successorsPerBucketMax,
  type Ring,
  type RingMember,
} from '../../../src/ring';
import { claim, claimSpacingDefault } from '../../../src/ring/claim';
import { checkProperty, ensure, type Random } from '../../support/property';

const config = { buckets: 512 };
const seedsPerProperty = 60;
const weights = [0.5, 1, 1, 1, 2, 3];

/** Between 1 and `countMax` members with random ids, weights and, unless told not to, zones. */
function randomMembers(random: Random, countMax: number, options: { zoned?: boolean } = {}): RingMember[] {
  const count = random.int(1, countMax);
  const zones = Array.from({ length: random.int(1, 4) }, (_, i) => `zone-${i}`);
  const zoned = options.zoned ?? random.chance(0.7);
  const members: RingMember[] = [];
  for (let i = 0; i < count; i++) {
    const id = `10.${random.int(0, 255)}.${random.int(0, 255)}.${i}:${random.int(7000, 7999)}`;
    const weight = random.pick(weights);
    members.push(zoned ? { id, weight, zone: random.pick(zones) } : { id, weight });
  }
  return members;
}

function zoneCount(members: readonly RingMember[]): number {
  return new Set(members.map((m) => m.zone ?? '')).size;
}

function listed(members: readonly RingMember[]): string {
  return members.map((m) => `${m.id}/${m.weight}/${m.zone ?? '-'}`).join(' ');
}

function forEveryList(ring: Ring, check: (bucket: number, n: number, list: readonly string[]) => void): void {
  for (let bucket = 0; bucket < ring.config.buckets; bucket++) {
    for (let n = 1; n <= 5; n++) check(bucket, n, preferenceList(ring, bucket, n));
  }
}

// Every member is the first replica of a share of buckets within 10% of its share of the ring's
// weight (4096 buckets, so that rounding to whole buckets adds little). The claim's own balance
// bounds are proved in claim.test.ts; this is what the ring makes of them.
test('ownership follows weight', () => {
  const fineConfig = { buckets: 4096 };
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 8);
    const owned = ownership(buildRing(members, fineConfig));
    const weightTotal = members.reduce((sum, m) => sum + m.weight, 0);
    for (const member of members) {
      const expected = member.weight / weightTotal;
      const share = owned.get(member.id)!;
      ensure(
        share > expected * 0.9 && share < expected * 1.1,
        `${member.id} owns ${share.toFixed(3)} for a weight share of ${expected.toFixed(3)} in ${listed(members)}`,
      );
    }
  });
});

// Preference lists name distinct members, as many as asked or as the ring has.
test('replicas are distinct', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 20);
    const ring = buildRing(members, config);
    for (const list of ring.successors) {
      ensure(list.length === Math.min(members.length, successorsPerBucketMax), `successor count ${list.length}`);
      ensure(new Set(list).size === list.length, `repeated member in ${list.join(',')}`);
    }
    forEveryList(ring, (bucket, n, list) => {
      ensure(list.length === Math.min(n, members.length), `bucket ${bucket} n=${n}: ${list.length} replicas`);
    });
  });
});

// With k zones, a preference list of n members covers min(n, k) zones.
test('replicas spread over zones', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 12, { zoned: true });
    const zones = zoneCount(members);
    const ring = buildRing(members, config);
    forEveryList(ring, (bucket, n, list) => {
      const covered = new Set(list.map((id) => ring.zoneOf.get(id))).size;
      const wanted = Math.min(n, zones, members.length);
      ensure(covered === wanted, `bucket ${bucket} n=${n}: ${covered} zones of ${wanted} in ${listed(members)}`);
    });
  });
});

/**
 * How many buckets, from `bucket` on, the walk that made `list` looked at: up to the first bucket
 * of its farthest member. The walk stops once its answer can no longer change, so the owners past
 * that point had no say in the list.
 */
function walkReach(ring: Ring, bucket: number, list: readonly string[]): number {
  const { owners } = ring;
  const pending = new Set(list);
  let step = 0;
  while (pending.size > 0) {
    pending.delete(owners[(bucket + step) % owners.length]);
    step++;
  }
  return step;
}

/**
 * Asserts that a preference list differs between `before` and `after` only when a bucket its walk
 * looked at, in either ring, changed owner: a change of owners moves only the lists that pass
 * over the buckets that moved, however far the walk goes to spread zones. This holds for lists no
 * longer than either ring and rings of as many zones: otherwise every list asks for another length
 * or another number of zones.
 */
function assertListsMoveOnlyOverMovedBuckets(before: Ring, after: Ring): void {
  ensure(zoneCount(before.members) === zoneCount(after.members), 'the rings span as many zones');
  const sizeMin = Math.min(before.members.length, after.members.length);
  const buckets = before.config.buckets;
  const moved = new Set<number>();
  for (let bucket = 0; bucket < buckets; bucket++) if (before.owners[bucket] !== after.owners[bucket]) moved.add(bucket);
  const crossesMoved = (ring: Ring, bucket: number, list: readonly string[]): boolean => {
    const reach = walkReach(ring, bucket, list);
    for (let step = 0; step < reach; step++) if (moved.has((bucket + step) % buckets)) return true;
    return false;
  };
  forEveryList(before, (bucket, n, oldList) => {
    const newList = preferenceList(after, bucket, n);
    if (n > sizeMin || oldList.join(',') === newList.join(',')) return;
    ensure(
      crossesMoved(before, bucket, oldList) && crossesMoved(after, bucket, newList),
      `bucket ${bucket} n=${n} changed with no moved bucket on its walk: ${oldList.join(',')} -> ${newList.join(',')}`,
    );
  });
}

/** The ring after the claim moves `before`'s buckets to `members`, as the claimant plans a change. */
function claimedFrom(before: Ring, members: readonly RingMember[]): Ring {
  const owners = claim(before.owners, members, { buckets: before.config.buckets, spacing: claimSpacingDefault });
  return ringFromOwners(members, owners, before.config);
}

// A join into an existing zone changes only the preference lists whose walk crosses a bucket that
// changed owner. (With virtual nodes a join changed only the lists the new member entered; an
// owner table replaces owners instead of inserting positions, and the claim may trade a few
// buckets between staying members to keep spacing, so a list can change without the joiner.)
test('a join moves only the lists over the buckets that moved', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 8);
    const zone = random.pick(members).zone;
    const weight = random.pick(weights);
    const id = 'joining:7000';
    const joining: RingMember = zone === undefined ? { id, weight } : { id, weight, zone };
    const before = buildRing(members, config);
    assertListsMoveOnlyOverMovedBuckets(before, claimedFrom(before, [...members, joining]));
  });
});

// A leave from a zone that keeps other members changes only the preference lists whose walk
// crosses a bucket that changed owner.
test('a leave moves only the lists over the buckets that moved', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 8);
    const zoneShared = members.filter((m) => members.some((other) => other !== m && other.zone === m.zone));
    if (zoneShared.length === 0) return;
    const leaving = random.pick(zoneShared);
    const remaining = members.filter((m) => m !== leaving);
    const before = buildRing(members, config);
    const after = claimedFrom(before, remaining);
    ensure(!after.owners.includes(leaving.id), `${leaving.id} still owns buckets`);
    assertListsMoveOnlyOverMovedBuckets(before, after);
  });
});

// When only the new member takes buckets and there are no zones, exactly the lists it enters change,
// as with virtual nodes: a walk that never meets the new member meets the same owners as before.
test('a join that only hands buckets to the new member changes only the lists it enters', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 8, { zoned: false });
    const before = buildRing(members, config);
    const id = 'joining:7000';
    const owners = before.owners.map((owner) => (random.chance(1 / (members.length + 1)) ? id : owner));
    if (!owners.includes(id)) return;
    const after = ringFromOwners([...members, { id, weight: 1 }], owners, config);
    forEveryList(before, (bucket, n, oldList) => {
      const newList = preferenceList(after, bucket, n);
      if (newList.includes(id)) return;
      ensure(
        oldList.join(',') === newList.join(','),
        `bucket ${bucket} n=${n} changed without ${id}: ${oldList.join(',')} -> ${newList.join(',')}`,
      );
    });
  });
});

// The ring depends on the set of members, not on the order they are listed in.
test('the same members in any order build the same ring', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 10);
    const ring = buildRing(members, config);
    const again = buildRing(random.shuffle(members), config);
    ensure(again.owners.join(',') === ring.owners.join(','), `order changed the owners: ${listed(members)}`);
    const sameSuccessors = JSON.stringify(again.successors) === JSON.stringify(ring.successors);
    ensure(sameSuccessors, `order changed the ring: ${listed(members)}`);
    ensure(JSON.stringify(again.members) === JSON.stringify(ring.members), 'order changed the member list');
  });
});

/**
 * The owner table with each bucket of a down member given to the next up owner clockwise. Walking
 * it meets the up members in the order a walk that skips the down members meets them: each
 * substituted bucket repeats the owner met next anyway.
 */
function ownersWithoutDown(owners: readonly string[], isUp: (id: string) => boolean): string[] {
  return owners.map((_, bucket) => {
    for (let step = 0; step < owners.length; step++) {
      const id = owners[(bucket + step) % owners.length];
      if (isUp(id)) return id;
    }
    throw new Error('nobody is up');
  });
}

// preferenceListUp is the preference list of the owner table without the down members (each of
// their buckets going to the next up owner clockwise), and keeps every primary that is up.
test('preferenceListUp keeps up primaries and falls back as the owner table without the down members would', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 9);
    const up = new Set(members.filter(() => random.chance(0.6)).map((m) => m.id));
    const isUp = (id: string): boolean => up.has(id);
    const ring = buildRing(members, config);
    const ringOfUp = up.size > 0 ? ringFromOwners(members, ownersWithoutDown(ring.owners, isUp), config) : null;
    forEveryList(ring, (bucket, n, primaries) => {
      const list = preferenceListUp(ring, bucket, n, isUp);
      const expected = ringOfUp ? preferenceList(ringOfUp, bucket, n) : [];
      const where = `bucket ${bucket} n=${n} up=${[...up].join(',')}`;
      ensure(list.join(',') === expected.join(','), `${where}: ${list.join(',')} instead of ${expected.join(',')}`);
      const upPrimaries = primaries.filter(isUp);
      ensure(upPrimaries.every((id) => list.includes(id)), `${where}: an up primary is missing`);
    });
  });
});
