/**
 * `kai locate <key>`: where a key lives as this node routes requests for it, and what each of its
 * replicas holds, as Cassandra's `nodetool getendpoints` and mcrouter's route inspection tell an
 * operator. The lists come from the same pure function the coordinator places requests with
 * (`annotatedPreferenceList`, with this node counted up while its store serves); every replica of
 * every list that is up is asked for its versions, which are answered without their values.
 */
import type { Replica } from '../coordinator/replica';
import { clockToWire } from '../coordinator/wire';
import { effectiveQuorum } from '../quorum';
import { annotatedPreferenceList, bucketOfKey, type Ring } from '../ring';
import type { RpcReply, WireLocatedList, WireLocatedReplica, WireVersionSummary } from '../rpc/messages';
import type { Version } from '../storage/record';

export interface LocateParts {
  readonly nodeId: string;
  readonly quorum: { readonly n: number; readonly r: number; readonly w: number };
  ring(): Ring;
  /** While the bucket moves: the ring it moves to, and whether reads have switched to it. */
  moving(bucket: number): { readonly next: Ring; readonly switched: boolean } | undefined;
  isUp(memberId: string): boolean;
  /** Whether this node's own store serves (it counts itself up while it does). */
  localServes(): boolean;
  replicaOf(memberId: string): Replica;
  /** Why the node refuses client requests for now, or undefined. */
  notReady(): string | undefined;
}

function listOf(ring: Ring, bucket: number, which: 'current' | 'next', reads: boolean, parts: LocateParts): WireLocatedList {
  const { n } = effectiveQuorum(parts.quorum, ring.members.length);
  const up = (memberId: string): boolean => (memberId === parts.nodeId ? parts.localServes() : parts.isUp(memberId));
  const { primaries, targets } = annotatedPreferenceList(ring, bucket, n, up);
  return {
    ring: which,
    reads,
    primaries: [...primaries],
    targets: targets.map((target) => (target.primary ? { node: target.node } : { node: target.node, standsInFor: target.standsInFor })),
  };
}

export function versionSummary(version: Version): WireVersionSummary {
  return {
    clock: clockToWire(version.clock),
    writtenAtMs: version.writtenAtMs,
    expiresAtMs: version.expiresAtMs,
    tombstone: version.tombstone,
    flags: version.flags,
    valueBytes: version.value.length,
  };
}

async function replicaHolding(memberId: string, key: Buffer, parts: LocateParts): Promise<WireLocatedReplica> {
  const up = memberId === parts.nodeId ? parts.localServes() : parts.isUp(memberId);
  if (!up) return { node: memberId, up, error: 'down: not asked' };
  try {
    const versions = await parts.replicaOf(memberId).fetch(key);
    return { node: memberId, up, versions: versions.map(versionSummary) };
  } catch (error) {
    return { node: memberId, up, error: error instanceof Error ? error.message : String(error) };
  }
}

/** The `located` reply for `key`. */
export async function locateKey(key: Buffer, parts: LocateParts): Promise<RpcReply> {
  const ring = parts.ring();
  const bucket = bucketOfKey(key, ring.config.buckets);
  const moving = parts.moving(bucket);
  const lists = [listOf(ring, bucket, 'current', moving === undefined || !moving.switched, parts)];
  if (moving !== undefined) lists.push(listOf(moving.next, bucket, 'next', moving.switched, parts));
  const members = [...new Set(lists.flatMap((list) => [...list.primaries, ...list.targets.map((target) => target.node)]))];
  const replicas = await Promise.all(members.map((memberId) => replicaHolding(memberId, key, parts)));
  const { n, r, w } = effectiveQuorum(parts.quorum, ring.members.length);
  const refusing = parts.notReady();
  return {
    type: 'located',
    bucket,
    buckets: ring.config.buckets,
    quorum: { n, r, w },
    lists,
    replicas,
    ...(refusing === undefined ? {} : { refusing }),
  };
}
