import { createHash } from 'node:crypto';
import {
  MerkleForest,
  childrenOf,
  differingPositions,
  hashBits,
  hashOfDigest,
  isTreeHash,
  segmentOfPosition,
  segmentsPerBucketMax,
  segmentsTotal,
  treeFanout,
  treeShapeFor,
  xorHash,
  type TreeShape,
} from '../../../src/merkle';
import { bucketPosition } from '../../../src/ring';
import { checkProperty, ensure, type Random } from '../../support/property';

const seedsPerProperty = 60;
const hashLimit = 2 ** hashBits;
const positionSpace = 2 ** 32;

/** A uniformly random 53-bit hash: both halves drawn apart, since one draw has only 32 random bits. */
function randomHash(random: Random): number {
  return random.int(0, 2 ** 21 - 1) * 2 ** 32 + random.int(0, 2 ** 32 - 1);
}

/** Hashes at the edges of the range, where the split into halves could go wrong. */
const edgeHashes = [0, 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52, hashLimit - 1, hashLimit - 2 ** 32];

/** A random hash most of the time, an edge hash sometimes. */
function someHash(random: Random): number {
  return random.chance(0.2) ? random.pick(edgeHashes) : randomHash(random);
}

const bigXor = (a: number, b: number): number => Number(BigInt(a) ^ BigInt(b));

/** The XOR of the leaves under node `index` of `level`, computed from the leaves one by one. */
function leavesXor(forest: MerkleForest, bucket: number, level: number, index: number): number {
  const { levelWidths, segments } = forest.shape;
  const span = segments / levelWidths[level];
  let hash = 0;
  for (let segment = index * span; segment < (index + 1) * span; segment++) {
    hash = xorHash(hash, forest.nodeHash(bucket, levelWidths.length - 1, segment));
  }
  return hash;
}

/** Every node hash of one bucket's tree, level by level. */
function wholeTree(forest: MerkleForest, bucket: number): number[][] {
  return forest.shape.levelWidths.map((width, level) =>
    forest.hashes(
      bucket,
      level,
      Array.from({ length: width }, (_, index) => index),
    ),
  );
}

describe('xorHash', () => {
  // XOR of 53-bit hashes agrees with BigInt XOR, for random values and the values at the edges of its halves.
  test('matches BigInt XOR', () => {
    for (const a of edgeHashes) for (const b of edgeHashes) expect(xorHash(a, b)).toBe(bigXor(a, b));
    checkProperty(seedsPerProperty, (random) => {
      for (let i = 0; i < 200; i++) {
        const a = someHash(random);
        const b = someHash(random);
        const xored = xorHash(a, b);
        ensure(xored === bigXor(a, b), `xorHash(${a}, ${b}) = ${xored}, BigInt says ${bigXor(a, b)}`);
        ensure(isTreeHash(xored), `xorHash(${a}, ${b}) = ${xored} is not a 53-bit hash`);
      }
    });
  });

  // XOR is a group on hashes: associative, commutative, zero is its identity and each hash its own inverse.
  test('is associative, commutative and self-inverse, and stays below 2^53', () => {
    checkProperty(seedsPerProperty, (random) => {
      for (let i = 0; i < 100; i++) {
        const [a, b, c] = [someHash(random), someHash(random), someHash(random)];
        ensure(xorHash(xorHash(a, b), c) === xorHash(a, xorHash(b, c)), `not associative on ${a}, ${b}, ${c}`);
        ensure(xorHash(a, b) === xorHash(b, a), `not commutative on ${a}, ${b}`);
        ensure(xorHash(a, a) === 0, `${a} XOR itself is not 0`);
        ensure(xorHash(a, 0) === a, `${a} XOR 0 is not ${a}`);
        ensure(xorHash(xorHash(a, b), b) === a, `XOR-ing ${b} in and out of ${a} does not give ${a} back`);
        const xored = xorHash(a, b);
        ensure(xored >= 0 && xored < hashLimit && Number.isSafeInteger(xored), `${xored} is outside [0, 2^53)`);
      }
    });
    expect(xorHash(hashLimit - 1, 0)).toBe(hashLimit - 1);
    expect(xorHash(hashLimit - 1, hashLimit - 1)).toBe(0);
  });
});

