/**
 * The claimant core: how ring states merge, when the claimant plans, how a plan becomes the ring,
 * and how leave, remove and replace requests shape plans. Also the ring state's wire form.
 */
import {
  claimantOf,
  claimantStep,
  hasSwitched,
  initialRingState,
  isLeaving,
  markReceived,
  mergeRingStates,
  notReady,
  observe,
  cancelLeave,
  requestLeave,
  requestReplace,
  requestsMax,
  ringMemberIds,
  ringRole,
  transitionOf,
  type BucketMove,
  type ClusterMember,
  type ClusterView,
  type RingState,
} from '../../../src/claimant';
import { ringStateFromWire, ringStateToWire, type WireRingState } from '../../../src/claimant/wire';
import { membersMax } from '../../../src/membership';
import { preferenceList, ringFromOwners, type RingMember } from '../../../src/ring';
import { claim, claimSpacingDefault } from '../../../src/ring/claim';
import { checkProperty, ensure, Random } from '../../support/property';

const buckets = 64;
const replicas = 3;
const seedsPerProperty = 100;

function clusterMember(id: string, overrides: Partial<ClusterMember> = {}): ClusterMember {
  return { id, weight: 1, up: true, gone: false, incarnation: 0, ...overrides };
}

function viewOf(selfId: string, members: readonly ClusterMember[]): ClusterView {
  return { selfId, members, replicas };
}

function ringMembersNamed(...ids: string[]): RingMember[] {
  return ids.map((id) => ({ id, weight: 1 }));
}

/** A ring of `ids`, claimed afresh by the first, that every one of them has seen. */
function establishedRing(...ids: string[]): RingState {
  return ids.reduce(observe, initialRingState(ids[0], ringMembersNamed(...ids), buckets, ids[0]));
}

function seenByAll(state: RingState, ids: readonly string[]): RingState {
  return ids.reduce(observe, state);
}

/** The plan's moves, in bucket order. */
function movesOf(state: RingState): BucketMove[] {
  const transition = transitionOf(state, replicas);
  if (transition === undefined) throw new Error('no plan runs');
  return [...transition.moves.values()];
}

/** The state with every receiver of every move marked as holding its bucket, but for `skipped` moves. */
function markAllReceived(state: RingState, skipped = 0): RingState {
  let marked = state;
  for (const move of movesOf(state).slice(skipped)) {
    for (const receiver of move.receivers) marked = markReceived(marked, receiver, [move.bucket]);
  }
  return marked;
}

function claimed(previous: readonly string[], ...ids: string[]): string[] {
  return claim(previous, ringMembersNamed(...ids), { buckets, spacing: claimSpacingDefault });
}

/**
 * Object keys sorted at every level, so that states differing only in key order compare equal:
 * the merge builds its maps in the order of its arguments, and key order carries no meaning.
 */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : inner,
  );
}

function shown(state: RingState): string {
  return canonical({ ...state, members: state.members.map((m) => m.id), owners: state.owners.join(''), next: state.next?.join('') ?? null });
}

