import { createHash } from 'node:crypto';
import { md5, md5High64, md5Position, utf8Bytes } from '../../../src/ring/md5';

function nodeMd5(bytes: Uint8Array): Buffer {
  return createHash('md5').update(bytes).digest();
}

/** A fixed-seed xorshift32, so the "random" inputs are the same on every run. */
function seededBytes(seed: number, length: number): Uint8Array {
  let state = seed >>> 0 || 1;
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

function expectSameDigest(bytes: Uint8Array): void {
  expect(Buffer.from(md5(bytes)).toString('hex')).toBe(nodeMd5(bytes).toString('hex'));
}

// The empty message hashes to RFC 1321's published digest.
test('md5 of the empty message', () => {
  expect(Buffer.from(md5(new Uint8Array(0))).toString('hex')).toBe('d41d8cd98f00b204e9800998ecf8427e');
});

// Every length from 1 to 200 bytes, which crosses the one-, two- and three-block padding cases.
test('md5 matches node:crypto for every length up to 200 bytes', () => {
  for (let length = 1; length <= 200; length++) expectSameDigest(seededBytes(length * 7919, length));
});

// Lengths around the 55/56/64-byte edges, where the length field spills into an extra block.
test('md5 matches node:crypto at the padding block edges', () => {
  for (const length of [55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 183, 184, 191, 192]) {
    expectSameDigest(new Uint8Array(length).fill(0xff));
    expectSameDigest(new Uint8Array(length));
    expectSameDigest(seededBytes(length, length));
  }
});

// Longer random messages, including ones above 2^16 bytes.
test('md5 matches node:crypto for long random messages', () => {
  for (const [seed, length] of [
    [1, 1000],
    [2, 4096],
    [3, 65_537],
    [4, 100_003],
  ]) {
    expectSameDigest(seededBytes(seed, length));
  }
});

// UTF-8 text, as the ring hashes member ids and keys, gives node's digest of the same text.
test('md5 of utf8 text matches node:crypto', () => {
  for (const text of ['a', 'node-1#0', 'héllo wörld', '日本語のキー', '🔑 emoji key', 'x'.repeat(300)]) {
    const bytes = utf8Bytes(text);
    expect(Buffer.from(bytes).equals(Buffer.from(text, 'utf8'))).toBe(true);
    expect(Buffer.from(md5(bytes)).toString('hex')).toBe(createHash('md5').update(text, 'utf8').digest('hex'));
  }
});

// md5Position is the digest's first four bytes big-endian, md5High64 its first eight.
test('md5Position and md5High64 read the digest bytes big-endian', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const bytes = seededBytes(seed, seed % 70);
    const digest = nodeMd5(bytes);
    const position = md5Position(bytes);
    expect(position).toBe(digest.readUInt32BE(0));
    expect(Number.isInteger(position) && position >= 0 && position < 2 ** 32).toBe(true);
    expect(md5High64(bytes)).toBe(digest.readBigUInt64BE(0));
  }
});
