/**
 * The bucket claim: which member owns each bucket. Pure, after Dynamo's third partitioning strategy
 * (equal buckets, a fixed number of them, assigned to members) as Riak's claimant runs it.
 *
 * Three aims, in this order:
 * - Balance. Each member owns its weight share of the buckets, rounded to a neighbouring integer.
 * - Little movement. Buckets change owner only to bring members to their targets: a join takes
 *   buckets from members above their new target, a leave hands out the leaver's buckets, and
 *   nothing else moves, with two small exceptions. When a member's share falls past a whole
 *   number, it may have to give up a bucket that the joiners' rounded targets leave to a member
 *   that stays. And to keep spacing, a claim may move up to 1/20 of its moves between members
 *   that stay (see `repair`).
 * - Spacing. Any `spacing` consecutive buckets have distinct owners, so the first N distinct owners
 *   walking from a bucket are its next N buckets' owners for every N up to `spacing`: each replica
 *   set is as balanced as the primaries, and a member's failure spreads its load over many others.
 *   Spacing gives way to balance when the members cannot allow both (fewer members than `spacing`,
 *   or a member whose share is above 1/`spacing`); even then each bucket is placed as far as it can
 *   be from the same member's other buckets.
 *
 * Zones are not considered here: the preference list spreads replicas over zones as it walks.
 */
// Only types come from ./index: it imports this module, and a value import would be circular.
import { assert } from '../errors';
import type { RingMember } from './index';

export interface ClaimOptions {
  /** The length of the owner table. */
  readonly buckets: number;
  /** Any `spacing` consecutive buckets (cyclically) should have distinct owners, when the members allow it. */
  readonly spacing: number;
}

/** The spacing a claim keeps by default: room for N up to 4 (Riak's target_n_val). */
export const claimSpacingDefault = 4;
/** Each placement looks `spacing - 1` buckets each way, so the window is bounded to keep a claim cheap. */
export const claimSpacingMax = 64;

/**
 * How much searching the repair of spacing may do, in buckets looked at per bucket of the table:
 * enough for the few placements the scans leave, and a bound on a claim's cost when spacing cannot
 * be kept anyway.
 */
const repairVisitsPerBucket = 16;
/** How far from a bucket the repair looks for one to swap with: swaps stay local, and cheap. */
const repairRadius = 64;
/**
 * The share of a claim's necessary moves that the repair may add by moving buckets between members
 * that stay: enough for the few a leave needs, and small enough that a claim moves little more than
 * it must (the movement bound is 1.1 times the ideal, rounding included).
 */
const costlySwapShareMax = 1 / 20;

/** A bucket without an owner while the claim runs: the leavers' buckets and those a member gives up. */
const unowned = -1;

function byId(a: RingMember, b: RingMember): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function assertValidClaim(
  previous: readonly string[] | null,
  members: readonly RingMember[],
  options: ClaimOptions,
): void {
  // The ring bounds the bucket count (bucketsMax); this module cannot import the value (see above).
  assert(Number.isInteger(options.buckets) && options.buckets > 0, 'bucket count is a positive integer');
  assert(
    Number.isInteger(options.spacing) && options.spacing >= 1 && options.spacing <= claimSpacingMax,
    'spacing within 1..claimSpacingMax',
  );
  assert(members.length > 0, 'a claim needs at least one member');
  assert(new Set(members.map((m) => m.id)).size === members.length, 'member ids are distinct');
  assert(members.every((m) => Number.isFinite(m.weight) && m.weight > 0), 'member weights are positive');
  assert(previous === null || previous.length === options.buckets, 'an owner for each bucket in the previous table');
}

/**
 * Each member's number of buckets: its weight share of `buckets`, rounded down or up so that the
 * counts add up to `buckets` (largest remainder, ties by id).
 *
 * `kept` (by position in `sorted`; null for a new ring) is what each member owns now. Who rounds up
 * is then chosen so as to move as little as possible: first members that already own more than
 * their share rounded down (rounding them up costs nothing), then members that receive buckets
 * anyway or are new, and only then members that would otherwise keep exactly what they have. Plain
 * largest remainder would, on a join, round up some member that stays and hand it a bucket that
 * had no reason to move.
 */
