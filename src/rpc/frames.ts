/**
 * Frames of the internal API: a 4-byte big-endian body length, then a msgpack body holding one
 * envelope. The decoder is a push parser over received chunks, with no socket in it: the
 * connection pushes what it reads and pulls envelopes until the decoder needs more bytes.
 *
 * A declared length over `frameBytesMax` is refused as soon as its 4 bytes are read, before any
 * of the body is buffered. Every decoded envelope is checked against the message types
 * (message-shapes.ts) before it is handed on: a peer's bytes are input, and a malformed frame is
 * an operating error (KAI_BAD_FRAME) that ends that connection, never a crash.
 */
import { Packr } from 'msgpackr';
import { KaiError } from '../errors';
import { ChunkList } from '../protocol/chunk-list';
import type { RpcReply, RpcRequest } from './messages';
import { replyProblem, requestProblem, type ShapeProblem } from './message-shapes';

/** The length prefix: an unsigned 32-bit big-endian count of body bytes. */
export const frameLengthBytes = 4;
/**
 * Room in a frame for everything but values: keys, vector clocks, member lists, msgpack
 * overhead. 64 KiB holds a gossip message of several hundred members.
 */
export const frameHeadroomBytes = 64 * 1024;

/**
 * The frame cap for a node whose values are at most `valueBytesMax` and whose messages carry at
 * most `versionsPerMessageMax` versions (the siblings cap): every value at its limit, plus room.
 */
export function frameBytesMaxFor(valueBytesMax: number, versionsPerMessageMax: number): number {
  return valueBytesMax * Math.max(1, versionsPerMessageMax) + frameHeadroomBytes;
}

export type Envelope =
  | { readonly id: number; readonly kind: 'request'; readonly body: RpcRequest }
  | { readonly id: number; readonly kind: 'reply'; readonly body: RpcReply };

export type FrameEvent =
  | { readonly kind: 'envelope'; readonly envelope: Envelope }
  /** Every complete frame has been read; push more bytes. */
  | { readonly kind: 'needMore' }
  /** The stream is malformed; the decoder stays in this state and the connection must close. */
  | { readonly kind: 'error'; readonly error: KaiError };

/**
 * One msgpack configuration for both directions. Records and structured cloning are off, so a
 * frame is plain msgpack any implementation can read. Binary fields decode as Node Buffers
 * copied out of the frame, so that a small key kept by the store does not pin the whole frame
 * it arrived in. The simulated network (test/sim) encodes with it too, so both carry the same bytes.
 */
export const wirePackr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  mapsAsObjects: true,
  copyBuffers: true,
});

/** Why `value` is not an envelope, or undefined when it is one. */
export function envelopeProblem(value: unknown): ShapeProblem {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) {
    return 'envelope is not a map';
  }
  const fields = value as Readonly<Record<string, unknown>>;
  const id = fields.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return 'envelope.id is not a non-negative integer';
  if (fields.kind === 'request') return requestProblem(fields.body);
  if (fields.kind === 'reply') return replyProblem(fields.body);
  return `envelope.kind ${String(fields.kind)} is neither request nor reply`;
}

/**
 * The frame for `envelope`, or KAI_BAD_FRAME when the envelope is not well formed or its body
 * would be over `frameBytesMax`: the peer would refuse it and close the connection, taking every
 * other request on it down too, so it is refused here instead.
 */
export function encodeFrame(envelope: Envelope, frameBytesMax: number): Buffer | KaiError {
  const problem = envelopeProblem(envelope);
  if (problem) return new KaiError('KAI_BAD_FRAME', `not sent: ${problem}`);
  let body: Buffer;
  try {
    body = wirePackr.pack(envelope);
  } catch (error) {
    return new KaiError('KAI_BAD_FRAME', `not sent: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (body.length > frameBytesMax) {
    return new KaiError('KAI_BAD_FRAME', `not sent: ${body.length} bytes over the frame cap of ${frameBytesMax}`);
  }
  const frame = Buffer.allocUnsafe(frameLengthBytes + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, frameLengthBytes);
  return frame;
}

export interface FrameDecoderOptions {
  /** Largest body a frame may declare, in bytes; see frameBytesMaxFor. */
  readonly frameBytesMax: number;
}

export class FrameDecoder {
  private readonly buffer = new ChunkList();
  /** The declared body length of the frame being read, once its prefix has been read. */
  private bodyBytes: number | undefined;
  private failure: KaiError | undefined;

  constructor(private readonly options: FrameDecoderOptions) {}

  /** The declared body length of a frame partly received, once its length prefix is read. */
  get frameInProgressBytes(): number | undefined {
    return this.bodyBytes;
  }

  /** Bytes received and not yet decoded. */
  get bufferedBytes(): number {
    return this.buffer.byteLength;
  }

  /** Drops every byte held: the connection is gone. */
  clear(): void {
    this.buffer.clear();
    this.bodyBytes = undefined;
  }

  push(chunk: Buffer): void {
    // After an error the connection is closing: what else arrives is not kept.
    if (!this.failure) this.buffer.push(chunk);
  }

  next(): FrameEvent {
    if (this.failure) return { kind: 'error', error: this.failure };
    if (this.bodyBytes === undefined) {
      if (this.buffer.byteLength < frameLengthBytes) return { kind: 'needMore' };
      const declared = this.buffer.take(frameLengthBytes).readUInt32BE(0);
      if (declared > this.options.frameBytesMax) {
        return this.fail(`declared length ${declared} over the frame cap of ${this.options.frameBytesMax}`);
      }
      this.bodyBytes = declared;
    }
    if (this.buffer.byteLength < this.bodyBytes) return { kind: 'needMore' };
    const body = this.buffer.take(this.bodyBytes);
    this.bodyBytes = undefined;
    return this.decodeBody(body);
  }

  private decodeBody(body: Buffer): FrameEvent {
    let value: unknown;
    try {
      value = wirePackr.unpack(body);
    } catch (error) {
      // Truncated msgpack, trailing bytes, nesting too deep for the stack: all the peer's fault.
      return this.fail(`body is not msgpack: ${error instanceof Error ? error.message : String(error)}`);
    }
    const problem = envelopeProblem(value);
    if (problem) return this.fail(problem);
    return { kind: 'envelope', envelope: value as Envelope };
  }

  private fail(detail: string): FrameEvent {
    this.failure = new KaiError('KAI_BAD_FRAME', detail);
    this.buffer.clear();
    return { kind: 'error', error: this.failure };
  }
}
