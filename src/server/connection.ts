/**
 * What every client connection shares, whatever protocol it speaks: requests start in the order
 * they are decoded, replies are written in that order, at most a bounded number are in flight, and
 * a client that stops reading its replies stops being read.
 */
import type * as net from 'node:net';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth';
import type { Env } from '../env';
import { KaiError, asKaiError, errorRegistry } from '../errors';
import type { Admission, AdmissionWaiter } from './admission';
import type { Dispatcher } from './dispatch';
import { KeyOrder } from './key-order';
import { newReceiveAccount, type ReceiveBudget } from './receive-budget';
import { ReplyQueue, type ReplyStream } from './reply-queue';
import type { NodeStats } from './stats';
import type { ConnectionTools } from './text-tools';

/** Requests one connection may have decoded but unanswered; past it the socket stops being read. */
export const requestsInFlightPerConnectionMax = 256;

/** Replies up to this size are copied into one buffer before writing; larger ones are not. */
export const replyBytesJoinedMax = 16 * 1024;

/** How a request runs beside the others of its connection. */
export interface RunOptions {
  /** The value bytes admission holds while it runs (admission.ts). */
  readonly valueBytes?: number;
  /** Start only once every request ahead of it is answered (a `stats`). */
  readonly afterEarlier?: boolean;
  /** The keys it reads or writes: it starts after the requests ahead of it on them. */
  readonly keys?: readonly Buffer[];
  /** Every later request starts after it, whatever its keys (a `flush_all`). */
  readonly barrier?: boolean;
  /** Its name for the request latency metrics (protocol/command-name.ts); not timed when absent. */
  readonly command?: string;
}

/** How a request ended: answered, or refused in the client's words or in the server's. */
export type RequestOutcome = 'ok' | 'client_error' | 'server_error';

/** Where connections report how long each request took to answer, by a monotonic clock of its own (src/metrics). */
export interface RequestTimer {
  start(): number;
  record(command: string, outcome: RequestOutcome, startedAtMs: number): void;
}

/** A refusal in memcached's SERVER_ERROR words is the server's fault; any other, the client's. */
export function outcomeOfError(error: KaiError): RequestOutcome {
  return errorRegistry[error.code].textReply.startsWith('SERVER_ERROR') ? 'server_error' : 'client_error';
}

export interface ConnectionContext {
  readonly dispatcher: Dispatcher;
  readonly stats: NodeStats;
  readonly log: Logger;
  readonly valueBytesMax: number;
  /** Whether and how clients must authenticate before their requests are served. */
  readonly authenticator: Authenticator;
  /** The node's bound on requests in flight over all connections (admission.ts). */
  readonly admission: Admission;
  /** The node's bound on bytes of partly received requests (receive-budget.ts). */
  readonly receiveBudget: ReceiveBudget;
  /** The clock idle time is measured by. */
  readonly env: Env;
  /** What the text protocol's key dumps and watch use (text-tools.ts). */
  readonly tools: ConnectionTools;
  /** Told how long each request took (the metrics); requests are not timed when absent. */
  readonly requestTimer?: RequestTimer;
}

/** Where a reply written in parts goes (Connection.runStream). */
export interface StreamWriter {
  /** Resolves once the reply is next on the wire and the client has read what came before. */
  ready(): Promise<void>;
  /** Writes a part, then resolves once it is written and the client reads on. */
  write(chunks: readonly Buffer[]): Promise<void>;
  /** Writes the last part; with `closeAfter`, the connection then closes. */
  end(chunks: readonly Buffer[], closeAfter?: boolean): void;
}

/** A reply as chunks to write, and whether the connection closes after it. */
export interface EncodedReply {
  readonly chunks: readonly Buffer[];
  readonly closeAfter: boolean;
}