function targetsOf(sorted: readonly RingMember[], buckets: number, kept: readonly number[] | null): number[] {
  const weightTotal = sorted.reduce((sum, m) => sum + m.weight, 0);
  const shares = sorted.map((m) => (buckets * m.weight) / weightTotal);
  const targets = shares.map((share) => Math.floor(share));
  const roundUps = buckets - targets.reduce((sum, target) => sum + target, 0);
  assert(roundUps >= 0 && roundUps <= sorted.length, 'rounded shares within one of the total');
  const tier = (i: number): number => {
    if (kept === null) return 1;
    if (kept[i] > targets[i]) return 0;
    if (kept[i] < targets[i] || kept[i] === 0) return 1;
    return 2;
  };
  const order = sorted.map((_, i) => i);
  // Members whose share is a whole number come last: rounding them up would overshoot the share.
  const remainder = (i: number): number => shares[i] - targets[i];
  order.sort((a, b) => {
    const fractional = Number(remainder(b) > 0) - Number(remainder(a) > 0);
    return fractional || tier(a) - tier(b) || remainder(b) - remainder(a) || a - b;
  });
  for (let k = 0; k < roundUps; k++) targets[order[k]]++;
  return targets;
}

/**
 * Each member's number of buckets for `members`, as `claim` computes it. `previous` may sway who
 * rounds up (see targetsOf); every target is its weight share of `buckets` rounded down or up.
 */
export function claimTargets(
  previous: readonly string[] | null,
  members: readonly RingMember[],
  buckets: number,
): Map<string, number> {
  assertValidClaim(previous, members, { buckets, spacing: 1 });
  const sorted = [...members].sort(byId);
  const kept = previous === null ? null : keptCounts(previous, sorted);
  const targets = targetsOf(sorted, buckets, kept);
  return new Map(sorted.map((m, i) => [m.id, targets[i]]));
}

function keptCounts(previous: readonly string[], sorted: readonly RingMember[]): number[] {
  const indexOf = new Map(sorted.map((m, i) => [m.id, i]));
  const kept = new Array<number>(sorted.length).fill(0);
  for (const id of previous) {
    const i = indexOf.get(id);
    if (i !== undefined) kept[i]++;
  }
  return kept;
}

/** A binary min-heap under `before`, which must be a strict total order so that every node pops alike. */
class Heap<T> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let child = items.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!this.before(items[child], items[parent])) break;
      [items[child], items[parent]] = [items[parent], items[child]];
      child = parent;
    }
  }

  pop(): T {
    const items = this.items;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let parent = 0;
      for (;;) {
        const left = 2 * parent + 1;
        const right = left + 1;
        let first = parent;
        if (left < items.length && this.before(items[left], items[first])) first = left;
        if (right < items.length && this.before(items[right], items[first])) first = right;
        if (first === parent) break;
        [items[first], items[parent]] = [items[parent], items[first]];
        parent = first;
      }
    }
    return top;
  }
}

/**
 * A member waiting in a scan, as it was when queued: `gained` is how many buckets it had taken in
 * the scan then, so an entry is stale once the member takes another.
 */
interface Waiting {
  readonly member: number;
  readonly gained: number;
  /** The last bucket at which it can take its next one and still keep spacing with its first. */
  readonly deadline: number;
  /** When it is due, as a fraction of the way round. */
  readonly due: number;
  /** shuffleKey of the member and round: orders members due together. */
  readonly shuffle: number;
}

/** FNV-1a over the id's UTF-16 code units: a number that depends on the id alone. */
function idHash(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/**
 * A pseudo-random number from a member's id hash and its round (how many buckets it has taken in
 * the scan): it jitters due times and orders members due at the same time, differently in every
 * round. It depends on the id, not on the member's place in the list, so others joining or leaving
 * do not change it. In a fixed order every bucket of a member would sit between the same
 * neighbours: its replicas would always be the same few members, a failure would fall on those
 * few, and the buckets a leaver frees would all lie beside the same members, which spacing then
 * keeps from taking them.
 */
function shuffleKey(hash: number, round: number): number {
  let mixed = (hash ^ Math.imul(round + 1, 0x9e3779b9)) >>> 0;
  // murmur3's finaliser: every input bit affects every output bit.
  mixed = Math.imul(mixed ^ (mixed >>> 16), 0x85ebca6b);
  mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35);
  return (mixed ^ (mixed >>> 16)) >>> 0;
}

/** Which buckets a scan may hand out: unowned ones, those of members above their target, or both. */
type Source = 'unowned' | 'surplus' | 'both';

