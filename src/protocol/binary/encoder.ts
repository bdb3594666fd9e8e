/**
 * The memcache binary protocol encoder: response packets as memcached 1.6 writes them. A
 * response is a 24-byte header then extras, key and value; the opaque of the request is echoed,
 * and every response carrying an item carries its cas unique. Values are passed through as their
 * own chunks, never copied into a larger buffer.
 */
import { assert } from '../../errors';
import { HeaderOffset, headerBytes, rawBytesDataType, responseMagic, statusMessages, BinaryStatus } from './constants';

export interface ResponseFields {
  readonly opcode: number;
  readonly opaque: number;
  readonly status?: number;
  readonly cas?: bigint;
  readonly extras?: Buffer;
  readonly key?: Buffer;
  readonly value?: Buffer;
}

const empty = Buffer.alloc(0);
const uint16Max = 0xffff;
const uint32Max = 0xffffffff;

/** The response header and its body parts, as chunks to write in order. */
export function encodeResponse(fields: ResponseFields): Buffer[] {
  const extras = fields.extras ?? empty;
  const key = fields.key ?? empty;
  const value = fields.value ?? empty;
  const bodyLength = extras.length + key.length + value.length;
  assert(extras.length <= 0xff && key.length <= uint16Max && bodyLength <= uint32Max, 'response lengths fit the header');
  const header = Buffer.alloc(headerBytes);
  header[HeaderOffset.magic] = responseMagic;
  header[HeaderOffset.opcode] = fields.opcode;
  header.writeUInt16BE(key.length, HeaderOffset.keyLength);
  header[HeaderOffset.extrasLength] = extras.length;
  header[HeaderOffset.dataType] = rawBytesDataType;
  header.writeUInt16BE(fields.status ?? BinaryStatus.success, HeaderOffset.status);
  header.writeUInt32BE(bodyLength, HeaderOffset.bodyLength);
  header.writeUInt32BE(fields.opaque, HeaderOffset.opaque);
  header.writeBigUInt64BE(fields.cas ?? 0n, HeaderOffset.cas);
  const chunks: Buffer[] = [header];
  for (const part of [extras, key, value]) if (part.length > 0) chunks.push(part);
  return chunks;
}

/**
 * An error response: the status, and memcached's words for it as the body (or `message` for
 * statuses memcached has no words for).
 */
export function encodeErrorResponse(opcode: number, opaque: number, status: number, message?: string): Buffer[] {
  const text = statusMessages.get(status) ?? message ?? '';
  return encodeResponse({ opcode, opaque, status, value: Buffer.from(text, 'latin1') });
}

/** The 4-byte flags extras of a get, getk, gat, gatk or touch response. */
export function flagsExtras(flags: number): Buffer {
  assert(flags >= 0 && flags <= uint32Max, 'item flags fit in 32 bits');
  const extras = Buffer.alloc(4);
  extras.writeUInt32BE(flags, 0);
  return extras;
}

/** The 8-byte body of an incr/decr response. */
export function counterValue(value: bigint): Buffer {
  const body = Buffer.alloc(8);
  body.writeBigUInt64BE(value, 0);
  return body;
}

/**
 * A statistics reply: one packet per statistic (its name as key, its value as value), then an
 * empty packet that ends the list. Written as one buffer: there are a few dozen small packets.
 */
export function encodeStats(opcode: number, opaque: number, stats: ReadonlyArray<readonly [string, string]>): Buffer[] {
  const packets: Buffer[] = [];
  for (const [name, value] of stats) {
    packets.push(...encodeResponse({ opcode, opaque, key: Buffer.from(name, 'latin1'), value: Buffer.from(value, 'latin1') }));
  }
  packets.push(...encodeResponse({ opcode, opaque }));
  return [Buffer.concat(packets)];
}
