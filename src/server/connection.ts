/**
 * What every client connection shares, whatever protocol it speaks: requests start in the order
 * they are decoded, replies are written in that order, at most a bounded number are in flight, and
 * a client that stops reading its replies stops being read.
 */
import type * as net from 'node:net';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth';
import { asKaiError, type KaiError } from '../errors';
import type { Dispatcher } from './dispatch';
import { ReplyQueue } from './reply-queue';
import type { NodeStats } from './stats';

/** Requests one connection may have decoded but unanswered; past it the socket stops being read. */
export const requestsInFlightPerConnectionMax = 256;

/** Replies up to this size are copied into one buffer before writing; larger ones are not. */
export const replyBytesJoinedMax = 16 * 1024;

export interface ConnectionContext {
  readonly dispatcher: Dispatcher;
  readonly stats: NodeStats;
  readonly log: Logger;
  readonly valueBytesMax: number;
  /** Whether and how clients must authenticate before their requests are served. */
  readonly authenticator: Authenticator;
}

/** A reply as chunks to write, and whether the connection closes after it. */
export interface EncodedReply {
  readonly chunks: readonly Buffer[];
  readonly closeAfter: boolean;
}

export abstract class Connection {
  private readonly replies: ReplyQueue;
  /** No further request will be started: quit, a closing error, end of input or shutdown. */
  private closing = false;
  /** The client half-closed its side: answer what it sent, then close. */
  private inputEnded = false;
  /** The socket's write buffer is full; nothing more is decoded until it drains. */
  private waitingForDrain = false;

  constructor(
    protected readonly socket: net.Socket,
    protected readonly context: ConnectionContext,
  ) {
    this.replies = new ReplyQueue({
      write: (chunks) => this.write(chunks),
      close: () => this.close(),
    });
    socket.on('drain', () => {
      this.waitingForDrain = false;
      this.pump();
    });
  }

  get idle(): boolean {
    return this.replies.inFlight === 0;
  }

  receive(chunk: Buffer): void {
    this.context.stats.bytesRead += chunk.length;
    if (this.closing) return;
    this.push(chunk);
    this.pump();
  }

  /** The client sent FIN: its last requests are still answered before the connection closes. */
  endOfInput(): void {
    this.inputEnded = true;
    this.pump();
  }

  /** Appends received bytes to the decoder. */
  protected abstract push(chunk: Buffer): void;

  /** Decodes and starts the next request; false when more bytes are needed. */
  protected abstract startNext(): boolean;

  /**
   * Decodes and starts requests while requests in flight stay under their bound and the client
   * reads its replies; then reads from the socket only if both still hold.
   */
  private pump(): void {
    while (!this.closing && !this.waitingForDrain && this.replies.inFlight < requestsInFlightPerConnectionMax) {
      if (!this.startNext()) {
        if (this.inputEnded) this.closeAfterReplies();
        break;
      }
    }
    const reading =
      !this.closing &&
      !this.inputEnded &&
      !this.waitingForDrain &&
      this.replies.inFlight < requestsInFlightPerConnectionMax;
    if (reading && this.socket.isPaused()) this.socket.resume();
    else if (!reading && !this.socket.isPaused()) this.socket.pause();
  }

  /**
   * Runs one request and queues its reply in request order. `encode` turns the outcome into bytes;
   * `encodeFailure` answers an operating error in the protocol's own words.
   */
  protected run<T>(
    execute: () => Promise<T> | T,
    encode: (outcome: T) => EncodedReply,
    encodeFailure: (error: KaiError) => EncodedReply,
  ): void {
    let outcome: Promise<T> | T;
    try {
      outcome = execute();
    } catch (error) {
      this.answer(encodeFailure(asKaiError(error)));
      return;
    }
    if (!(outcome instanceof Promise)) {
      this.answer(encode(outcome));
      return;
    }
    const fill = this.replies.reserve();
    const settle = (reply: EncodedReply): void => {
      fill(reply.chunks, reply.closeAfter);
      this.pump();
    };
    outcome.then(
      (result) => settle(encode(result)),
      (error: unknown) => settle(encodeFailure(asKaiError(error))),
    );
  }

  /** Queues a reply decided without running anything (a decoding error, a protocol-level answer). */
  protected answer(reply: EncodedReply): void {
    this.replies.answer(reply.chunks, reply.closeAfter);
  }

  /**
   * Writes a reply. Small replies are joined into one buffer, which costs less than a gathered
   * write of several pieces; large ones are written piece by piece under cork, so a big value is
   * never copied.
   */
  private write(chunks: readonly Buffer[]): void {
    if (this.socket.destroyed) return;
    let totalBytes = 0;
    for (const chunk of chunks) totalBytes += chunk.length;
    this.context.stats.bytesWritten += totalBytes;
    if (chunks.length === 1 || totalBytes <= replyBytesJoinedMax) {
      this.socket.write(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, totalBytes));
    } else {
      this.socket.cork();
      for (const chunk of chunks) this.socket.write(chunk);
      this.socket.uncork();
    }
    if (this.socket.writableNeedDrain) this.waitingForDrain = true;
  }

  /** Ends the connection once every reply queued so far is written. */
  private closeAfterReplies(): void {
    if (this.closing) return;
    this.closing = true;
    this.replies.answer([], true);
  }

  /** The reply queue reached a reply that closes the connection. */
  private close(): void {
    this.closing = true;
    this.socket.pause();
    this.socket.end();
  }

  /** Called while the node stops: closes as soon as the replies already owed are out. */
  drainThenEnd(): void {
    this.socket.pause();
    this.closeAfterReplies();
  }
}
