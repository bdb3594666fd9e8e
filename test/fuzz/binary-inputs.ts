/**
 * Structure-aware input for the binary protocol: request packets valid for their opcode, and
 * the same with header fields mutated: magic, opcode, key, extras and body lengths that
 * disagree with each other and with the bytes sent, lengths at the caps, odd data types, cas
 * values and values around the size limit. Packets are built byte by byte, apart from the codec
 * under test.
 */
import type { SimRandom } from '../sim/random';
import { binaryOpcode } from '../support/binary';
import { damagedStream, edgeIntegers, mutateOneToThreeTimes, randomBytes } from './bytes';

export interface BinaryInputOptions {
  /** Draw no packet that removes data other clients may hold (flush). */
  readonly harmlessOnly?: boolean;
  /** Every generated key starts with this, so a node's other clients never share one. */
  readonly keyPrefix?: string;
  /**
   * Draw keys from this many only (prefix and a number), so a long run against a node stores a
   * bounded amount of data; absent, keys are random.
   */
  readonly keyCount?: number;
  /** Values are drawn up to this size, with edge cases just over it. */
  readonly valueBytesMax: number;
}

/** A packet as fields; `encodePacket` writes the header as given, whatever the body holds. */
export interface Packet {
  magic: number;
  opcode: number;
  keyLength: number;
  extrasLength: number;
  dataType: number;
  vbucket: number;
  bodyLength: number;
  opaque: number;
  cas: bigint;
  extras: Buffer;
  key: Buffer;
  value: Buffer;
}

export const flushOpcodes: ReadonlySet<number> = new Set([binaryOpcode.flush, binaryOpcode.flushq]);

type Shape = 'none' | 'key' | 'store' | 'keyValue' | 'arith' | 'expirationKey' | 'flush' | 'verbosity' | 'stat';

const shapes: Readonly<Record<keyof typeof binaryOpcode, Shape>> = {
  get: 'key', getq: 'key', getk: 'key', getkq: 'key',
  set: 'store', setq: 'store', add: 'store', addq: 'store', replace: 'store', replaceq: 'store',
  append: 'keyValue', appendq: 'keyValue', prepend: 'keyValue', prependq: 'keyValue',
  delete: 'key', deleteq: 'key',
  increment: 'arith', incrementq: 'arith', decrement: 'arith', decrementq: 'arith',
  quit: 'none', quitq: 'none', noop: 'none', version: 'none', saslListMechs: 'none',
  flush: 'flush', flushq: 'flush', verbosity: 'verbosity', stat: 'stat',
  touch: 'expirationKey', gat: 'expirationKey', gatq: 'expirationKey', gatk: 'expirationKey', gatkq: 'expirationKey',
  saslAuth: 'keyValue', saslStep: 'keyValue',
};

function key(random: SimRandom, options: BinaryInputOptions): Buffer {
  const prefix = Buffer.from(options.keyPrefix ?? '');
  if (random.chance(0.05)) return Buffer.concat([prefix, Buffer.alloc(random.pick([249, 250, 251]) - prefix.length, 0x6b)]);
  if (options.keyCount !== undefined) return Buffer.concat([prefix, Buffer.from(String(random.int(0, options.keyCount - 1)))]);
  return Buffer.concat([prefix, randomBytes(random, random.int(1, 16))]);
}

function value(random: SimRandom, options: BinaryInputOptions): Buffer {
  const roll = random.int(0, 19);
  if (roll === 0) return Buffer.alloc(options.valueBytesMax + random.int(0, 2), 0x76);
  if (roll === 1) return Buffer.alloc(random.int(0, options.valueBytesMax), 0x76);
  if (roll === 2) return Buffer.from(String(random.int(0, 1_000_000)));
  return randomBytes(random, random.int(0, 32));
}

function uint32(random: SimRandom): number {
  return random.chance(0.5) ? random.pick(edgeIntegers) : random.nextUint32();
}

