/**
 * The pooled connection from this node to one peer's internal API. Many requests share it, each
 * with its own id; replies are matched to requests by id, in whatever order they come.
 *
 * States: idle (no socket) → connecting → connected; any failure (refused, reset, timed-out
 * connect, a malformed frame) rejects every pending request and enters backoff, during which
 * requests fail at once instead of waiting for a peer that is likely down. When the backoff
 * ends the connection is idle again, and the next request dials. A reply received resets the
 * failure count; a connect alone does not, so a peer that accepts and at once hangs up still
 * backs off further each time.
 *
 * A busy peer is waited for, not refused: past `requestsInFlightPerPeerMax` requests in flight, or
 * while the kernel holds `unsentBytesPerPeerMax` bytes the peer has not read, requests wait in
 * order (bounded by count and by bytes) and go as replies come back and the socket drains. A
 * request still waiting at its timeout fails as never delivered. Only a full waiting line refuses,
 * which the front door's admission (src/server/admission.ts) keeps a healthy node from reaching.
 *
 * With a cluster secret, a new connection proves it and checks the peer's proof (handshake.ts)
 * before its first request goes out; requests made meanwhile wait in the line. A connection left
 * unused for `reuseIdleMsMax` is dialled afresh rather than reused, so that a request never meets
 * the peer closing it as idle; one the peer closes with nothing in flight is not a failure.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { TlsMaterial } from '../auth/tls-material';
import type { Env, TimerHandle } from '../env';
import { KaiError, errorRegistry, type ErrorCode } from '../errors';
import { reconnectDelayMs, type BackoffLimits } from './backoff';
import { FrameDecoder, encodeFrame } from './frames';
import { DialerHandshake, nonceBytes } from './handshake';
import type { RpcReply, RpcRequest } from './messages';

export interface PeerConnectionLimits extends BackoffLimits {
  readonly frameBytesMax: number;
  /** Requests sent and not yet answered or timed out; past it requests wait their turn. */
  readonly requestsInFlightPerPeerMax: number;
  /** Bytes written and not yet taken by the kernel; past it requests wait until the socket drains. */
  readonly unsentBytesPerPeerMax: number;
  /** Requests waiting to be sent; past it a request is refused at once. */
  readonly requestsWaitingPerPeerMax: number;
  /** Bytes of frames waiting to be sent; past it a request is refused at once. */
  readonly waitingBytesPerPeerMax: number;
  /** How long a connect may take before it counts as a failure. */
  readonly connectTimeoutMs: number;
  /** How long a probe of a silent connection may go unanswered (probeTimeoutMsDefault). */
  readonly probeTimeoutMs: number;
  /** A connection unused this long is closed and dialled afresh: under the peer's idle timeout. */
  readonly reuseIdleMsMax: number;
}

interface PendingRequest {
  readonly resolve: (reply: RpcReply) => void;
  readonly reject: (error: KaiError) => void;
  timer: TimerHandle | undefined;
}

/** A request waiting for its turn to be written: its encoded frame, and who waits for the reply. */
interface WaitingRequest extends PendingRequest {
  readonly frame: Buffer;
  /** When its timeout runs out (env.nowMs time). */
  readonly deadlineMs: number;
  /** The timeout it was given, for messages. */
  readonly timeoutMs: number;
}

/**
 * How long a probe may go unanswered before its connection is dropped. A peer answers a probe at
 * once, from its connection, without queueing it behind other work: one silent this long (after a
 * request already met silence) is gone, or cut off.
 */
export const probeTimeoutMsDefault = 2_000;

