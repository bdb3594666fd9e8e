/**
 * MD5 (RFC 1321) in plain TypeScript, so the ring stays free of node:* imports and computes the
 * same positions in every environment. Only used for placement, never for security.
 */

const shiftAmounts = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15,
  21,
];

const sineTable = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);

function paddedWords(message: Uint8Array): Uint32Array {
  const blockCount = ((message.length + 8) >>> 6) + 1;
  const words = new Uint32Array(blockCount * 16);
  for (let i = 0; i < message.length; i++) words[i >>> 2] |= message[i] << ((i & 3) * 8);
  words[message.length >>> 2] |= 0x80 << ((message.length & 3) * 8);
  const bitLength = message.length * 8;
  words[blockCount * 16 - 2] = bitLength >>> 0;
  words[blockCount * 16 - 1] = Math.floor(bitLength / 2 ** 32) >>> 0;
  return words;
}

function roundFunction(round: number, b: number, c: number, d: number): number {
  if (round === 0) return (b & c) | (~b & d);
  if (round === 1) return (d & b) | (~d & c);
  if (round === 2) return b ^ c ^ d;
  return c ^ (b | ~d);
}

function wordIndex(round: number, step: number): number {
  if (round === 0) return step;
  if (round === 1) return (5 * step + 1) & 15;
  if (round === 2) return (3 * step + 5) & 15;
  return (7 * step) & 15;
}

/** The four 32-bit little-endian state words of the digest. */
function digestWords(message: Uint8Array): [number, number, number, number] {
  const words = paddedWords(message);
  let a0 = 0x67452301;
  let b0 = 0xefcdab89;
  let c0 = 0x98badcfe;
  let d0 = 0x10325476;
  for (let block = 0; block < words.length; block += 16) {
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    for (let i = 0; i < 64; i++) {
      const round = i >>> 4;
      const f = (roundFunction(round, b, c, d) + a + sineTable[i] + words[block + wordIndex(round, i)]) | 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((f << shiftAmounts[i]) | (f >>> (32 - shiftAmounts[i])))) | 0;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  return [a0 >>> 0, b0 >>> 0, c0 >>> 0, d0 >>> 0];
}

/** The 16-byte MD5 digest. */
export function md5(message: Uint8Array): Uint8Array {
  const digest = new Uint8Array(16);
  digestWords(message).forEach((word, index) => {
    for (let byte = 0; byte < 4; byte++) digest[index * 4 + byte] = (word >>> (byte * 8)) & 0xff;
  });
  return digest;
}

/** The first four digest bytes read big-endian: a position on the 32-bit ring. */
export function md5Position(message: Uint8Array): number {
  const first = digestWords(message)[0];
  return (
    (((first & 0xff) << 24) | (((first >>> 8) & 0xff) << 16) | (((first >>> 16) & 0xff) << 8) | (first >>> 24)) >>> 0
  );
}

/** The first eight digest bytes read big-endian. */
export function md5High64(message: Uint8Array): bigint {
  const digest = md5(message);
  let value = 0n;
  for (let i = 0; i < 8; i++) value = (value << 8n) | BigInt(digest[i]);
  return value;
}

const utf8 = new TextEncoder();

export function utf8Bytes(text: string): Uint8Array {
  return utf8.encode(text);
}
