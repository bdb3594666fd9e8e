/**
 * What a stored record contributes to its bucket's hash tree (src/merkle): a hash of the key and
 * its versions blob, and the segment the key falls in. Replicas that hold the same versions hold
 * the same blob, because a record's versions are kept in one canonical order (newest first, ties
 * broken by content and clock: storage/record.ts), so equal data gives equal hashes.
 */
import { hash } from 'node:crypto';
import { hashOfDigest, segmentOfPosition } from '../merkle';

/** Room for the key's length, the key and a typical versions blob, reused so hashing allocates nothing. */
const scratchBytes = 64 * 1024;
const scratch = Buffer.allocUnsafe(scratchBytes);

export function recordHash(key: Buffer, versionsBlob: Buffer): number {
  // The key's length first, so that no key and blob pair runs together into another's.
  const bytes = 4 + key.length + versionsBlob.length;
  const input = bytes <= scratchBytes ? scratch.subarray(0, bytes) : Buffer.allocUnsafe(bytes);
  input.writeUInt32BE(key.length, 0);
  key.copy(input, 4);
  versionsBlob.copy(input, 4 + key.length);
  return hashOfDigest(hash('md5', input, 'buffer'));
}

/** The key's 32-bit ring position (the first four MD5 bytes, as ring/md5.ts computes it). */
export function positionOfKey(key: Buffer): number {
  return hash('md5', key, 'buffer').readUInt32BE(0);
}

export function segmentOfKey(key: Buffer, buckets: number, segments: number): number {
  return segmentOfPosition(positionOfKey(key), buckets, segments);
}
