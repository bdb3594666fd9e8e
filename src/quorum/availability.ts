/**
 * Whether a node can meet its quorums: for each bucket it serves, how many replicas of the
 * bucket's preference list are up, against R and W. Pure: the caller says who is up, as for
 * `preferenceListUp`, so the admin server's /ready, the metrics and the tests share one rule.
 */
import { preferenceList, preferenceListUp, type Ring } from '../ring';
import { effectiveQuorum } from './index';

export interface QuorumAvailability {
  /**
   * Buckets this node serves: those whose preference list holds it; every bucket when it holds
   * none yet (a node outside the ring coordinates every key it is asked for by forwarding).
   */
  readonly bucketsServed: number;
  /** Of those, the buckets with fewer up replicas than R, and than W. */
  readonly bucketsBelowR: number;
  readonly bucketsBelowW: number;
  /** N, R and W capped at the ring's size, as the coordinator caps them. */
  readonly quorum: { readonly n: number; readonly r: number; readonly w: number };
  /** The first bucket below R or W and its up replicas, to name in a reason; undefined when none is. */
  readonly firstShort: { readonly bucket: number; readonly replicasUp: number } | undefined;
}

/**
 * Counts the buckets `selfId` serves whose up replicas (primaries that are up and the fallbacks
 * that stand in for the others: the sloppy quorum's targets) fall short of R or W.
 */
export function quorumAvailability(
  ring: Ring,
  settings: { readonly n: number; readonly r: number; readonly w: number },
  selfId: string,
  isUp: (memberId: string) => boolean,
): QuorumAvailability {
  const quorum = effectiveQuorum(settings, ring.members.length);
  const buckets = ring.config.buckets;
  const inRing = ring.members.some((member) => member.id === selfId);
  let bucketsServed = 0;
  let bucketsBelowR = 0;
  let bucketsBelowW = 0;
  let firstShort: QuorumAvailability['firstShort'];
  for (let bucket = 0; bucket < buckets; bucket++) {
    if (inRing && !preferenceList(ring, bucket, quorum.n).includes(selfId)) continue;
    bucketsServed++;
    const replicasUp = preferenceListUp(ring, bucket, quorum.n, isUp).length;
    const belowR = replicasUp < quorum.r;
    const belowW = replicasUp < quorum.w;
    if (belowR) bucketsBelowR++;
    if (belowW) bucketsBelowW++;
    if ((belowR || belowW) && firstShort === undefined) firstShort = { bucket, replicasUp };
  }
  return { bucketsServed, bucketsBelowR, bucketsBelowW, quorum, firstShort };
}
