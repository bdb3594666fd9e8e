/**
 * Vector clocks, as Dynamo and Riak use them: a list of (node, counter, timestamp) entries.
 * Pure: the current time is always an argument.
 */
import { assert } from '../errors';
import { md5High64, utf8Bytes } from '../ring/md5';

export interface ClockEntry {
  readonly node: string;
  readonly counter: number;
  /** When this node last advanced its counter; used only to prune the oldest entries. */
  readonly timestampMs: number;
}

export type VClock = readonly ClockEntry[];

export type ClockOrder = 'equal' | 'before' | 'after' | 'concurrent';

export const emptyClock: VClock = [];

/**
 * The largest counter a clock entry may hold. A replica floors its counter at the write time in
 * ms (coordinator/replica.ts), about 2^41 today; 2^52 lasts past the year 100,000 and keeps
 * counter + 1 an exact integer. An entry above it did not come from a kai node and is refused
 * where clocks arrive (rpc/message-shapes.ts); a counter that reaches it cannot move on
 * (`incrementable`), and its writer then writes under a new name.
 */
export const clockCounterMax = 2 ** 52;
/**
 * The longest name of a clock entry: a member id (membership memberIdLengthMax, 255) and the
 * suffix a replica adds to make an actor name (coordinator/replica.ts), with room to spare.
 */
export const clockNodeLengthMax = 320;

function counterOf(clock: VClock, node: string): number {
  for (const entry of clock) if (entry.node === node) return entry.counter;
  return 0;
}

/** True when `a` has seen everything `b` has (a >= b). */
export function descends(a: VClock, b: VClock): boolean {
  for (const entry of b) if (counterOf(a, entry.node) < entry.counter) return false;
  return true;
}

export function compare(a: VClock, b: VClock): ClockOrder {
  const aSeesB = descends(a, b);
  const bSeesA = descends(b, a);
  if (aSeesB && bSeesA) return 'equal';
  if (aSeesB) return 'after';
  if (bSeesA) return 'before';
  return 'concurrent';
}

/** The least clock that descends from every given clock. Entries are sorted by node. */
export function merge(clocks: readonly VClock[]): VClock {
  const byNode = new Map<string, ClockEntry>();
  for (const clock of clocks) {
    for (const entry of clock) {
      const seen = byNode.get(entry.node);
      if (
        !seen ||
        entry.counter > seen.counter ||
        (entry.counter === seen.counter && entry.timestampMs > seen.timestampMs)
      ) {
        byNode.set(entry.node, entry);
      }
    }
  }
  return [...byNode.values()].sort((x, y) => (x.node < y.node ? -1 : x.node > y.node ? 1 : 0));
}

/**
 * Advances `node`'s counter, stamping it with the given time. `counterAtLeast` lets the caller
 * keep a node's counter from ever being reused: a node that lost a key's history (its row was
 * purged, or flushed) must not count again from 1, or peers still holding its older, larger
 * counters would take the new write for an old one.
 */
export function increment(clock: VClock, node: string, nowMs: number, counterAtLeast = 0): VClock {
  const counter = Math.max(counterOf(clock, node) + 1, counterAtLeast);
  assert(counter <= clockCounterMax, 'a clock counter moves on only within its bound (incrementable)');
  const next: ClockEntry = { node, counter, timestampMs: nowMs };
  return merge([clock.filter((entry) => entry.node !== node), [next]]);
}

/**
 * Whether `increment` may advance `node`'s counter: false once it has reached clockCounterMax,
 * which only a peer's forged clock can make happen. The caller then writes under another name.
 */
export function incrementable(clock: VClock, node: string, counterAtLeast = 0): boolean {
  return Math.max(counterOf(clock, node) + 1, counterAtLeast) <= clockCounterMax;
}

export interface PruneLimits {
  /** Never prune a clock with this many entries or fewer. */
  readonly entriesMin: number;
  /** Always prune a clock down to this many entries. */
  readonly entriesMax: number;
  /** Entries younger than this are kept while the clock is within entriesMax. */
  readonly youngMs: number;
  /** Between entriesMin and entriesMax, entries older than this are dropped. */
  readonly oldMs: number;
}

/** Riak's defaults (small_vclock 50, big_vclock 50, young 20 s, old 1 day). */
export const defaultPruneLimits: PruneLimits = {
  entriesMin: 50,
  entriesMax: 50,
  youngMs: 20_000,
  oldMs: 86_400_000,
};

/**
 * Drops the least recently updated entries, as riak's vclock:prune does: a clock is only pruned
 * past entriesMin, entries are dropped oldest first while the clock is over entriesMax or the
 * oldest entry is older than oldMs, and young entries are never dropped below entriesMax.
 */
export function prune(clock: VClock, nowMs: number, limits: PruneLimits = defaultPruneLimits): VClock {
  if (clock.length <= limits.entriesMin) return clock;
  const oldestFirst = [...clock].sort((x, y) => x.timestampMs - y.timestampMs || (x.node < y.node ? -1 : 1));
  while (oldestFirst.length > limits.entriesMin) {
    const ageMs = nowMs - oldestFirst[0].timestampMs;
    const over = oldestFirst.length > limits.entriesMax;
    if (!over && (ageMs < limits.youngMs || ageMs <= limits.oldMs)) break;
    oldestFirst.shift();
  }
  return merge([oldestFirst]);
}

/**
 * Keeps every version that no other version's clock dominates: the sibling-preserving merge of
 * Dynamo. Versions with equal clocks are one write seen twice; the later-written copy is kept.
 */
export function reconcile<T extends { readonly clock: VClock; readonly writtenAtMs: number }>(
  versions: readonly T[],
): T[] {
  const kept: T[] = [];
  for (const candidate of versions) {
    let keep = true;
    for (let index = 0; index < kept.length && keep; index++) {
      const order = compare(candidate.clock, kept[index].clock);
      if (order === 'before') keep = false;
      else if (order === 'equal') {
        if (candidate.writtenAtMs > kept[index].writtenAtMs) kept[index] = candidate;
        keep = false;
      }
    }
    if (keep) {
      for (let index = kept.length - 1; index >= 0; index--) {
        if (compare(candidate.clock, kept[index].clock) === 'after') kept.splice(index, 1);
      }
      kept.push(candidate);
    }
  }
  return kept;
}

/**
 * A 53-bit number naming a causal context (the merged clocks of every version a reader saw), used
 * as memcached's cas unique. It fits a JavaScript number so that no client loses precision, and it
 * includes entry timestamps so a context re-created after its history was purged gets a new name.
 */
export function contextNumber(clock: VClock): bigint {
  const canonical = merge([clock])
    .map((entry) => `${entry.node}\u0000${entry.counter}\u0000${entry.timestampMs}`)
    .join('\u0001');
  const number = md5High64(utf8Bytes(canonical)) & 0x1f_ffff_ffff_ffffn;
  return number === 0n ? 1n : number;
}
