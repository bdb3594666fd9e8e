import {
  buildRing,
  ownership,
  preferenceList,
  preferenceListUp,
  successorsPerBucketMax,
  type Ring,
  type RingMember,
} from '../../../src/ring';
import { checkProperty, ensure, type Random } from '../../support/property';

const config = { buckets: 512, vnodesPerNode: 128 };
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

// Every member owns a share of buckets close to its share of the ring's weight: at the default 128
// vnodes, within -40% and +60% (many buckets, so that the bucket count adds little noise).
test('ownership follows weight', () => {
  const fineConfig = { buckets: 4096, vnodesPerNode: 128 };
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 8);
    const owned = ownership(buildRing(members, fineConfig));
    const vnodesOf = (m: RingMember): number => Math.max(1, Math.round(fineConfig.vnodesPerNode * m.weight));
    const vnodesTotal = members.reduce((sum, m) => sum + vnodesOf(m), 0);
    for (const member of members) {
      const expected = vnodesOf(member) / vnodesTotal;
      const share = owned.get(member.id)!;
      ensure(
        share > expected * 0.6 && share < expected * 1.6,
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

/** Asserts that every list of `after` equals the one of `before` unless `moved` is in either. */
function assertOnlyListsWith(before: Ring, after: Ring, moved: string): void {
  forEveryList(before, (bucket, n, oldList) => {
    const newList = preferenceList(after, bucket, n);
    if (oldList.includes(moved) || newList.includes(moved)) return;
    ensure(
      oldList.join(',') === newList.join(','),
      `bucket ${bucket} n=${n} changed without ${moved}: ${oldList.join(',')} -> ${newList.join(',')}`,
    );
  });
}

// A joining member changes only the preference lists it enters.
test('a join moves only what the new member takes', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 8);
    const zoned = members[0].zone !== undefined;
    const weight = random.pick(weights);
    const id = 'joining:7000';
    const joining: RingMember = zoned ? { id, weight, zone: `zone-${random.int(0, 4)}` } : { id, weight };
    assertOnlyListsWith(buildRing(members, config), buildRing([...members, joining], config), joining.id);
  });
});

// A leaving member changes only the preference lists it was in.
test('a leave moves only what the member held', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 8);
    if (members.length < 2) return;
    const leaving = random.pick(members);
    const remaining = members.filter((m) => m !== leaving);
    assertOnlyListsWith(buildRing(members, config), buildRing(remaining, config), leaving.id);
  });
});

// The ring depends on the set of members, not on the order they are listed in.
test('the same members in any order build the same ring', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 10);
    const ring = buildRing(members, config);
    const again = buildRing(random.shuffle(members), config);
    const sameSuccessors = JSON.stringify(again.successors) === JSON.stringify(ring.successors);
    ensure(sameSuccessors, `order changed the ring: ${listed(members)}`);
    ensure(JSON.stringify(again.members) === JSON.stringify(ring.members), 'order changed the member list');
  });
});

// preferenceListUp is the preference list of the ring without the down members, and keeps every
// primary that is up.
test('preferenceListUp keeps up primaries and falls back as a ring without the down members would', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 9);
    const up = new Set(members.filter(() => random.chance(0.6)).map((m) => m.id));
    const ring = buildRing(members, config);
    const upMembers = members.filter((m) => up.has(m.id));
    const ringOfUp = upMembers.length > 0 ? buildRing(upMembers, config) : null;
    forEveryList(ring, (bucket, n, primaries) => {
      const list = preferenceListUp(ring, bucket, n, (id) => up.has(id));
      const expected = ringOfUp ? preferenceList(ringOfUp, bucket, n) : [];
      const where = `bucket ${bucket} n=${n} up=${[...up].join(',')}`;
      ensure(list.join(',') === expected.join(','), `${where}: ${list.join(',')} instead of ${expected.join(',')}`);
      const upPrimaries = primaries.filter((id) => up.has(id));
      ensure(upPrimaries.every((id) => list.includes(id)), `${where}: an up primary is missing`);
    });
  });
});
