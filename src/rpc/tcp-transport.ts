/**
 * The real Transport: msgpack frames (frames.ts) over TCP. A node serves its internal API on
 * --hostname/--port and keeps one pooled connection per peer address for its own requests
 * (peer-connection.ts); connections peers open to it are served by served-connection.ts.
 *
 * A busy peer is waited for: requests past `requestsInFlightPerPeerMax`, or while the peer has
 * not read what was written, wait in a bounded line (peer-connection.ts). A peer whose connection
 * is backing off is refused at once with KAI_PEER_UNREACHABLE: it is likely down, and the
 * coordinator's quorum is met by the others or answered as unmet.
 *
 * With a cluster secret every connection, both ways, opens with the handshake of handshake.ts.
 * Connections still proving it are held apart, each for at most `handshakeTimeoutMs`, so
 * connections that cannot prove it never take the places of peers that can. That waiting room
 * holds `handshakingConnectionsMax`, of which one address may hold
 * `handshakingConnectionsPerAddressMax`; when it is full the connection that has waited longest
 * makes room, so a flood of connections that never prove anything delays a peer by no more
 * than its own round trip, instead of locking it out.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { TlsMaterial } from '../auth/tls-material';
import type { Env } from '../env';
import { KaiError, assert } from '../errors';
import type { Logger } from '../log';
import { defaultBackoffLimits } from './backoff';
import { handshakeTimeoutMsDefault } from './handshake';
import type { RpcReply, RpcRequest } from './messages';
import { PeerConnection, probeTimeoutMsDefault, type PeerConnectionLimits } from './peer-connection';
import { ReceiveBudget } from './receive-budget';
import { ServedConnection, type ServedConnectionLimits } from './served-connection';
import type { RequestHandler, Transport } from './transport';

export interface TcpTransportLimits extends PeerConnectionLimits, ServedConnectionLimits {
  /** Connections peers may have open to this node at once; more are closed as they arrive. */
  readonly peerConnectionsMax: number;
  /** Connections still proving the cluster secret at once; more are closed as they arrive. */
  readonly handshakingConnectionsMax: number;
  /** Of those, connections from one address; more from it are closed as they arrive. */
  readonly handshakingConnectionsPerAddressMax: number;
  /** Bytes of partly received frames held for all served connections at once (receive-budget.ts). */
  readonly receivingBytesMax: number;
  /** Peer addresses pooled at once; past it, entries neither connected nor owed a reply are dropped. */
  readonly peersMax: number;
}

export const defaultTcpTransportLimits: Omit<TcpTransportLimits, 'frameBytesMax'> = {
  ...defaultBackoffLimits,
  requestsInFlightPerPeerMax: 1024,
  requestsInFlightPerConnectionMax: 1024,
  unsentBytesPerPeerMax: 16 * 1024 * 1024,
  requestsWaitingPerPeerMax: 65_536,
  waitingBytesPerPeerMax: 256 * 1024 * 1024,
  connectTimeoutMs: 1_000,
  probeTimeoutMs: probeTimeoutMsDefault,
  handshakeTimeoutMs: handshakeTimeoutMsDefault,
  // Members talk every gossip round; a connection silent for a minute is forgotten or hostile.
  idleTimeoutMs: 60_000,
  reuseIdleMsMax: 30_000,
  peerConnectionsMax: 256,
  handshakingConnectionsMax: 64,
  handshakingConnectionsPerAddressMax: 16,
  // Room for a dozen of the 4 MiB batches replicas exchange, and always for one frame at its cap.
  receivingBytesMax: 64 * 1024 * 1024,
  peersMax: 1024,
};

/** The longest request timeout a Node timer can wait. */
export const requestTimeoutMsMax = 2 ** 31 - 1;

/** How this node's internal connections prove themselves, both ways. */
export interface ConnectionSecurity {
  /** The secret peers prove to each other (--cluster-secret-file); undefined: none asked. */
  readonly clusterSecret?: Buffer;
  /**
   * TLS both ways (--tls internal): this node's certificate is presented to peers and theirs must
   * chain to `ca`. Peers are not checked by name: the CA is the cluster's own.
   */
  readonly tls?: TlsMaterial;
}