describe('mergeRingStates', () => {
  const pool = ['a', 'b', 'c', 'd'];
  const claimants = ['a', 'b'];
  const tableBuckets = 8;

  /**
   * The owner tables of a (version, claimant): one claimant makes one state per version, so two
   * views of the same version differ only in what grows within it (done, seenBy) and in requests.
   */
  function tablesOf(version: number, claimant: string): Pick<RingState, 'members' | 'owners' | 'next'> {
    const random = new Random(1000 + version * 10 + claimants.indexOf(claimant));
    const ids = pool.filter(() => random.chance(0.7));
    const owning = ids.length > 0 ? ids : ['a'];
    const owners = Array.from({ length: tableBuckets }, () => random.pick(owning));
    const next = random.chance(0.5) ? Array.from({ length: tableBuckets }, () => random.pick(pool)) : null;
    const members = ringMembersNamed(...[...new Set([...owners, ...(next ?? [])])].sort());
    return { members, owners, next };
  }

  function sortedSubset<T extends string | number>(random: Random, items: readonly T[], chance: number): T[] {
    return items.filter(() => random.chance(chance));
  }

  function randomState(random: Random): RingState {
    const version = random.int(0, 2);
    const claimant = random.pick(claimants);
    const allBuckets = Array.from({ length: tableBuckets }, (_, bucket) => bucket);
    const done: Record<string, number[]> = {};
    for (const id of sortedSubset(random, pool, 0.5)) done[id] = sortedSubset(random, allBuckets, 0.4);
    const leaving: Record<string, number> = {};
    for (const id of random.shuffle(sortedSubset(random, pool, 0.3))) leaving[id] = random.int(0, 3);
    const replacing: Record<string, string> = {};
    for (const old of random.shuffle(sortedSubset(random, pool, 0.2))) replacing[old] = random.pick(pool.filter((id) => id !== old));
    return { version, claimant, ...tablesOf(version, claimant), done, seenBy: sortedSubset(random, pool, 0.5), leaving, replacing };
  }

  // Merging is commutative, associative and idempotent over states of equal and different versions, with requests.
  test('property: mergeRingStates is a join', () => {
    checkProperty(seedsPerProperty * 4, (random) => {
      const [a, b, c] = [randomState(random), randomState(random), randomState(random)];
      const ab = mergeRingStates(a, b);
      ensure(canonical(ab) === canonical(mergeRingStates(b, a)), `not commutative: ${shown(a)} | ${shown(b)}`);
      ensure(
        canonical(mergeRingStates(ab, c)) === canonical(mergeRingStates(a, mergeRingStates(b, c))),
        `not associative: ${shown(a)} | ${shown(b)} | ${shown(c)}`,
      );
      ensure(canonical(mergeRingStates(a, a)) === canonical(a), `not idempotent: ${shown(a)}`);
      ensure(canonical(mergeRingStates(ab, b)) === canonical(ab), `merging again changed: ${shown(a)} | ${shown(b)}`);
    });
  });

  // The merge keeps the highest (version, claimant); within one version it keeps every mark of both; requests keep their highest value.
  test('property: the merge keeps the newest state and everything both sides reported', () => {
    checkProperty(seedsPerProperty * 4, (random) => {
      const [a, b] = [randomState(random), randomState(random)];
      const merged = mergeRingStates(a, b);
      const where = `${shown(a)} | ${shown(b)}`;
      const newest = a.version !== b.version ? (a.version > b.version ? a : b) : a.claimant >= b.claimant ? a : b;
      ensure(merged.version === newest.version && merged.claimant === newest.claimant, `${where}: not the newest`);
      const tables = (state: RingState): string => canonical([state.members, state.owners, state.next]);
      ensure(tables(merged) === tables(newest), `${where}: tables`);
      for (const side of [a, b]) {
        for (const [id, incarnation] of Object.entries(side.leaving)) {
          ensure(merged.leaving[id] >= incarnation, `${where}: lost leave of ${id}`);
        }
        for (const [old, replacement] of Object.entries(side.replacing)) {
          ensure(merged.replacing[old] >= replacement, `${where}: lost replace of ${old}`);
        }
        if (side.version !== merged.version || side.claimant !== merged.claimant) continue;
        ensure(side.seenBy.every((id) => merged.seenBy.includes(id)), `${where}: lost a seen mark`);
        for (const [id, done] of Object.entries(side.done)) {
          ensure(done.every((bucket) => merged.done[id].includes(bucket)), `${where}: lost a done mark`);
        }
      }
      for (const [old, replacement] of Object.entries(merged.replacing)) {
        ensure(replacement === a.replacing[old] || replacement === b.replacing[old], `${where}: invented a replacement`);
      }
    });
  });

  // Gossip may deliver the states of many nodes in any order: every order folds to the same state.
  test('property: any order of merges converges', () => {
    checkProperty(seedsPerProperty, (random) => {
      const states = Array.from({ length: random.int(2, 6) }, () => randomState(random));
      const folded = states.reduce(mergeRingStates);
      const shuffled = random.shuffle(states).reduce(mergeRingStates);
      ensure(canonical(folded) === canonical(shuffled), `order mattered: ${states.map(shown).join(' | ')}`);
    });
  });

  // Leave requests merge by the highest count (odd: asked out, even: asked back), and two replacements of one member settle on the larger id everywhere.
  test('requests merge across versions', () => {
    const older = requestReplace(requestLeave(establishedRing('a', 'b', 'c'), 'c'), 'b', 'e');
    const newer = requestReplace(cancelLeave({ ...older, version: 5 }, 'c'), 'b', 'd');
    const merged = mergeRingStates(older, newer);
    expect(merged.version).toBe(5);
    expect(merged.leaving).toEqual({ c: 2 });
    expect(merged.replacing).toEqual({ b: 'e' });
    expect(cancelLeave(merged, 'c')).toBe(merged);
    expect(requestLeave(merged, 'c').leaving).toEqual({ c: 3 });
    expect(requestLeave(requestLeave(merged, 'c'), 'c').leaving).toEqual({ c: 3 });
  });
});

