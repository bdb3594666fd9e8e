/**
 * What a replica keeps of a key's concurrent versions, pure: every version no other dominates
 * (Dynamo's reconciliation); concurrent counters merge into one (resolveCounters); then the
 * node's conflict resolution: `siblings` keeps them all up to `siblingsMax` (the newest by write
 * time), `lww` keeps only the latest write. Every node resolves the same set of versions to the
 * same result, so replicas converge whatever order versions arrive in: ties in write time are
 * broken by content, then by clock.
 */
import { counterValue, mergeCounters, withinActorsMax, type Counter } from '../counter';
import { newerFirst, type Version } from '../storage/record';
import { merge, prune, reconcile } from '../vclock';

export { newerFirst } from '../storage/record';

export type ConflictResolution = 'siblings' | 'lww';

export const conflictResolutions: readonly ConflictResolution[] = ['siblings', 'lww'];

export interface SiblingPolicy {
  readonly conflictResolution: ConflictResolution;
  /** Versions kept per key at most; past it the oldest by write time are dropped. */
  readonly siblingsMax: number;
}

/**
 * 25 siblings of a 1 MiB value is 25 MiB in one record and one message: enough for any
 * reasonable number of concurrent writers between two reconciling reads, small enough that a
 * runaway (clients that never send a context) costs a bounded amount.
 */
export const siblingsMaxDefault = 25;
/** The largest siblings cap a setting may ask for; internal messages carry at most one more. */
export const siblingsMaxLimit = 1000;

export const defaultSiblingPolicy: SiblingPolicy = { conflictResolution: 'siblings', siblingsMax: siblingsMaxDefault };

export interface Resolved {
  readonly versions: readonly Version[];
  /** Siblings dropped for the cap (not versions superseded, nor lww losers). */
  readonly dropped: number;
}

/**
 * The versions a replica keeps, newest first (the canonical order records are stored in). Under
 * `lww` the latest write wins and takes the merged clock of every version it beat, as Riak does
 * without allow_mult: it then dominates them, so a loser arriving again from another replica is
 * superseded instead of resolved anew.
 */
export function resolveVersions(versions: readonly Version[], policy: SiblingPolicy): Resolved {
  let kept = reconcile(versions);
  if (kept.length <= 1) return { versions: kept, dropped: 0 };
  if (kept.some((version) => version.counter)) {
    kept = resolveCounters(kept);
    if (kept.length <= 1) return { versions: kept, dropped: 0 };
  }
  const newestFirst = [...kept].sort(newerFirst);
  if (policy.conflictResolution === 'lww') {
    // Pruned like any written clock, against the winner's own write time (the core reads no
    // clock), so merging many writers' entries cannot grow it past the bound peers accept.
    const winner = newestFirst[0];
    const clock = prune(merge(kept.map((version) => version.clock)), winner.writtenAtMs);
    return { versions: [{ ...winner, clock }], dropped: 0 };
  }
  if (kept.length <= policy.siblingsMax) return { versions: newestFirst, dropped: 0 };
  return { versions: newestFirst.slice(0, policy.siblingsMax), dropped: kept.length - policy.siblingsMax };
}

/** The origin a counter grew from, as a map key: counters of one origin merge. */
function originKey(counter: Counter): string {
  return `${counter.base}@${counter.setAtMs}`;
}

/** When the set behind a value was written: a counter's origin, or the value's own write. */
function setAtMsOf(version: Version): number {
  return version.counter ? version.counter.setAtMs : version.writtenAtMs;
}

/**
 * Which of two concurrent values was set later (positive when `a`): by the time of their sets,
 * then a counter before a plain value, then by content and clock (newerFirst), so that every node
 * picks the same one.
 */
function laterSet(a: Version, b: Version): number {
  const byTime = setAtMsOf(a) - setAtMsOf(b);
  if (byTime !== 0) return byTime;
  if (a.counter && b.counter) {
    if (a.counter.base !== b.counter.base) return a.counter.base > b.counter.base ? 1 : -1;
  } else if (a.counter || b.counter) {
    return a.counter ? 1 : -1;
  }
  return -newerFirst(a, b);
}

/** A merged counter's text: its plain digits, a function of the counter alone. */
function counterText(counter: Counter): Buffer {
  return Buffer.from(counterValue(counter).toString(), 'latin1');
}

/** The clock descending from every version's, pruned as a written clock is. */
function mergedClock(versions: readonly Version[], writtenAtMs: number): Version['clock'] {
  return prune(merge(versions.map((version) => version.clock)), writtenAtMs);
}

/**
 * Concurrent counters of one origin, merged into one version: each actor's larger totals, the
 * flags and expiry of the one written last, a clock descending from all of them. Its text is the
 * counter's plain digits, a function of the counter alone, so that any node merging the same
 * counters writes the same bytes.
 */
function mergeCounterVersions(versions: readonly Version[]): Version {
  if (versions.length === 1) return versions[0];
  const newestFirst = [...versions].sort(newerFirst);
  let counter = newestFirst[0].counter!;
  for (const version of newestFirst.slice(1)) counter = mergeCounters(counter, version.counter!);
  const writtenAtMs = newestFirst[0].writtenAtMs;
  counter = withinActorsMax(counter, writtenAtMs);
  return {
    ...newestFirst[0],
    counter,
    value: counterText(counter),
    clock: mergedClock(versions, writtenAtMs),
  };
}

/**
 * A key whose concurrent values include a counter resolves to one value, never siblings:
 * counters of one origin merge (increments through every node count), and among what remains,
 * the value set last wins, taking the others' clocks so that it supersedes them wherever they
 * meet again; the operations made on a losing origin are lost, as if the winning set came after
 * them. Tombstones are left to the sibling policy. docs/protocol.md states the rule.
 */
function resolveCounters(kept: readonly Version[]): Version[] {
  const tombstones = kept.filter((version) => version.tombstone);
  const plain: Version[] = [];
  const byOrigin = new Map<string, Version[]>();
  for (const version of kept) {
    if (version.tombstone) continue;
    if (!version.counter) {
      plain.push(version);
      continue;
    }
    const key = originKey(version.counter);
    const group = byOrigin.get(key);
    if (group) group.push(version);
    else byOrigin.set(key, [version]);
  }
  if (kept.length - tombstones.length <= 1) return [...kept];
  const candidates = [...plain, ...[...byOrigin.values()].map(mergeCounterVersions)];
  const winner = candidates.reduce((best, candidate) => (laterSet(candidate, best) > 0 ? candidate : best));
  let writtenAtMs = 0;
  for (const candidate of candidates) writtenAtMs = Math.max(writtenAtMs, candidate.writtenAtMs);
  const resolved: Version =
    candidates.length === 1
      ? winner
      : {
          ...winner,
          ...(winner.counter ? { value: counterText(winner.counter) } : {}),
          clock: mergedClock(candidates, writtenAtMs),
          writtenAtMs,
        };
  return [resolved, ...tombstones];
}
