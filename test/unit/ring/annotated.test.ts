import {
  annotatedPreferenceList,
  buildRing,
  preferenceList,
  preferenceListUp,
  type ReplicaTarget,
  type RingMember,
} from '../../../src/ring';
import { checkProperty, ensure, type Random } from '../../support/property';

const config = { buckets: 256 };
const seedsPerProperty = 60;

function membersNamed(...ids: string[]): RingMember[] {
  return ids.map((id) => ({ id, weight: 1 }));
}

const sixMembers = membersNamed('node-a', 'node-b', 'node-c', 'node-d', 'node-e', 'node-f');
const ring = buildRing(sixMembers, config);

const upExcept =
  (...down: string[]) =>
  (id: string): boolean =>
    !down.includes(id);

const primaryTarget = (node: string): ReplicaTarget => ({ node, primary: true });
const fallbackTarget = (node: string, standsInFor: string): ReplicaTarget => ({ node, primary: false, standsInFor });

// With every member up, a request goes to the bucket's primaries, in order, all marked primary.
test('all up: the targets are the primaries', () => {
  for (let bucket = 0; bucket < config.buckets; bucket++) {
    for (const n of [1, 2, 3, 6]) {
      const annotated = annotatedPreferenceList(ring, bucket, n, () => true);
      const primaries = preferenceList(ring, bucket, n);
      expect(annotated.primaries).toEqual(primaries);
      expect(annotated.targets).toEqual(primaries.map(primaryTarget));
    }
  }
});

// One primary down: the up primaries stay, and the next up member after them stands in for it.
test('one primary down gets exactly one fallback', () => {
  for (const bucket of [0, 17, 100, 255]) {
    const order = ring.successors[bucket];
    const [first, second, third, fourth] = order;
    for (const down of [first, second, third]) {
      const annotated = annotatedPreferenceList(ring, bucket, 3, upExcept(down));
      expect(annotated.primaries).toEqual([first, second, third]);
      // Without zones the list is the walk order without the down member: the up primaries keep
      // their relative order, and the fourth member comes last.
      const expected = [first, second, third].filter((id) => id !== down).map(primaryTarget);
      expect(annotated.targets).toEqual([...expected, fallbackTarget(fourth, down)]);
    }
  }
});

// Two primaries down: each gets one fallback, paired in primary order, and no fallback is a primary.
test('two primaries down get one fallback each, in order', () => {
  const bucket = 42;
  const [first, second, third, fourth, fifth] = ring.successors[bucket];
  const annotated = annotatedPreferenceList(ring, bucket, 3, upExcept(first, third));
  expect(annotated.targets).toEqual([primaryTarget(second), fallbackTarget(fourth, first), fallbackTarget(fifth, third)]);

  const lastTwoDown = annotatedPreferenceList(ring, bucket, 3, upExcept(second, third));
  expect(lastTwoDown.targets).toEqual([primaryTarget(first), fallbackTarget(fourth, second), fallbackTarget(fifth, third)]);

  // A down member past the primaries is skipped: the next up member is the fallback.
  const fallbackDownToo = annotatedPreferenceList(ring, bucket, 3, upExcept(first, fourth));
  expect(fallbackDownToo.targets).toEqual([primaryTarget(second), primaryTarget(third), fallbackTarget(fifth, first)]);
  for (const target of [...annotated.targets, ...lastTwoDown.targets, ...fallbackDownToo.targets]) {
    expect(target.primary).toBe(annotated.primaries.includes(target.node));
  }
});

// With zones, a down primary's fallback keeps the zones covered, from its own zone while that zone has a member up.
test('with zones, the fallback keeps the zones covered', () => {
  const zoned = buildRing(
    [
      { id: 'a1', weight: 1, zone: 'zone-a' },
      { id: 'a2', weight: 1, zone: 'zone-a' },
      { id: 'b1', weight: 1, zone: 'zone-b' },
      { id: 'b2', weight: 1, zone: 'zone-b' },
      { id: 'c1', weight: 1, zone: 'zone-c' },
      { id: 'c2', weight: 1, zone: 'zone-c' },
    ],
    config,
  );
  const zoneOf = (id: string): string => zoned.zoneOf.get(id)!;
  const sibling = (id: string): string => (id.endsWith('1') ? id.replace('1', '2') : id.replace('2', '1'));
  for (let bucket = 0; bucket < config.buckets; bucket += 7) {
    const primaries = preferenceList(zoned, bucket, 3);
    expect(new Set(primaries.map(zoneOf)).size).toBe(3);
    for (const down of primaries) {
      const { targets } = annotatedPreferenceList(zoned, bucket, 3, upExcept(down));
      expect(targets.filter((target) => target.primary).map((target) => target.node)).toEqual(primaries.filter((id) => id !== down));
      const fallbacks = targets.filter((target) => !target.primary);
      expect(fallbacks).toEqual([fallbackTarget(sibling(down), down)]);
      expect(new Set(targets.map((target) => zoneOf(target.node))).size).toBe(3);
    }
    // A whole zone down: the fallback comes from another zone, and still stands in for the down primary.
    const downPrimary = primaries[1];
    const { targets } = annotatedPreferenceList(zoned, bucket, 3, upExcept(downPrimary, sibling(downPrimary)));
    expect(targets).toHaveLength(3);
    const fallbacks = targets.filter((target) => !target.primary);
    expect(fallbacks).toHaveLength(1);
    expect(fallbacks[0]).toMatchObject({ primary: false, standsInFor: downPrimary });
    expect(zoneOf(fallbacks[0].node)).not.toBe(zoneOf(downPrimary));
  }
});

