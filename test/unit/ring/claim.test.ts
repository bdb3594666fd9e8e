import type { RingMember } from '../../../src/ring';
import { claim, claimSpacingDefault, claimTargets } from '../../../src/ring/claim';
import { checkProperty, ensure, type Random } from '../../support/property';

const seedsPerProperty = 40;
const weights = [0.5, 1, 2, 3];
const wideWeights = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16];
const bucketCounts = [64, 256, 1024, 4096];

/** `count` members with random ids and weights from `weightsFrom`; the index keeps ids distinct. */
function randomMembers(random: Random, count: number, weightsFrom: readonly number[] = weights): RingMember[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `10.${random.int(0, 255)}.${random.int(0, 255)}.${i}:${random.int(7000, 7999)}`,
    weight: random.pick(weightsFrom),
  }));
}

/** Gives joiners ids no earlier member had, however long a sequence runs. */
class JoinerIds {
  private serial = 0;

  next(): string {
    return `joiner-${this.serial++}:7000`;
  }
}

interface Step {
  readonly members: RingMember[];
  readonly joined: RingMember[];
  readonly left: RingMember[];
}

/** One to three members join, or, if at least `countMin` would remain, one to three leave. */
function randomStep(
  random: Random,
  members: readonly RingMember[],
  ids: JoinerIds,
  options: { countMin?: number; weightsFrom?: readonly number[] } = {},
): Step {
  const count = random.int(1, 3);
  if (members.length - count >= (options.countMin ?? 1) && random.chance(0.5)) {
    const left = random.shuffle(members).slice(0, count);
    return { members: members.filter((m) => !left.includes(m)), joined: [], left };
  }
  const weightsFrom = options.weightsFrom ?? weights;
  const joined = Array.from({ length: count }, () => ({ id: ids.next(), weight: random.pick(weightsFrom) }));
  return { members: [...members, ...joined], joined, left: [] };
}

function ownedCounts(owners: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of owners) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}

/** Each member's exact weight share of the buckets. */
function shares(members: readonly RingMember[], buckets: number): Map<string, number> {
  const total = weightOf(members);
  return new Map(members.map((m) => [m.id, (buckets * m.weight) / total]));
}

function weightOf(members: readonly RingMember[]): number {
  return members.reduce((sum, m) => sum + m.weight, 0);
}

/** Windows of `spacing` consecutive buckets, cyclically, in which some member owns two buckets. */
function crowdedWindows(owners: readonly string[], spacing: number): number {
  const width = Math.min(spacing, owners.length);
  let crowded = 0;
  for (let bucket = 0; bucket < owners.length; bucket++) {
    const seen = new Set<string>();
    for (let step = 0; step < width; step++) seen.add(owners[(bucket + step) % owners.length]);
    if (seen.size < width) crowded++;
  }
  return crowded;
}

/**
 * By how much each member's consecutive buckets (cyclically) fall short of `spacing` apart, summed
 * over all of them: 0 exactly when spacing holds.
 */
function spacingShortfall(owners: readonly string[], spacing: number): number {
  const firstOf = new Map<string, number>();
  const lastOf = new Map<string, number>();
  let shortfall = 0;
  owners.forEach((id, bucket) => {
    const last = lastOf.get(id);
    if (last === undefined) firstOf.set(id, bucket);
    else shortfall += Math.max(0, spacing - (bucket - last));
    lastOf.set(id, bucket);
  });
  for (const [id, first] of firstOf) shortfall += Math.max(0, spacing - (first + owners.length - lastOf.get(id)!));
  return shortfall;
}

/**
 * The least shortfall the targets force: a member with t buckets has t gaps that add up to the
 * bucket count, so its gaps fall short of `spacing` by at least spacing × t - buckets in all.
 */
function forcedShortfall(targets: ReadonlyMap<string, number>, buckets: number, spacing: number): number {
  let forced = 0;
  for (const target of targets.values()) forced += Math.max(0, spacing * target - buckets);
  return forced;
}

