/**
 * What a stored record contributes to its bucket's hash tree (src/merkle): a hash of the key and
 * its versions blob, and the segment the key falls in. Replicas that hold the same versions hold
 * the same blob, because a record's versions are kept in one canonical order (newest first, ties
 * broken by clock and content: coordinator/siblings.ts), so equal data gives equal hashes.
 */
import { createHash } from 'node:crypto';
import { hashOfDigest, segmentOfPosition } from '../merkle';

export function recordHash(key: Buffer, versionsBlob: Buffer): number {
  const digest = createHash('md5');
  const keyLength = Buffer.allocUnsafe(4);
  keyLength.writeUInt32BE(key.length);
  // The key's length first, so that no key and blob pair runs together into another's.
  digest.update(keyLength).update(key).update(versionsBlob);
  return hashOfDigest(digest.digest());
}

/** The key's 32-bit ring position (the first four MD5 bytes, as ring/md5.ts computes it). */
export function positionOfKey(key: Buffer): number {
  return createHash('md5').update(key).digest().readUInt32BE(0);
}

export function segmentOfKey(key: Buffer, buckets: number, segments: number): number {
  return segmentOfPosition(positionOfKey(key), buckets, segments);
}