export interface TcpTransportOptions extends Partial<TcpTransportLimits>, ConnectionSecurity {
  /** Interface to listen on (--hostname). */
  readonly host: string;
  /** Port to listen on (--port); 0 picks a free one, readable from `port` once serving. */
  readonly port: number;
  readonly env: Env;
  /** Required: the cap depends on the node's value limit (frameBytesMaxFor). */
  readonly frameBytesMax: number;
  readonly log?: Logger;
}

/** The options' limits over the defaults; a limit given as undefined keeps its default. */
function limitsFrom(options: TcpTransportOptions): TcpTransportLimits {
  const limits: { -readonly [Name in keyof TcpTransportLimits]: number } = {
    ...defaultTcpTransportLimits,
    frameBytesMax: options.frameBytesMax,
  };
  for (const name of Object.keys(limits) as (keyof TcpTransportLimits)[]) {
    const given = options[name];
    if (given !== undefined) limits[name] = given;
    assert(Number.isFinite(limits[name]) && limits[name] > 0, `limit ${name} is a positive number`);
  }
  return limits;
}

export class TcpTransport implements Transport {
  readonly limits: TcpTransportLimits;
  private readonly peers = new Map<string, PeerConnection>();
  /** Connections peers opened, once they proved the secret (at once, when none is asked). */
  private readonly served = new Set<ServedConnection>();
  /** Connections peers opened that have yet to prove the secret. */
  private readonly handshaking = new Set<ServedConnection>();
  private server: net.Server | undefined;
  private boundPort: number | undefined;
  private closed = false;
  private readonly receiveBudget: ReceiveBudget;

  constructor(private readonly options: TcpTransportOptions) {
    this.limits = limitsFrom(options);
    this.receiveBudget = new ReceiveBudget(this.limits.receivingBytesMax);
  }

  /** Bytes of partly received frames held now, and connections waiting for room to read more. */
  get receiving(): { readonly bytes: number; readonly waiting: number } {
    return { bytes: this.receiveBudget.reserved, waiting: this.receiveBudget.waiters };
  }

  /** The port the internal API listens on; only once `serve` has resolved. */
  get port(): number {
    assert(this.boundPort !== undefined, 'port is known once serving');
    return this.boundPort;
  }

  /** host:port peers reach this node at; only once `serve` has resolved. */
  get address(): string {
    return `${this.options.host}:${this.port}`;
  }

  request(address: string, request: RpcRequest, timeoutMs: number): Promise<RpcReply> {
    // Node fires a timer longer than 2^31-1 ms at once, which would turn a long wait into none.
    assert(timeoutMs > 0 && timeoutMs <= requestTimeoutMsMax, 'a request timeout is within (0, 2^31-1] ms');
    if (this.closed) return Promise.reject(new KaiError('KAI_PEER_UNREACHABLE', `${address}: transport closed`));
    const peer = this.peerFor(address);
    if (peer instanceof KaiError) return Promise.reject(peer);
    return peer.request(request, timeoutMs);
  }

