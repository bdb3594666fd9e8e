// What the load generator expects back, request by request: parsers over a ChunkReader that return
// an outcome once a reply is complete, and an error for anything the protocol does not prescribe.
// Nothing is consumed until a reply is complete or known to be wrong.

import type { ChunkReader } from './chunk-reader';

export type ErrorKind = 'protocol' | 'value' | 'connection' | 'timeout';

export type ReplyOutcome =
  | { kind: 'incomplete' }
  // `values`: VALUE lines in the reply, more than one when a cluster answers siblings.
  | { kind: 'hit'; values: number }
  | { kind: 'miss' }
  | { kind: 'stored' }
  | { kind: 'deleted' }
  // The new value after an incr or decr.
  | { kind: 'number' }
  | { kind: 'error'; errorKind: ErrorKind; message: string };

// A reply line longer than this cannot be valid for our requests: fail instead of buffering on.
export const replyLineBytesMax = 1024;
// VALUE lines accepted in one get reply: kai's default siblings cap (docs/configuration.md).
export const valuesPerGetMax = 25;
// A counter is an unsigned 64-bit number: at most 20 digits, also when a shorter result is padded
// with spaces to the length of the number it replaced (docs/protocol.md, incr and decr).
export const counterDigitsMax = 20;

const endLine = 'END\r\n';
const storedLine = 'STORED\r\n';
const deletedLine = 'DELETED\r\n';
const crlf = Buffer.from('\r\n');
const counterReplyPattern = /^[0-9]{1,20}\r\n$/;
// As memcached's strtoull reads a stored counter: digits, then the padding a shorter result leaves.
const counterValuePattern = /^[0-9]+ *$/;

export function keyName(keyIndex: number): string {
  return `bench:${keyIndex}`;
}

// Every set of a key writes the same bytes, so any hit can be checked exactly.
export function valueFor(keyIndex: number, valueBytes: number): Buffer {
  return Buffer.alloc(valueBytes, `${keyName(keyIndex)}|`);
}

function protocolError(message: string): ReplyOutcome {
  return { kind: 'error', errorKind: 'protocol', message };
}

// The line starting at `offset` (relative to the cursor), with its CRLF, or null while incomplete.
function readLine(reader: ChunkReader, offset = 0): string | null {
  const newline = reader.indexOfNewline(offset);
  if (newline === -1) return null;
  return reader.slice(offset, newline + 1).toString('latin1');
}

function lineTooLong(reader: ChunkReader, offset = 0): boolean {
  return reader.indexOfNewline(offset) === -1 && reader.bufferedBytes - offset > replyLineBytesMax;
}

// A one-line reply: the outcome of `classify`, or a protocol error naming the command.
function parseLineReply(reader: ChunkReader, command: string, classify: (line: string) => ReplyOutcome | undefined): ReplyOutcome {
  if (lineTooLong(reader)) return protocolError('reply line too long');
  const line = readLine(reader);
  if (line === null) return { kind: 'incomplete' };
  reader.consume(line.length);
  return classify(line) ?? protocolError(`${command}: unexpected reply ${JSON.stringify(line.trimEnd())}`);
}

export function parseSetReply(reader: ChunkReader): ReplyOutcome {
  return parseLineReply(reader, 'set', (line) => (line === storedLine ? { kind: 'stored' } : undefined));
}

// `DELETED` only: the bench deletes a key only after its set was STORED, so NOT_FOUND is an error.
export function parseDeleteReply(reader: ChunkReader): ReplyOutcome {
  return parseLineReply(reader, 'delete', (line) => (line === deletedLine ? { kind: 'deleted' } : undefined));
}

// incr and decr answer the new value; NOT_FOUND or an error line is an error.
export function parseCounterReply(reader: ChunkReader, command: 'incr' | 'decr'): ReplyOutcome {
  return parseLineReply(reader, command, (line) => (counterReplyPattern.test(line) ? { kind: 'number' } : undefined));
}

// What a get must find in each VALUE block of one key.
interface ValueExpectation {
  // Checked on the header, before the data is waited for, so the wait is bounded.
  acceptsLength(declaredBytes: number): boolean;
  matches(data: Buffer): boolean;
}