/** Whether the targets leave room for spacing: enough members, none with more than 1/spacing of the buckets. */
function spacingPossible(targets: ReadonlyMap<string, number>, buckets: number, spacing: number): boolean {
  return targets.size >= spacing && [...targets.values()].every((target) => target <= Math.floor(buckets / spacing));
}

/** For each member, the buckets whose first `n` distinct owners, walking on from the bucket, include it. */
function replicaLoad(owners: readonly string[], n: number): Map<string, number> {
  const load = new Map<string, number>();
  for (let bucket = 0; bucket < owners.length; bucket++) {
    const replicas = new Set<string>();
    for (let step = 0; step < owners.length && replicas.size < n; step++) {
      replicas.add(owners[(bucket + step) % owners.length]);
    }
    for (const id of replicas) load.set(id, (load.get(id) ?? 0) + 1);
  }
  return load;
}

/** The least distance, cyclically, between two buckets of `id`: the table's length if it owns one or none. */
function closestBuckets(owners: readonly string[], id: string): number {
  const mine = owners.flatMap((owner, bucket) => (owner === id ? [bucket] : []));
  let closest = owners.length;
  for (let i = 1; i < mine.length; i++) closest = Math.min(closest, mine[i] - mine[i - 1]);
  if (mine.length > 1) closest = Math.min(closest, mine[0] + owners.length - mine[mine.length - 1]);
  return closest;
}

function movedBuckets(before: readonly string[], after: readonly string[]): number[] {
  const moved: number[] = [];
  for (let bucket = 0; bucket < before.length; bucket++) if (before[bucket] !== after[bucket]) moved.push(bucket);
  return moved;
}

/** Asserts that every member owns exactly its target, and that the target is its share rounded down or up. */
function assertOwnsTargets(
  owners: readonly string[],
  previous: readonly string[] | null,
  members: readonly RingMember[],
  where: string,
): void {
  const counts = ownedCounts(owners);
  const targets = claimTargets(previous, members, owners.length);
  const exact = shares(members, owners.length);
  for (const member of members) {
    const count = counts.get(member.id) ?? 0;
    const share = exact.get(member.id)!;
    ensure(count === targets.get(member.id), `${where}: ${member.id} owns ${count}, target ${targets.get(member.id)}`);
    const rounded = count >= Math.floor(share) && count <= Math.ceil(share);
    ensure(rounded, `${where}: ${member.id} owns ${count} of share ${share}`);
  }
  ensure([...counts.keys()].every((id) => exact.has(id)), `${where}: a bucket is owned by a non-member`);
}

/** What a claim must move to reach the targets, and how much of it rounding hands to members that stay. */
function necessaryMoves(previous: readonly string[], members: readonly RingMember[], stayers: ReadonlySet<string>) {
  const kept = ownedCounts(previous);
  let total = 0;
  let toStayers = 0;
  for (const [id, target] of claimTargets(previous, members, previous.length)) {
    const gain = Math.max(0, target - (kept.get(id) ?? 0));
    total += gain;
    if (stayers.has(id)) toStayers += gain;
  }
  return { total, toStayers };
}

/** The moves a claim may add between members that stay, to keep spacing: 1/20 of those it must make. */
function spacingMovesMax(necessary: number): number {
  return Math.ceil(necessary / 20);
}

// Every member owns its target, its weight share rounded down or up, for weights from 1/16 to 16
// and any spacing, from scratch.
test('a new table gives every member its rounded share', () => {
  checkProperty(seedsPerProperty, (random) => {
    const buckets = random.pick(bucketCounts);
    const members = randomMembers(random, random.int(1, 60), wideWeights);
    const owners = claim(null, members, { buckets, spacing: random.int(1, 6) });
    ensure(owners.length === buckets, `${owners.length} owners for ${buckets} buckets`);
    assertOwnsTargets(owners, null, members, 'new');
  });
});

