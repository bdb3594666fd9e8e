/**
 * The memcache binary protocol decoder: a push parser over received chunks, with no socket in it.
 * The server pushes what it reads and pulls events until `next()` says more bytes are needed.
 *
 * Every check is made on the 24-byte header, before any of the body is buffered: the magic byte,
 * the lengths against each other and against the opcode's rules, and the declared body length
 * against the cap. A storage request whose value is over the value limit but whose body is within
 * the cap has its extras and key read and its value discarded as it arrives.
 */
import { assert } from '../../errors';
import { ChunkList } from '../chunk-list';
import { keyBytesMax } from '../command';
import { BinaryStatus, ExtrasBytes, HeaderOffset, Opcode, headerBytes, requestMagic } from './constants';

export interface RequestHeader {
  readonly opcode: number;
  readonly keyLength: number;
  readonly extrasLength: number;
  readonly dataType: number;
  readonly vbucket: number;
  /** Extras, key and value together. */
  readonly bodyLength: number;
  readonly opaque: number;
  readonly cas: bigint;
}

export interface BinaryRequest {
  readonly header: RequestHeader;
  readonly extras: Buffer;
  readonly key: Buffer;
  readonly value: Buffer;
}

export type BinaryEvent =
  | { readonly kind: 'request'; readonly request: BinaryRequest }
  /**
   * A storage request whose value is over the value limit; its value is being discarded. The
   * extras and key are read, so that a refused SET can still remove the key's old value.
   */
  | { readonly kind: 'valueTooLarge'; readonly request: BinaryRequest }
  /**
   * A request refused from its header alone. `header` is undefined when the bytes are not a
   * request at all (a bad magic byte): memcached then closes without a reply.
   */
  | {
      readonly kind: 'error';
      readonly header: RequestHeader | undefined;
      readonly status: number;
      readonly close: boolean;
    };

export interface BinaryDecoderLimits {
  /** Largest value accepted, in bytes (--max-item-size). */
  readonly valueBytesMax: number;
}

/**
 * The largest body a request may declare: a value at the limit plus the longest key and extras.
 * A larger declaration is refused and the connection closed, before any of it is buffered.
 */
export function bodyBytesMaxFor(valueBytesMax: number): number {
  return valueBytesMax + keyBytesMax + ExtrasBytes.max;
}

const storageOpcodes: ReadonlySet<number> = new Set([
  Opcode.set,
  Opcode.setq,
  Opcode.add,
  Opcode.addq,
  Opcode.replace,
  Opcode.replaceq,
  Opcode.append,
  Opcode.appendq,
  Opcode.prepend,
  Opcode.prependq,
]);

export function isStorageOpcode(opcode: number): boolean {
  return storageOpcodes.has(opcode);
}

type LengthRule = (header: RequestHeader) => boolean;

const noBody: LengthRule = (h) => h.extrasLength === 0 && h.keyLength === 0 && h.bodyLength === 0;
const keyOnly: LengthRule = (h) => h.extrasLength === 0 && h.keyLength > 0 && h.bodyLength === h.keyLength;
const storeRule: LengthRule = (h) => h.extrasLength === ExtrasBytes.store && h.keyLength > 0;
const keyAndValue: LengthRule = (h) => h.extrasLength === 0 && h.keyLength > 0;
const arithRule: LengthRule = (h) =>
  h.extrasLength === ExtrasBytes.arith && h.keyLength > 0 && h.bodyLength === h.keyLength + ExtrasBytes.arith;
const expirationAndKey: LengthRule = (h) =>
  h.extrasLength === ExtrasBytes.expiration && h.keyLength > 0 && h.bodyLength === h.keyLength + ExtrasBytes.expiration;
const flushRule: LengthRule = (h) =>
  h.keyLength === 0 && h.bodyLength === h.extrasLength && (h.extrasLength === 0 || h.extrasLength === ExtrasBytes.expiration);
const verbosityRule: LengthRule = (h) =>
  h.extrasLength === ExtrasBytes.expiration && h.keyLength === 0 && h.bodyLength === ExtrasBytes.expiration;
/** STAT names its group in the key, which may be empty. */
const statRule: LengthRule = (h) => h.extrasLength === 0 && h.bodyLength === h.keyLength;