/** The claim in progress, members by their position in the id-sorted list. */
class ClaimState {
  readonly buckets: number;
  /** The spacing the claim keeps where it can. */
  readonly spacing: number;
  /** Buckets each member still needs to reach its target. */
  readonly deficit: Int32Array;
  /** Buckets each member still has beyond its target. */
  readonly surplus: Int32Array;
  /** Each member's idHash, for shuffleKey. */
  readonly idHashes: Uint32Array;
  /** 1 for each member that owns no bucket of the previous table. */
  readonly joining: Uint8Array;
  /** The member that releaseCrowded took each bucket from, or `unowned`. */
  readonly released: Int32Array;
  /** 1 for each bucket handed to a new owner in this claim. */
  readonly movedAlready: Uint8Array;
  /** How many more swaps the repair may make that move a bucket between members that stay. */
  costlySwaps: number;

  constructor(
    readonly owners: Int32Array,
    spacing: number,
    sorted: readonly RingMember[],
    targets: readonly number[],
    kept: readonly number[],
  ) {
    this.buckets = owners.length;
    this.spacing = spacing;
    this.idHashes = Uint32Array.from(sorted, (m) => idHash(m.id));
    this.movedAlready = new Uint8Array(this.buckets);
    this.released = new Int32Array(this.buckets).fill(unowned);
    this.joining = Uint8Array.from(kept, (count) => (count === 0 ? 1 : 0));
    this.deficit = Int32Array.from(targets, (target, i) => Math.max(0, target - kept[i]));
    this.surplus = Int32Array.from(targets, (target, i) => Math.max(0, kept[i] - target));
    this.costlySwaps = Math.ceil(this.deficitTotal() * costlySwapShareMax);
  }

  deficitTotal(): number {
    return this.deficit.reduce((sum, d) => sum + d, 0);
  }

  /** Whether `member` owns none of the `gap - 1` buckets on either side of `bucket`. */
  isClear(member: number, bucket: number, gap: number): boolean {
    const { owners, buckets } = this;
    for (let step = 1; step < gap; step++) {
      if (owners[(bucket + step) % buckets] === member) return false;
      if (owners[(((bucket - step) % buckets) + buckets) % buckets] === member) return false;
    }
    return true;
  }

  /**
   * A member above its target offers first the buckets that break spacing: one of each pair of
   * its buckets closer than `gap`. This mends an old table (one claimed when spacing could not
   * hold) with buckets that would move anyway.
   */
  releaseCrowded(gap: number): void {
    const { owners, buckets, surplus } = this;
    for (let bucket = 0; bucket < buckets; bucket++) {
      const owner = owners[bucket];
      if (owner === unowned || surplus[owner] === 0) continue;
      for (let step = 1; step < gap; step++) {
        const other = (bucket + step) % buckets;
        if (other !== bucket && owners[other] === owner) {
          owners[bucket] = unowned;
          this.released[bucket] = owner;
          surplus[owner]--;
          break;
        }
      }
    }
  }

  /**
   * Gives back to their members the buckets releaseCrowded offered that nobody could take at full
   * spacing, so that they do not have to be placed at a smaller gap: the members short of their
   * target take other buckets instead.
   */
  restoreReleased(): void {
    const { owners, released } = this;
    for (let bucket = 0; bucket < this.buckets; bucket++) {
      if (owners[bucket] !== unowned || released[bucket] === unowned) continue;
      owners[bucket] = released[bucket];
      this.surplus[released[bucket]]++;
    }
  }

