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
import { tcpAddress, type ConnectionTable } from './connection-table';
import { TextConnection } from './text-connection';
import { isInternalApiPrelude, wrongPortReply } from './wrong-port';

/** How long a stopping node waits for in-flight requests before closing connections anyway. */
export const shutdownGraceMs = 5_000;

/** Logged when a stop closes client connections because the grace ran out. */
export const stopGracePassedMessage = 'stop grace passed; closing client connections still open';

/** How long a client has to finish its TLS handshake before it is closed. */
export const tlsHandshakeTimeoutMs = 10_000;

/** How often idle connections are looked for, at most: a connection closes this late at worst. */
export const idleSweepIntervalMsMax = 1_000;

export interface MemcacheServerOptions extends ConnectionContext {
  readonly connectionsMax: number;
  readonly env: Env;
  /** TLS on the memcache port (--tls memcache or all), and whether clients present certificates. */
  readonly tls?: { readonly material: TlsMaterial; readonly clientCertificates: TlsClientCertificates };
  /** Client connections idle longer than this are closed (memcached's idle_timeout); 0 never. */
  readonly idleTimeoutMs: number;
  /** Where open connections are listed for `stats conns`. */
  readonly connectionTable: ConnectionTable;
  /**
   * The node's id (its internal API address): a connection that opens as the internal API does
   * is told, in one line, that it reached the memcache port of this node (wrong-port.ts).
   */
  readonly nodeId?: string;
}

/** An open client socket: its connection once its first bytes chose the protocol. */
interface OpenSocket {
  connection: Connection | undefined;
  readonly acceptedAtMs: number;
}

const tooManyConnectionsReply = Buffer.from('ERROR Too many open connections\r\n');

export class MemcacheServer {
  private readonly server: net.Server;
  /** Every open client socket, with its connection once its first bytes chose the protocol. */
  private readonly connections = new Map<net.Socket, OpenSocket>();
  private idleSweep: TimerHandle | undefined;

  constructor(private readonly options: MemcacheServerOptions) {
    this.server = MemcacheServer.createServer(options, (socket) => this.accept(socket));
    const { idleTimeoutMs, env } = options;
    if (idleTimeoutMs > 0) {
      const intervalMs = Math.max(1, Math.min(idleSweepIntervalMsMax, Math.floor(idleTimeoutMs / 4)));
      this.idleSweep = env.every(intervalMs, () => this.closeIdle());
    }
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

  /**
   * Closes, without a word as memcached does, every connection idle past the timeout: waiting for
   * a command (or for the first byte) or part way through a command line since its last request.
   */
  private closeIdle(): void {
    const { env, idleTimeoutMs, stats } = this.options;
    const nowMs = env.nowMs();
    for (const [socket, open] of this.connections) {
      const idleSinceMs = open.connection ? open.connection.idleSinceMs() : open.acceptedAtMs;
      if (idleSinceMs === undefined || nowMs - idleSinceMs < idleTimeoutMs) continue;
      stats.idleKicks++;
      socket.destroy();
    }
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ port, host }, () => {
        this.server.off('error', reject);
        const address = this.server.address() as net.AddressInfo;
        this.options.connectionTable.listening(tcpAddress(address.address, address.port), this.options.env.nowMs());
        resolve(address.port);
      });
    });
  }

  private accept(socket: net.Socket): void {
    const { stats, log } = this.options;
    // Before anything else: a socket without an error listener would crash the node on a reset.
    socket.on('error', (error: Error) => log.debug({ err: error }, 'client connection error'));
    if (this.connections.size >= this.options.connectionsMax) {
      stats.rejectedConnections++;
      // As memcached: the error, then the descriptor closed at once, whatever the client does.
      // Held half-open, refused sockets would pile up past the limit they enforce.
      socket.end(tooManyConnectionsReply, () => socket.destroy());
      return;
    }
    stats.currConnections++;
    stats.totalConnections++;
    // The protocol is known from the first byte a client sends, as memcached decides it.
    const open: OpenSocket = { connection: undefined, acceptedAtMs: this.options.env.nowMs() };
    this.connections.set(socket, open);
    // Before its first byte a connection has no protocol yet: memcached's conn_new_cmd.
    const listed = this.options.connectionTable.add({
      remote: tcpAddress(socket.remoteAddress, socket.remotePort),
      local: tcpAddress(socket.localAddress, socket.localPort),
      state: () => open.connection?.stateName() ?? 'conn_new_cmd',
      lastCommandAtMs: () => open.connection?.lastCommandAt ?? open.acceptedAtMs,
    });
    let refused = false;
    socket.on('data', (chunk: Buffer) => {
      if (refused) return;
      if (open.connection === undefined && this.options.nodeId !== undefined && isInternalApiPrelude(chunk)) {
        refused = true;
        socket.end(wrongPortReply(this.options.nodeId), () => socket.destroy());
        return;
      }
      open.connection ??= this.connectionFor(socket, chunk[0]);
      open.connection.receive(chunk);
    });
    socket.on('end', () => {
      if (open.connection) open.connection.endOfInput();
      else socket.destroy();
    });
    socket.on('close', () => {
      this.connections.delete(socket);
      this.options.connectionTable.remove(listed);
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
    this.idleSweep?.cancel();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const [socket, { connection }] of this.connections) {
      if (connection) connection.drainThenEnd();
      else socket.destroy();
    }
    let graceTimer: TimerHandle | undefined;
    const deadline = new Promise<void>((resolve) => {
      graceTimer = this.options.env.after(shutdownGraceMs, () => {
        // Said so an operator (and a test) can tell a stop held up by its clients from a prompt one.
        this.options.log.warn({ connections: this.connections.size, graceMs: shutdownGraceMs }, stopGracePassedMessage);
        resolve();
      });
    });
    await Promise.race([closed, deadline]);
    graceTimer?.cancel();
    for (const socket of this.connections.keys()) socket.destroy();
    await closed;
  }
}
