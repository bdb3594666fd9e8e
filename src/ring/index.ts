/**
 * The consistent-hash ring: pure. Nodes own virtual-node positions derived from MD5; the key space
 * is cut into a fixed number of buckets, and all keys of a bucket live on the same nodes: the first
 * distinct physical nodes clockwise from the bucket's position.
 */
import { assert } from '../errors';
import { md5Position, utf8Bytes } from './md5';

export interface RingMember {
  readonly id: string;
  /** Scales the member's virtual nodes, for machines of different sizes; 1 is the norm. */
  readonly weight: number;
}

export interface RingConfig {
  readonly buckets: number;
  readonly vnodesPerNode: number;
}

export interface Ring {
  readonly config: RingConfig;
  readonly members: readonly RingMember[];
  /** For each bucket, distinct member ids clockwise from it: primaries first, then fallbacks. */
  readonly successors: readonly (readonly string[])[];
}

const positionSpace = 2 ** 32;

/** How many distinct successors a bucket remembers: N primaries plus fallbacks for failures. */
export const successorsPerBucketMax = 16;
export const bucketsMax = 1 << 20;
export const vnodesPerNodeMax = 4096;

interface VirtualNode {
  readonly position: number;
  readonly memberId: string;
}

function virtualNodes(members: readonly RingMember[], vnodesPerNode: number): VirtualNode[] {
  const vnodes: VirtualNode[] = [];
  for (const member of members) {
    const count = Math.max(1, Math.round(vnodesPerNode * member.weight));
    for (let index = 0; index < count; index++) {
      vnodes.push({ position: md5Position(utf8Bytes(`${member.id}#${index}`)), memberId: member.id });
    }
  }
  // Ties broken by id so that every node sorts the ring the same way.
  return vnodes.sort((a, b) => a.position - b.position || (a.memberId < b.memberId ? -1 : 1));
}

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

function distinctSuccessors(vnodes: readonly VirtualNode[], start: number, wanted: number): string[] {
  const found: string[] = [];
  for (let step = 0; step < vnodes.length && found.length < wanted; step++) {
    const memberId = vnodes[(start + step) % vnodes.length].memberId;
    if (!found.includes(memberId)) found.push(memberId);
  }
  return found;
}

export function bucketPosition(bucket: number, buckets: number): number {
  return Math.floor((bucket * positionSpace) / buckets);
}

export function buildRing(members: readonly RingMember[], config: RingConfig): Ring {
  assert(members.length > 0, 'a ring needs at least one member');
  assert(Number.isInteger(config.buckets) && config.buckets > 0 && config.buckets <= bucketsMax, 'bucket count');
  assert(
    Number.isInteger(config.vnodesPerNode) && config.vnodesPerNode > 0 && config.vnodesPerNode <= vnodesPerNodeMax,
    'vnode count',
  );
  // A weight that is not a positive number would give its member no virtual node at all (NaN).
  assert(members.every((m) => Number.isFinite(m.weight) && m.weight > 0), 'member weights are positive');
  assert(new Set(members.map((m) => m.id)).size === members.length, 'member ids are distinct');
  const sortedMembers = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const vnodes = virtualNodes(sortedMembers, config.vnodesPerNode);
  const wanted = Math.min(sortedMembers.length, successorsPerBucketMax);
  const successors: string[][] = [];
  for (let bucket = 0; bucket < config.buckets; bucket++) {
    const start = firstAtOrAfter(vnodes, bucketPosition(bucket, config.buckets));
    successors.push(distinctSuccessors(vnodes, start, wanted));
  }
  return { config, members: sortedMembers, successors };
}

/** The bucket a key belongs to: its MD5 position scaled onto the bucket count. */
export function bucketOfKey(key: Uint8Array, buckets: number): number {
  return Math.floor((md5Position(key) * buckets) / positionSpace);
}

/** The first `n` distinct members clockwise from the bucket: the key's replicas. */
export function preferenceList(ring: Ring, bucket: number, n: number): readonly string[] {
  return ring.successors[bucket].slice(0, n);
}

/** The fraction of buckets for which each member is the first replica. */
export function ownership(ring: Ring): Map<string, number> {
  const owned = new Map<string, number>(ring.members.map((m) => [m.id, 0]));
  for (const list of ring.successors) owned.set(list[0], (owned.get(list[0]) ?? 0) + 1);
  for (const [id, count] of owned) owned.set(id, count / ring.config.buckets);
  return owned;
}