/** What each opcode kai serves allows in its header, as memcached's dispatch_bin_command checks it. */
const lengthRules: ReadonlyMap<number, LengthRule> = new Map([
  [Opcode.get, keyOnly],
  [Opcode.getq, keyOnly],
  [Opcode.getk, keyOnly],
  [Opcode.getkq, keyOnly],
  [Opcode.set, storeRule],
  [Opcode.setq, storeRule],
  [Opcode.add, storeRule],
  [Opcode.addq, storeRule],
  [Opcode.replace, storeRule],
  [Opcode.replaceq, storeRule],
  [Opcode.append, keyAndValue],
  [Opcode.appendq, keyAndValue],
  [Opcode.prepend, keyAndValue],
  [Opcode.prependq, keyAndValue],
  [Opcode.delete, keyOnly],
  [Opcode.deleteq, keyOnly],
  [Opcode.increment, arithRule],
  [Opcode.incrementq, arithRule],
  [Opcode.decrement, arithRule],
  [Opcode.decrementq, arithRule],
  [Opcode.quit, noBody],
  [Opcode.quitq, noBody],
  [Opcode.flush, flushRule],
  [Opcode.flushq, flushRule],
  [Opcode.noop, noBody],
  [Opcode.version, noBody],
  [Opcode.stat, statRule],
  [Opcode.verbosity, verbosityRule],
  [Opcode.touch, expirationAndKey],
  [Opcode.gat, expirationAndKey],
  [Opcode.gatq, expirationAndKey],
  [Opcode.gatk, expirationAndKey],
  [Opcode.gatkq, expirationAndKey],
  [Opcode.saslListMechs, noBody],
  [Opcode.saslAuth, keyAndValue],
  [Opcode.saslStep, keyAndValue],
]);

export function isKnownOpcode(opcode: number): boolean {
  return lengthRules.has(opcode);
}

/** Reads the fields of a 24-byte request header. */
export function parseRequestHeader(bytes: Buffer): RequestHeader {
  assert(bytes.length === headerBytes, 'a request header is 24 bytes');
  return {
    opcode: bytes[HeaderOffset.opcode],
    keyLength: bytes.readUInt16BE(HeaderOffset.keyLength),
    extrasLength: bytes[HeaderOffset.extrasLength],
    dataType: bytes[HeaderOffset.dataType],
    vbucket: bytes.readUInt16BE(HeaderOffset.status),
    bodyLength: bytes.readUInt32BE(HeaderOffset.bodyLength),
    opaque: bytes.readUInt32BE(HeaderOffset.opaque),
    cas: bytes.readBigUInt64BE(HeaderOffset.cas),
  };
}

/** What the decoder does with a header: its event, or the state that reads the rest. */
type HeaderVerdict =
  | { readonly kind: 'error'; readonly status: number; readonly close: boolean }
  | { readonly kind: 'body' }
  | { readonly kind: 'valueTooLarge' };

/**
 * The header checks, in memcached's order: the lengths must fit in the body (else unknown
 * command and close), then kai's cap on the body, the key length (invalid arguments and close),
 * the opcode (unknown: answered, body discarded, connection kept), and the opcode's own rules
 * (invalid arguments and close).
 */
export function judgeHeader(header: RequestHeader, limits: BinaryDecoderLimits): HeaderVerdict {
  if (header.keyLength + header.extrasLength > header.bodyLength) {
    return { kind: 'error', status: BinaryStatus.unknownCommand, close: true };
  }
  if (header.bodyLength > bodyBytesMaxFor(limits.valueBytesMax)) {
    return { kind: 'error', status: BinaryStatus.valueTooLarge, close: true };
  }
  if (header.keyLength > keyBytesMax) return { kind: 'error', status: BinaryStatus.invalidArguments, close: true };
  const rule = lengthRules.get(header.opcode);
  if (!rule) return { kind: 'error', status: BinaryStatus.unknownCommand, close: false };
  if (!rule(header)) return { kind: 'error', status: BinaryStatus.invalidArguments, close: true };
  const valueBytes = header.bodyLength - header.keyLength - header.extrasLength;
  if (isStorageOpcode(header.opcode) && valueBytes > limits.valueBytesMax) return { kind: 'valueTooLarge' };
  return { kind: 'body' };
}

