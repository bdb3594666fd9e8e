/**
 * Hash trees over a node's keys, one per ring bucket, for anti-entropy: pure. Two replicas of a
 * bucket compare roots; where they differ they descend level by level and exchange only the keys
 * of the leaves (segments) that differ.
 *
 * Each key contributes one 53-bit hash of its key and stored versions. A segment's hash, and every
 * inner node's, is the XOR of the key hashes below it, so a committed write updates the tree in
 * O(1) by XOR-ing out the key's old hash and XOR-ing in its new one, with no rebuild and no sorted
 * key lists in memory. Hashes are kept below 2^53 so they travel as plain numbers; XOR works on
 * their two halves (21 high bits, 32 low bits) because JavaScript's bitwise operators are 32-bit.
 */
import { assert } from '../errors';

/** Width of one hash: the largest an IEEE double holds exactly. */
export const hashBits = 53;
const lowSpan = 2 ** 32;
const highMask = 2 ** (hashBits - 32) - 1;

/** Leaves (segments) of one bucket's tree at most, and how many the whole key space is cut into. */
export const segmentsPerBucketMax = 256;
export const segmentsTotal = 2 ** 18;
/** Children of an inner node. */
export const treeFanout = 16;

export function isTreeHash(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value < 2 ** hashBits;
}

/** a XOR b, for hashes below 2^53. */
export function xorHash(a: number, b: number): number {
  const high = (Math.floor(a / lowSpan) ^ Math.floor(b / lowSpan)) & highMask;
  const low = ((a % lowSpan) ^ (b % lowSpan)) >>> 0;
  return high * lowSpan + low;
}

/** The tree hash of an MD5 digest: its first 53 bits, read big-endian. */
export function hashOfDigest(digest: Uint8Array): number {
  assert(digest.length >= 7, 'a digest of at least 7 bytes');
  const high = ((digest[0] << 13) | (digest[1] << 5) | (digest[2] >>> 3)) & highMask;
  const low = (((digest[2] & 0x07) << 29) | (digest[3] << 21) | (digest[4] << 13) | (digest[5] << 5) | (digest[6] >>> 3)) >>> 0;
  return high * lowSpan + low;
}

/** How one bucket's tree is cut: `segments` leaves under levels of `treeFanout` children. */
export interface TreeShape {
  readonly segments: number;
  /** Nodes per level, root (1) first, leaves (`segments`) last. */
  readonly levelWidths: readonly number[];
}

/**
 * The shape for a ring of `buckets` buckets: the key space is cut into `segmentsTotal` segments in
 * all (at most `segmentsPerBucketMax` per bucket), so memory stays bounded whatever the bucket
 * count while a segment holds few keys.
 */
export function treeShapeFor(buckets: number): TreeShape {
  assert(Number.isInteger(buckets) && buckets > 0 && (buckets & (buckets - 1)) === 0, 'bucket count is a power of two');
  const segments = Math.max(1, Math.min(segmentsPerBucketMax, segmentsTotal / buckets));
  const levelWidths = [1];
  while (levelWidths[levelWidths.length - 1] < segments) {
    levelWidths.push(Math.min(segments, levelWidths[levelWidths.length - 1] * treeFanout));
  }
  return { segments, levelWidths };
}

/**
 * The segment of a key inside its bucket, from its 32-bit ring position (the same MD5 position
 * that picks the bucket): the next bits below the bucket's.
 */
export function segmentOfPosition(position: number, buckets: number, segments: number): number {
  return Math.floor((position * buckets * segments) / 2 ** 32) % segments;
}

/** The node indexes one level down that `index` at `level` covers. */
export function childrenOf(shape: TreeShape, level: number, index: number): number[] {
  assert(level >= 0 && level < shape.levelWidths.length - 1, 'an inner level');
  const perNode = shape.levelWidths[level + 1] / shape.levelWidths[level];
  return Array.from({ length: perNode }, (_, offset) => index * perNode + offset);
}

/** Positions at which two equally long hash lists differ. */
export function differingPositions(local: readonly number[], remote: readonly number[]): number[] {
  assert(local.length === remote.length, 'hash lists of one length');
  const differing: number[] = [];
  for (let position = 0; position < local.length; position++) if (local[position] !== remote[position]) differing.push(position);
  return differing;
}

/**
 * Every bucket's tree on one node: the leaves are stored, inner nodes computed when asked (a root
 * is the XOR of at most `segmentsPerBucketMax` leaves). A bucket holding no key has an all-zero tree.
 */
export class MerkleForest {
  private readonly leavesByBucket = new Map<number, Float64Array>();

  constructor(
    readonly buckets: number,
    readonly shape: TreeShape = treeShapeFor(buckets),
  ) {}

  /** XORs `change` (old hash XOR new hash of one key) into a segment of a bucket. */
  apply(bucket: number, segment: number, change: number): void {
    assert(Number.isInteger(bucket) && bucket >= 0 && bucket < this.buckets, 'bucket in range');
    assert(Number.isInteger(segment) && segment >= 0 && segment < this.shape.segments, 'segment in range');
    if (change === 0) return;
    let leaves = this.leavesByBucket.get(bucket);
    if (leaves === undefined) {
      leaves = new Float64Array(this.shape.segments);
      this.leavesByBucket.set(bucket, leaves);
    }
    leaves[segment] = xorHash(leaves[segment], change);
  }

  /** Buckets that hold at least one key (a bucket whose keys all went has an all-zero tree). */
  bucketsHoldingKeys(): number[] {
    const held: number[] = [];
    for (const [bucket, leaves] of this.leavesByBucket) if (leaves.some((leaf) => leaf !== 0)) held.push(bucket);
    return held.sort((a, b) => a - b);
  }

  /** Forgets every key: after a removal of all data. */
  clear(): void {
    this.leavesByBucket.clear();
  }

  /** The hash of node `index` at `level` (0 is the root, the last level the segments). */
  nodeHash(bucket: number, level: number, index: number): number {
    const { levelWidths, segments } = this.shape;
    assert(level >= 0 && level < levelWidths.length, 'level in range');
    assert(Number.isInteger(index) && index >= 0 && index < levelWidths[level], 'node index in range');
    const leaves = this.leavesByBucket.get(bucket);
    if (leaves === undefined) return 0;
    const span = segments / levelWidths[level];
    let hash = 0;
    for (let segment = index * span; segment < (index + 1) * span; segment++) hash = xorHash(hash, leaves[segment]);
    return hash;
  }

  hashes(bucket: number, level: number, indexes: readonly number[]): number[] {
    return indexes.map((index) => this.nodeHash(bucket, level, index));
  }

  roots(buckets: readonly number[]): number[] {
    return buckets.map((bucket) => this.nodeHash(bucket, 0, 0));
  }
}