// With 100 members of weight 1 and 1024 buckets, the most loaded member owns at most 1.10 times
// the mean, from scratch and after any sequence of joins and leaves; every member owns its target.
test('100 equal members stay within 1.10 of the mean through joins and leaves', () => {
  checkProperty(20, (random) => {
    const buckets = 1024;
    const ids = new JoinerIds();
    let members = randomMembers(random, 100, [1]);
    let owners = claim(null, members, { buckets, spacing: claimSpacingDefault });
    for (let step = 0; step <= 10; step++) {
      const counts = ownedCounts(owners);
      const mean = buckets / members.length;
      const most = Math.max(...counts.values());
      ensure(most <= 1.1 * mean, `step ${step}: ${most} buckets against a mean of ${mean.toFixed(2)}`);
      const next = randomStep(random, members, ids, { countMin: 90, weightsFrom: [1] });
      const nextOwners = claim(owners, next.members, { buckets, spacing: claimSpacingDefault });
      assertOwnsTargets(nextOwners, owners, next.members, `step ${step}`);
      [members, owners] = [next.members, nextOwners];
    }
  });
});

/** A table that has been through 0 to 3 joins and leaves, so that properties hold for claims with a history. */
function tableWithHistory(random: Random, buckets: number, spacing: number, countMin: number) {
  const ids = new JoinerIds();
  let members = randomMembers(random, random.int(countMin, 60));
  let owners = claim(null, members, { buckets, spacing });
  for (let step = random.int(0, 3); step > 0; step--) {
    members = randomStep(random, members, ids, { countMin }).members;
    owners = claim(owners, members, { buckets, spacing });
  }
  return { members, owners, ids };
}

// A join moves buckets only to the joiners, from members above their new target, and about the
// joiners' weight share: at least the ideal less rounding, at most 1.1 times the ideal (or the
// ideal plus one per joiner, where rounding a small share is worth more than 10%). The exceptions
// are bounded: buckets that rounding leaves to members that stay (a member whose share falls past
// a whole number must give up more than the joiners' rounded targets take), and spacing repairs.
test('a join moves only what the joiners take', () => {
  checkProperty(seedsPerProperty, (random) => {
    const buckets = 1024;
    const before = tableWithHistory(random, buckets, claimSpacingDefault, 5);
    const joined = Array.from({ length: random.int(1, 3) }, () => ({
      id: before.ids.next(),
      weight: random.pick(weights),
    }));
    const members = [...before.members, ...joined];
    const owners = claim(before.owners, members, { buckets, spacing: claimSpacingDefault });
    assertOwnsTargets(owners, before.owners, members, 'join');

    const joinerIds = new Set(joined.map((m) => m.id));
    const stayers = new Set(before.members.map((m) => m.id));
    const moved = movedBuckets(before.owners, owners);
    const necessary = necessaryMoves(before.owners, members, stayers);
    const toStayers = moved.filter((bucket) => !joinerIds.has(owners[bucket])).length;
    const where = `${members.length} members, ${joined.length} joined`;
    ensure(
      toStayers <= necessary.toStayers + spacingMovesMax(necessary.total),
      `${where}: ${toStayers} buckets moved to members that stay (rounding ${necessary.toStayers})`,
    );
    const ideal = (buckets * weightOf(joined)) / weightOf(members);
    const movedMax = Math.max(1.1 * ideal, ideal + joined.length) + necessary.toStayers;
    ensure(moved.length <= movedMax, `${where}: moved ${moved.length}, ideal ${ideal.toFixed(2)}`);
    ensure(moved.length >= ideal - joined.length, `${where}: moved ${moved.length}, ideal ${ideal.toFixed(2)}`);
  });
});