type State =
  | { readonly kind: 'header' }
  /** Waiting for the whole body; `tooLarge` reads only extras and key, then discards the value. */
  | { readonly kind: 'body'; readonly header: RequestHeader; readonly tooLarge: boolean }
  | { kind: 'swallow'; remainingBytes: number }
  | { readonly kind: 'closed' };

const headerState: State = { kind: 'header' };
const closedState: State = { kind: 'closed' };

export class BinaryDecoder {
  private readonly buffer = new ChunkList();
  private state: State = headerState;

  constructor(private readonly limits: BinaryDecoderLimits) {}

  /** Appends received bytes. After a closing error, further bytes are dropped. */
  push(chunk: Buffer): void {
    if (this.state.kind === 'closed') return;
    this.buffer.push(chunk);
  }

  /** Bytes held and not yet decoded. */
  bufferedBytes(): number {
    return this.buffer.byteLength;
  }

  /**
   * Bytes of the body being received that must be held in all, once its header announced them
   * (only extras and key for a value over the limit, which is discarded as it comes); 0 otherwise.
   * Lets the server ask a byte budget for them before reading them.
   */
  awaitedBytes(): number {
    if (this.state.kind !== 'body') return 0;
    const { header, tooLarge } = this.state;
    return tooLarge ? header.extrasLength + header.keyLength : header.bodyLength;
  }

  /** The most bytes the decoder ever needs held at once to decode its next event. */
  heldBytesMax(): number {
    return headerBytes + bodyBytesMaxFor(this.limits.valueBytesMax);
  }

  /** Stops decoding: a quit, or an error that closes the connection. */
  stop(): void {
    this.state = closedState;
    this.buffer.clear();
  }

  /** The next decoded event, or undefined when more bytes are needed (or the stream is over). */
  next(): BinaryEvent | undefined {
    for (;;) {
      switch (this.state.kind) {
        case 'closed':
          return undefined;
        case 'swallow':
          if (!this.swallow(this.state)) return undefined;
          break;
        case 'body':
          return this.readBody(this.state.header, this.state.tooLarge);
        case 'header': {
          const event = this.readHeader();
          if (event !== 'continue') return event;
          break;
        }
      }
    }
  }

  private readHeader(): BinaryEvent | 'continue' | undefined {
    if (this.buffer.byteLength < headerBytes) return undefined;
    if (this.buffer.byteAt(HeaderOffset.magic) !== requestMagic) {
      this.stop();
      return { kind: 'error', header: undefined, status: BinaryStatus.invalidArguments, close: true };
    }
    const header = parseRequestHeader(this.buffer.take(headerBytes));
    const verdict = judgeHeader(header, this.limits);
    switch (verdict.kind) {
      case 'error':
        if (verdict.close) this.stop();
        else this.state = { kind: 'swallow', remainingBytes: header.bodyLength };
        return { kind: 'error', header, status: verdict.status, close: verdict.close };
      case 'body':
        this.state = { kind: 'body', header, tooLarge: false };
        return 'continue';
      case 'valueTooLarge':
        this.state = { kind: 'body', header, tooLarge: true };
        return 'continue';
    }
  }

  private readBody(header: RequestHeader, tooLarge: boolean): BinaryEvent | undefined {
    const framingBytes = header.extrasLength + header.keyLength;
    const valueBytes = header.bodyLength - framingBytes;
    if (this.buffer.byteLength < (tooLarge ? framingBytes : header.bodyLength)) return undefined;
    const extras = this.buffer.take(header.extrasLength);
    const key = this.buffer.take(header.keyLength);
    if (tooLarge) {
      this.state = { kind: 'swallow', remainingBytes: valueBytes };
      return { kind: 'valueTooLarge', request: { header, extras, key, value: Buffer.alloc(0) } };
    }
    const value = this.buffer.take(valueBytes);
    this.state = headerState;
    return { kind: 'request', request: { header, extras, key, value } };
  }

  /** Discards swallowed bytes as they come; true once they are all gone. */
  private swallow(state: { remainingBytes: number }): boolean {
    const discarded = Math.min(state.remainingBytes, this.buffer.byteLength);
    this.buffer.skip(discarded);
    state.remainingBytes -= discarded;
    if (state.remainingBytes > 0) return false;
    this.state = headerState;
    return true;
  }
}
