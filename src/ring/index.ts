/**
 * The consistent-hash ring: pure. The key space (MD5 positions) is cut into a fixed number of
 * equal buckets, and each bucket has an owner, chosen by the claim (claim.ts): Dynamo's third
 * strategy, equal-sized partitions assigned to nodes, which balances load far better than random
 * virtual-node positions and lets a join or leave move only the buckets it must. All keys of a
 * bucket live on the same nodes: the distinct owners met walking the buckets clockwise from it,
 * spread over as many zones as there are.
 */
import { assert } from '../errors';
import { claim, claimSpacingDefault } from './claim';
import { md5Position } from './md5';

export interface RingMember {
  readonly id: string;
  /** Scales the member's virtual nodes, for machines of different sizes; 1 is the norm. */
  readonly weight: number;
  /** A failure domain (rack, availability zone). Members without one share the zone `defaultZone`. */
  readonly zone?: string;
}

export interface RingConfig {
  readonly buckets: number;
}

/** A bucket's start on the hash circle and its owner: what the clockwise walk visits. */
export interface VirtualNode {
  readonly position: number;
  readonly memberId: string;
}

export interface Ring {
  readonly config: RingConfig;
  /** Sorted by id. */
  readonly members: readonly RingMember[];
  /**
   * For each bucket, distinct member ids in preference order: one member of each zone in the order
   * the clockwise walk meets them, then every other member clockwise. Primaries first, then
   * fallbacks; at most `successorsPerBucketMax`.
   */
  readonly successors: readonly (readonly string[])[];
  /** Each bucket's owner, in bucket order: what `preferenceListUp` walks when members are down. */
  readonly vnodes: readonly VirtualNode[];
  /** The owner of each bucket, as claimed. */
  readonly owners: readonly string[];
  /** Each member's zone, `defaultZone` when it declared none. */
  readonly zoneOf: ReadonlyMap<string, string>;
}

const positionSpace = 2 ** 32;

/** How many distinct successors a bucket remembers: N primaries plus fallbacks for failures. */
export const successorsPerBucketMax = 16;
export const bucketsMax = 1 << 20;
/** The zone of a member that declared none: all such members share one failure domain. */
export const defaultZone = '';

function firstAtOrAfter(vnodes: readonly VirtualNode[], position: number): number {
  let low = 0;
  let high = vnodes.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (vnodes[middle].position < position) low = middle + 1;
    else high = middle;
  }
  return low === vnodes.length ? 0 : low;
}

interface WalkLimits {
  /** How many members the caller wants. */
  readonly wanted: number;
  /** How many distinct zones the eligible members span. */
  readonly zones: number;
}

/**
 * Walks clockwise from `start` over eligible members and returns the first `wanted` of the zone
 * spreading order: the first member met of each zone, in the order met, then the others in the
 * order met. This is the order Cassandra's NetworkTopologyStrategy gives racks; it depends only on
 * the clockwise order, so a member joining or leaving changes a list only where it enters or
 * leaves it. The walk stops once the answer can no longer change.
 */
function zoneSpreadWalk(
  ring: Pick<Ring, 'vnodes' | 'zoneOf'>,
  start: number,
  limits: WalkLimits,
  isEligible: (memberId: string) => boolean,
): string[] {
  const leaders: string[] = [];
  const others: string[] = [];
  const seen = new Set<string>();
  const zonesSeen = new Set<string>();
  const leadersWanted = Math.min(limits.wanted, limits.zones);
  const { vnodes } = ring;
  for (let step = 0; step < vnodes.length; step++) {
    if (leaders.length >= leadersWanted && leaders.length + others.length >= limits.wanted) break;
    const memberId = vnodes[(start + step) % vnodes.length].memberId;
    if (seen.has(memberId) || !isEligible(memberId)) continue;
    seen.add(memberId);
    const zone = ring.zoneOf.get(memberId) ?? defaultZone;
    if (zonesSeen.has(zone)) {
      others.push(memberId);
    } else {
      zonesSeen.add(zone);
      leaders.push(memberId);
    }
  }
  const taken = leaders.slice(0, leadersWanted);
  return taken.concat(others.slice(0, limits.wanted - taken.length));
}

export function bucketPosition(bucket: number, buckets: number): number {
  return Math.floor((bucket * positionSpace) / buckets);
}

function assertValidRing(members: readonly RingMember[], config: RingConfig): void {
  assert(members.length > 0, 'a ring needs at least one member');
  assert(Number.isInteger(config.buckets) && config.buckets > 0 && config.buckets <= bucketsMax, 'bucket count');
  // A weight that is not a positive number would give its member no virtual node at all (NaN).
  assert(members.every((m) => Number.isFinite(m.weight) && m.weight > 0), 'member weights are positive');
  assert(new Set(members.map((m) => m.id)).size === members.length, 'member ids are distinct');
  assert(members.every((m) => m.zone === undefined || typeof m.zone === 'string'), 'member zones are strings');
}

/** A ring claimed afresh for `members`: what a new cluster starts from. */
export function buildRing(members: readonly RingMember[], config: RingConfig): Ring {
  assertValidRing(members, config);
  return ringFromOwners(members, claim(null, members, { buckets: config.buckets, spacing: claimSpacingDefault }), config);
}

