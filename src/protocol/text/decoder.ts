/**
 * The memcache text protocol decoder: a push parser over received chunks, with no socket in it.
 * The server pushes what it reads and pulls events until `next()` says more bytes are needed.
 *
 * Framing follows memcached 1.6 byte for byte: a line ends at "\n" (a CR before it is dropped), a
 * storage command's data block is exactly the announced length plus CRLF, a bad block is judged on
 * its last two bytes only and parsing resumes right after it, and an announced block over the
 * value limit is swallowed unread and answered only once the whole of it has arrived.
 */
import { KaiError, type ErrorCode } from '../../errors';
import type { Command } from '../command';
import { ChunkList } from '../chunk-list';
import { parseCommandLine, type StoreHeader } from './command-line';

export interface TextDecoderLimits {
  /** Largest value accepted, in bytes (--max-item-size). */
  readonly valueBytesMax: number;
  /** Longest get/gets line accepted; multigets are the one kind of line allowed to be long. */
  readonly multigetLineBytesMax?: number;
}

export type TextEvent =
  | { readonly kind: 'command'; readonly command: Command }
  /** The server writes the error's reply, then closes the connection if `close`. */
  | { readonly kind: 'error'; readonly error: KaiError; readonly close: boolean };

/**
 * memcached closes a connection that has sent this many bytes without a newline, unless the line
 * is a get or gets (a multiget may legitimately be long).
 */
export const lineBytesWithoutNewlineMax = 2048;
/** memcached's read buffer: a line longer than this never fits, so only a multiget can be longer. */
export const lineBytesMax = 16 * 1024;
/** kai's cap on a multiget line, where memcached has none: about 4,000 keys of 250 bytes. */
export const multigetLineBytesMaxDefault = 1024 * 1024;
/** memcached only looks past this many leading spaces for a `get ` before giving up on the line. */
export const leadingSpacesMax = 100;

const newline = 0x0a;
const space = 0x20;
const carriageReturn = 0x0d;
const multigetPrefixes = [Buffer.from('get '), Buffer.from('gets ')];

type State =
  | { readonly kind: 'line' }
  | { readonly kind: 'data'; readonly header: StoreHeader }
  /** Discarding a refused block; `then` is the refusal's reply, due once the block is gone. */
  | { kind: 'swallow'; remainingBytes: number; readonly then: TextEvent | undefined }
  | { readonly kind: 'closed' };

const lineState: State = { kind: 'line' };
const closedState: State = { kind: 'closed' };

export class TextDecoder {
  private readonly buffer = new ChunkList();
  private state: State = lineState;
  private readonly multigetLineBytesMax: number;

  constructor(private readonly limits: TextDecoderLimits) {
    this.multigetLineBytesMax = limits.multigetLineBytesMax ?? multigetLineBytesMaxDefault;
  }

  /** Appends received bytes. After a closing error or `quit`, further bytes are dropped. */
  push(chunk: Buffer): void {
    if (this.state.kind === 'closed') return;
    this.buffer.push(chunk);
  }

  /** Bytes held and not yet decoded. */
  bufferedBytes(): number {
    return this.buffer.byteLength;
  }

  /**
   * Bytes the request being received needs in all, once its command line has announced them (a
   * storage command's block and CRLF); 0 while no length is known. Lets the server ask a byte
   * budget for them before reading them.
   */
  awaitedBytes(): number {
    return this.state.kind === 'data' ? this.state.header.valueBytes + 2 : 0;
  }

  /** The connection closed: drops what is held, so nothing keeps its buffers alive. */
  release(): void {
    this.stop();
  }

  /** The most bytes the decoder ever needs held at once to decode its next event. */
  heldBytesMax(): number {
    return Math.max(this.limits.valueBytesMax + 2, this.multigetLineBytesMax + 1);
  }

  /** The next decoded event, or undefined when more bytes are needed (or the stream is over). */
  next(): TextEvent | undefined {
    for (;;) {
      switch (this.state.kind) {
        case 'closed':
          return undefined;
        case 'swallow': {
          const swallowing = this.state;
          if (!this.swallow(swallowing)) return undefined;
          if (swallowing.then) return swallowing.then;
          break;
        }
        case 'data': {
          const header = this.state.header;
          if (this.buffer.byteLength < header.valueBytes + 2) return undefined;
          const event = this.completeStore(header);
          if (event) return event;
          break;
        }
        case 'line': {
          const event = this.nextLine();
          if (event !== 'continue') return event;
          break;
        }
      }
    }
  }