// A leave moves only the leavers' buckets, about the leavers' weight share: at least the ideal
// less rounding, at most 1.1 times the ideal (or the ideal plus one per leaver, where rounding a
// small share is worth more than 10%); members that stay only gain, but for a bounded number of
// spacing repairs.
test('a leave moves only what the leavers held', () => {
  checkProperty(seedsPerProperty, (random) => {
    const buckets = 1024;
    const before = tableWithHistory(random, buckets, claimSpacingDefault, 5);
    const left = random.shuffle(before.members).slice(0, random.int(1, 3));
    const members = before.members.filter((m) => !left.includes(m));
    const owners = claim(before.owners, members, { buckets, spacing: claimSpacingDefault });
    assertOwnsTargets(owners, before.owners, members, 'leave');

    const leaverIds = new Set(left.map((m) => m.id));
    const moved = movedBuckets(before.owners, owners);
    const necessary = necessaryMoves(before.owners, members, new Set(members.map((m) => m.id)));
    const fromStayers = moved.filter((bucket) => !leaverIds.has(before.owners[bucket])).length;
    const where = `${before.members.length} members, ${left.length} left`;
    ensure(
      fromStayers <= spacingMovesMax(necessary.total),
      `${where}: ${fromStayers} buckets moved between members that stay`,
    );
    const ideal = (buckets * weightOf(left)) / weightOf(before.members);
    const movedMax = Math.max(1.1 * ideal, ideal + left.length);
    ensure(moved.length <= movedMax, `${where}: moved ${moved.length}, ideal ${ideal.toFixed(2)}`);
    ensure(moved.length >= ideal - left.length, `${where}: moved ${moved.length}, ideal ${ideal.toFixed(2)}`);
  });
});

// Weights are honoured within 10% at 4096 buckets, from scratch and after joins and leaves.
test('weights are honoured within 10%', () => {
  checkProperty(seedsPerProperty, (random) => {
    const buckets = 4096;
    const ids = new JoinerIds();
    let members = randomMembers(random, random.int(2, 16));
    let owners = claim(null, members, { buckets, spacing: claimSpacingDefault });
    for (let step = 0; step <= 5; step++) {
      const counts = ownedCounts(owners);
      for (const [id, share] of shares(members, buckets)) {
        const error = Math.abs((counts.get(id) ?? 0) / share - 1);
        ensure(error <= 0.1, `step ${step}: ${id} owns ${counts.get(id)} for a share of ${share.toFixed(1)}`);
      }
      members = randomStep(random, members, ids, { countMin: 2 }).members;
      owners = claim(owners, members, { buckets, spacing: claimSpacingDefault });
    }
  });
});

// From scratch, spacing holds wherever the targets allow it (enough members, none above
// 1/spacing of the buckets); where they do not, it falls short by little more than they force.
test('a new table keeps spacing when the shares allow it', () => {
  checkProperty(3 * seedsPerProperty, (random) => {
    const buckets = random.pick(bucketCounts);
    const spacing = random.int(2, 6);
    const members = randomMembers(random, random.int(1, 40), wideWeights);
    const owners = claim(null, members, { buckets, spacing });
    const targets = claimTargets(null, members, buckets);
    const where = `${members.length} members, ${buckets} buckets, spacing ${spacing}`;
    if (spacingPossible(targets, buckets, spacing)) {
      const crowded = crowdedWindows(owners, spacing);
      ensure(crowded === 0, `${where}: ${crowded} crowded windows`);
      return;
    }
    // With fewer members than the spacing, the claim keeps what it can: one window per member.
    const kept = Math.min(spacing, members.length);
    const shortfall = spacingShortfall(owners, kept);
    const forced = forcedShortfall(targets, buckets, kept);
    ensure(shortfall <= forced + kept, `${where}: short by ${shortfall} where ${forced} is forced`);
  });
});

