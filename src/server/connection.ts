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
  private ending = false;

  constructor(
    protected readonly socket: net.Socket,
    protected readonly context: ConnectionContext,
  ) {
    this.replies = new ReplyQueue({
      write: (chunks) => this.write(chunks),
      close: () => this.end(),
    });
  }

  get idle(): boolean {
    return this.replies.inFlight === 0;
  }

  receive(chunk: Buffer): void {
    this.context.stats.bytesRead += chunk.length;
    this.push(chunk);
    this.pump();
  }

  /** Appends received bytes to the decoder. */
  protected abstract push(chunk: Buffer): void;

  /** Decodes and starts the next request; false when more bytes are needed. */
  protected abstract startNext(): boolean;

  /** Decodes and starts requests while the in-flight bound allows. */
  private pump(): void {
    while (!this.ending && this.replies.inFlight < requestsInFlightPerConnectionMax) {
      if (!this.startNext()) break;
    }
    if (this.replies.inFlight >= requestsInFlightPerConnectionMax) this.socket.pause();
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
      if (this.socket.isPaused() && this.replies.inFlight < requestsInFlightPerConnectionMax && !this.ending) {
        this.socket.resume();
        this.pump();
      }
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

  private write(chunks: readonly Buffer[]): void {
    if (this.socket.destroyed) return;
    const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    this.context.stats.bytesWritten += data.length;
    if (!this.socket.write(data)) {
      // The client is not reading its replies: stop reading its requests until it does.
      this.socket.pause();
      this.socket.once('drain', () => {
        if (!this.ending) {
          this.socket.resume();
          this.pump();
        }
      });
    }
  }

  /** Stops reading requests; the socket closes once every started request is answered. */
  end(): void {
    this.ending = true;
    this.socket.pause();
    if (this.idle) this.socket.end();
  }

  /** Called while the node stops: closes as soon as the replies already owed are out. */
  drainThenEnd(): void {
    this.ending = true;
    this.socket.pause();
    this.replies.answer([], true);
  }
}