/** A packet valid for its opcode (unknown opcodes only now and then). */
export function validPacket(random: SimRandom, options: BinaryInputOptions): Packet {
  const names = (Object.keys(binaryOpcode) as (keyof typeof binaryOpcode)[]).filter(
    (name) => !(options.harmlessOnly && flushOpcodes.has(binaryOpcode[name])),
  );
  const name = random.pick(names);
  let extras: Buffer = Buffer.alloc(0);
  let packetKey: Buffer = Buffer.alloc(0);
  let packetValue: Buffer = Buffer.alloc(0);
  switch (shapes[name]) {
    case 'none':
      break;
    case 'key':
      packetKey = key(random, options);
      break;
    case 'store':
      extras = Buffer.alloc(8);
      extras.writeUInt32BE(uint32(random), 0);
      extras.writeUInt32BE(random.chance(0.8) ? 0 : uint32(random), 4);
      packetKey = key(random, options);
      packetValue = value(random, options);
      break;
    case 'keyValue':
      packetKey = name.startsWith('sasl') ? Buffer.from('PLAIN') : key(random, options);
      packetValue = value(random, options);
      break;
    case 'arith':
      extras = Buffer.alloc(20);
      extras.writeBigUInt64BE(BigInt(uint32(random)), 0);
      extras.writeBigUInt64BE(BigInt(uint32(random)), 8);
      extras.writeUInt32BE(random.pick([0, 0xffffffff, uint32(random)]), 16);
      packetKey = key(random, options);
      break;
    case 'expirationKey':
      extras = Buffer.alloc(4);
      extras.writeUInt32BE(random.chance(0.8) ? 0 : uint32(random), 0);
      packetKey = key(random, options);
      break;
    case 'flush':
      extras = random.chance(0.5) ? Buffer.alloc(4) : Buffer.alloc(0);
      break;
    case 'verbosity':
      extras = Buffer.alloc(4);
      extras.writeUInt32BE(random.int(0, 3), 0);
      break;
    case 'stat':
      packetKey = Buffer.from(random.pick(['', 'items', 'slabs', 'settings', 'kai']));
      break;
  }
  return {
    magic: 0x80,
    opcode: binaryOpcode[name],
    keyLength: packetKey.length,
    extrasLength: extras.length,
    dataType: 0,
    vbucket: 0,
    bodyLength: extras.length + packetKey.length + packetValue.length,
    opaque: random.nextUint32(),
    cas: random.chance(0.8) ? 0n : BigInt(random.nextUint32()),
    extras,
    key: packetKey,
    value: packetValue,
  };
}

type PacketMutation = (random: SimRandom, packet: Packet, options: BinaryInputOptions) => void;

const packetMutations: readonly PacketMutation[] = [
  (random, packet) => {
    packet.magic = random.pick([0x81, 0x00, 0xff, 0x08, random.int(0, 255)]);
  },
  (random, packet, options) => {
    // Another opcode: a known one whose rules the lengths break, or an unknown one.
    const opcodes = [...Object.values(binaryOpcode), 0x25, 0x30, 0x89, 0xff].filter((opcode) => !(options.harmlessOnly && flushOpcodes.has(opcode)));
    packet.opcode = random.pick(opcodes);
  },
  (random, packet) => {
    packet.keyLength = random.pick([0, packet.keyLength - 1, packet.keyLength + 1, 250, 251, 0xffff]);
  },
  (random, packet) => {
    packet.extrasLength = random.pick([0, 4, 8, 20, 21, 0xff]);
  },
  (random, packet, options) => {
    const capBytes = options.valueBytesMax + 250 + 20;
    const framing = packet.keyLength + packet.extrasLength;
    packet.bodyLength = random.pick([0, 1, packet.bodyLength - 1, packet.bodyLength + 1, capBytes, capBytes + 1, 0xffffffff, framing]);
  },
  (random, packet, options) => {
    // A body declared over the cap, with lengths otherwise consistent: refused before it is buffered.
    packet.bodyLength = random.pick([options.valueBytesMax + 250 + 20 + 1, 0x7fffffff, 0xffffffff]);
    packet.keyLength = Math.min(packet.keyLength, 250);
  },
  (random, packet) => {
    packet.dataType = random.int(0, 255);
    packet.vbucket = random.int(0, 0xffff);
  },
  (random, packet) => {
    packet.cas = random.pick([1n, 2n ** 64n - 1n, 2n ** 63n]);
  },
  (random, packet) => {
    // The body's bytes change size while the header's lengths stay.
    const part = random.pick(['extras', 'key', 'value'] as const);
    packet[part] = randomBytes(random, random.pick([0, 1, 4, 8, 20, 251, packet[part].length + 1]));
  },
];

/** A valid packet with one to three header fields or body parts mutated. */
export function mutatedPacket(random: SimRandom, options: BinaryInputOptions): Packet {
  const packet = validPacket(random, options);
  mutateOneToThreeTimes(random, () => random.pick(packetMutations)(random, packet, options));
  return packet;
}

export function encodePacket(packet: Packet): Buffer {
  const header = Buffer.alloc(24);
  header[0] = packet.magic;
  header[1] = packet.opcode;
  header.writeUInt16BE(Math.max(0, Math.min(0xffff, packet.keyLength)), 2);
  header[4] = packet.extrasLength;
  header[5] = packet.dataType;
  header.writeUInt16BE(packet.vbucket, 6);
  header.writeUInt32BE(Math.max(0, Math.min(0xffffffff, packet.bodyLength)), 8);
  header.writeUInt32BE(packet.opaque, 12);
  header.writeBigUInt64BE(packet.cas, 16);
  return Buffer.concat([header, packet.extras, packet.key, packet.value]);
}

/** A stream of packets, valid or mutated, then possibly truncated or garbled as a whole, or noise. */
export function binaryStream(random: SimRandom, options: BinaryInputOptions, packetsMax = 12): Buffer {
  const packets = Array.from({ length: random.int(1, packetsMax) }, () =>
    encodePacket(random.chance(0.5) ? validPacket(random, options) : mutatedPacket(random, options)),
  );
  return damagedStream(random, Buffer.concat(packets), () => Buffer.concat([Buffer.from([0x80]), randomBytes(random, random.int(0, 256))]));
}