  /** Discards swallowed bytes as they come; true once the whole block is gone. */
  private swallow(state: { remainingBytes: number }): boolean {
    const discarded = Math.min(state.remainingBytes, this.buffer.byteLength);
    this.buffer.skip(discarded);
    state.remainingBytes -= discarded;
    if (state.remainingBytes > 0) return false;
    this.state = lineState;
    return true;
  }

  /**
   * The data block is the announced bytes and two more, which must be CRLF. memcached reads exactly
   * that many bytes whatever they hold, so a short block eats into the next command line.
   */
  private completeStore(header: StoreHeader): TextEvent | undefined {
    const value = this.buffer.take(header.valueBytes);
    const terminatedWell = this.buffer.byteAt(0) === carriageReturn && this.buffer.byteAt(1) === newline;
    this.buffer.skip(2);
    this.state = lineState;
    if (!terminatedWell) return header.noreply ? undefined : errorEvent('KAI_BAD_DATA_CHUNK');
    if (header.meta) return { kind: 'command', command: { op: 'meta_set', request: header.meta, value, noreply: false } };
    const { mode, key, flags, exptime, casUnique, noreply } = header;
    return { kind: 'command', command: { op: 'store', mode, key, flags, exptime, value, casUnique, noreply } };
  }

  /** One command line: an event, 'continue' when the line produced none, undefined when incomplete. */
  private nextLine(): TextEvent | 'continue' | undefined {
    const lineBytes = this.buffer.scanFor(newline);
    if (lineBytes < 0) return this.checkIncompleteLine();
    if (lineBytes > lineBytesMax && !(this.startsMultiget() && lineBytes <= this.multigetLineBytesMax)) {
      return this.close();
    }
    const line = this.buffer.take(lineBytes);
    this.buffer.skip(1);
    const outcome = parseCommandLine(line);
    switch (outcome.kind) {
      case 'command':
        if (outcome.command.op === 'quit') this.stop();
        return { kind: 'command', command: outcome.command };
      case 'error':
        return outcome.silent ? 'continue' : errorEvent(outcome.code);
      case 'store':
        return this.startStore(outcome.header) ?? 'continue';
      case 'swallow':
        this.state = { kind: 'swallow', remainingBytes: outcome.blockBytes, then: errorEvent(outcome.code) };
        return 'continue';
      case 'hangup':
        this.stop();
        return { kind: 'error', error: new KaiError(outcome.code), close: true };
    }
  }

  /**
   * An announced value over the limit is refused before any of it is buffered. The refusal is a
   * command at once (memcached counts it, and a refused `set` also removes the key's old value, so
   * a reader never sees data the client meant to replace); its error reply comes only once the
   * block has been swallowed, as memcached sends it.
   */
  private startStore(header: StoreHeader): TextEvent | undefined {
    if (header.valueBytes <= this.limits.valueBytesMax) {
      this.state = { kind: 'data', header };
      return undefined;
    }
    this.state = {
      kind: 'swallow',
      remainingBytes: header.valueBytes + 2,
      then: header.noreply ? undefined : errorEvent('KAI_VALUE_TOO_LARGE'),
    };
    // memcached removes the old value for a refused set, and for a refused ms in every mode.
    const removeOld = header.meta !== undefined || header.mode === 'set';
    return { kind: 'command', command: { op: 'refuse_store', key: header.key, removeOld, noreply: true } };
  }

  /**
   * memcached's rule for a line whose newline has not come: past 2048 bytes the connection is
   * closed, unless the line is a get or gets, which kai allows up to its multiget cap.
   */
  private checkIncompleteLine(): TextEvent | undefined {
    const held = this.buffer.byteLength;
    if (held <= lineBytesWithoutNewlineMax) return undefined;
    if (this.startsMultiget() && held <= this.multigetLineBytesMax) return undefined;
    return this.close();
  }

  /** Whether the buffered line starts (after at most 100 spaces) with `get ` or `gets `. */
  private startsMultiget(): boolean {
    const held = this.buffer.byteLength;
    let index = 0;
    while (index < held && index <= leadingSpacesMax && this.buffer.byteAt(index) === space) index++;
    if (index > leadingSpacesMax) return false;
    return multigetPrefixes.some((prefix) => {
      if (index + prefix.length > held) return false;
      return prefix.every((byte, offset) => this.buffer.byteAt(index + offset) === byte);
    });
  }

  /** memcached closes such a connection without a reply; the encoder writes none for this error. */
  private close(): TextEvent {
    this.stop();
    return { kind: 'error', error: new KaiError('KAI_LINE_TOO_LONG'), close: true };
  }

  private stop(): void {
    this.state = closedState;
    this.buffer.clear();
  }
}

function errorEvent(code: ErrorCode): TextEvent {
  return { kind: 'error', error: new KaiError(code), close: false };
}
