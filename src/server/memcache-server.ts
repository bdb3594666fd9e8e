/**
 * The memcache front end: accepts client connections, decodes requests, hands them to the
 * dispatcher and writes the replies back in request order.
 */
import * as net from 'node:net';
import type { Logger } from 'pino';
import { asKaiError, type KaiError } from '../errors';
import type { Command, Reply } from '../protocol/command';
import { TextDecoder } from '../protocol/text/decoder';
import { encodeError, encodeReply } from '../protocol/text/encoder';
import type { Dispatcher } from './dispatch';
import { ReplyQueue } from './reply-queue';
import type { NodeStats } from './stats';

/** Requests one connection may have decoded but unanswered; past it the socket stops being read. */
export const requestsInFlightPerConnectionMax = 256;
/** How long a stopping node waits for in-flight requests before closing connections anyway. */
export const shutdownGraceMs = 5_000;

export interface MemcacheServerOptions {
  readonly dispatcher: Dispatcher;
  readonly stats: NodeStats;
  readonly log: Logger;
  readonly valueBytesMax: number;
  readonly connectionsMax: number;
}

const tooManyConnectionsReply = Buffer.from('ERROR Too many open connections\r\n');

function hasNoreply(command: Command): boolean {
  return 'noreply' in command && command.noreply;
}

class TextConnection {
  private readonly decoder: TextDecoder;
  private readonly replies: ReplyQueue;
  private ending = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly options: MemcacheServerOptions,
  ) {
    this.decoder = new TextDecoder({ valueBytesMax: options.valueBytesMax });
    this.replies = new ReplyQueue({
      write: (chunks) => this.write(chunks),
      close: () => this.end(),
    });
  }

  get idle(): boolean {
    return this.replies.inFlight === 0;
  }

  receive(chunk: Buffer): void {
    this.options.stats.bytesRead += chunk.length;
    this.decoder.push(chunk);
    this.pump();
  }

  /** Decodes and starts requests while the in-flight bound allows. */
  private pump(): void {
    while (!this.ending && this.replies.inFlight < requestsInFlightPerConnectionMax) {
      const event = this.decoder.next();
      if (!event) break;
      if (event.kind === 'error') this.replies.answer([encodeError(event.error)], event.close);
      else this.start(event.command);
    }
    if (this.replies.inFlight >= requestsInFlightPerConnectionMax) this.socket.pause();
  }

  private start(command: Command): void {
    let outcome: Promise<Reply> | Reply;
    try {
      outcome = this.options.dispatcher.execute(command);
    } catch (error) {
      this.replies.answer([encodeError(asKaiError(error))]);
      return;
    }
    if (!(outcome instanceof Promise)) {
      this.replies.answer(...this.encode(command, outcome));
      return;
    }
    const fill = this.replies.reserve();
    outcome.then(
      (reply) => this.finish(fill, ...this.encode(command, reply)),
      (error: unknown) => this.finish(fill, [encodeError(asKaiError(error))]),
    );
  }

  private finish(fill: ReturnType<ReplyQueue['reserve']>, chunks: readonly Buffer[], closeAfter = false): void {
    fill(chunks, closeAfter);
    if (this.socket.isPaused() && this.replies.inFlight < requestsInFlightPerConnectionMax && !this.ending) {
      this.socket.resume();
      this.pump();
    }
  }

  private encode(command: Command, reply: Reply): [readonly Buffer[], boolean] {
    if (reply.kind === 'quit') return [[], true];
    if (hasNoreply(command)) return [[], false];
    return [encodeReply(command, reply), false];
  }

  private write(chunks: readonly Buffer[]): void {
    if (this.socket.destroyed) return;
    const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    this.options.stats.bytesWritten += data.length;
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

  /** Called by the server while stopping: closes as soon as the replies are out. */
  drainThenEnd(): void {
    this.ending = true;
    this.socket.pause();
    this.replies.answer([], true);
  }
}

export class MemcacheServer {
  private readonly server: net.Server;
  private readonly connections = new Map<net.Socket, TextConnection>();

  constructor(private readonly options: MemcacheServerOptions) {
    this.server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host }, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    const { stats, log } = this.options;
    if (this.connections.size >= this.options.connectionsMax) {
      stats.rejectedConnections++;
      socket.end(tooManyConnectionsReply);
      return;
    }
    stats.currConnections++;
    stats.totalConnections++;
    const connection = new TextConnection(socket, this.options);
    this.connections.set(socket, connection);
    socket.on('data', (chunk: Buffer) => connection.receive(chunk));
    socket.on('error', (error: KaiError | Error) => log.debug({ err: error }, 'client connection error'));
    socket.on('close', () => {
      this.connections.delete(socket);
      stats.currConnections--;
    });
  }

  /** Stops accepting, lets in-flight requests finish (bounded by shutdownGraceMs), then closes. */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections.values()) connection.drainThenEnd();
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, shutdownGraceMs).unref());
    await Promise.race([closed, deadline]);
    for (const socket of this.connections.keys()) socket.destroy();
    await closed;
  }
}
