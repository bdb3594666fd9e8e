/**
 * Binary protocol packets for tests: building requests byte by byte (independently of the codec
 * under test) and splitting a reply stream into responses.
 */
export const binaryOpcode = {
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

export interface RequestParts {
  readonly key?: string | Buffer;
  readonly extras?: Buffer;
  readonly value?: string | Buffer;
  readonly opaque?: number;
  readonly cas?: bigint;
  /** Overrides the body length the header declares. */
  readonly bodyLength?: number;
  readonly magic?: number;
}

function bytes(data: string | Buffer | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  return typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
}

/** One request packet. */
export function binaryRequest(opcode: number, parts: RequestParts = {}): Buffer {
  const key = bytes(parts.key);
  const extras = parts.extras ?? Buffer.alloc(0);
  const value = bytes(parts.value);
  const header = Buffer.alloc(24);
  header[0] = parts.magic ?? 0x80;
  header[1] = opcode;
  header.writeUInt16BE(key.length, 2);
  header[4] = extras.length;
  header.writeUInt32BE(parts.bodyLength ?? extras.length + key.length + value.length, 8);
  header.writeUInt32BE(parts.opaque ?? 0, 12);
  header.writeBigUInt64BE(parts.cas ?? 0n, 16);
  return Buffer.concat([header, extras, key, value]);
}

/** Extras of a set, add or replace: flags and expiration. */
export function storeExtras(flags: number, exptime = 0): Buffer {
  const extras = Buffer.alloc(8);
  extras.writeUInt32BE(flags, 0);
  extras.writeUInt32BE(exptime, 4);
  return extras;
}

/** Extras of an incr or decr: delta, initial value and expiration (0xffffffff: do not create). */
export function arithExtras(delta: bigint, initial = 0n, expiration = 0): Buffer {
  const extras = Buffer.alloc(20);
  extras.writeBigUInt64BE(delta, 0);
  extras.writeBigUInt64BE(initial, 8);
  extras.writeUInt32BE(expiration, 16);
  return extras;
}

/** A 4-byte expiration (touch, gat, flush) or verbosity level. */
export function uint32Extras(value: number): Buffer {
  const extras = Buffer.alloc(4);
  extras.writeUInt32BE(value, 0);
  return extras;
}

export interface BinaryResponse {
  readonly magic: number;
  readonly opcode: number;
  readonly status: number;
  readonly dataType: number;
  readonly opaque: number;
  readonly cas: bigint;
  readonly extras: Buffer;
  readonly key: Buffer;
  readonly value: Buffer;
}

/** The complete responses at the start of `stream`, and the bytes left after them. */
export function parseResponses(stream: Buffer): { responses: BinaryResponse[]; rest: Buffer } {
  const responses: BinaryResponse[] = [];
  let at = 0;
  while (stream.length - at >= 24) {
    const keyLength = stream.readUInt16BE(at + 2);
    const extrasLength = stream[at + 4];
    const bodyLength = stream.readUInt32BE(at + 8);
    if (stream.length - at < 24 + bodyLength) break;
    const body = stream.subarray(at + 24, at + 24 + bodyLength);
    responses.push({
      magic: stream[at],
      opcode: stream[at + 1],
      status: stream.readUInt16BE(at + 6),
      dataType: stream[at + 5],
      opaque: stream.readUInt32BE(at + 12),
      cas: stream.readBigUInt64BE(at + 16),
      extras: body.subarray(0, extrasLength),
      key: body.subarray(extrasLength, extrasLength + keyLength),
      value: body.subarray(extrasLength + keyLength),
    });
    at += 24 + bodyLength;
  }
  return { responses, rest: stream.subarray(at) };
}

/** Whether `stream` holds at least `count` complete responses. */
export function hasResponses(stream: Buffer, count: number): boolean {
  return parseResponses(stream).responses.length >= count;
}

/** Whether `stream` ends with a complete NOOP response (the end marker of a pipelined batch). */
export function endsWithNoop(stream: Buffer): boolean {
  const { responses, rest } = parseResponses(stream);
  return rest.length === 0 && responses.at(-1)?.opcode === binaryOpcode.noop;
}

/** Whether `stream` ends with the empty packet that closes a STAT reply. */
export function endsStats(stream: Buffer): boolean {
  const { responses, rest } = parseResponses(stream);
  const last = responses.at(-1);
  return rest.length === 0 && last?.opcode === binaryOpcode.stat && (last.key.length === 0 || last.status !== 0);
}