describe('isTreeHash', () => {
  // Only safe non-negative integers below 2^53 are tree hashes: what a peer's message may carry.
  test('accepts hashes and refuses everything else', () => {
    for (const hash of edgeHashes) expect(isTreeHash(hash)).toBe(true);
    for (const value of [-1, 2 ** 53, 1.5, Number.NaN, Infinity, '1', null, undefined, 1n]) expect(isTreeHash(value)).toBe(false);
  });
});

describe('hashOfDigest', () => {
  // The tree hash is the digest's first 53 bits read big-endian: the top 56 bits shifted right by 3.
  test('is the first 53 bits of the digest, big-endian', () => {
    checkProperty(seedsPerProperty, (random) => {
      for (let i = 0; i < 50; i++) {
        const digest = createHash('md5').update(`key-${random.seed}-${i}-${random.int(0, 1e9)}`).digest();
        const expected = Number(digest.readBigUInt64BE(0) >> 11n);
        const hash = hashOfDigest(digest);
        ensure(hash === expected, `digest ${digest.toString('hex')}: ${hash} instead of ${expected}`);
        ensure(isTreeHash(hash), `${hash} is not a 53-bit hash`);
      }
    });
  });

  // Each of the 53 bits lands where it should, and nothing past the 53rd bit counts.
  test('places every bit and ignores the rest of the digest', () => {
    expect(hashOfDigest(new Uint8Array(7))).toBe(0);
    expect(hashOfDigest(new Uint8Array(16).fill(0xff))).toBe(hashLimit - 1);
    expect(hashOfDigest(new Uint8Array(7).fill(0xff))).toBe(hashLimit - 1);
    for (let bit = 0; bit < 56; bit++) {
      const digest = new Uint8Array(16);
      digest[bit >> 3] = 0x80 >> (bit & 7);
      // Bit `bit` from the top of the digest is bit 52 - `bit` of the hash; the last three of 56 are dropped.
      expect(hashOfDigest(digest)).toBe(bit < hashBits ? 2 ** (hashBits - 1 - bit) : 0);
    }
    const digest = new Uint8Array([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]);
    const withTail = new Uint8Array([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xd8, 0x00, 0xff, 0xff]);
    expect(hashOfDigest(digest)).toBe(hashOfDigest(withTail));
    expect(hashOfDigest(digest)).toBe(0x2468acf13579b);
  });

  // A digest too short to hold 53 bits is a programmer error.
  test('refuses a digest shorter than 7 bytes', () => {
    expect(() => hashOfDigest(new Uint8Array(6))).toThrow(/assertion failed/);
  });
});

