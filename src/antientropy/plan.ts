/**
 * The pure decisions of an anti-entropy exchange: which buckets two nodes both replicate, and
 * which keys of a segment differ between them.
 */
import { preferenceList, type Ring } from '../ring';
import type { KeyHash } from '../storage/sqlite-queries';

/** Whether the bucket's first `n` members include both `self` and `peer`. */
export function sharesBucket(ring: Ring, n: number, self: string, peer: string, bucket: number): boolean {
  const primaries = preferenceList(ring, bucket, n);
  return primaries.includes(self) && primaries.includes(peer);
}

/** Buckets whose first `n` members include both `self` and `peer`: the ones they must agree on. */
export function sharedBuckets(ring: Ring, n: number, self: string, peer: string): number[] {
  const shared: number[] = [];
  for (let bucket = 0; bucket < ring.config.buckets; bucket++) if (sharesBucket(ring, n, self, peer, bucket)) shared.push(bucket);
  return shared;
}

/** Members that share at least one bucket with `self`, sorted by id. */
export function exchangePartners(ring: Ring, n: number, self: string): string[] {
  const partners = new Set<string>();
  for (let bucket = 0; bucket < ring.config.buckets; bucket++) {
    const primaries = preferenceList(ring, bucket, n);
    if (!primaries.includes(self)) continue;
    for (const member of primaries) if (member !== self) partners.add(member);
  }
  return [...partners].sort();
}

function keyIdOf(key: Buffer): string {
  return key.toString('latin1');
}

/** Keys held on one side only, or with different hashes: the ones to reconcile. */
export function keysToReconcile(local: readonly KeyHash[], remote: readonly KeyHash[]): Buffer[] {
  const localHashes = new Map(local.map((entry) => [keyIdOf(entry.key), entry.hash]));
  const differing: Buffer[] = [];
  const seen = new Set<string>();
  for (const entry of remote) {
    const id = keyIdOf(entry.key);
    seen.add(id);
    if (localHashes.get(id) !== entry.hash) differing.push(entry.key);
  }
  for (const entry of local) if (!seen.has(keyIdOf(entry.key))) differing.push(entry.key);
  return differing;
}
