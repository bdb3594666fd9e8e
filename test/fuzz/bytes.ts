/**
 * Protocol-blind input for the fuzzers: random bytes, and valid input truncated, garbled and
 * split into chunks. Every draw comes from a SimRandom, so an input replays from its seed.
 */
import type { SimRandom } from '../sim/random';

/** Bytes that mean something to one of the decoders: line ends, spaces, NUL, magic bytes, digits. */
const meaningfulBytes = [0x00, 0x0a, 0x0d, 0x20, 0x09, 0x30, 0x31, 0x39, 0x2d, 0x7f, 0x80, 0x81, 0xc0, 0xff];

/** Integers at the edges of the widths the decoders read. */
export const edgeIntegers: readonly number[] = [
  0, 1, 2, 3, 4, 7, 8, 20, 23, 24, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
];

export function randomBytes(random: SimRandom, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let index = 0; index < length; index++) bytes[index] = random.int(0, 255);
  return bytes;
}

/** Random bytes drawn mostly from the ones the decoders react to, so they reach more branches. */
export function meaningfulNoise(random: SimRandom, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let index = 0; index < length; index++) {
    bytes[index] = random.chance(0.6) ? random.pick(meaningfulBytes) : random.int(0, 255);
  }
  return bytes;
}

/** The input cut short at a random point. */
export function truncate(random: SimRandom, input: Buffer): Buffer {
  return input.subarray(0, random.int(0, input.length));
}

type Garbler = (random: SimRandom, input: Buffer) => Buffer;

function randomOffset(random: SimRandom, input: Buffer): number {
  return random.int(0, Math.max(0, input.length - 1));
}

const garblers: readonly Garbler[] = [
  // One bit flipped.
  (random, input) => {
    if (input.length === 0) return input;
    const copy = Buffer.from(input);
    copy[randomOffset(random, copy)] ^= 1 << random.int(0, 7);
    return copy;
  },
  // One byte replaced by a meaningful one.
  (random, input) => {
    if (input.length === 0) return input;
    const copy = Buffer.from(input);
    copy[randomOffset(random, copy)] = random.pick(meaningfulBytes);
    return copy;
  },
  // An edge integer written big-endian over 1, 2 or 4 bytes: lengths, counts, opcodes.
  (random, input) => {
    const width = random.pick([1, 2, 4]);
    if (input.length < width) return input;
    const copy = Buffer.from(input);
    copy.writeUIntBE(random.pick(edgeIntegers) % 2 ** (8 * width), random.int(0, copy.length - width), width);
    return copy;
  },
  // Bytes inserted.
  (random, input) => {
    const at = random.int(0, input.length);
    return Buffer.concat([input.subarray(0, at), meaningfulNoise(random, random.int(1, 16)), input.subarray(at)]);
  },
  // A range deleted.
  (random, input) => {
    const start = random.int(0, input.length);
    const end = random.int(start, Math.min(input.length, start + 64));
    return Buffer.concat([input.subarray(0, start), input.subarray(end)]);
  },
  // A range repeated: a command or a header sent twice, or a length field duplicated.
  (random, input) => {
    const start = random.int(0, input.length);
    const end = random.int(start, Math.min(input.length, start + 256));
    const times = random.int(1, 8);
    const repeated = Array.from({ length: times }, () => input.subarray(start, end));
    return Buffer.concat([input.subarray(0, end), ...repeated, input.subarray(end)]);
  },
  // Two ranges swapped.
  (random, input) => {
    if (input.length < 2) return input;
    const cuts = [random.int(0, input.length), random.int(0, input.length), random.int(0, input.length)].sort((a, b) => a - b);
    return Buffer.concat([input.subarray(0, cuts[0]), input.subarray(cuts[1], cuts[2]), input.subarray(cuts[0], cuts[1]), input.subarray(cuts[2])]);
  },
];

/** The input with a few random damages: flipped bits, edge integers, inserted, deleted, repeated or swapped ranges. */
export function garble(random: SimRandom, input: Buffer, damagesMax = 4): Buffer {
  let output = input;
  const damages = random.int(1, damagesMax);
  for (let count = 0; count < damages; count++) output = random.pick(garblers)(random, output);
  return output;
}

/** Runs `mutate` one to three times: how a valid message becomes a mutated one. */
export function mutateOneToThreeTimes(random: SimRandom, mutate: () => void): void {
  const mutations = random.int(1, 3);
  for (let count = 0; count < mutations; count++) mutate();
}

/**
 * A stream of messages as fuzzed whole: kept, truncated, garbled, or (when `noise` is given)
 * replaced by it, one chance in six each but kept, which takes the rest.
 */
export function damagedStream(random: SimRandom, stream: Buffer, noise?: () => Buffer): Buffer {
  switch (random.int(0, 5)) {
    case 0:
      return truncate(random, stream);
    case 1:
      return garble(random, stream);
    case 2:
      return noise === undefined ? stream : noise();
    default:
      return stream;
  }
}

/** Whole inputs longer than this are not split byte by byte: one push per byte would dominate the run time. */
const byteByByteInputBytesMax = 4096;

/**
 * The input cut into chunks as a socket could deliver it: byte by byte, in small pieces, in
 * random pieces of any size, or with empty chunks in between. Concatenated, the chunks are the input.
 */
export function splitRandomly(random: SimRandom, input: Buffer): Buffer[] {
  const style = random.int(0, 3);
  if (style === 0 && input.length <= byteByByteInputBytesMax) {
    return Array.from({ length: input.length }, (_, index) => input.subarray(index, index + 1));
  }
  const pieceBytesMax = style === 1 ? 8 : Math.max(1, input.length);
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset < input.length) {
    if (style === 3 && random.chance(0.2)) chunks.push(Buffer.alloc(0));
    const length = random.int(1, Math.min(pieceBytesMax, input.length - offset));
    chunks.push(input.subarray(offset, offset + length));
    offset += length;
  }
  return chunks;
}