export abstract class Connection implements AdmissionWaiter {
  private readonly replies: ReplyQueue;
  private readonly keyOrder = new KeyOrder();
  /** Replies written in parts, waiting to make their next part. */
  private readonly streamsWaiting: { readonly stream: ReplyStream; readonly resolve: () => void; readonly reject: (error: KaiError) => void }[] = [];
  /** No further request will be started: quit, a closing error, end of input or shutdown. */
  private closing = false;
  /** The client half-closed its side: answer what it sent, then close. */
  private inputEnded = false;
  /** The socket's write buffer is full; nothing more is decoded until it drains. */
  private waitingForDrain = false;
  /** The node has as many requests in flight as it takes; decoding waits for one to finish. */
  private waitingForAdmission = false;
  /** The receive budget cannot take the request being received; reading waits for bytes to come back. */
  private waitingForBudget = false;
  /**
   * A request that runs once every request ahead of it is answered (a `stats`) waits: nothing after
   * it starts before it does, as memcached runs a connection's requests one at a time.
   */
  private waitingForEarlier = false;
  /** Bytes of partly received requests this connection holds against the node's receive budget. */
  private readonly receiveAccount = newReceiveAccount();
  /** When the last request was decoded (memcached's last_cmd_time), and when bytes last came. */
  private lastCommandAtMs: number;
  private lastReceivedAtMs: number;
  /**
   * Requests started since bytes last arrived: memcached refuses `watch` and `lru_crawler
   * metadump` behind replies of the same read it has not written yet.
   */
  private requestsStartedSinceRead = 0;
  /** Requests are being decoded and started now (a synchronous `stats conns` sees its own connection so). */
  private starting = false;
  /** A tooling stream (a key dump, or watch) is running: memcached's conn_watch state. */
  protected toolStreaming = false;
  /** Resolves once the socket has closed. */
  protected readonly closed: Promise<void>;
  /** Resolves once the node stops: a stream without an end (watch) ends then. */
  protected readonly stopping: Promise<void>;
  private markStopping: () => void = () => undefined;

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
    this.lastCommandAtMs = this.lastReceivedAtMs = context.env.nowMs();
    let markClosed: () => void = () => undefined;
    this.closed = new Promise((resolve) => (markClosed = resolve));
    this.stopping = new Promise((resolve) => (this.markStopping = resolve));
    socket.on('close', () => {
      markClosed();
      context.admission.forget(this);
      // Nothing of a gone connection's input is kept: its buffers go, and their bytes come back.
      this.closing = true;
      this.releaseBuffers();
      context.receiveBudget.close(this.receiveAccount, this);
      const gone = new KaiError('KAI_CLIENT_GONE');
      for (const waiting of this.streamsWaiting.splice(0)) waiting.reject(gone);
    });
  }

  resumeAfterAdmission(): void {
    this.pump();
  }

  get idle(): boolean {
    return this.replies.inFlight === 0;
  }

  /** When the last request was decoded (or the connection opened), for `stats conns`. */
  get lastCommandAt(): number {
    return this.lastCommandAtMs;
  }

  /**
   * What the connection is doing, in the words of memcached's `stats conns`: streaming a tool's
   * reply (conn_watch), waiting for the client to read (conn_mwrite), working on requests
   * (conn_parse_cmd), receiving a value (conn_nread), or waiting for a command (conn_read).
   */
  stateName(): string {
    if (this.closing) return 'conn_closing';
    if (this.toolStreaming) return 'conn_watch';
    if (this.waitingForDrain) return 'conn_mwrite';
    if (this.starting || this.replies.inFlight > 0) return 'conn_parse_cmd';
    if (this.awaitedBytes() > 0) return 'conn_nread';
    return 'conn_read';
  }

  /** Whether the client has half-closed its side (sent FIN). */
  protected get inputHasEnded(): boolean {
    return this.inputEnded;
  }

  /** Whether replies of earlier requests are still to be written, or came from the same read. */
  protected hasRepliesAhead(): boolean {
    return this.replies.inFlight > 0 || this.requestsStartedSinceRead > 0;
  }

  /**
   * Since when the connection has been idle as memcached's idle_timeout counts it: waiting for a
   * command, or in the middle of a command line, timed from the last request decoded. Undefined
   * while it is busy: a request in flight, a reply being written, waiting for the node, closing.
   * Where memcached never times out a connection part way through a value, kai does once no byte
   * of the value has come for the timeout, so a client cannot pin a buffer by stopping.
   */
  idleSinceMs(): number | undefined {
    const busy =
      this.closing || this.waitingForDrain || this.waitingForAdmission || this.waitingForBudget || this.replies.inFlight > 0;
    if (busy) return undefined;
    return this.awaitedBytes() > 0 ? this.lastReceivedAtMs : this.lastCommandAtMs;
  }

  receive(chunk: Buffer): void {
    this.context.stats.bytesRead += chunk.length;
    if (this.closing) return;
    this.lastReceivedAtMs = this.context.env.nowMs();
    this.requestsStartedSinceRead = 0;
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

  /** Bytes received and not yet decoded. */
  protected abstract bufferedBytes(): number;

  /** Bytes the request being received needs in all, once its length is announced; else 0. */
  protected abstract awaitedBytes(): number;

  /** The most bytes the decoder needs held at once; reading stops at this many. */
  protected abstract heldBytesMax(): number;

  /** Drops every byte held, on close. */
  protected abstract releaseBuffers(): void;

  /**
   * Decodes and starts requests while requests in flight stay under their bound and the client
   * reads its replies; then reads from the socket only if both still hold.
   */
  private pump(): void {
    this.wakeStreams();
    const admission = this.context.admission;
    this.waitingForAdmission = false;
    // The replies of pipelined requests answered at once (a single node's gets) leave in one write.
    this.socket.cork();
    // pump may run again from within a request it starts; the outer one is still starting after.
    const outerStarting = this.starting;
    this.starting = true;
    while (!this.closing && !this.waitingForDrain && !this.waitingForEarlier && this.replies.inFlight < requestsInFlightPerConnectionMax) {
      if (!admission.open) {
        this.waitingForAdmission = true;
        admission.wait(this);
        break;
      }
      if (!this.startNext()) {
        if (this.inputEnded) this.closeAfterReplies();
        break;
      }
      this.requestsStartedSinceRead++;
      this.lastCommandAtMs = this.context.env.nowMs();
    }
    this.starting = outerStarting;
    this.socket.uncork();
    const budgetAllows = this.settleReceived();
    const reading =
      !this.closing &&
      !this.inputEnded &&
      !this.waitingForDrain &&
      !this.waitingForEarlier &&
      admission.open &&
      budgetAllows &&
      this.replies.inFlight < requestsInFlightPerConnectionMax;
    if (reading && this.socket.isPaused()) this.socket.resume();
    else if (!reading && !this.socket.isPaused()) this.socket.pause();
  }

  /**
   * Counts the bytes held in the node's receive figure and asks the budget for the whole of the
   * request being received, before any more of it is read (a line without its newline asks for
   * what it holds): whether the socket may be read on.
   */
  private settleReceived(): boolean {
    const held = this.bufferedBytes();
    const awaited = this.awaitedBytes();
    const allowed = this.context.receiveBudget.settle(this.receiveAccount, held, awaited > 0 ? awaited : held, this);
    this.waitingForBudget = !allowed;
    return allowed && held < this.heldBytesMax();
  }

  /**
   * Runs one request and queues its reply in request order. `encode` turns the outcome into bytes;
   * `encodeFailure` answers an operating error in the protocol's own words. A request starts once
   * the requests ahead of it on the same keys have finished (key-order.ts).
   */
  protected run<T>(
    execute: () => Promise<T> | T,
    encode: (outcome: T) => EncodedReply,
    encodeFailure: (error: KaiError) => EncodedReply,
    options: RunOptions = {},
  ): void {
    const { valueBytes = 0, afterEarlier = false, keys = [], barrier = false, command } = options;
    const timer = this.context.requestTimer;
    if (timer !== undefined && command !== undefined) {
      // Whichever way the request ends, its time is recorded once, as its reply is encoded.
      const startedAtMs = timer.start();
      const encodeResult = encode;
      const encodeError = encodeFailure;
      encode = (result) => {
        timer.record(command, 'ok', startedAtMs);
        return encodeResult(result);
      };
      encodeFailure = (error) => {
        timer.record(command, outcomeOfError(error), startedAtMs);
        return encodeError(error);
      };
    }
    if (afterEarlier && this.replies.inFlight > 0) {
      const done = this.runAfterEarlier(execute, encode, encodeFailure);
      if (barrier) this.keyOrder.trackBarrier(done);
      return;
    }
    const ahead = this.keyOrder.ahead(keys);
    let outcome: Promise<T> | T;
    if (ahead) {
      outcome = ahead.then(execute);
    } else {
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
    }
    if (barrier) this.keyOrder.trackBarrier(outcome);
    else this.keyOrder.track(keys, outcome);
    const admission = this.context.admission;
    admission.admit(valueBytes);
    const fill = this.replies.reserve();
    const settle = (reply: EncodedReply): void => {
      admission.release(valueBytes);
      fill(reply.chunks, reply.closeAfter);
      this.pump();
    };
    outcome.then(
      (result) => settle(encode(result)),
      (error: unknown) => settle(encodeFailure(asKaiError(error))),
    );
  }

  /**
   * Runs a request once every request ahead of it on this connection is answered. A `stats` reads
   * the node's counters: started at once it would miss the effects of the pipelined writes ahead
   * of it, which memcached, answering one request at a time, always counts. The requests behind it
   * start only once it has, so none is counted before a `stats` that should not see it, nor after
   * a `stats detail off` that should not count it.
   */
  private runAfterEarlier<T>(
    execute: () => Promise<T> | T,
    encode: (outcome: T) => EncodedReply,
    encodeFailure: (error: KaiError) => EncodedReply,
  ): Promise<void> {
    this.waitingForEarlier = true;
    return new Promise((answered) => {
      this.replies.reserveAtHead((fill) => {
        this.waitingForEarlier = false;
        const settle = (reply: EncodedReply): void => {
          fill(reply.chunks, reply.closeAfter);
          answered();
          this.pump();
        };
        let outcome: Promise<T> | T;
        try {
          outcome = execute();
        } catch (error) {
          settle(encodeFailure(asKaiError(error)));
          return;
        }
        if (!(outcome instanceof Promise)) {
          settle(encode(outcome));
          return;
        }
        outcome.then(
          (result) => settle(encode(result)),
          (error: unknown) => settle(encodeFailure(asKaiError(error))),
        );
        // Started: the requests behind it may start too.
        this.pump();
      });
    });
  }

  /**
   * Runs one request whose reply is written in parts as `produce` makes them (a multiget, window
   * by window): it makes a part only once the one before is written and the client reads on, so
   * the reply holds at most one part in memory whatever its size. `produce` ends the reply itself,
   * with an error in the protocol's words if it fails part way.
   */
  protected runStream(produce: (out: StreamWriter) => Promise<void>, keys: readonly Buffer[] = []): void {
    // It starts after the requests ahead of it on its keys; later requests do not wait for all of
    // its keys, which could be hundreds of thousands, to be tracked.
    const ahead = this.keyOrder.ahead(keys);
    if (ahead) {
      const start = produce;
      produce = (out) => ahead.then(() => start(out));
    }
    const admission = this.context.admission;
    admission.admit(0);
    const stream = this.replies.reserveStream();
    const ready = (): Promise<void> => this.whenFlowing(stream);
    const out: StreamWriter = {
      ready,
      write: (chunks) => {
        stream.push(chunks);
        return ready();
      },
      end: (chunks, closeAfter) => stream.end(chunks, closeAfter),
    };
    const finish = (): void => {
      admission.release(0);
      this.pump();
    };
    produce(out).then(finish, (error: unknown) => {
      // The client left part way: nothing more can be written to it.
      this.context.log.debug({ err: error }, 'reply stream ended early');
      finish();
    });
  }

  /** Resolves once `stream` is flushed and the socket takes more; rejects if the client leaves. */
  private whenFlowing(stream: ReplyStream): Promise<void> {
    if (this.socket.destroyed) return Promise.reject(new KaiError('KAI_CLIENT_GONE'));
    if (stream.flushed && !this.waitingForDrain) return Promise.resolve();
    return new Promise((resolve, reject) => this.streamsWaiting.push({ stream, resolve, reject }));
  }

  /** Lets the streams that may go on make their next part. */
  private wakeStreams(): void {
    if (this.streamsWaiting.length === 0 || this.waitingForDrain) return;
    for (let index = this.streamsWaiting.length - 1; index >= 0; index--) {
      const waiting = this.streamsWaiting[index];
      if (!waiting.stream.flushed) continue;
      this.streamsWaiting.splice(index, 1);
      waiting.resolve();
    }
  }

  /** Queues a reply decided without running anything (a decoding error, a protocol-level answer). */
  protected answer(reply: EncodedReply): void {
    this.replies.answer(reply.chunks, reply.closeAfter);
  }

  /**
   * Writes a reply. Small replies are joined into one buffer, which costs less than a gathered
   * write of several pieces; large ones are written piece by piece under cork, so a big value is
   * never copied. Replies decided while one read's requests are decoded share a write (pump).
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

  /**
   * The reply queue reached a reply that closes the connection. The descriptor is released once
   * the last reply is handed to the kernel, as memcached closes it, rather than held half-open
   * until the client closes its side.
   */
  private close(): void {
    this.closing = true;
    this.socket.pause();
    this.socket.end(() => this.socket.destroy());
  }

  /** Called while the node stops: closes as soon as the replies already owed are out. */
  drainThenEnd(): void {
    this.markStopping();
    this.socket.pause();
    this.closeAfterReplies();
  }
}