// Through joins and leaves, spacing holds while every member's share stays at most a third of
// 1/spacing. Closer to 1/spacing, a member whose share grows cannot always fit new buckets between
// its own without moving those it keeps, which a claim does only within its small allowance for
// spacing repairs: there spacing gives way in a few windows.
test('joins and leaves keep spacing when the shares leave room', () => {
  checkProperty(seedsPerProperty, (random) => {
    const buckets = random.pick([256, 1024, 4096]);
    const spacing = random.int(2, 5);
    const roomy = (members: readonly RingMember[], previous: readonly string[] | null): boolean => {
      const targets = claimTargets(previous, members, buckets);
      return members.length >= spacing && [...targets.values()].every((t) => 3 * spacing * t <= buckets);
    };
    const ids = new JoinerIds();
    let members = randomMembers(random, random.int(2 * spacing, 60));
    if (!roomy(members, null)) return;
    let owners = claim(null, members, { buckets, spacing });
    for (let step = 0; step < 10; step++) {
      const next = randomStep(random, members, ids, { countMin: 2 * spacing });
      if (!roomy(next.members, owners)) continue;
      owners = claim(owners, next.members, { buckets, spacing });
      members = next.members;
      const crowded = crowdedWindows(owners, spacing);
      const change = `${next.joined.length} joined, ${next.left.length} left`;
      const where = `step ${step} (${change}) of ${members.length} members, ${buckets} buckets`;
      ensure(crowded === 0, `${where}: ${crowded} crowded windows`);
    }
  });
});

// A joiner's own buckets keep spacing even when the table it joins does not: it takes only buckets
// at least `spacing` from its others, when its share leaves room (at most half of 1/spacing).
// Closer to 1/spacing, the donors' buckets may leave it too few such places, and only then does
// it take others.
test('a joiner keeps spacing in a crowded table', () => {
  checkProperty(seedsPerProperty, (random) => {
    const buckets = 1024;
    const spacing = random.int(2, 5);
    const members = randomMembers(random, random.int(2, 20));
    // A table drawn at random: unbalanced, and crowded everywhere.
    const previous = Array.from({ length: buckets }, () => random.pick(members).id);
    const joiner = { id: 'joiner:7000', weight: random.pick(weights) };
    const all = [...members, joiner];
    // With fewer members than the spacing, the claim keeps one window per member.
    const kept = Math.min(spacing, all.length);
    if (2 * kept * claimTargets(previous, all, buckets).get(joiner.id)! > buckets) return;
    const owners = claim(previous, all, { buckets, spacing });
    const closest = closestBuckets(owners, joiner.id);
    ensure(closest >= kept, `the joiner owns buckets ${closest} apart, spacing ${kept}, ${members.length} members`);
  });
});

// One member owns every bucket.
test('one member owns everything', () => {
  const owners = claim(null, [{ id: 'only', weight: 3 }], { buckets: 256, spacing: claimSpacingDefault });
  expect(new Set(owners)).toEqual(new Set(['only']));
  expect(owners).toHaveLength(256);
  const again = claim(owners, [{ id: 'only', weight: 1 }], { buckets: 256, spacing: claimSpacingDefault });
  expect(again).toEqual(owners);
});

// With fewer members than the spacing, any window of as many buckets as there are members has
// distinct owners, but for what the rounded shares force.
test('fewer members than the spacing space as widely as they can', () => {
  for (const count of [2, 3]) {
    const members = Array.from({ length: count }, (_, i) => ({ id: `node-${i}`, weight: 1 }));
    const buckets = 1024;
    const owners = claim(null, members, { buckets, spacing: claimSpacingDefault });
    const forced = forcedShortfall(claimTargets(null, members, buckets), buckets, count);
    expect(spacingShortfall(owners, count)).toBeLessThanOrEqual(forced);
    assertOwnsTargets(owners, null, members, `${count} members`);
  }
});