// Fewer up than n: as many targets as members up, fallbacks for as many down primaries as they reach, none when nobody is up.
test('fewer up than n', () => {
  const bucket = 9;
  const order = ring.successors[bucket];
  const [first, second, third, fourth] = order;
  const onlyTwoPrimaries = annotatedPreferenceList(ring, bucket, 3, (id) => id === first || id === third);
  expect(onlyTwoPrimaries.targets).toEqual([primaryTarget(first), primaryTarget(third)]);

  const onePrimaryOneOther = annotatedPreferenceList(ring, bucket, 3, (id) => id === second || id === fourth);
  expect(onePrimaryOneOther.targets).toEqual([primaryTarget(second), fallbackTarget(fourth, first)]);

  const noPrimary = annotatedPreferenceList(ring, bucket, 3, (id) => id === order[5]);
  expect(noPrimary.targets).toEqual([fallbackTarget(order[5], first)]);

  const nobody = annotatedPreferenceList(ring, bucket, 3, () => false);
  expect(nobody).toEqual({ primaries: [first, second, third], targets: [] });

  // n past the ring's size: every member is a primary, so nobody is a fallback.
  const everyone = annotatedPreferenceList(ring, bucket, 10, upExcept(first));
  expect(everyone.primaries).toEqual(order);
  expect(everyone.targets).toEqual(order.slice(1).map(primaryTarget));
});

/** Between 1 and `countMax` members with random ids, weights and maybe zones, as properties.test.ts draws them. */
function randomMembers(random: Random, countMax: number): RingMember[] {
  const count = random.int(1, countMax);
  const zones = Array.from({ length: random.int(1, 4) }, (_, i) => `zone-${i}`);
  const zoned = random.chance(0.6);
  return Array.from({ length: count }, (_, i) => {
    const id = `10.0.${random.int(0, 255)}.${i}:${random.int(7000, 7999)}`;
    const weight = random.pick([0.5, 1, 1, 2]);
    return zoned ? { id, weight, zone: random.pick(zones) } : { id, weight };
  });
}

// Over random rings and up-sets, targets are preferenceListUp's list, and each fallback stands in for a distinct down primary, in order.
test('property: targets are the up list, annotated consistently', () => {
  checkProperty(seedsPerProperty, (random) => {
    const members = randomMembers(random, 10);
    const randomRing = buildRing(members, config);
    const up = new Set(members.filter(() => random.chance(random.pick([0.3, 0.6, 0.9]))).map((m) => m.id));
    const isUp = (id: string): boolean => up.has(id);
    for (let bucket = 0; bucket < config.buckets; bucket += 3) {
      for (let n = 1; n <= 5; n++) {
        const where = `bucket ${bucket} n=${n} up=${[...up].join(',')}`;
        const { primaries, targets } = annotatedPreferenceList(randomRing, bucket, n, isUp);
        const nodes = targets.map((target) => target.node);
        ensure(primaries.join(',') === preferenceList(randomRing, bucket, n).join(','), `${where}: primaries differ`);
        ensure(nodes.join(',') === preferenceListUp(randomRing, bucket, n, isUp).join(','), `${where}: targets differ from the up list`);
        ensure(new Set(nodes).size === nodes.length, `${where}: repeated target`);
        ensure(nodes.every(isUp), `${where}: a target is down`);
        const upPrimaries = primaries.filter(isUp);
        const downPrimaries = primaries.filter((id) => !isUp(id));
        ensure(
          targets.filter((target) => target.primary).map((target) => target.node).sort().join(',') === [...upPrimaries].sort().join(','),
          `${where}: the primary targets are not the up primaries`,
        );
        const fallbacks = targets.filter((target): target is Extract<ReplicaTarget, { primary: false }> => !target.primary);
        ensure(fallbacks.every((target) => !primaries.includes(target.node)), `${where}: a fallback is a primary`);
        const stoodInFor = fallbacks.map((target) => target.standsInFor);
        ensure(
          stoodInFor.join(',') === downPrimaries.slice(0, fallbacks.length).join(','),
          `${where}: fallbacks stand in for ${stoodInFor.join(',')}, down primaries are ${downPrimaries.join(',')}`,
        );
        ensure(
          fallbacks.length === Math.min(downPrimaries.length, Math.min(n, up.size) - upPrimaries.length),
          `${where}: ${fallbacks.length} fallbacks for ${downPrimaries.length} down primaries`,
        );
      }
    }
  });
});