describe('treeShapeFor', () => {
  // The key space is cut into 2^18 segments at most, 256 per bucket at most, 16 children per node.
  test('levels and segments for several bucket counts', () => {
    const expected: [number, number, number[]][] = [
      [1, 256, [1, 16, 256]],
      [2, 256, [1, 16, 256]],
      [64, 256, [1, 16, 256]],
      [1024, 256, [1, 16, 256]],
      [2048, 128, [1, 16, 128]],
      [4096, 64, [1, 16, 64]],
      [8192, 32, [1, 16, 32]],
      [16384, 16, [1, 16]],
      [32768, 8, [1, 8]],
      [65536, 4, [1, 4]],
      [131072, 2, [1, 2]],
      [262144, 1, [1]],
      [524288, 1, [1]],
      [1 << 20, 1, [1]],
    ];
    for (const [buckets, segments, levelWidths] of expected) {
      expect({ buckets, shape: treeShapeFor(buckets) }).toEqual({ buckets, shape: { segments, levelWidths } });
    }
  });

  // For every bucket count, levels grow by at most the fanout, end at the segments, and the forest holds at most max(2^18, buckets) leaves.
  test('segment caps and level invariants hold for every power of two', () => {
    for (let power = 0; power <= 20; power++) {
      const buckets = 2 ** power;
      const { segments, levelWidths } = treeShapeFor(buckets);
      expect(segments).toBeGreaterThanOrEqual(1);
      expect(segments).toBeLessThanOrEqual(segmentsPerBucketMax);
      expect(Number.isInteger(segments)).toBe(true);
      expect(segments * buckets).toBeLessThanOrEqual(Math.max(segmentsTotal, buckets));
      expect(levelWidths[0]).toBe(1);
      expect(levelWidths[levelWidths.length - 1]).toBe(segments);
      for (let level = 1; level < levelWidths.length; level++) {
        const ratio = levelWidths[level] / levelWidths[level - 1];
        expect(Number.isInteger(ratio) && ratio > 1 && ratio <= treeFanout).toBe(true);
      }
    }
  });

  // A bucket count that is not a positive power of two is refused.
  test('refuses bucket counts that are not powers of two', () => {
    for (const buckets of [0, -1, 3, 1000, 1.5, Number.NaN]) expect(() => treeShapeFor(buckets)).toThrow(/assertion failed/);
  });
});

describe('segmentOfPosition', () => {
  // A key's segment is the next bits of its ring position below the bucket's bits.
  test('is the bits below the bucket bits, in range', () => {
    checkProperty(seedsPerProperty, (random) => {
      const buckets = 2 ** random.int(0, 20);
      const { segments } = treeShapeFor(buckets);
      for (let i = 0; i < 200; i++) {
        const position = random.chance(0.1) ? random.pick([0, positionSpace - 1, 2 ** 31]) : random.int(0, positionSpace - 1);
        const segment = segmentOfPosition(position, buckets, segments);
        const bucket = Math.floor((position * buckets) / positionSpace);
        const fine = (BigInt(position) * BigInt(buckets) * BigInt(segments)) >> 32n;
        const where = `position ${position}, ${buckets} buckets, ${segments} segments`;
        ensure(Number.isInteger(segment) && segment >= 0 && segment < segments, `${where}: segment ${segment} out of range`);
        ensure(BigInt(bucket * segments + segment) === fine, `${where}: segment ${segment} of bucket ${bucket}, expected ${fine}`);
      }
    });
  });

  // Walking a bucket's positions from its first to its last visits its segments 0 to segments-1 in order.
  test('cuts each bucket into equal consecutive ranges', () => {
    const buckets = 1024;
    const { segments } = treeShapeFor(buckets);
    const span = positionSpace / buckets / segments;
    for (const bucket of [0, 1, 511, 1023]) {
      const start = bucketPosition(bucket, buckets);
      for (let segment = 0; segment < segments; segment++) {
        expect(segmentOfPosition(start + segment * span, buckets, segments)).toBe(segment);
        expect(segmentOfPosition(start + (segment + 1) * span - 1, buckets, segments)).toBe(segment);
      }
    }
    expect(segmentOfPosition(0, buckets, segments)).toBe(0);
    expect(segmentOfPosition(positionSpace - 1, buckets, segments)).toBe(segments - 1);
    // One segment per bucket: every position is segment 0.
    expect(segmentOfPosition(positionSpace - 1, 1 << 20, 1)).toBe(0);
  });
});

