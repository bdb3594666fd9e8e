/**
 * The internal API's first bytes arriving at the memcache port: a `kai` command or a peer given a
 * node's memcache port instead of its internal API port. memcached's text protocol would wait for
 * a newline that never comes, and the command would wait out its timeout saying nothing useful;
 * instead the port answers at once, in the memcache protocol, naming the port the bytes were
 * meant for, and closes the connection.
 *
 * The internal API opens with the cluster-secret handshake's magic, or with a frame: a 4-byte
 * length (under 16 MiB for anything a command or a first exchange sends, so its first byte is 0)
 * and then a msgpack map (the envelope). No memcache client starts so: a text command starts with
 * a letter and a binary request with 0x80. Pure: bytes in, a decision and the words out.
 */
import { KaiError } from '../errors';
import { frameLengthBytes } from '../rpc/frames';
import { handshakeMagic } from '../rpc/handshake';

/** Bytes a first chunk needs for the decision: a frame's length prefix and its body's first byte. */
export const internalApiPreludeBytes = frameLengthBytes + 1;

/** msgpack's fixmap (0x80 to 0x8f) and map 16 (0xde): the envelope's first byte. */
function isMsgpackMap(byte: number): boolean {
  return (byte & 0xf0) === 0x80 || byte === 0xde;
}

/** Whether a connection's first chunk is the internal API's opening rather than a memcache request. */
export function isInternalApiPrelude(firstChunk: Buffer): boolean {
  if (firstChunk.length >= handshakeMagic.length && firstChunk.subarray(0, handshakeMagic.length).equals(handshakeMagic)) {
    return true;
  }
  return firstChunk.length >= internalApiPreludeBytes && firstChunk[0] === 0 && isMsgpackMap(firstChunk[frameLengthBytes]);
}

/** The one reply line such a connection gets, naming the node and its internal API port. */
export function wrongPortReply(nodeId: string): Buffer {
  const port = nodeId.slice(nodeId.lastIndexOf(':') + 1);
  const error = new KaiError('KAI_MEMCACHE_PORT', `of kai node ${nodeId}, whose internal API port is ${port}`);
  return Buffer.from(`${error.textReply()}\r\n`);
}

/** The node id and internal API port a wrongPortReply names, or undefined for any other line. */
export function parseWrongPortReply(line: string): { readonly nodeId: string; readonly port: number } | undefined {
  const match = /^SERVER_ERROR memcache port \(of kai node (\S+), whose internal API port is (\d{1,5})\)/.exec(line);
  return match === null ? undefined : { nodeId: match[1], port: Number(match[2]) };
}
