/**
 * Convergent counters behind memcached's incr and decr: a PN-counter (riak_dt's pncounter) on top
 * of the value a `set` wrote. Each node that coordinates an incr or decr of the key is an actor
 * and keeps its own grow-only totals of what it added and took away; replicas merge by taking
 * each actor's larger totals, so increments made through different nodes, on both sides of a
 * partition, all count once, in whatever order the copies meet. Pure: times are arguments.
 *
 * A counter grows from an origin: the set whose value it started from (its value and write
 * time). Counters of one origin merge; of different origins, the later set wins, as a set after
 * the increments would (src/coordinator/siblings.ts applies the rule, docs/protocol.md states it).
 */
import { uint64Max, uint64Modulus } from '../protocol/numbers';

/** One actor's totals: everything it has added to and taken from the counter, never shrinking. */
export interface ActorTotals {
  readonly actor: string;
  readonly added: bigint;
  readonly taken: bigint;
  /** When the actor last changed its totals; the idle ones are folded away first (pruneActors). */
  readonly atMs: number;
}

export interface Counter {
  /** The number the origin set stored (or the binary protocol's initial value). */
  readonly base: bigint;
  /** When the origin set was written; 0 for a counter the binary protocol created from nothing. */
  readonly setAtMs: number;
  /** Sorted by actor, each actor once. */
  readonly actors: readonly ActorTotals[];
}

/**
 * Actors kept per counter at most, as many as a vector clock keeps entries (vclock
 * defaultPruneLimits.entriesMax): the actors are the nodes that coordinated the key's writes, so a
 * counter that reaches it has also had its clock pruned.
 */
export const counterActorsMax = 50;

/**
 * Digits an actor's total may have: 2^64 - 1 is 20, so 40 leaves room for more operations of the
 * largest delta than any cluster will run, while bounding what a peer can make a node parse.
 */
export const totalDigitsMax = 40;
/** The largest total an actor may hold: what totalDigitsMax digits can write. */
export const counterTotalMax = 10n ** BigInt(totalDigitsMax) - 1n;

/** The counter's exact sum, which concurrent operations may carry below 0 or past 2^64 - 1. */
export function counterSum(counter: Counter): bigint {
  let sum = counter.base;
  for (const totals of counter.actors) sum += totals.added - totals.taken;
  return sum;
}

/**
 * What the counter reads as: its sum, floored at 0 (memcached's decr stops there) and wrapped at
 * 2^64 (memcached's incr wraps), so that it is always a 64-bit unsigned number.
 */
export function counterValue(counter: Counter): bigint {
  const sum = counterSum(counter);
  return sum < 0n ? 0n : sum % uint64Modulus;
}

export function sameOrigin(a: Counter, b: Counter): boolean {
  return a.base === b.base && a.setAtMs === b.setAtMs;
}

/** A new counter grown from a set of `base` written at `setAtMs`, with no operations yet. */
export function counterFrom(base: bigint, setAtMs: number): Counter {
  return { base, setAtMs, actors: [] };
}

function byActor(a: ActorTotals, b: ActorTotals): number {
  return a.actor < b.actor ? -1 : a.actor > b.actor ? 1 : 0;
}

/**
 * The least counter that has seen both: each actor's larger totals. Commutative, associative and
 * idempotent; only counters of the same origin are merged (the caller checks sameOrigin).
 */
export function mergeCounters(a: Counter, b: Counter): Counter {
  const byName = new Map<string, ActorTotals>();
  for (const totals of [...a.actors, ...b.actors]) {
    const seen = byName.get(totals.actor);
    byName.set(
      totals.actor,
      seen
        ? {
            actor: totals.actor,
            added: totals.added > seen.added ? totals.added : seen.added,
            taken: totals.taken > seen.taken ? totals.taken : seen.taken,
            atMs: Math.max(totals.atMs, seen.atMs),
          }
        : totals,
    );
  }
  return { base: a.base, setAtMs: a.setAtMs, actors: [...byName.values()].sort(byActor) };
}

/**
 * The counter after `actor` made it read `target` at `nowMs`: the difference from its exact sum
 * goes to the actor's added or taken total. Deciding on the value read rather than adding the
 * client's delta keeps memcached's answers on one node exactly (decr by 10 of 5 reads 0, and a
 * following incr by 3 reads 3), and brings a sum that concurrent operations carried out of range
 * back into it.
 */
export function counterSetTo(counter: Counter, actor: string, target: bigint, nowMs: number): Counter {
  const change = target - counterSum(counter);
  const held = counter.actors.find((totals) => totals.actor === actor);
  const totals: ActorTotals = {
    actor,
    added: (held?.added ?? 0n) + (change > 0n ? change : 0n),
    taken: (held?.taken ?? 0n) + (change < 0n ? -change : 0n),
    atMs: nowMs,
  };
  // Totals past their bound (which only a peer's forged counter brings near) would make the
  // version one no replica accepts: the counter starts again from the value it reads, a new
  // origin, as withinActorsMax does, so the key stays writable.
  if (totals.added > counterTotalMax || totals.taken > counterTotalMax) return counterFrom(target, nowMs);
  const actors = [...counter.actors.filter((other) => other.actor !== actor), totals].sort(byActor);
  return withinActorsMax({ ...counter, actors }, nowMs);
}

/**
 * The counter, or past counterActorsMax actors, a counter started again from its value at
 * `atMs`, as a set of that value would: a new origin, later than the old one, so the old origin's
 * copies give way to it (see docs/architecture.md, *Counters*).
 */
export function withinActorsMax(counter: Counter, atMs: number): Counter {
  return counter.actors.length <= counterActorsMax ? counter : counterFrom(counterValue(counter), atMs);
}

/** What memcached's incr (wrapping at 2^64) or decr (stopping at 0) makes of `value`. */
export function arithmeticOf(value: bigint, incr: boolean, delta: bigint): bigint {
  if (incr) return (value + delta) & uint64Max;
  return value < delta ? 0n : value - delta;
}

/** The bytes a counter adds to a version, for size estimates (frames, batches). */
export function counterBytesEstimate(counter: Counter | undefined): number {
  if (!counter) return 0;
  let bytes = 48;
  for (const totals of counter.actors) bytes += totals.actor.length + 64;
  return bytes;
}