/** The ring whose buckets `owners` owns, each an id of `members`; members that own nothing are left out. */
export function ringFromOwners(members: readonly RingMember[], owners: readonly string[], config: RingConfig): Ring {
  assertValidRing(members, config);
  assert(owners.length === config.buckets, 'an owner for each bucket');
  const owning = new Set(owners);
  const known = new Set(members.map((m) => m.id));
  assert([...owning].every((id) => known.has(id)), 'every owner is a member');
  const sortedMembers = members.filter((m) => owning.has(m.id)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const zoneOf = new Map(sortedMembers.map((m) => [m.id, m.zone ?? defaultZone]));
  const vnodes = owners.map((memberId, bucket): VirtualNode => ({ position: bucketPosition(bucket, config.buckets), memberId }));
  const limits = {
    wanted: Math.min(sortedMembers.length, successorsPerBucketMax),
    zones: new Set(zoneOf.values()).size,
  };
  const successors: string[][] = [];
  for (let bucket = 0; bucket < config.buckets; bucket++) {
    const start = firstAtOrAfter(vnodes, bucketPosition(bucket, config.buckets));
    successors.push(zoneSpreadWalk({ vnodes, zoneOf }, start, limits, () => true));
  }
  return { config, members: sortedMembers, successors, vnodes, owners, zoneOf };
}

/** The bucket a key belongs to: its MD5 position scaled onto the bucket count. */
export function bucketOfKey(key: Uint8Array, buckets: number): number {
  return Math.floor((md5Position(key) * buckets) / positionSpace);
}

/** The first `n` members of the bucket's preference order: the key's replicas. */
export function preferenceList(ring: Ring, bucket: number, n: number): readonly string[] {
  return ring.successors[bucket].slice(0, n);
}

/**
 * The first `n` members that are up, in the order the bucket's preference list would have if the
 * down members were not in the ring: every primary that is up keeps its place, and fallbacks
 * take the place of the others, still spread over zones. As `riak_core_apl`, pure: the caller says
 * who is up. Fewer than `n` when fewer are up.
 */
export function preferenceListUp(
  ring: Ring,
  bucket: number,
  n: number,
  isUp: (memberId: string) => boolean,
): readonly string[] {
  assert(Number.isInteger(bucket) && bucket >= 0 && bucket < ring.config.buckets, 'bucket in range');
  const cached = ring.successors[bucket];
  // The common case needs no walk: the primaries are all up.
  const primaries = cached.slice(0, n);
  if (primaries.length === Math.min(n, ring.members.length) && primaries.every(isUp)) return primaries;
  const zonesUp = new Set<string>();
  for (const member of ring.members) if (isUp(member.id)) zonesUp.add(ring.zoneOf.get(member.id) ?? defaultZone);
  if (zonesUp.size === 0) return [];
  const start = firstAtOrAfter(ring.vnodes, bucketPosition(bucket, ring.config.buckets));
  return zoneSpreadWalk(ring, start, { wanted: n, zones: zonesUp.size }, isUp);
}

/** A replica a request goes to: a primary of the bucket, or a fallback standing in for one that is down. */
export type ReplicaTarget =
  | { readonly node: string; readonly primary: true }
  | { readonly node: string; readonly primary: false; readonly standsInFor: string };

export interface AnnotatedPreferenceList {
  /** The bucket's first `n` members in preference order, up or down: the key's home replicas. */
  readonly primaries: readonly string[];
  /**
   * The first `n` up members of the extended list (sloppy quorum), in order: every up primary
   * in its place, and for each primary that is down the fallback that takes its place, paired
   * in order as `riak_core_apl` pairs them. A fallback's copy carries a hint naming its primary.
   */
  readonly targets: readonly ReplicaTarget[];
}

/**
 * Who a request for `bucket` goes to, and for whom each fallback stands in: pure, as
 * `riak_core_apl:get_apl_ann`. Fewer than `n` targets when fewer members are up.
 */
export function annotatedPreferenceList(
  ring: Ring,
  bucket: number,
  n: number,
  isUp: (memberId: string) => boolean,
): AnnotatedPreferenceList {
  const primaries = preferenceList(ring, bucket, n);
  const up = preferenceListUp(ring, bucket, n, isUp);
  const standIns = primaries.filter((primary) => !up.includes(primary));
  let nextStandIn = 0;
  const targets = up.map((node): ReplicaTarget => {
    if (primaries.includes(node)) return { node, primary: true };
    assert(nextStandIn < standIns.length, 'a fallback for each primary not taken');
    return { node, primary: false, standsInFor: standIns[nextStandIn++] };
  });
  return { primaries, targets };
}

/** The fraction of buckets for which each member is the first replica. */
export function ownership(ring: Ring): Map<string, number> {
  const owned = new Map<string, number>(ring.members.map((m) => [m.id, 0]));
  for (const list of ring.successors) owned.set(list[0], (owned.get(list[0]) ?? 0) + 1);
  for (const [id, count] of owned) owned.set(id, count / ring.config.buckets);
  return owned;
}