  async serve(handler: RequestHandler): Promise<void> {
    assert(!this.closed, 'serve before close');
    assert(this.server === undefined, 'serve once');
    const server = this.createServer(handler);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.options.log?.error({ err: error }, 'internal API listener failed'));
    const bound = server.address();
    assert(bound !== null && typeof bound === 'object', 'a TCP listener has an address');
    this.boundPort = bound.port;
  }

  /**
   * A plain TCP listener, or with TLS one that asks every peer for a certificate chaining to the
   * CA, closes those without, and gives a TLS handshake the handshake timeout to finish. Pending
   * TLS handshakes count toward the listener's connections, so they too are bounded.
   */
  private createServer(handler: RequestHandler): net.Server {
    const material = this.options.tls;
    if (material === undefined) return net.createServer({ noDelay: true }, (socket) => this.accept(socket, handler));
    const server = tls.createServer(
      {
        cert: material.cert,
        key: material.key,
        ca: material.ca,
        requestCert: true,
        rejectUnauthorized: true,
        handshakeTimeout: this.limits.handshakeTimeoutMs,
      },
      (socket) => this.accept(socket, handler),
    );
    server.maxConnections = this.limits.peerConnectionsMax + this.limits.handshakingConnectionsMax;
    server.on('tlsClientError', (error, socket) => {
      this.options.log?.warn({ peer: socket.remoteAddress, reason: error.message }, 'internal API connection refused: TLS handshake failed');
    });
    return server;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    const server = this.server;
    for (const connection of [...this.served, ...this.handshaking]) connection.close();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Connections peers have open to this node now (with a cluster secret, those that proved it). */
  get servedConnections(): number {
    return this.served.size;
  }

  /** Connections this node has open (or is opening) to peers. */
  get openPeerConnections(): number {
    let open = 0;
    for (const peer of this.peers.values()) if (peer.open) open++;
    return open;
  }

  /** Connections opened to this node that have yet to prove the cluster secret. */
  get handshakingConnections(): number {
    return this.handshaking.size;
  }

  private accept(socket: net.Socket, handler: RequestHandler): void {
    const { clusterSecret, env, log } = this.options;
    const refusal = clusterSecret === undefined ? this.servedRefusal() : this.makeHandshakingRoom(socket.remoteAddress);
    if (this.closed || refusal !== undefined) {
      log?.warn({ peer: socket.remoteAddress, limit: refusal && this.limits[refusal] }, `internal API connection refused: ${refusal ?? 'closed'}`);
      socket.destroy();
      return;
    }
    const waitingRoom = clusterSecret === undefined ? this.served : this.handshaking;
    const connection = new ServedConnection(socket, {
      handler,
      limits: this.limits,
      env,
      log,
      clusterSecret,
      receiveBudget: this.receiveBudget,
      onAuthenticated: (proved) => {
        this.handshaking.delete(proved);
        if (this.served.size >= this.limits.peerConnectionsMax) {
          log?.warn({ peer: socket.remoteAddress, limit: this.limits.peerConnectionsMax }, 'internal API connection refused: peerConnectionsMax');
          return false;
        }
        this.served.add(proved);
        return true;
      },
      onClosed: (ended) => {
        this.served.delete(ended);
        this.handshaking.delete(ended);
      },
    });
    waitingRoom.add(connection);
  }

  private servedRefusal(): 'peerConnectionsMax' | undefined {
    return this.served.size >= this.limits.peerConnectionsMax ? 'peerConnectionsMax' : undefined;
  }

  /** Room for one more handshaking connection from `address`: the longest waiting makes way when full. */
  private makeHandshakingRoom(address: string | undefined): 'handshakingConnectionsPerAddressMax' | undefined {
    let fromAddress = 0;
    for (const connection of this.handshaking) if (connection.remoteAddress === address) fromAddress++;
    if (fromAddress >= this.limits.handshakingConnectionsPerAddressMax) return 'handshakingConnectionsPerAddressMax';
    if (this.handshaking.size >= this.limits.handshakingConnectionsMax) {
      const longestWaiting = this.handshaking.values().next().value;
      longestWaiting?.close();
    }
    return undefined;
  }

  private peerFor(address: string): PeerConnection | KaiError {
    const existing = this.peers.get(address);
    if (existing) return existing;
    if (this.peers.size >= this.limits.peersMax) this.evictIdlePeers();
    if (this.peers.size >= this.limits.peersMax) {
      return new KaiError('KAI_PEER_UNREACHABLE', `${address}: ${this.peers.size} peers already pooled (peersMax)`);
    }
    const peer = new PeerConnection(address, this.options.env, this.limits, { clusterSecret: this.options.clusterSecret, tls: this.options.tls });
    this.peers.set(address, peer);
    return peer;
  }

  private evictIdlePeers(): void {
    for (const [address, peer] of this.peers) {
      if (!peer.evictable) continue;
      peer.close();
      this.peers.delete(address);
    }
  }
}
