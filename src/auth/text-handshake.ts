/**
 * memcached 1.6's ascii authentication (`-Y`), as a push parser with no socket in it. Until a
 * client authenticates, each line it sends is judged on its own: only
 * `set <any key> <flags> <exptime> <bytes>` is taken, and its data block, `<user> <password>`,
 * is handed over as credentials; any other line, a `quit` and the data line of an `add` included,
 * is refused. Once the credentials are accepted, the bytes already received after them belong to
 * the ordinary text decoder (`remaining()`).
 *
 * The rules are memcached's (proto_text.c, try_read_command_asciiauth), checked against Debian's
 * memcached: tokens split on spaces only; key, flags and exptime are not looked at, nor is a
 * `noreply`; the length is read as memcached's safe_strtoul; the block must end with CRLF; the
 * first two space-separated tokens of the block are the user and the password and any further
 * ones are ignored; a NUL ends a line or a block early, as C strings do.
 */
import { ChunkList } from '../protocol/chunk-list';
import { tokenize } from '../protocol/text/command-line';
import { lineBytesMax, lineBytesWithoutNewlineMax } from '../protocol/text/decoder';
import { parseUint32 } from '../protocol/text/numbers';

/**
 * memcached reads the credentials block into its 16 KiB read buffer: a block (with its CRLF)
 * longer than that can never complete, and memcached closes the connection once the buffer is full.
 */
export const credentialsBlockBytesMax = 16 * 1024;
/** memcached does not look at a line until two bytes have arrived ("impossible for the auth command to be this short"). */
const lineBytesToLookMin = 2;

const newline = 0x0a;
const carriageReturn = 0x0d;
const nul = 0x00;
const setToken = Buffer.from('set');
const tokensBeforeLength = 4;

export type HandshakeEvent =
  /** Any line but an auth `set`: `CLIENT_ERROR unauthenticated`. */
  | { readonly kind: 'unauthenticated' }
  /** The block after an auth `set` did not end with CRLF: `CLIENT_ERROR bad command line termination`. */
  | { readonly kind: 'bad-termination' }
  /** The block held fewer than two tokens: `CLIENT_ERROR bad authentication token format`. */
  | { readonly kind: 'bad-token-format' }
  | { readonly kind: 'credentials'; readonly user: Buffer; readonly password: Buffer }
  /** An over-long line or block: memcached closes the connection without a reply. */
  | { readonly kind: 'close' };

type State =
  | { readonly kind: 'line' }
  | { readonly kind: 'block'; readonly valueBytes: number }
  /** A block too large to ever fit: wait for the buffer to fill as memcached's does, then close. */
  | { readonly kind: 'overflow' }
  | { readonly kind: 'closed' };

const lineState: State = { kind: 'line' };
const closedState: State = { kind: 'closed' };

export class TextAuthHandshake {
  private readonly buffer = new ChunkList();
  private state: State = lineState;

  /** Appends received bytes; after a close they are dropped. */
  push(chunk: Buffer): void {
    if (this.state.kind !== 'closed') this.buffer.push(chunk);
  }

  /** Bytes held and not yet judged; never more than credentialsBlockBytesMax before a close. */
  bufferedBytes(): number {
    return this.buffer.byteLength;
  }

  /** The connection closed: drops what is held. */
  release(): void {
    this.state = closedState;
    this.buffer.clear();
  }

  /** The next event, or undefined when more bytes are needed (or the connection is closing). */
  next(): HandshakeEvent | undefined {
    switch (this.state.kind) {
      case 'closed':
        return undefined;
      case 'overflow':
        return this.buffer.byteLength >= credentialsBlockBytesMax ? this.close() : undefined;
      case 'block':
        return this.nextBlock(this.state.valueBytes);
      case 'line':
        return this.nextLine();
    }
  }

  /** The bytes received after the accepted credentials, for the text decoder; empties this parser. */
  remaining(): Buffer {
    const rest = this.buffer.take(this.buffer.byteLength);
    this.state = closedState;
    return rest;
  }

  private nextLine(): HandshakeEvent | undefined {
    if (this.buffer.byteLength < lineBytesToLookMin) return undefined;
    const lineBytes = this.buffer.scanFor(newline);
    if (lineBytes < 0) {
      return this.buffer.byteLength > lineBytesWithoutNewlineMax ? this.close() : undefined;
    }
    if (lineBytes > lineBytesMax) return this.close();
    const line = cutAtNul(this.buffer.take(lineBytes));
    this.buffer.skip(1);
    // memcached leaves a CR in the last token here; the length token tolerates it as white space.
    const tokens = tokenize(line);
    const valueBytes = tokens.length > tokensBeforeLength ? parseUint32(tokens[tokensBeforeLength]) : undefined;
    if (valueBytes === undefined || !tokens[0].equals(setToken)) return { kind: 'unauthenticated' };
    this.state = valueBytes + 2 > credentialsBlockBytesMax ? { kind: 'overflow' } : { kind: 'block', valueBytes };
    return this.next();
  }

  private nextBlock(valueBytes: number): HandshakeEvent | undefined {
    if (this.buffer.byteLength < valueBytes + 2) return undefined;
    const block = this.buffer.take(valueBytes);
    const terminator = this.buffer.take(2);
    this.state = lineState;
    if (terminator[0] !== carriageReturn || terminator[1] !== newline) return { kind: 'bad-termination' };
    const tokens = tokenize(cutAtNul(block));
    if (tokens.length < 2) return { kind: 'bad-token-format' };
    return { kind: 'credentials', user: tokens[0], password: tokens[1] };
  }

  private close(): HandshakeEvent {
    this.state = closedState;
    this.buffer.clear();
    return { kind: 'close' };
  }
}

function cutAtNul(bytes: Buffer): Buffer {
  const at = bytes.indexOf(nul);
  return at < 0 ? bytes : bytes.subarray(0, at);
}