describe('claimantStep', () => {
  // A fresh ring of one member plans the two joiners in: a new version whose next ring is the claim for all three.
  test('a fresh one-member ring plans its joiners in', () => {
    const state = initialRingState('a', ringMembersNamed('a'), buckets, 'a');
    const view = viewOf('a', ['a', 'b', 'c'].map((id) => clusterMember(id)));
    expect(claimantOf(state, view)).toBe('a');
    expect(notReady(state, view)).toBeUndefined();
    const plan = claimantStep(state, view);
    expect(plan).toEqual({
      version: 1,
      claimant: 'a',
      members: ringMembersNamed('a', 'b', 'c'),
      owners: state.owners,
      next: claimed(state.owners, 'a', 'b', 'c'),
      done: {},
      seenBy: ['a'],
      leaving: {},
      replacing: {},
    });
    expect(new Set(plan!.next)).toEqual(new Set(['a', 'b', 'c']));
    expect(ringRole(plan!, view, 'b')).toBe('joining');
    // Nothing more to plan until the plan is done.
    expect(claimantStep(seenByAll(plan!, ['b', 'c']), view)).toBeUndefined();
  });

  // Only confirmed members that are up and staying join: one that is down, gone or asked to leave waits outside.
  test('joiners are the up, staying members outside the ring', () => {
    const state = initialRingState('a', ringMembersNamed('a'), buckets, 'a');
    const view = viewOf('a', [
      clusterMember('a'),
      clusterMember('b', { up: false }),
      clusterMember('c', { gone: true }),
      clusterMember('d', { incarnation: 2 }),
      clusterMember('e'),
    ]);
    const plan = claimantStep(requestLeave(state, 'd'), view);
    expect(ringMemberIds(plan!)).toEqual(['a', 'e']);
    expect(claimantStep(state, viewOf('a', [clusterMember('a'), clusterMember('b', { up: false })]))).toBeUndefined();
  });

  // Only the claimant plans: the lowest id among the ring's members that are up and staying.
  test('only the lowest-id up staying ring member plans', () => {
    const state = establishedRing('a', 'b', 'c');
    const members = ['a', 'b', 'c', 'd'].map((id) => clusterMember(id));
    expect(claimantStep(state, viewOf('b', members))).toBeUndefined();
    expect(claimantStep(state, viewOf('d', members))).toBeUndefined();
    expect(claimantStep(state, viewOf('a', members))?.claimant).toBe('a');
    // With a asked to leave, b is the claimant, and its plan takes a out and d in.
    const aLeaving = requestLeave(state, 'a');
    expect(claimantOf(aLeaving, viewOf('a', members))).toBe('b');
    expect(claimantStep(aLeaving, viewOf('a', members))).toBeUndefined();
    const plan = claimantStep(aLeaving, viewOf('b', members));
    expect(plan?.claimant).toBe('b');
    expect(plan?.next).toEqual(claimed(state.owners, 'b', 'c', 'd'));
  });

  // The claimant waits until every staying member of the ring is up and has seen the current version.
  test('no plan until the ring is ready', () => {
    const unseen = initialRingState('a', ringMembersNamed('a', 'b'), buckets, 'a');
    const members = ['a', 'b', 'c'].map((id) => clusterMember(id));
    expect(notReady(unseen, viewOf('a', members))).toBe('b has not seen ring version 0');
    expect(claimantStep(unseen, viewOf('a', members))).toBeUndefined();
    const seen = observe(unseen, 'b');
    expect(claimantStep(seen, viewOf('a', members))?.next).toEqual(claimed(unseen.owners, 'a', 'b', 'c'));
  });

  // A ring member that is down, and not asked to leave, blocks every plan and the end of a plan.
  test('no plan while a ring member is down and not leaving', () => {
    const state = establishedRing('a', 'b', 'c');
    const members = [clusterMember('a'), clusterMember('b'), clusterMember('c', { up: false }), clusterMember('d')];
    expect(notReady(state, viewOf('a', members))).toBe('c is down');
    expect(claimantStep(state, viewOf('a', members))).toBeUndefined();
    // A member missing from the view altogether counts as down.
    expect(claimantStep(state, viewOf('a', [clusterMember('a'), clusterMember('b'), clusterMember('d')]))).toBeUndefined();

    const plan = claimantStep(state, viewOf('a', members.map((m) => ({ ...m, up: true }))))!;
    const finished = markAllReceived(seenByAll(plan, ['b', 'c', 'd']));
    expect(claimantStep(finished, viewOf('a', members))).toBeUndefined();
  });

  // When every receiver of every move holds its bucket, the plan becomes the ring: next null, version one up.
  test('a plan whose transfers are all marked becomes the ring', () => {
    const members = ['a', 'b', 'c'].map((id) => clusterMember(id));
    const view = viewOf('a', members);
    const plan = seenByAll(claimantStep(initialRingState('a', ringMembersNamed('a'), buckets, 'a'), view)!, ['b', 'c']);
    const moves = movesOf(plan);
    expect(moves.length).toBeGreaterThan(0);
    const allButOne = markAllReceived(plan, 1);
    expect(hasSwitched(allButOne, moves[0])).toBe(false);
    expect(claimantStep(allButOne, view)).toBeUndefined();
    const finished = markAllReceived(plan);
    expect(moves.every((move) => hasSwitched(finished, move))).toBe(true);
    expect(claimantStep(finished, view)).toEqual({
      version: plan.version + 1,
      claimant: 'a',
      members: ringMembersNamed('a', 'b', 'c'),
      owners: plan.next,
      next: null,
      done: {},
      seenBy: ['a'],
      leaving: {},
      replacing: {},
    });
  });

  // A leave request at the member's incarnation plans it out: the others claim its buckets, and when done it owns nothing.
  test('a leave request plans the member out', () => {
    const state = requestLeave(establishedRing('a', 'b', 'c'), 'c');
    const view = viewOf('a', ['a', 'b', 'c'].map((id) => clusterMember(id)));
    expect(isLeaving(state, view, 'c')).toBe(true);
    const plan = claimantStep(state, view)!;
    expect(plan.owners).toEqual(state.owners);
    expect(plan.next).toEqual(claimed(state.owners, 'a', 'b'));
    expect(plan.next).not.toContain('c');
    expect(plan.members.map((m) => m.id)).toEqual(['a', 'b', 'c']);
    expect(ringRole(plan, view, 'c')).toBe('leaving');
    const done = claimantStep(markAllReceived(seenByAll(plan, ['b', 'c'])), view)!;
    expect(done.next).toBeNull();
    expect(done.members.map((m) => m.id)).toEqual(['a', 'b']);
    expect(ringRole(done, view, 'c')).toBe('outside');
    // Having left, c does not come back as a joiner while the request holds.
    expect(claimantStep(observe(done, 'b'), view)).toBeUndefined();
  });

  // A member that restarts after a leave request (a higher incarnation) is staying again: the request no longer holds.
  test('a leave request holds until a join cancels it, whatever the incarnation', () => {
    const state = requestLeave(establishedRing('a', 'b', 'c'), 'c');
    // A higher incarnation (a refutation, or a restart) does not cancel the leave.
    const refuted = viewOf('a', [clusterMember('a'), clusterMember('b'), clusterMember('c', { incarnation: 1 })]);
    expect(isLeaving(state, refuted, 'c')).toBe(true);
    expect(claimantStep(state, refuted)?.next).not.toContain('c');
    expect(requestLeave(state, 'c')).toBe(state);
    // Once c is out of the ring it stays out, until a kai join on it cancels the request.
    const plan = claimantStep(state, refuted)!;
    const left = claimantStep(markAllReceived(seenByAll(plan, ['b', 'c'])), refuted)!;
    expect(left.owners).not.toContain('c');
    expect(ringRole(left, refuted, 'c')).toBe('outside');
    const rejoining = cancelLeave(left, 'c');
    expect(isLeaving(rejoining, refuted, 'c')).toBe(false);
    expect(ringRole(rejoining, refuted, 'c')).toBe('joining');
    expect(claimantStep(seenByAll(rejoining, ['a', 'b']), refuted)?.next).toContain('c');
  });

  // A member that is down and asked to leave (kai remove) no longer blocks readiness: the others plan it out.
  test('a removed member no longer blocks readiness', () => {
    const state = establishedRing('a', 'b', 'c');
    const view = viewOf('a', [clusterMember('a'), clusterMember('b'), clusterMember('c', { up: false })]);
    expect(notReady(state, view)).toBe('c is down');
    const removed = requestLeave(state, 'c');
    expect(notReady(removed, view)).toBeUndefined();
    const plan = claimantStep(removed, view)!;
    expect(plan.next).toEqual(claimed(state.owners, 'a', 'b'));
    // c neither needs to see the plan nor to receive anything for it to finish.
    const finished = markAllReceived(seenByAll(plan, ['b']));
    expect(claimantStep(finished, view)?.owners).toEqual(plan.next);

    // A removed member with the lowest id hands the claimant's part to the next.
    const lowestDown = viewOf('b', [clusterMember('a', { up: false }), clusterMember('b'), clusterMember('c')]);
    expect(claimantStep(requestLeave(state, 'a'), lowestDown)?.claimant).toBe('b');
  });

  // A replace request gives the new member exactly the old member's buckets, once the new member is up.
  test('a replace request substitutes old for new bucket for bucket', () => {
    const state = requestReplace(establishedRing('a', 'b', 'c'), 'c', 'd');
    const members = ['a', 'b', 'c'].map((id) => clusterMember(id));
    expect(claimantStep(state, viewOf('a', members))).toBeUndefined();
    expect(claimantStep(state, viewOf('a', [...members, clusterMember('d', { up: false })]))).toBeUndefined();
    // The old member may be down: it is on its way out and does not block.
    const view = viewOf('a', [clusterMember('a'), clusterMember('b'), clusterMember('c', { up: false }), clusterMember('d')]);
    const plan = claimantStep(state, view)!;
    expect(plan.next).toEqual(state.owners.map((owner) => (owner === 'c' ? 'd' : owner)));
    expect(plan.members.map((m) => m.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(ringRole(plan, view, 'c')).toBe('leaving');
    expect(ringRole(plan, view, 'd')).toBe('joining');
    const done = claimantStep(markAllReceived(seenByAll(plan, ['b', 'd'])), view)!;
    expect(done.members.map((m) => m.id)).toEqual(['a', 'b', 'd']);
    expect(claimantStep(seenByAll(done, ['b', 'd']), view)).toBeUndefined();
  });

  // A plan whose joining member is asked to leave is abandoned: the next version plans from the current owners, without it.
  test('a plan whose joiner is asked to leave is abandoned', () => {
    const start = establishedRing('a', 'b');
    const withC = ['a', 'b', 'c'].map((id) => clusterMember(id));
    const plan = seenByAll(claimantStep(start, viewOf('a', withC))!, ['b', 'c']);
    expect(plan.next).toContain('c');
    // Some of c's buckets have arrived already.
    const started = markReceived(plan, 'c', [movesOf(plan).find((move) => move.receivers.includes('c'))!.bucket]);
    const cLeaving = requestLeave(started, 'c');

    const view = viewOf('a', withC);
    const dropped = claimantStep(cLeaving, view)!;
    expect(dropped).toMatchObject({ version: plan.version + 1, owners: start.owners, next: null, done: {} });
    expect(ringMemberIds(dropped)).toEqual(['a', 'b']);

    // With another member waiting, the new plan takes it in from the current owners.
    const withD = viewOf('a', [...withC, clusterMember('d')]);
    const replanned = claimantStep(cLeaving, withD)!;
    expect(replanned).toMatchObject({ version: plan.version + 1, owners: start.owners, done: {} });
    expect(replanned.next).toEqual(claimed(start.owners, 'a', 'b', 'd'));
    // Without the leave, a plan already under way is not disturbed by the newcomer.
    expect(claimantStep(started, withD)).toBeUndefined();
  });

  /** A member of the simulated cluster, as the view shows it. */
  interface Simulated {
    readonly id: string;
    up: boolean;
    incarnation: number;
  }

  /**
   * One state shared by everyone (gossip at its fastest) and random events: joins, crashes and
   * returns, leave requests, restarts, transfers and views. Every member that is up runs the
   * claimant's step after each event.
   */
  function simulate(random: Random, steps: number): { state: RingState; cluster: Simulated[] } {
    const cluster: Simulated[] = [{ id: 'n0', up: true, incarnation: 0 }];
    let state = initialRingState('n0', ringMembersNamed('n0'), buckets, 'n0');
    const viewFrom = (selfId: string): ClusterView =>
      viewOf(
        selfId,
        cluster.map((m) => clusterMember(m.id, { up: m.up, incarnation: m.incarnation })),
      );
    const runSteps = (): void => {
      const planners: string[] = [];
      let next: RingState | undefined;
      for (const member of cluster.filter((m) => m.up)) {
        const view = viewFrom(member.id);
        const stepped = claimantStep(state, view);
        if (stepped === undefined) continue;
        planners.push(member.id);
        ensure(claimantOf(state, view) === member.id && notReady(state, view) === undefined, `${member.id} planned out of turn`);
        ensure(stepped.version === state.version + 1, 'a step raises the version by one');
        if (stepped.next !== null) {
          const leavingPlanned = stepped.next.filter((id) => isLeaving(state, view, id));
          ensure(leavingPlanned.length === 0, `planned ${leavingPlanned.join(',')} in while leaving`);
          const downPlanned = stepped.next.filter((id) => !cluster.find((m) => m.id === id)?.up);
          ensure(downPlanned.length === 0, `planned ${downPlanned.join(',')} in while down`);
        }
        next = stepped;
      }
      ensure(planners.length <= 1, `two claimants planned: ${planners.join(',')}`);
      if (next !== undefined) state = next;
    };
    for (let step = 0; step < steps; step++) {
      const ringIds = ringMemberIds(state);
      switch (random.int(0, 7)) {
        case 0:
          if (cluster.length < 8) cluster.push({ id: `n${cluster.length}`, up: true, incarnation: 0 });
          break;
        case 1: {
          const member = random.pick(cluster);
          if (member.up && cluster.filter((m) => m.up).length > 1) member.up = false;
          else member.up = true;
          break;
        }
        case 2: {
          // As `kai leave` asks, another member stays: here one of the ring being made, so that
          // the ring a plan finishes with always has a member left to plan.
          const id = random.pick(ringIds);
          const view = viewFrom(id);
          const stays = (other: string): boolean => other !== id && !isLeaving(state, view, other);
          if ((state.next ?? state.owners).some(stays)) state = requestLeave(state, id);
          break;
        }
        case 3: {
          const member = random.pick(cluster);
          member.incarnation++;
          member.up = true;
          break;
        }
        case 4:
        case 5:
          if (state.next !== null) {
            for (const move of movesOf(state)) {
              for (const receiver of move.receivers) if (random.chance(0.3)) state = markReceived(state, receiver, [move.bucket]);
            }
          }
          break;
        default:
          for (const member of cluster) if (member.up && random.chance(0.7)) state = observe(state, member.id);
      }
      runSteps();
    }
    // Quiet: everyone comes back, sees every version and receives every bucket, until nothing more is planned.
    for (const member of cluster) member.up = true;
    for (let round = 0; round < 20; round++) {
      state = seenByAll(state, cluster.map((m) => m.id));
      if (state.next !== null) state = markAllReceived(state);
      const before = state;
      runSteps();
      if (state === before) break;
    }
    return { state, cluster };
  }

  // Over random runs only the claimant plans, never one leaving in, and once quiet the ring is every staying member.
  test('property: plans are made in turn and converge on the staying members', () => {
    checkProperty(seedsPerProperty, (random) => {
      const { state, cluster } = simulate(random, 120);
      const view = viewOf(cluster[0].id, cluster.map((m) => clusterMember(m.id, { incarnation: m.incarnation })));
      const staying = cluster.filter((m) => !isLeaving(state, view, m.id)).map((m) => m.id).sort();
      ensure(state.next === null, `still planning at version ${state.version}: ${shown(state)}`);
      ensure(ringMemberIds(state).join(',') === staying.join(','), `ring ${ringMemberIds(state).join(',')}, staying ${staying.join(',')}`);
      ensure(state.members.map((m) => m.id).join(',') === staying.join(','), 'members are the owners');
    });
  });
});

describe('transitionOf', () => {
  // With no plan there is no transition.
  test('no plan, no transition', () => {
    expect(transitionOf(establishedRing('a', 'b'), replicas)).toBeUndefined();
  });

  // Moves are exactly the buckets whose replicas differ, and receivers are the new replicas that were not replicas before.
  test('a hand-made plan moves what changes', () => {
    const members = ringMembersNamed('a', 'b', 'c', 'd');
    const owners = ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b'];
    const next = ['a', 'b', 'd', 'a', 'b', 'c', 'd', 'b'];
    const state: RingState = { ...initialRingState('a', members, 8, 'a'), members, owners, next };
    const transition = transitionOf(state, 2)!;
    // Bucket 1: b,c -> b,d. Bucket 2: c,a -> d,a. Bucket 5: c,a -> c,d. Bucket 6: a,b -> d,b.
    expect([...transition.moves.values()]).toEqual([
      { bucket: 1, from: ['b', 'c'], to: ['b', 'd'], receivers: ['d'] },
      { bucket: 2, from: ['c', 'a'], to: ['d', 'a'], receivers: ['d'] },
      { bucket: 5, from: ['c', 'a'], to: ['c', 'd'], receivers: ['d'] },
      { bucket: 6, from: ['a', 'b'], to: ['d', 'b'], receivers: ['d'] },
    ]);
    expect(transition.current.owners).toEqual(owners);
    expect(transition.next.owners).toEqual(next);
  });

  // Over random plans, every bucket whose capped preference list differs moves, and its receivers are to minus from.
  test('property: moves are the changed lists and receivers are to minus from', () => {
    checkProperty(seedsPerProperty, (random) => {
      const pool = ['a', 'b', 'c', 'd', 'e', 'f'];
      const table = (): string[] => {
        const ids = random.shuffle(pool).slice(0, random.int(1, pool.length));
        return Array.from({ length: 16 }, () => random.pick(ids));
      };
      const owners = table();
      const next = table();
      const members = ringMembersNamed(...[...new Set([...owners, ...next])].sort());
      const state: RingState = { ...initialRingState(members[0].id, members, 16, members[0].id), members, owners, next };
      const n = random.int(1, 4);
      const transition = transitionOf(state, n)!;
      const current = ringFromOwners(members, owners, { buckets: 16 });
      const planned = ringFromOwners(members, next, { buckets: 16 });
      for (let bucket = 0; bucket < 16; bucket++) {
        const from = preferenceList(current, bucket, Math.min(n, new Set(owners).size));
        const to = preferenceList(planned, bucket, Math.min(n, new Set(next).size));
        const move = transition.moves.get(bucket);
        const where = `bucket ${bucket} n=${n} owners ${owners.join('')} next ${next.join('')}`;
        ensure((move !== undefined) === (from.join(',') !== to.join(',')), `${where}: moves ${move !== undefined}`);
        if (move === undefined) continue;
        ensure(move.from.join(',') === from.join(',') && move.to.join(',') === to.join(','), `${where}: lists`);
        ensure(move.receivers.join(',') === to.filter((id) => !from.includes(id)).join(','), `${where}: receivers ${move.receivers.join(',')}`);
      }
    });
  });

  // Reads switch once every receiver of the bucket holds it, and marks for other buckets do not count.
  test('hasSwitched needs every receiver of the bucket', () => {
    const members = ringMembersNamed('a', 'b', 'c', 'd');
    const state: RingState = { ...initialRingState('a', members, 4, 'a'), members, owners: ['a', 'a', 'b', 'b'], next: ['c', 'd', 'b', 'b'] };
    const move = transitionOf(state, 2)!.moves.get(0)!;
    expect(move).toEqual({ bucket: 0, from: ['a', 'b'], to: ['c', 'd'], receivers: ['c', 'd'] });
    expect(hasSwitched(state, move)).toBe(false);
    const cOnly = markReceived(state, 'c', [0]);
    expect(hasSwitched(cOnly, move)).toBe(false);
    expect(hasSwitched(markReceived(cOnly, 'd', [1]), move)).toBe(false);
    expect(hasSwitched(markReceived(cOnly, 'd', [0, 1]), move)).toBe(true);
    // A move that only reorders replicas has no receivers and has switched from the start.
    expect(hasSwitched(state, { bucket: 3, from: ['b', 'a'], to: ['a', 'b'], receivers: [] })).toBe(true);
  });

  // Marks only grow and stay sorted; a mark already held returns the same state.
  test('markReceived keeps done sorted and distinct', () => {
    const plan = seenByAll(
      claimantStep(initialRingState('a', ringMembersNamed('a'), buckets, 'a'), viewOf('a', ['a', 'b'].map((id) => clusterMember(id))))!,
      ['b'],
    );
    const marked = markReceived(markReceived(plan, 'b', [9, 3]), 'b', [3, 5]);
    expect(marked.done).toEqual({ b: [3, 5, 9] });
    expect(markReceived(marked, 'b', [5])).toBe(marked);
    expect(() => markReceived(establishedRing('a'), 'b', [1])).toThrow(/assertion failed/);
  });
});

describe('ring state wire form', () => {
  /** A state in the middle of a plan, with marks and requests: every field set. */
  function busyState(): RingState {
    const view = viewOf('a', [clusterMember('a'), clusterMember('b', { zone: 'z2' }), clusterMember('c')]);
    const plan = claimantStep(initialRingState('a', ringMembersNamed('a'), buckets, 'a'), view)!;
    const marked = markReceived(markReceived(observe(plan, 'b'), 'b', [1, 4]), 'c', [2]);
    return requestReplace(requestLeave(marked, 'e'), 'c', 'f');
  }

  function throughJson(value: unknown): unknown {
    return JSON.parse(JSON.stringify(value)) as unknown;
  }

  // A state written to the wire and read back, through JSON, is the same state.
  test('ringStateToWire then ringStateFromWire round-trips', () => {
    for (const state of [establishedRing('a'), establishedRing('a', 'b', 'c'), busyState()]) {
      const back = ringStateFromWire(throughJson(ringStateToWire(state)), buckets);
      expect(back).toEqual({ ok: true, state });
    }
  });

  // Random states, with zones, weights and plans, survive the round trip.
  test('property: random states round-trip', () => {
    checkProperty(seedsPerProperty, (random) => {
      const ids = random.shuffle(['a:1', 'b:1', 'c:1', 'd:1', 'e:1']).slice(0, random.int(1, 5)).sort();
      const members: RingMember[] = ids.map((id) =>
        random.chance(0.5) ? { id, weight: random.pick([0.5, 1, 2]), zone: random.pick(['x', 'y']) } : { id, weight: 1 },
      );
      // Each member owns at least one bucket, as the wire form requires.
      const owners = ids.concat(Array.from({ length: buckets - ids.length }, () => random.pick(ids)));
      const next = random.chance(0.5) ? random.shuffle(owners) : null;
      const done: Record<string, number[]> = {};
      const allBuckets = Array.from({ length: buckets }, (_, bucket) => bucket);
      for (const id of ids) if (random.chance(0.5)) done[id] = allBuckets.filter(() => random.chance(0.2));
      const state: RingState = {
        version: random.int(0, 1000),
        claimant: random.pick(ids),
        members,
        owners,
        next,
        done,
        seenBy: ids.filter(() => random.chance(0.5)),
        leaving: random.chance(0.5) ? { [random.pick(ids)]: random.int(0, 9) } : {},
        replacing: random.chance(0.5) ? { [ids[0]]: 'z:1' } : {},
      };
      const back = ringStateFromWire(throughJson(ringStateToWire(state)), buckets);
      ensure(back.ok, `refused: ${back.ok ? '' : back.reason}`);
      ensure(canonical(back.state) === canonical(state), `changed: ${shown(state)} -> ${shown(back.state)}`);
    });
  });

  type Mutable = { -readonly [K in keyof WireRingState]: unknown };

  /** `table` (owner indexes) with `bucket`'s entry set to `index`. */
  function withIndexAt(table: unknown, bucket: number, index: unknown): unknown[] {
    return (table as unknown[]).map((entry, at) => (at === bucket ? index : entry));
  }

  /** Each member triple of `wire` changed by `change`. */
  function eachMember(wire: Mutable, change: (member: unknown[]) => unknown[]): unknown[] {
    return (wire.members as unknown[][]).map(change);
  }

  const invalid: Array<[string, (wire: Mutable) => unknown]> = [
    ['not a map', () => null],
    ['an array', () => []],
    ['a negative version', (wire) => ({ ...wire, version: -1 })],
    ['a fractional version', (wire) => ({ ...wire, version: 1.5 })],
    ['an empty claimant', (wire) => ({ ...wire, claimant: '' })],
    ['no members', (wire) => ({ ...wire, members: [] })],
    ['unsorted members', (wire) => ({ ...wire, members: [...(wire.members as unknown[])].reverse() })],
    ['repeated members', (wire) => ({ ...wire, members: [(wire.members as unknown[])[0], ...(wire.members as unknown[])] })],
    ['a member not a triple', (wire) => ({ ...wire, members: [['a', 1]] })],
    ['a member of weight 0', (wire) => ({ ...wire, members: eachMember(wire, ([id, , zone]) => [id, 0, zone]) })],
    ['a member id too long', (wire) => ({ ...wire, members: [['x'.repeat(256), 1, '']] })],
    ['a zone too long', (wire) => ({ ...wire, members: eachMember(wire, ([id, weight]) => [id, weight, 'z'.repeat(65)]) })],
    ['too many members', (wire) => ({ ...wire, members: Array.from({ length: membersMax + 1 }, (_, i) => [`m${1000 + i}`, 1, '']) })],
    ['too few owners', (wire) => ({ ...wire, owners: (wire.owners as number[]).slice(1) })],
    ['too many owners', (wire) => ({ ...wire, owners: [...(wire.owners as number[]), 0] })],
    // Three members: index 3 is past the end.
    ['an owner index out of range', (wire) => ({ ...wire, owners: withIndexAt(wire.owners, 5, 3) })],
    ['a negative owner index', (wire) => ({ ...wire, owners: withIndexAt(wire.owners, 5, -1) })],
    ['a fractional owner index', (wire) => ({ ...wire, owners: withIndexAt(wire.owners, 5, 0.5) })],
    ['a planned owner out of range', (wire) => ({ ...wire, next: withIndexAt(wire.next, 0, 9) })],
    ['a plan of the wrong length', (wire) => ({ ...wire, next: [0] })],
    ['no plan field', (wire) => ({ ...wire, next: undefined })],
    ['a member that owns nothing', (wire) => ({ ...wire, members: [...(wire.members as unknown[]), ['z', 1, '']] })],
    ['done buckets unsorted', (wire) => ({ ...wire, done: [['b', [4, 1]]] })],
    ['done buckets repeated', (wire) => ({ ...wire, done: [['b', [1, 1]]] })],
    ['a done bucket out of range', (wire) => ({ ...wire, done: [['b', [buckets]]] })],
    ['a negative done bucket', (wire) => ({ ...wire, done: [['b', [-1]]] })],
    ['a done list longer than the buckets', (wire) => ({ ...wire, done: [['b', Array.from({ length: buckets + 1 }, (_, i) => i)]] })],
    ['a done entry not a pair', (wire) => ({ ...wire, done: [['b']] })],
    ['too many done entries', (wire) => ({ ...wire, done: Array.from({ length: membersMax + 1 }, (_, i) => [`m${i}`, []]) })],
    ['seenBy not a list', (wire) => ({ ...wire, seenBy: 'a' })],
    ['an empty id in seenBy', (wire) => ({ ...wire, seenBy: [''] })],
    ['seenBy too long', (wire) => ({ ...wire, seenBy: Array.from({ length: membersMax + 1 }, (_, i) => `m${i}`) })],
    ['a negative incarnation', (wire) => ({ ...wire, leaving: [['e', -1]] })],
    ['too many leave requests', (wire) => ({ ...wire, leaving: Array.from({ length: requestsMax + 1 }, (_, i) => [`m${i}`, 0]) })],
    ['a replacement that is no id', (wire) => ({ ...wire, replacing: [['c', 7]] })],
    ['too many replacements', (wire) => ({ ...wire, replacing: Array.from({ length: requestsMax + 1 }, (_, i) => [`m${i}`, 'x']) })],
  ];

  // Each kind of damage is refused with a reason, as a value: a bad state from a peer or a disk is input, not a crash.
  test.each(invalid)('refuses %s', (_name, damage) => {
    const wire = throughJson(ringStateToWire(busyState())) as Mutable;
    const result = ringStateFromWire(damage(wire), buckets);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(/^ring state: \S/);
  });

  // A state cut into another number of buckets is refused.
  test('refuses a state of another bucket count', () => {
    const result = ringStateFromWire(throughJson(ringStateToWire(establishedRing('a', 'b'))), buckets * 2);
    expect(result).toEqual({ ok: false, reason: `ring state: not one owner for each of ${buckets * 2} buckets` });
  });

  // Random damage anywhere in a valid state never throws, and what passes holds together.
  test('property: ringStateFromWire never throws', () => {
    const junk: unknown[] = [null, -1, 0, 1.5, 2 ** 60, '', 'a', 'x'.repeat(300), [], [0], [[]], {}, { a: 1 }, true, Number.NaN];
    checkProperty(seedsPerProperty * 4, (random) => {
      const wire = throughJson(ringStateToWire(busyState()));
      let damaged: unknown = wire;
      for (let hits = random.int(1, 3); hits > 0; hits--) damaged = damageAt(random, damaged, random.pick(junk));
      let result;
      try {
        result = ringStateFromWire(damaged, buckets);
      } catch (error) {
        throw new Error(`threw on ${JSON.stringify(damaged).slice(0, 300)}: ${String(error)}`);
      }
      if (!result.ok) {
        ensure(result.reason.startsWith('ring state: '), `reason ${result.reason}`);
        return;
      }
      const { state } = result;
      const ids = new Set(state.members.map((m) => m.id));
      ensure(state.owners.length === buckets && state.owners.every((id) => ids.has(id)), 'owners are members');
      ensure(state.next === null || (state.next.length === buckets && state.next.every((id) => ids.has(id))), 'planned owners are members');
    });
  });
});

/** `value` with one element, somewhere inside, replaced by `replacement`. */
function damageAt(random: Random, value: unknown, replacement: unknown): unknown {
  if (value === null || typeof value !== 'object' || random.chance(0.25)) return replacement;
  if (Array.isArray(value)) {
    if (value.length === 0) return replacement;
    const index = random.int(0, value.length - 1);
    const copy = [...value];
    copy[index] = damageAt(random, copy[index], replacement);
    return copy;
  }
  const keys = Object.keys(value);
  if (keys.length === 0) return replacement;
  const key = random.pick(keys);
  return { ...(value as Record<string, unknown>), [key]: damageAt(random, (value as Record<string, unknown>)[key], replacement) };
}

describe('first rings', () => {
  // A fresh node's first ring has no claimant, so the ring of any cluster it meets wins over it.
  test('an unfounded first ring loses to a founded one', () => {
    const fresh = initialRingState('z', ringMembersNamed('z'), buckets);
    const founded = initialRingState('a', ringMembersNamed('a'), buckets, 'a');
    expect(mergeRingStates(fresh, founded).owners).toEqual(founded.owners);
    expect(mergeRingStates(founded, fresh).owners).toEqual(founded.owners);
  });

  // A node alone with no seed to wait for founds its ring; one still waiting, or not alone, does not.
  test('a node alone founds its ring', () => {
    const fresh = initialRingState('a', ringMembersNamed('a'), buckets);
    const alone = { ...viewOf('a', [clusterMember('a')]), alone: true };
    const founded = claimantStep(fresh, alone)!;
    expect(founded.version).toBe(1);
    expect(founded.claimant).toBe('a');
    expect(founded.owners).toEqual(fresh.owners);
    expect(claimantStep(fresh, { ...alone, alone: false })).toBeUndefined();
  });

  // Fresh nodes linked before either founded a ring: the one with the lowest id among those up
  // founds it, once it waits for no seed; the other waits for that ring; a lower id that is down
  // does not hold the others back.
  test('fresh nodes linked before founding: the lowest id up founds the ring', () => {
    const members = [clusterMember('a'), clusterMember('b'), clusterMember('c')];
    const freshA = initialRingState('a', ringMembersNamed('a'), buckets);
    const freshB = initialRingState('b', ringMembersNamed('b'), buckets);
    const founded = claimantStep(freshA, { ...viewOf('a', members), seedsHeard: true })!;
    expect(founded.version).toBe(1);
    expect(founded.claimant).toBe('a');
    expect(claimantStep(freshA, { ...viewOf('a', members), seedsHeard: false })).toBeUndefined();
    expect(claimantStep(freshB, { ...viewOf('b', members), seedsHeard: true })).toBeUndefined();
    const aDown = [clusterMember('a', { up: false }), clusterMember('b'), clusterMember('c')];
    expect(claimantStep(freshB, { ...viewOf('b', aDown), seedsHeard: true })?.claimant).toBe('b');
    // b takes a's founded ring as it arrives, and is a joiner of it.
    expect(mergeRingStates(freshB, founded).claimant).toBe('a');
  });
});
