/**
 * The memcache binary protocol's numbers, from memcached's protocol_binary.h: magic bytes, the
 * header layout, opcodes and the words memcached sends with each error status. The status codes
 * themselves are BinaryStatus in src/errors.ts, shared with the error registry.
 */
import { BinaryStatus } from '../../errors';

export { BinaryStatus };

export const requestMagic = 0x80;
export const responseMagic = 0x81;
/** The only data type memcached defines. */
export const rawBytesDataType = 0x00;
export const headerBytes = 24;

/** Byte offsets of the header fields (big-endian integers). */
export const HeaderOffset = {
  magic: 0,
  opcode: 1,
  keyLength: 2,
  extrasLength: 4,
  dataType: 5,
  /** vbucket id in a request, status in a response. */
  status: 6,
  bodyLength: 8,
  opaque: 12,
  cas: 16,
} as const;

export const Opcode = {
  get: 0x00,
  set: 0x01,
  add: 0x02,
  replace: 0x03,
  delete: 0x04,
  increment: 0x05,
  decrement: 0x06,
  quit: 0x07,
  flush: 0x08,
  getq: 0x09,
  noop: 0x0a,
  version: 0x0b,
  getk: 0x0c,
  getkq: 0x0d,
  append: 0x0e,
  prepend: 0x0f,
  stat: 0x10,
  setq: 0x11,
  addq: 0x12,
  replaceq: 0x13,
  deleteq: 0x14,
  incrementq: 0x15,
  decrementq: 0x16,
  quitq: 0x17,
  flushq: 0x18,
  appendq: 0x19,
  prependq: 0x1a,
  verbosity: 0x1b,
  touch: 0x1c,
  gat: 0x1d,
  gatq: 0x1e,
  saslListMechs: 0x20,
  saslAuth: 0x21,
  saslStep: 0x22,
  gatk: 0x23,
  gatkq: 0x24,
} as const;

export type OpcodeName = keyof typeof Opcode;

/** Each quiet opcode and the loud one it is a variant of. */
export const loudOpcodeOf: ReadonlyMap<number, number> = new Map([
  [Opcode.getq, Opcode.get],
  [Opcode.getkq, Opcode.getk],
  [Opcode.setq, Opcode.set],
  [Opcode.addq, Opcode.add],
  [Opcode.replaceq, Opcode.replace],
  [Opcode.deleteq, Opcode.delete],
  [Opcode.incrementq, Opcode.increment],
  [Opcode.decrementq, Opcode.decrement],
  [Opcode.quitq, Opcode.quit],
  [Opcode.flushq, Opcode.flush],
  [Opcode.appendq, Opcode.append],
  [Opcode.prependq, Opcode.prepend],
  [Opcode.gatq, Opcode.gat],
  [Opcode.gatkq, Opcode.gatk],
]);

/** Extras lengths of the requests that carry extras. */
export const ExtrasBytes = {
  /** flags (4), expiration (4). */
  store: 8,
  /** delta (8), initial value (8), expiration (4). */
  arith: 20,
  /** expiration (4): touch, gat, gatk; flush's optional delay; verbosity's level. */
  expiration: 4,
  /** flags (4), in a get, getk, gat, gatk or touch response. */
  itemFlags: 4,
  /** The largest extras of any request. */
  max: 20,
} as const;

/** An incr/decr expiration meaning: do not create a missing key, answer not found. */
export const arithNoCreateExpiration = 0xffffffff;

/** The text memcached puts in the body of an error response, by status. */
export const statusMessages: ReadonlyMap<number, string> = new Map([
  [BinaryStatus.keyNotFound, 'Not found'],
  [BinaryStatus.keyExists, 'Data exists for key.'],
  [BinaryStatus.valueTooLarge, 'Too large.'],
  [BinaryStatus.invalidArguments, 'Invalid arguments'],
  [BinaryStatus.itemNotStored, 'Not stored.'],
  [BinaryStatus.nonNumericValue, 'Non-numeric server-side value for incr or decr'],
  [BinaryStatus.authenticationError, 'Auth failure.'],
  [BinaryStatus.unknownCommand, 'Unknown command'],
  [BinaryStatus.outOfMemory, 'Out of memory'],
]);

/** What a successful SASL_AUTH answers, as memcached does. */
export const authenticatedMessage = 'Authenticated';