// A get reply: END alone (a miss), or up to `valuesMax` VALUE blocks then END, each one checked
// against `expected`.
function parseValueBlocks(reader: ChunkReader, keyIndex: number, expected: ValueExpectation, valuesMax: number): ReplyOutcome {
  let offset = 0;
  for (let values = 0; ; values++) {
    if (lineTooLong(reader, offset)) return protocolError('reply line too long');
    const line = readLine(reader, offset);
    if (line === null) return { kind: 'incomplete' };
    const lineEnd = offset + line.length;
    if (line === endLine) {
      reader.consume(lineEnd);
      return values === 0 ? { kind: 'miss' } : { kind: 'hit', values };
    }
    const header = line.endsWith('\r\n') ? line.slice(0, -2).split(' ') : [];
    if (header.length < 4 || header[0] !== 'VALUE') {
      reader.consume(lineEnd);
      return protocolError(`get: unexpected reply ${JSON.stringify(line.trimEnd())}`);
    }
    const [, key, , declaredBytesText] = header;
    const declaredBytes = Number(declaredBytesText);
    if (key !== keyName(keyIndex) || !Number.isInteger(declaredBytes) || !expected.acceptsLength(declaredBytes)) {
      reader.consume(lineEnd);
      return { kind: 'error', errorKind: 'value', message: `get ${keyName(keyIndex)}: header ${line.trimEnd()}` };
    }
    if (values === valuesMax) {
      reader.consume(lineEnd);
      return protocolError(`get: more than ${valuesMax} values`);
    }
    const dataEnd = lineEnd + declaredBytes;
    const blockEnd = dataEnd + crlf.length;
    if (reader.bufferedBytes < blockEnd) return { kind: 'incomplete' };
    const dataMatches = expected.matches(reader.slice(lineEnd, dataEnd));
    const terminator = reader.slice(dataEnd, blockEnd);
    if (!terminator.equals(crlf)) {
      reader.consume(blockEnd);
      return protocolError(`get: bad trailer ${JSON.stringify(terminator.toString('latin1'))}`);
    }
    if (!dataMatches) {
      reader.consume(blockEnd);
      return { kind: 'error', errorKind: 'value', message: `get ${keyName(keyIndex)}: wrong value` };
    }
    offset = blockEnd;
  }
}

// A get of a key the bench sets: every value must be exactly valueFor(keyIndex). A kai cluster
// answers one VALUE line per sibling when concurrent writes of a key met (docs/protocol.md); every
// set of a key writes the same bytes, so each sibling is checked like a single value.
export function parseGetReply(reader: ChunkReader, keyIndex: number, valueBytes: number): ReplyOutcome {
  const expected: ValueExpectation = {
    acceptsLength: (declaredBytes) => declaredBytes === valueBytes,
    matches: (data) => data.equals(valueFor(keyIndex, valueBytes)),
  };
  return parseValueBlocks(reader, keyIndex, expected, valuesPerGetMax);
}

const counterValue: ValueExpectation = {
  acceptsLength: (declaredBytes) => declaredBytes >= 1 && declaredBytes <= counterDigitsMax,
  matches: (data) => counterValuePattern.test(data.toString('latin1')),
};

// A get of a counter: one decimal number. A counter never has siblings (docs/protocol.md), so a
// second VALUE line is an error.
export function parseCounterGetReply(reader: ChunkReader, keyIndex: number): ReplyOutcome {
  return parseValueBlocks(reader, keyIndex, counterValue, 1);
}

// Binary protocol (memjs's framing): a GET is opcode 0x00 with the key; a SET is opcode 0x01 with
// 8 bytes of extras (flags, expiration), the key and the value. Replies are a 24-byte header
// (status at 6, body length at 8) then the body; a GET hit's body is 4 bytes of flags then the value.
const binaryHeaderBytes = 24;
export const binaryGetOpcode = 0x00;
export const binarySetOpcode = 0x01;
export const binarySetExtrasBytes = 8;
const binaryFlagsBytes = 4;
const binaryStatusSuccess = 0;
const binaryStatusNotFound = 1;

export function binaryRequestHeader(opcode: number, key: string, extrasBytes: number, valueBytes: number): Buffer {
  const keyBytes = Buffer.from(key, 'latin1');
  const header = Buffer.alloc(binaryHeaderBytes + extrasBytes);
  header[0] = 0x80;
  header[1] = opcode;
  header.writeUInt16BE(keyBytes.length, 2);
  header[4] = extrasBytes;
  header.writeUInt32BE(extrasBytes + keyBytes.length + valueBytes, 8);
  return Buffer.concat([header, keyBytes]);
}

// One binary reply to a GET or SET of keyIndex. The declared body is checked against what the
// request can get back before any of it is waited for.
export function parseBinaryReply(reader: ChunkReader, isGet: boolean, keyIndex: number, valueBytes: number): ReplyOutcome {
  if (reader.bufferedBytes < binaryHeaderBytes) return { kind: 'incomplete' };
  const header = reader.slice(0, binaryHeaderBytes);
  const status = header.readUInt16BE(6);
  const bodyBytes = header.readUInt32BE(8);
  const expectedOpcode = isGet ? binaryGetOpcode : binarySetOpcode;
  if (header[0] !== 0x81 || header[1] !== expectedOpcode || bodyBytes > binaryFlagsBytes + valueBytes + replyLineBytesMax) {
    reader.consume(binaryHeaderBytes);
    return protocolError(`binary: unexpected header ${header.toString('hex')}`);
  }
  if (reader.bufferedBytes < binaryHeaderBytes + bodyBytes) return { kind: 'incomplete' };
  const body = reader.slice(binaryHeaderBytes, binaryHeaderBytes + bodyBytes);
  reader.consume(binaryHeaderBytes + bodyBytes);
  if (!isGet) return status === binaryStatusSuccess ? { kind: 'stored' } : protocolError(`set: status ${status}`);
  if (status === binaryStatusNotFound) return { kind: 'miss' };
  if (status !== binaryStatusSuccess || header[4] !== binaryFlagsBytes) return protocolError(`get: status ${status}`);
  if (!body.subarray(binaryFlagsBytes).equals(valueFor(keyIndex, valueBytes))) {
    return { kind: 'error', errorKind: 'value', message: `get ${keyName(keyIndex)}: wrong value` };
  }
  return { kind: 'hit', values: 1 };
}