type State =
  | { readonly kind: 'idle' }
  /** Dialling, and with a cluster secret proving it: no request is written yet. */
  | {
      readonly kind: 'connecting';
      readonly socket: net.Socket;
      readonly connectTimer: TimerHandle;
      readonly handshake: DialerHandshake | undefined;
    }
  | {
      readonly kind: 'connected';
      readonly socket: net.Socket;
      /** When the socket last received bytes; a request that met only silence probes it. */
      lastReceivedAtMs: number;
      /** When a request was last written. */
      lastSentAtMs: number;
      /** A probe is in flight on the socket. */
      probing: boolean;
    }
  | { readonly kind: 'backoff'; readonly timer: TimerHandle; readonly reason: string }
  | { readonly kind: 'closed' };

const idleState: State = { kind: 'idle' };

/** host:port, with an IPv6 host in brackets; undefined when `address` is not one. */
export function parseAddress(address: string): { readonly host: string; readonly port: number } | undefined {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const portText = address.slice(colon + 1);
  const port = Number(portText);
  if (!/^[0-9]{1,5}$/.test(portText) || port < 1 || port > 65_535 || host === '') return undefined;
  return { host, port };
}

/** The KaiError an `error` reply stands for; a code this node does not know is KAI_INTERNAL. */
export function errorFromReply(code: string, detail: string): KaiError {
  if (Object.hasOwn(errorRegistry, code)) return new KaiError(code as ErrorCode, detail || undefined);
  return new KaiError('KAI_INTERNAL', `peer answered unknown error code ${code}: ${detail}`);
}

export class PeerConnection {
  private state: State = idleState;
  private readonly pending = new Map<number, PendingRequest>();
  /** Requests not yet written, in the order they came; a Map keeps that order and deletes in O(1). */
  private readonly waiting = new Map<number, WaitingRequest>();
  private waitingBytes = 0;
  /** Ids are never reused on a connection object, so a late reply cannot answer a newer request. */
  private nextId = 1;
  private consecutiveFailures = 0;

  constructor(
    readonly address: string,
    private readonly env: Env,
    private readonly limits: PeerConnectionLimits,
    private readonly security: {
      /** The secret this node proves to the peer and expects it to prove back; undefined: none. */
      readonly clusterSecret?: Buffer;
      /** TLS both ways, the peer's certificate checked against the CA; undefined: plain TCP. */
      readonly tls?: TlsMaterial;
    } = {},
  ) {}

  private get clusterSecret(): Buffer | undefined {
    return this.security.clusterSecret;
  }

  /** Whether a connection to the peer is open (or being opened). */
  get open(): boolean {
    return this.state.kind === 'connected' || this.state.kind === 'connecting';
  }

  /** Neither connected nor owed a reply: the pool may drop it. */
  get evictable(): boolean {
    return this.pending.size === 0 && this.waiting.size === 0 && this.state.kind !== 'connected' && this.state.kind !== 'connecting';
  }