// Ids in the previous table that are not members leave, and members not in it join; a table
// whose members are all replaced at once is the one a new ring would get.
test('leavers and joiners at once, and a wholesale replacement', () => {
  checkProperty(seedsPerProperty, (random) => {
    const buckets = random.pick(bucketCounts);
    const before = randomMembers(random, random.int(4, 30), wideWeights);
    const previous = claim(null, before, { buckets, spacing: claimSpacingDefault });
    const staying = before.filter(() => random.chance(0.6));
    const joining = Array.from({ length: random.int(staying.length === 0 ? 1 : 0, 4) }, (_, i) => ({
      id: `joiner-${i}:7000`,
      weight: random.pick(wideWeights),
    }));
    const members = [...staying, ...joining];
    const owners = claim(previous, members, { buckets, spacing: claimSpacingDefault });
    // Every bucket has a member for owner, so the leavers' buckets have all moved.
    assertOwnsTargets(owners, previous, members, 'mixed');

    const replacements = randomMembers(random, random.int(1, 30), wideWeights).map((m) => ({
      ...m,
      id: `new-${m.id}`,
    }));
    const replaced = claim(previous, replacements, { buckets, spacing: claimSpacingDefault });
    ensure(
      replaced.join() === claim(null, replacements, { buckets, spacing: claimSpacingDefault }).join(),
      'a wholesale replacement differs from a new table',
    );
  });
});

// Programmer errors are assertions: a previous table of the wrong length, no members, repeated
// ids, a weight that is not positive, a spacing or bucket count out of range.
test('bad arguments are assertion failures', () => {
  const members = [
    { id: 'a', weight: 1 },
    { id: 'b', weight: 1 },
  ];
  const options = { buckets: 16, spacing: claimSpacingDefault };
  expect(() => claim(new Array<string>(15).fill('a'), members, options)).toThrow(/assertion failed/);
  expect(() => claim(null, [], options)).toThrow(/assertion failed/);
  expect(() => claim(null, [members[0], { id: 'a', weight: 2 }], options)).toThrow(/assertion failed/);
  expect(() => claim(null, [{ id: 'a', weight: 0 }], options)).toThrow(/assertion failed/);
  expect(() => claim(null, [{ id: 'a', weight: Number.NaN }], options)).toThrow(/assertion failed/);
  expect(() => claim(null, members, { buckets: 16, spacing: 0 })).toThrow(/assertion failed/);
  expect(() => claim(null, members, { buckets: 0, spacing: 2 })).toThrow(/assertion failed/);
  expect(() => claim(null, members, { buckets: 1.5, spacing: 2 })).toThrow(/assertion failed/);
});

// The same inputs give the same table, twice and whatever the order of the members.
test('a claim is deterministic and ignores member order', () => {
  checkProperty(seedsPerProperty, (random) => {
    const buckets = random.pick(bucketCounts);
    const spacing = random.int(1, 6);
    const before = tableWithHistory(random, buckets, spacing, 2);
    const next = randomStep(random, before.members, before.ids, { countMin: 2 });
    const owners = claim(before.owners, next.members, { buckets, spacing });
    ensure(claim(before.owners, next.members, { buckets, spacing }).join() === owners.join(), 'a second claim differs');
    const shuffled = random.shuffle(next.members);
    const reordered = claim(before.owners, shuffled, { buckets, spacing });
    ensure(reordered.join() === owners.join(), 'member order changed the table');
  });
});