  /**
   * One pass over the table, handing the buckets that `source` allows to members short of their
   * target: each to the member due first among those that keep `gap` there. A member that needs
   * `need` buckets in the pass is due for its (g+1)-th at about (g + 1/2) / need of the way round,
   * so taking the earliest due spreads each member's buckets evenly, the way Webster's
   * apportionment spreads seats. When `paced`, a bucket moves only to a member that is due by
   * then, so new buckets spread around the ring instead of gathering where the pass starts. A
   * bucket nobody can take at this gap stays as it is, for a later pass at a smaller gap.
   *
   * Each due time moves by a pseudo-random jitter (shuffleKey) within the member's slack: the part
   * of its period, B / need, beyond `gap`, so its dues stay at least `gap` apart. Without it,
   * members of equal weight are due together in every round and come out in the same order, each
   * always between the same neighbours (see shuffleKey for why that hurts); a heavy member would
   * always sit beside the other heavy ones.
   *
   * Over a table that is entirely unowned (a new ring), the end of the pass must also fit before
   * each member's first bucket, which comes round again. A member whose remaining buckets, `gap`
   * apart, would no longer fit if it waited goes before any other: without that, a member with
   * close to 1/`gap` of the buckets ends the pass with two of them too close.
   */
  scan(source: Source, gap: number, paced: boolean, joinersOnly = false): void {
    const { owners, buckets, deficit } = this;
    const gained = new Int32Array(deficit.length);
    const need = Int32Array.from(deficit);
    const first = new Int32Array(deficit.length).fill(unowned);
    const withDeadlines = source !== 'surplus' && owners.every((owner) => owner === unowned);
    const isStale = (entry: Waiting): boolean => entry.gained !== gained[entry.member] || deficit[entry.member] === 0;
    const byDue = new Heap<Waiting>((a, b) => {
      if (a.due !== b.due) return a.due < b.due;
      return a.shuffle !== b.shuffle ? a.shuffle < b.shuffle : a.member < b.member;
    });
    const jitter = Float64Array.from(need, (n) => Math.max(0, 1 - (n * gap) / buckets));
    const urgent = new Heap<Waiting>(
      (a, b) => a.deadline < b.deadline || (a.deadline === b.deadline && a.member < b.member),
    );
    const enqueue = (member: number): void => {
      const deadline = first[member] === unowned ? buckets : first[member] + buckets - deficit[member] * gap;
      const shuffle = shuffleKey(this.idHashes[member], gained[member]);
      const offset = 0.5 + jitter[member] * (shuffle / 2 ** 32 - 0.5);
      const due = (gained[member] + offset) / need[member];
      const entry = { member, gained: gained[member], deadline, due, shuffle };
      byDue.push(entry);
      if (withDeadlines && first[member] !== unowned) urgent.push(entry);
    };
    for (let member = 0; member < deficit.length; member++) {
      if (deficit[member] > 0 && (!joinersOnly || this.joining[member] === 1)) enqueue(member);
    }
    const blocked: Waiting[] = [];
    /** The first clear member from `queue` while `ready` holds for its top; the others wait again. */
    const takeFrom = (queue: Heap<Waiting>, bucket: number, ready: (entry: Waiting) => boolean): number => {
      let taker = unowned;
      while (queue.size > 0) {
        const entry = queue.peek();
        if (isStale(entry)) {
          queue.pop();
          continue;
        }
        if (!ready(entry)) break;
        queue.pop();
        if (this.isClear(entry.member, bucket, gap)) {
          taker = entry.member;
          break;
        }
        blocked.push(entry);
      }
      // At most 2 (gap - 1) members are blocked at one bucket: those owning its neighbours.
      for (const entry of blocked) queue.push(entry);
      blocked.length = 0;
      return taker;
    };
    const isDue = (bucket: number) => (entry: Waiting) => !paced || entry.due * buckets < bucket + 1;
    for (let bucket = 0; bucket < buckets && byDue.size > 0; bucket++) {
      const owner = owners[bucket];
      const free = owner === unowned;
      if (free ? source === 'surplus' : source === 'unowned' || this.surplus[owner] === 0) continue;
      let taker = withDeadlines ? takeFrom(urgent, bucket, (entry) => entry.deadline <= bucket) : unowned;
      if (taker === unowned) taker = takeFrom(byDue, bucket, isDue(bucket));
      if (taker === unowned) continue;
      this.hand(bucket, taker);
      gained[taker]++;
      if (first[taker] === unowned) first[taker] = bucket;
      if (deficit[taker] > 0) enqueue(taker);
    }
  }

  /** Gives `bucket`, unowned or of a member above its target, to `taker`, a member short of its own. */
  private hand(bucket: number, taker: number): void {
    const owner = this.owners[bucket];
    if (owner !== unowned) this.surplus[owner]--;
    this.owners[bucket] = taker;
    this.deficit[taker]--;
    this.movedAlready[bucket] = 1;
  }

  /**
   * Places what the scans could not at this gap. A bucket still to hand out may be too close to
   * every member short of its target, while a bucket nearby suits one of them and its owner could
   * as well take the first. Swapping the two costs no movement when that other bucket was handed
   * out in this claim, since both move in any case: this fills the last buckets of a new table,
   * where the greedy scan has little choice left. Otherwise the swap moves a bucket between two
   * members that stay, which only full spacing justifies (`costlyAllowed`), and at most
   * `costlySwaps` times: when the buckets a leaver frees sit beside the members that need them,
   * those members could take none of them.
   */
  repair(gap: number, costlyAllowed: boolean): void {
    const { owners, buckets, deficit, surplus } = this;
    let visitsLeft = repairVisitsPerBucket * buckets;
    for (const costly of costlyAllowed ? [false, true] : [false]) {
      for (let bucket = 0; bucket < buckets && visitsLeft > 0; bucket++) {
        if (costly && this.costlySwaps === 0) return;
        const owner = owners[bucket];
        if (owner !== unowned && surplus[owner] === 0) continue;
        for (let short = 0; short < deficit.length && visitsLeft > 0; short++) {
          if (deficit[short] === 0) continue;
          const swapped = this.swapInto(bucket, short, gap, costly);
          visitsLeft -= swapped.visits;
          if (swapped.done) break;
        }
      }
    }
  }