describe('childrenOf', () => {
  // An inner node covers the consecutive block of nodes one level down that its index names.
  test('names the block of children one level down', () => {
    const wide = treeShapeFor(1024);
    expect(childrenOf(wide, 0, 0)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(childrenOf(wide, 1, 3)).toEqual(Array.from({ length: 16 }, (_, i) => 48 + i));
    expect(childrenOf(wide, 1, 15)).toEqual(Array.from({ length: 16 }, (_, i) => 240 + i));
    const narrow = treeShapeFor(4096);
    expect(childrenOf(narrow, 1, 2)).toEqual([8, 9, 10, 11]);
    expect(childrenOf(treeShapeFor(32768), 0, 0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  // The children of a level's nodes partition the next level: every node has exactly one parent.
  test('the children of each level partition the next one', () => {
    for (let power = 0; power <= 17; power++) {
      const shape: TreeShape = treeShapeFor(2 ** power);
      for (let level = 0; level < shape.levelWidths.length - 1; level++) {
        const all = Array.from({ length: shape.levelWidths[level] }, (_, index) => childrenOf(shape, level, index)).flat();
        expect(all).toEqual(Array.from({ length: shape.levelWidths[level + 1] }, (_, index) => index));
      }
    }
  });

  // The leaves have no children, and there is no level past them.
  test('refuses the leaf level and levels out of range', () => {
    const shape = treeShapeFor(1024);
    expect(() => childrenOf(shape, 2, 0)).toThrow(/assertion failed/);
    expect(() => childrenOf(shape, -1, 0)).toThrow(/assertion failed/);
    expect(() => childrenOf(treeShapeFor(1 << 20), 0, 0)).toThrow(/assertion failed/);
  });
});

describe('differingPositions', () => {
  // The positions at which two hash lists differ, in order; none for equal lists.
  test('lists where two hash lists differ', () => {
    expect(differingPositions([], [])).toEqual([]);
    expect(differingPositions([1, 2, 3], [1, 2, 3])).toEqual([]);
    expect(differingPositions([1, 2, 3, 4], [0, 2, 5, 4])).toEqual([0, 2]);
    expect(differingPositions([hashLimit - 1], [hashLimit - 2])).toEqual([0]);
    checkProperty(seedsPerProperty, (random) => {
      const local = Array.from({ length: random.int(0, 64) }, () => someHash(random));
      const changed = new Set<number>();
      const remote = local.map((hash, position) => {
        if (!random.chance(0.3)) return hash;
        changed.add(position);
        return xorHash(hash, random.int(1, 2 ** 32 - 1));
      });
      const differing = differingPositions(local, remote);
      ensure(differing.join(',') === [...changed].join(','), `differs at ${differing.join(',')}, changed ${[...changed].join(',')}`);
    });
  });

  // Lists of different lengths cannot be compared position by position.
  test('refuses lists of different lengths', () => {
    expect(() => differingPositions([1], [1, 2])).toThrow(/assertion failed/);
  });
});

describe('MerkleForest', () => {
  /** Random key hashes placed in random buckets and segments. */
  function randomEntries(random: Random, forest: MerkleForest, count: number): [number, number, number][] {
    // A few buckets, spread over the range, so that buckets share keys and whole trees stay cheap to check.
    const used = Array.from({ length: Math.min(forest.buckets, 6) }, () => random.int(0, forest.buckets - 1));
    return Array.from({ length: count }, () => [
      random.pick(used),
      random.int(0, forest.shape.segments - 1),
      someHash(random),
    ]);
  }

  // A bucket that never held a key, and a new forest, hash to zero everywhere.
  test('an empty forest is all zero', () => {
    const forest = new MerkleForest(1024);
    expect(forest.roots([0, 1, 1023])).toEqual([0, 0, 0]);
    expect(wholeTree(forest, 5).flat().every((hash) => hash === 0)).toBe(true);
    forest.apply(5, 7, 0);
    expect(wholeTree(forest, 5).flat().every((hash) => hash === 0)).toBe(true);
  });

  // XOR-ing random changes in and then out again, in another order, leaves every node at zero.
  test('applying random changes then undoing them returns all zero', () => {
    checkProperty(seedsPerProperty, (random) => {
      const forest = new MerkleForest(random.pick([1, 16, 1024, 4096, 32768]));
      const entries = randomEntries(random, forest, random.int(1, 300));
      for (const [bucket, segment, hash] of entries) forest.apply(bucket, segment, hash);
      const touched = [...new Set(entries.map(([bucket]) => bucket))];
      for (const bucket of touched) {
        const expected = entries.filter(([b]) => b === bucket).reduce((root, [, , hash]) => bigXor(root, hash), 0);
        ensure(forest.nodeHash(bucket, 0, 0) === expected, `bucket ${bucket}: root is not the XOR of its changes`);
      }
      for (const [bucket, segment, hash] of random.shuffle(entries)) forest.apply(bucket, segment, hash);
      for (const bucket of touched) {
        const nonZero = wholeTree(forest, bucket).flat().filter((hash) => hash !== 0);
        ensure(nonZero.length === 0, `bucket ${bucket} keeps ${nonZero.length} non-zero nodes after undoing`);
      }
    });
  });

  // Each inner node's hash is the XOR of the segments below it, at every level.
  test('nodeHash at each level is the XOR of its leaves', () => {
    checkProperty(seedsPerProperty, (random) => {
      const forest = new MerkleForest(random.pick([1, 1024, 2048, 8192, 16384, 65536]));
      const entries = randomEntries(random, forest, random.int(1, 400));
      for (const [bucket, segment, hash] of entries) forest.apply(bucket, segment, hash);
      for (const bucket of new Set(entries.map(([b]) => b))) {
        // The leaves themselves are the XOR of what was applied to them.
        const leaves = new Array<number>(forest.shape.segments).fill(0);
        for (const [b, segment, hash] of entries) if (b === bucket) leaves[segment] = bigXor(leaves[segment], hash);
        const leafLevel = forest.shape.levelWidths.length - 1;
        ensure(
          forest.hashes(bucket, leafLevel, leaves.map((_, i) => i)).join(',') === leaves.join(','),
          `bucket ${bucket}: leaves are not the XOR of their changes`,
        );
        forest.shape.levelWidths.forEach((width, level) => {
          for (let index = 0; index < width; index++) {
            const hash = forest.nodeHash(bucket, level, index);
            ensure(hash === leavesXor(forest, bucket, level, index), `bucket ${bucket} level ${level} node ${index}: ${hash}`);
            if (level < leafLevel) {
              const childrenXor = forest.hashes(bucket, level + 1, childrenOf(forest.shape, level, index)).reduce(bigXor, 0);
              ensure(hash === childrenXor, `bucket ${bucket} level ${level} node ${index} is not the XOR of its children`);
            }
          }
        });
      }
    });
  });

  // The same set of key hashes, applied in any order, gives the same tree: replicas need not sort.
  test('order independence: the same key hashes in any order give equal trees', () => {
    checkProperty(seedsPerProperty, (random) => {
      const buckets = random.pick([1, 64, 1024, 4096]);
      const entries = randomEntries(random, new MerkleForest(buckets), random.int(1, 300));
      const forward = new MerkleForest(buckets);
      const shuffled = new MerkleForest(buckets);
      for (const [bucket, segment, hash] of entries) forward.apply(bucket, segment, hash);
      for (const [bucket, segment, hash] of random.shuffle(entries)) shuffled.apply(bucket, segment, hash);
      const touched = [...new Set(entries.map(([bucket]) => bucket))];
      ensure(forward.roots(touched).join(',') === shuffled.roots(touched).join(','), 'roots differ with the order');
      for (const bucket of touched) {
        ensure(JSON.stringify(wholeTree(forward, bucket)) === JSON.stringify(wholeTree(shuffled, bucket)), `bucket ${bucket} differs`);
      }
    });
  });

  // Updating a key by XOR-ing out its old hash and in its new one gives the tree of the final key set.
  test('incremental updates equal a tree built from the final hashes', () => {
    checkProperty(seedsPerProperty, (random) => {
      const buckets = 1024;
      const keys = Array.from({ length: random.int(1, 60) }, () => ({
        bucket: random.int(0, 3),
        segment: random.int(0, 255),
        hash: 0,
      }));
      const incremental = new MerkleForest(buckets);
      for (let step = 0; step < 300; step++) {
        const key = random.pick(keys);
        // A removed key has hash 0: it contributes nothing.
        const next = random.chance(0.1) ? 0 : randomHash(random);
        incremental.apply(key.bucket, key.segment, xorHash(key.hash, next));
        key.hash = next;
      }
      const rebuilt = new MerkleForest(buckets);
      for (const key of keys) rebuilt.apply(key.bucket, key.segment, key.hash);
      for (let bucket = 0; bucket < 4; bucket++) {
        ensure(JSON.stringify(wholeTree(incremental, bucket)) === JSON.stringify(wholeTree(rebuilt, bucket)), `bucket ${bucket} differs`);
      }
    });
  });

  // Two forests that differ in one key differ on exactly one path from the root down to its segment.
  test('one differing key shows on one path, found by descending with childrenOf and differingPositions', () => {
    checkProperty(seedsPerProperty, (random) => {
      const forest = new MerkleForest(1024);
      const other = new MerkleForest(1024);
      const bucket = random.int(0, 1023);
      for (let i = 0; i < 100; i++) {
        const segment = random.int(0, 255);
        const hash = randomHash(random);
        forest.apply(bucket, segment, hash);
        other.apply(bucket, segment, hash);
      }
      const segment = random.int(0, 255);
      other.apply(bucket, segment, random.int(1, 2 ** 32 - 1));
      let level = 0;
      let indexes = [0];
      for (;;) {
        const differing = differingPositions(forest.hashes(bucket, level, indexes), other.hashes(bucket, level, indexes));
        ensure(differing.length === 1, `level ${level}: ${differing.length} differing nodes`);
        const index = indexes[differing[0]];
        if (level === forest.shape.levelWidths.length - 1) {
          ensure(index === segment, `found segment ${index}, changed ${segment}`);
          break;
        }
        indexes = childrenOf(forest.shape, level, index);
        level += 1;
      }
    });
  });

  // clear forgets every bucket; buckets are independent of each other.
  test('clear empties every bucket, and buckets do not mix', () => {
    const forest = new MerkleForest(16);
    forest.apply(0, 0, 5);
    forest.apply(15, 255, 9);
    expect(forest.roots([0, 1, 15])).toEqual([5, 0, 9]);
    expect(forest.nodeHash(15, 1, 15)).toBe(9);
    expect(forest.nodeHash(15, 1, 14)).toBe(0);
    forest.clear();
    expect(forest.roots([0, 15])).toEqual([0, 0]);
    forest.apply(0, 0, 5);
    expect(forest.roots([0, 15])).toEqual([5, 0]);
  });

  // Buckets, segments, levels and node indexes out of range are programmer errors.
  test('refuses coordinates out of range', () => {
    const forest = new MerkleForest(16);
    expect(() => forest.apply(16, 0, 1)).toThrow(/assertion failed/);
    expect(() => forest.apply(-1, 0, 1)).toThrow(/assertion failed/);
    expect(() => forest.apply(0, 256, 1)).toThrow(/assertion failed/);
    expect(() => forest.apply(0, 1.5, 1)).toThrow(/assertion failed/);
    expect(() => forest.nodeHash(0, 3, 0)).toThrow(/assertion failed/);
    expect(() => forest.nodeHash(0, 1, 16)).toThrow(/assertion failed/);
    expect(() => forest.nodeHash(0, 0, 1)).toThrow(/assertion failed/);
  });
});

describe('MerkleForest.bucketsHoldingKeys', () => {
  test('names the buckets whose trees are not all zero, in order', () => {
    // Proves handoff can find the buckets a node holds copies of without reading its file.
    const forest = new MerkleForest(64);
    forest.apply(9, 3, 0x1234);
    forest.apply(2, 0, 0x55);
    forest.apply(40, 1, 0x77);
    expect(forest.bucketsHoldingKeys()).toEqual([2, 9, 40]);
    // The key of bucket 40 leaves: its tree is all zero again, and it holds nothing.
    forest.apply(40, 1, 0x77);
    expect(forest.bucketsHoldingKeys()).toEqual([2, 9]);
    forest.clear();
    expect(forest.bucketsHoldingKeys()).toEqual([]);
  });
});