// At the largest ring, 65536 buckets among 256 members of mixed weights, a new table, a join and a
// leave each give every member its target and move little beyond what the changed member gains or loses.
// How long they take is measured by bench/claim.ts, not here.
test('the largest ring: new, one join and one leave', () => {
  const large = { buckets: 65536, spacing: claimSpacingDefault };
  const members = Array.from({ length: 257 }, (_, i) => ({ id: `node-${i}`, weight: 1 + (i % 3) }));
  // node-256 joins the first 256; node-0 leaves them.
  const founders = members.slice(0, 256);
  const stayers = members.slice(1, 256);
  const idsOf = (some: readonly RingMember[]): Set<string> => new Set(some.map((m) => m.id));
  const owners = claim(null, founders, large);
  assertOwnsTargets(owners, null, founders, 'new');
  const joined = claim(owners, members, large);
  assertOwnsTargets(joined, owners, members, 'join');
  const joinNecessary = necessaryMoves(owners, members, idsOf(founders));
  const toStayers = movedBuckets(owners, joined).filter((bucket) => joined[bucket] !== 'node-256').length;
  ensure(toStayers <= joinNecessary.toStayers + spacingMovesMax(joinNecessary.total), `a join moved ${toStayers} buckets to members that stay`);
  const left = claim(owners, stayers, large);
  assertOwnsTargets(left, owners, stayers, 'leave');
  const leaveNecessary = necessaryMoves(owners, stayers, idsOf(stayers));
  const fromStayers = movedBuckets(owners, left).filter((bucket) => owners[bucket] !== 'node-0').length;
  ensure(fromStayers <= spacingMovesMax(leaveNecessary.total), `a leave moved ${fromStayers} buckets the leaver did not hold`);
});

// The acceptance: with 100 nodes the most-loaded node owns at most 1.10 times the mean;
// a join or leave moves at most 1.1 times the ideal share of buckets, only to or from the changed
// node; weights are honoured within 10%. Load is counted as primary buckets, and as replica load
// for N = 3 (buckets whose first 3 distinct successors include the node), which spacing keeps as
// balanced. Weights are checked at 16384 buckets: at 1024, a node of weight 0.5 among 100 has
// about 3 buckets, and rounding alone exceeds 10%.
test('issue: 100 nodes within 1.10 of the mean, joins and leaves move at most 1.1 times their share, weights within 10%', () => {
  checkProperty(20, (random) => {
    const buckets = 1024;
    const options = { buckets, spacing: claimSpacingDefault };
    const nodes = randomMembers(random, 100, [1]);
    const owners = claim(null, nodes, options);

    const mean = buckets / nodes.length;
    const primaryMost = Math.max(...ownedCounts(owners).values());
    ensure(primaryMost <= 1.1 * mean, `a node owns ${primaryMost} buckets against a mean of ${mean}`);
    ensure(crowdedWindows(owners, claimSpacingDefault) === 0, 'spacing does not hold');
    const replicaMost = Math.max(...replicaLoad(owners, 3).values());
    ensure(replicaMost <= 1.1 * 3 * mean, `a node holds ${replicaMost} replicas against a mean of ${3 * mean}`);

    const joiner = { id: 'joiner:7000', weight: 1 };
    const joined = claim(owners, [...nodes, joiner], options);
    const movedIn = movedBuckets(owners, joined);
    ensure(movedIn.length <= (1.1 * buckets) / 101, `a join moved ${movedIn.length}`);
    ensure(movedIn.every((bucket) => joined[bucket] === joiner.id), 'a join moved a bucket to another node');

    const leaver = random.pick(nodes);
    const left = claim(owners, nodes.filter((m) => m !== leaver), options);
    const movedOut = movedBuckets(owners, left);
    ensure(movedOut.length <= (1.1 * buckets) / 100, `a leave moved ${movedOut.length}`);
    ensure(movedOut.every((bucket) => owners[bucket] === leaver.id), 'a leave moved a bucket of another node');

    const weighted = randomMembers(random, 100, weights);
    const fine = 16384;
    const counts = ownedCounts(claim(null, weighted, { buckets: fine, spacing: claimSpacingDefault }));
    for (const [id, share] of shares(weighted, fine)) {
      const error = Math.abs((counts.get(id) ?? 0) / share - 1);
      ensure(error <= 0.1, `${id} owns ${counts.get(id)} for a share of ${share.toFixed(1)}`);
    }
  });
});