  /**
   * Looks within `repairRadius` of `bucket` for a bucket that `short` can take at this gap if its
   * owner takes `bucket` instead at full spacing, and makes that swap. Unless `costly`, only buckets already
   * handed out in this claim are looked at.
   */
  private swapInto(bucket: number, short: number, gap: number, costly: boolean): { done: boolean; visits: number } {
    const { owners, buckets } = this;
    const giver = owners[bucket];
    const reach = costly ? Math.min(repairRadius, (buckets - 1) >> 1) : (buckets - 1) >> 1;
    for (let distance = 1; distance <= 2 * reach; distance++) {
      // Nearest first, alternately after and before `bucket`.
      const offset = distance & 1 ? (distance + 1) >> 1 : -(distance >> 1);
      const other = (((bucket + offset) % buckets) + buckets) % buckets;
      const taker = owners[other];
      if (taker === short || taker === unowned || taker === giver || other === bucket) continue;
      if (!costly && this.movedAlready[other] === 0) continue;
      owners[other] = unowned;
      // The member that moves over must keep full spacing: a swap may not crowd it to place another.
      if (this.isClear(taker, bucket, this.spacing)) {
        owners[bucket] = taker;
        if (this.isClear(short, other, gap)) {
          owners[other] = short;
          if (giver !== unowned) this.surplus[giver]--;
          this.deficit[short]--;
          this.movedAlready[bucket] = 1;
          if (costly) this.costlySwaps--;
          return { done: true, visits: distance };
        }
        owners[bucket] = giver;
      }
      owners[other] = taker;
    }
    return { done: false, visits: 2 * reach };
  }
}

/**
 * The owner of each bucket for `members`. `previous` is the current table (null for a new ring).
 * Pure and deterministic (same inputs, same output, on every node: no Math.random, no Date, no Map
 * iteration order that depends on insertion of random data). The order of `members` does not
 * matter; ids in `previous` that are not members are leaving, and members not in it are joining.
 */
export function claim(
  previous: readonly string[] | null,
  members: readonly RingMember[],
  options: ClaimOptions,
): string[] {
  assertValidClaim(previous, members, options);
  const sorted = [...members].sort(byId);
  const indexOf = new Map(sorted.map((m, i) => [m.id, i]));
  const owners = new Int32Array(options.buckets).fill(unowned);
  if (previous !== null) {
    for (let bucket = 0; bucket < options.buckets; bucket++) owners[bucket] = indexOf.get(previous[bucket]) ?? unowned;
  }
  const kept = new Array<number>(sorted.length).fill(0);
  for (const owner of owners) if (owner !== unowned) kept[owner]++;
  const targets = targetsOf(sorted, options.buckets, previous === null ? null : kept);
  // No window can hold more distinct owners than there are members.
  const spacing = Math.min(options.spacing, sorted.length);
  const state = new ClaimState(owners, spacing, sorted, targets, kept);
  state.releaseCrowded(spacing);
  // Buckets without an owner are placed first: they must move, the others need not. Then members
  // short of their target take, paced around the ring, from members above theirs. Whatever could
  // not be placed at full spacing is placed at the largest spacing that allows it; a gap of 1
  // allows anything, so the last pass completes the claim.
  for (let gap = spacing; gap >= 1 && state.deficitTotal() > 0; gap--) {
    state.scan('unowned', gap, false);
    if (gap === spacing) {
      state.restoreReleased();
      state.scan('surplus', gap, true, true);
      state.scan('surplus', gap, false, true);
      state.scan('surplus', gap, true);
    }
    state.scan('both', gap, false);
    state.repair(gap, gap === spacing);
  }

  assert(state.deficitTotal() === 0, 'every member reaches its target');
  assert(owners.every((owner) => owner !== unowned), 'every bucket has an owner');
  return Array.from(owners, (owner) => sorted[owner].id);
}
