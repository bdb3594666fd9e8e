/**
 * The memcache front end: accepts client connections, decodes requests, hands them to the
 * dispatcher and writes the replies back in request order.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { TlsMaterial } from '../auth/tls-material';
import type { TlsClientCertificates } from '../config/settings';
import type { Env, TimerHandle } from '../env';
import { requestMagic } from '../protocol/binary/constants';
import { BinaryConnection } from './binary-connection';
import type { Connection, ConnectionContext } from './connection';
import { TextConnection } from './text-connection';

/** How long a stopping node waits for in-flight requests before closing connections anyway. */
export const shutdownGraceMs = 5_000;

/** How long a client has to finish its TLS handshake before it is closed. */
export const tlsHandshakeTimeoutMs = 10_000;

export interface MemcacheServerOptions extends ConnectionContext {
  readonly connectionsMax: number;
  readonly env: Env;
  /** TLS on the memcache port (--tls memcache or all), and whether clients present certificates. */
  readonly tls?: { readonly material: TlsMaterial; readonly clientCertificates: TlsClientCertificates };
}

const tooManyConnectionsReply = Buffer.from('ERROR Too many open connections\r\n');

export class MemcacheServer {
  private readonly server: net.Server;
  /** Every open client socket, with its connection once its first bytes chose the protocol. */
  private readonly connections = new Map<net.Socket, Connection | undefined>();

  constructor(private readonly options: MemcacheServerOptions) {
    this.server = MemcacheServer.createServer(options, (socket) => this.accept(socket));
  }

  /**
   * A plain listener, or a TLS one as memcached's -Z: clients asked for a certificate chaining to
   * the CA with `request` (kept if missing) or `require` (closed if missing or not chaining).
   */
  private static createServer(options: MemcacheServerOptions, accept: (socket: net.Socket) => void): net.Server {
    if (options.tls === undefined) return net.createServer({ noDelay: true, allowHalfOpen: true }, accept);
    const { material, clientCertificates } = options.tls;
    const server = tls.createServer(
      {
        noDelay: true,
        allowHalfOpen: true,
        cert: material.cert,
        key: material.key,
        ca: material.ca,
        requestCert: clientCertificates !== 'none',
        rejectUnauthorized: clientCertificates === 'require',
        handshakeTimeout: tlsHandshakeTimeoutMs,
      },
      accept,
    );
    // Handshakes in progress hold sockets before any connection is counted: they are bounded too.
    server.maxConnections = 2 * options.connectionsMax;
    server.on('tlsClientError', (error, socket) => options.log.debug({ peer: socket.remoteAddress, reason: error.message }, 'client TLS handshake failed'));
    return server;
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
    // Before anything else: a socket without an error listener would crash the node on a reset.
    socket.on('error', (error: Error) => log.debug({ err: error }, 'client connection error'));
    if (this.connections.size >= this.options.connectionsMax) {
      stats.rejectedConnections++;
      socket.end(tooManyConnectionsReply);
      // Read and drop whatever the client sends: a socket nobody reads never sees the client's
      // FIN, so it would stay half-open forever and hold up the listener's close at stop.
      socket.resume();
      return;
    }
    stats.currConnections++;
    stats.totalConnections++;
    // The protocol is known from the first byte a client sends, as memcached decides it.
    this.connections.set(socket, undefined);
    socket.on('data', (chunk: Buffer) => {
      let connection = this.connections.get(socket);
      if (!connection) {
        connection = this.connectionFor(socket, chunk[0]);
        this.connections.set(socket, connection);
      }
      connection.receive(chunk);
    });
    socket.on('end', () => {
      const connection = this.connections.get(socket);
      if (connection) connection.endOfInput();
      else socket.end();
    });
    socket.on('close', () => {
      this.connections.delete(socket);
      stats.currConnections--;
    });
  }

  /** A first byte of 0x80 is a binary request, as memcached decides it; anything else is text. */
  private connectionFor(socket: net.Socket, firstByte: number): Connection {
    if (firstByte === requestMagic) return new BinaryConnection(socket, this.options);
    return new TextConnection(socket, this.options);
  }

  /** Stops accepting, lets in-flight requests finish (bounded by shutdownGraceMs), then closes. */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const [socket, connection] of this.connections) {
      if (connection) connection.drainThenEnd();
      else socket.end();
    }
    let graceTimer: TimerHandle | undefined;
    const deadline = new Promise<void>((resolve) => {
      graceTimer = this.options.env.after(shutdownGraceMs, resolve);
    });
    await Promise.race([closed, deadline]);
    graceTimer?.cancel();
    for (const socket of this.connections.keys()) socket.destroy();
    await closed;
  }
}