  request(request: RpcRequest, timeoutMs: number): Promise<RpcReply> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    const id = this.nextId++;
    const frame = encodeFrame({ id, kind: 'request', body: request }, this.limits.frameBytesMax);
    if (frame instanceof KaiError) return Promise.reject(frame);
    const socket = this.socketForWrite();
    if (socket instanceof KaiError) return Promise.reject(socket);
    if (this.state.kind === 'connected' && this.waiting.size === 0 && this.canWrite(socket)) {
      return new Promise<RpcReply>((resolve, reject) => {
        const entry: PendingRequest = { resolve, reject, timer: undefined };
        this.pending.set(id, entry);
        this.writeRequest(socket, id, entry, frame, timeoutMs);
      });
    }
    const { requestsWaitingPerPeerMax, waitingBytesPerPeerMax } = this.limits;
    if (this.waiting.size >= requestsWaitingPerPeerMax) {
      return Promise.reject(this.unreachable(`${this.waiting.size} requests already waiting (requestsWaitingPerPeerMax)`, true));
    }
    // An empty line takes any one request, so a value near the size limit is never refused for it.
    if (this.waiting.size > 0 && this.waitingBytes + frame.length > waitingBytesPerPeerMax) {
      return Promise.reject(this.unreachable(`${this.waitingBytes} bytes already waiting (waitingBytesPerPeerMax)`, true));
    }
    return new Promise<RpcReply>((resolve, reject) => {
      const entry: WaitingRequest = { resolve, reject, frame, deadlineMs: this.env.nowMs() + timeoutMs, timeoutMs, timer: undefined };
      entry.timer = this.env.after(timeoutMs, () => {
        if (!this.waiting.delete(id)) return;
        this.waitingBytes -= frame.length;
        reject(this.unreachable(`not sent within ${timeoutMs} ms: the peer is slow to take requests`, true));
      });
      this.waiting.set(id, entry);
      this.waitingBytes += frame.length;
    });
  }

  /** Whether a request may be written now, rather than wait for replies or a drain. */
  private canWrite(socket: net.Socket): boolean {
    return this.pending.size < this.limits.requestsInFlightPerPeerMax && socket.writableLength < this.limits.unsentBytesPerPeerMax;
  }

  /** Writes a request that is in `pending` and arms its reply timeout. */
  private writeRequest(socket: net.Socket, id: number, entry: PendingRequest, frame: Buffer, timeoutMs: number, givenTimeoutMs = timeoutMs): void {
    const sentAtMs = this.env.nowMs();
    if (this.state.kind === 'connected') this.state.lastSentAtMs = sentAtMs;
    entry.timer = this.env.after(timeoutMs, () => {
      if (!this.pending.delete(id)) return;
      entry.reject(this.unreachable(`no reply within ${givenTimeoutMs} ms`));
      this.probeIfSilentSince(socket, sentAtMs);
      this.sendWaiting();
    });
    socket.write(frame);
  }

  /** Writes waiting requests, oldest first, while the peer takes them. */
  private sendWaiting(): void {
    if (this.state.kind !== 'connected') return;
    const socket = this.state.socket;
    for (const [id, entry] of this.waiting) {
      if (!this.canWrite(socket)) return;
      this.waiting.delete(id);
      this.waitingBytes -= entry.frame.length;
      entry.timer?.cancel();
      // The time it waited counts toward its timeout.
      const pending: PendingRequest = { resolve: entry.resolve, reject: entry.reject, timer: undefined };
      this.pending.set(id, pending);
      this.writeRequest(socket, id, pending, entry.frame, Math.max(1, entry.deadlineMs - this.env.nowMs()), entry.timeoutMs);
    }
  }

  /**
   * A request on `socket` met silence: nothing came back on it since the request was sent. The
   * peer may only be slow with that request, or the path to it may be gone (a partition drops
   * packets without a word, and TCP then waits out its retransmission backoff, for minutes, before
   * it gives up). A probe tells the two apart: a live peer answers it at once; one silent for
   * probeTimeoutMs more loses the connection, so that the next request dials afresh and reaches
   * the peer as soon as the path is back.
   */
  private probeIfSilentSince(socket: net.Socket, sentAtMs: number): void {
    const state = this.state;
    if (state.kind !== 'connected' || state.socket !== socket || state.probing || state.lastReceivedAtMs > sentAtMs) return;
    const { probeTimeoutMs } = this.limits;
    const frame = encodeFrame({ id: this.nextId++, kind: 'request', body: { type: 'probe' } }, this.limits.frameBytesMax);
    if (frame instanceof KaiError) throw new Error(`assertion failed: a probe is a frame: ${frame.message}`);
    state.probing = true;
    const probedAtMs = this.env.nowMs();
    socket.write(frame);
    this.env.after(probeTimeoutMs, () => {
      if (this.state !== state) return;
      state.probing = false;
      if (state.lastReceivedAtMs <= probedAtMs) this.fail(socket, `peer silent: no answer to a probe within ${probeTimeoutMs} ms`);
    });
  }

  /** Ends the connection for good; pending requests reject. */
  close(): void {
    this.leaveState();
    this.state = { kind: 'closed' };
    this.rejectPending('transport closed');
  }

  /** Why a request must be refused before it is sent, or undefined when it may go. */
  private refusal(): KaiError | undefined {
    switch (this.state.kind) {
      case 'closed':
        return this.unreachable('transport closed', true);
      case 'backoff':
        return this.unreachable(`backing off after ${this.consecutiveFailures} failures (${this.state.reason})`, true);
      default:
        break;
    }
    return undefined;
  }

  /** The socket to write a request to, dialling when idle, or why none can be had. */
  private socketForWrite(): net.Socket | KaiError {
    if (this.state.kind === 'connected' && this.pending.size === 0 && this.waiting.size === 0) {
      const unusedMs = this.env.nowMs() - Math.max(this.state.lastReceivedAtMs, this.state.lastSentAtMs);
      if (unusedMs > this.limits.reuseIdleMsMax) this.leaveState();
    }
    if (this.state.kind === 'idle') {
      const dialled = this.connect();
      if (dialled instanceof KaiError) return dialled;
    }
    const state = this.state;
    if (state.kind !== 'connecting' && state.kind !== 'connected') return this.unreachable('not connected', true);
    return state.socket;
  }

  private connect(): KaiError | undefined {
    const target = parseAddress(this.address);
    if (!target) return this.unreachable('not a host:port address', true);
    const material = this.security.tls;
    // The CA is the cluster's own: a peer is who its certificate says only by chaining to it.
    const socket = material
      ? tls.connect({ host: target.host, port: target.port, cert: material.cert, key: material.key, ca: material.ca, checkServerIdentity: () => undefined })
      : net.connect({ host: target.host, port: target.port, noDelay: true });
    socket.setNoDelay(true);
    const decoder = new FrameDecoder({ frameBytesMax: this.limits.frameBytesMax });
    const connectTimer = this.env.after(this.limits.connectTimeoutMs, () =>
      this.fail(socket, `connect timed out after ${this.limits.connectTimeoutMs} ms`),
    );
    const handshake = this.clusterSecret && new DialerHandshake(this.clusterSecret, randomBytes(nonceBytes));
    this.state = { kind: 'connecting', socket, connectTimer, handshake };
    socket.on(material ? 'secureConnect' : 'connect', () => {
      if (this.state.kind !== 'connecting' || this.state.socket !== socket) return;
      if (handshake) socket.write(handshake.hello());
      else this.connected(socket);
    });
    socket.on('data', (chunk: Buffer) => this.onData(socket, decoder, chunk));
    socket.on('drain', () => {
      if (this.currentSocket() === socket) this.sendWaiting();
    });
    socket.on('error', (error: Error) => this.fail(socket, error.message));
    // The peer ended a connection owing nothing (idle): not a failure; the next request dials
    // again at once. Seen at its end of input, so no request is written to the closing socket.
    const closedIdle = (): boolean => {
      if (this.state.kind !== 'connected' || this.state.socket !== socket || this.pending.size > 0 || this.waiting.size > 0) return false;
      this.leaveState();
      return true;
    };
    socket.on('end', () => {
      if (!closedIdle()) this.fail(socket, this.closedByPeerReason(socket));
    });
    socket.on('close', () => {
      if (!closedIdle()) this.fail(socket, this.closedByPeerReason(socket));
    });
    return undefined;
  }

  /** Why the peer closed `socket`, with the likeliest cause when it never answered on it. */
  private closedByPeerReason(socket: net.Socket): string {
    const state = this.state;
    if (state.kind === 'connecting' && state.socket === socket && state.handshake) {
      return 'connection closed by peer during the cluster-secret handshake (is it started with the same --cluster-secret-file?)';
    }
    if (state.kind === 'connected' && state.socket === socket && state.lastReceivedAtMs === 0 && !this.clusterSecret) {
      return 'connection closed by peer before any reply (does it require a --cluster-secret-file?)';
    }
    return 'connection closed by peer';
  }

  /** The connection is ready for requests: those that waited for it go out. */
  private connected(socket: net.Socket): void {
    if (this.state.kind === 'connecting') this.state.connectTimer.cancel();
    this.state = { kind: 'connected', socket, lastReceivedAtMs: 0, lastSentAtMs: this.env.nowMs(), probing: false };
    this.sendWaiting();
  }

  private onData(socket: net.Socket, decoder: FrameDecoder, chunk: Buffer): void {
    if (this.currentSocket() !== socket) return;
    const state = this.state;
    if (state.kind === 'connecting') {
      if (!state.handshake) return this.fail(socket, 'bad frame from peer: bytes before the connection was ready');
      const step = state.handshake.receive(chunk);
      if (step.kind === 'failed') return this.fail(socket, step.reason);
      if (step.kind === 'pending') return;
      if (step.send) socket.write(step.send);
      this.connected(socket);
      chunk = step.rest;
    }
    if (this.state.kind === 'connected') this.state.lastReceivedAtMs = this.env.nowMs();
    decoder.push(chunk);
    for (;;) {
      const event = decoder.next();
      if (event.kind === 'needMore') return;
      if (event.kind === 'error') return this.fail(socket, `bad frame from peer: ${event.error.detail ?? ''}`);
      if (event.envelope.kind !== 'reply') return this.fail(socket, 'bad frame from peer: a request on a client connection');
      this.consecutiveFailures = 0;
      this.settle(event.envelope.id, event.envelope.body);
      if (this.waiting.size > 0) this.sendWaiting();
    }
  }

  private settle(id: number, reply: RpcReply): void {
    const pending = this.pending.get(id);
    // A reply to a request that already timed out: nobody is waiting for it any more.
    if (!pending) return;
    this.pending.delete(id);
    pending.timer?.cancel();
    if (reply.type === 'error') pending.reject(errorFromReply(reply.code, reply.detail));
    else pending.resolve(reply);
  }

  /** The socket failed: every request on it fails, and the next dial waits out a backoff. */
  private fail(socket: net.Socket, reason: string): void {
    if (this.currentSocket() !== socket) return;
    // A socket that never connected delivered none of the requests written to it.
    const neverConnected = this.state.kind === 'connecting';
    this.leaveState();
    this.consecutiveFailures++;
    const delayMs = reconnectDelayMs(this.consecutiveFailures, this.env.random(), this.limits);
    const timer = this.env.after(delayMs, () => {
      if (this.state.kind === 'backoff' && this.state.timer === timer) this.state = idleState;
    });
    this.state = { kind: 'backoff', timer, reason };
    this.rejectPending(reason, neverConnected);
  }

  private currentSocket(): net.Socket | undefined {
    return this.state.kind === 'connecting' || this.state.kind === 'connected' ? this.state.socket : undefined;
  }

  /** Releases the current state's socket and timers. */
  private leaveState(): void {
    const state = this.state;
    if (state.kind === 'connecting') state.connectTimer.cancel();
    if (state.kind === 'connecting' || state.kind === 'connected') state.socket.destroy();
    if (state.kind === 'backoff') state.timer.cancel();
    this.state = idleState;
  }

  private rejectPending(reason: string, undelivered = false): void {
    const error = this.unreachable(reason, undelivered);
    const pending = [...this.pending.values()];
    this.pending.clear();
    // Waiting requests were never written: never delivered, whatever became of the others.
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    this.waitingBytes = 0;
    const neverSent = this.unreachable(reason, true);
    for (const request of pending) {
      request.timer?.cancel();
      request.reject(error);
    }
    for (const request of waiting) {
      request.timer?.cancel();
      request.reject(neverSent);
    }
  }

  private unreachable(reason: string, undelivered = false): KaiError {
    return new KaiError('KAI_PEER_UNREACHABLE', `${this.address}: ${reason}`, undelivered);
  }
}
