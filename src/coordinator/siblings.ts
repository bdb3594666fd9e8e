/**
 * What a replica keeps of a key's concurrent versions, pure: every version no other dominates
 * (Dynamo's reconciliation), then the node's conflict resolution: `siblings` keeps them all up to
 * `siblingsMax` (the newest by write time), `lww` keeps only the latest write. Every node resolves
 * the same set of versions to the same result, so replicas converge whatever order versions
 * arrive in: ties in write time are broken by clock, then by content.
 */
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
  const kept = reconcile(versions);
  if (kept.length <= 1) return { versions: kept, dropped: 0 };
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
