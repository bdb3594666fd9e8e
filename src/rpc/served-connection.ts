/**
 * One connection a peer opened to this node's internal API. Requests are handled concurrently
 * and answered as they finish, each reply carrying its request's id.
 *
 * At most `requestsInFlightPerConnectionMax` requests are handled at once; past it, and while
 * the peer is not reading its replies, the socket is not read, so TCP flow control holds the
 * peer back and memory stays bounded by what was received before the pause. A malformed frame
 * closes the connection: after one, nothing else on the stream can be trusted to be aligned.
 *
 * With a cluster secret, the peer must first prove it holds the secret (handshake.ts) within
 * `handshakeTimeoutMs`; until it has, not one byte is decoded as a frame. A connection with no
 * request in flight that receives nothing for `idleTimeoutMs` is closed, so connections a peer
 * forgot (or opened only to hold a place) do not stay for ever.
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import type { Env, TimerHandle } from '../env';
import { KaiError, asKaiError } from '../errors';
import type { Logger } from '../log';
import { FrameDecoder, encodeFrame } from './frames';
import { AcceptorHandshake, nonceBytes, startsWithHandshake, type HandshakeStep } from './handshake';
import type { RpcReply, RpcRequest } from './messages';
import { TurnCork } from './cork';
import type { ReceiveBudget } from './receive-budget';
import type { RequestHandler } from './transport';

export interface ServedConnectionLimits {
  readonly frameBytesMax: number;
  readonly requestsInFlightPerConnectionMax: number;
  /** How long a new connection has to prove the cluster secret. */
  readonly handshakeTimeoutMs: number;
  /** How long a connection with nothing in flight may stay silent before it is closed. */
  readonly idleTimeoutMs: number;
}

export interface ServedConnectionContext {
  readonly handler: RequestHandler;
  readonly limits: ServedConnectionLimits;
  readonly env: Env;
  readonly log: Logger | undefined;
  /** The secret a peer must prove before its frames are read; undefined when none is asked. */
  readonly clusterSecret: Buffer | undefined;
  /** The node's bytes of partly received frames, shared by its served connections. */
  readonly receiveBudget: ReceiveBudget;
  /** The peer proved the secret; false closes the connection (no room for another). */
  readonly onAuthenticated: (connection: ServedConnection) => boolean;
  readonly onClosed: (connection: ServedConnection) => void;
}

/** An error reply's detail is cut to this length: it is a diagnostic, not a payload. */
export const errorDetailCharsMax = 1024;

export function errorReply(error: KaiError): RpcReply {
  return { type: 'error', code: error.code, detail: (error.detail ?? '').slice(0, errorDetailCharsMax) };
}

export class ServedConnection {
  private readonly decoder: FrameDecoder;
  private readonly limits: ServedConnectionLimits;
  private requestsInFlight = 0;
  private closed = false;
  /** Gathers the replies of one turn into one write. */
  private readonly cork: TurnCork;
  /** Until the peer has proved the cluster secret; undefined once it has, or when none is asked. */
  private handshake: AcceptorHandshake | undefined;
  /** The first bytes are yet to come (a secret-less node checks them for a handshake). */
  private awaitingFirstBytes = true;
  private lastReceivedAtMs: number;
  private timer: TimerHandle | undefined;
  /** Bytes reserved in the receive budget for the frame partly received. */
  private reservedBytes = 0;
  /** Set while this connection waits for room in the receive budget; it does not read meanwhile. */
  private budgetWaiter: (() => void) | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly context: ServedConnectionContext,
  ) {
    this.limits = context.limits;
    this.decoder = new FrameDecoder({ frameBytesMax: this.limits.frameBytesMax });
    this.cork = new TurnCork(socket);
    this.lastReceivedAtMs = context.env.nowMs();
    socket.setNoDelay(true);
    if (context.clusterSecret !== undefined) {
      this.handshake = new AcceptorHandshake(context.clusterSecret, randomBytes(nonceBytes));
      this.timer = context.env.after(this.limits.handshakeTimeoutMs, () => {
        if (this.handshake) this.refuse(new KaiError('KAI_BAD_FRAME', `no cluster-secret handshake within ${this.limits.handshakeTimeoutMs} ms`));
      });
    } else {
      this.armIdleTimer(this.limits.idleTimeoutMs);
    }
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('drain', () => this.drain());
    // A reset or a write after the peer left is the peer's business; 'close' follows.
    socket.on('error', () => undefined);
    socket.on('close', () => this.close());
  }

  /** The peer's IP address, as the socket reports it. */
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  /** Whether the peer has proved the cluster secret (always, when none is asked). */
  get authenticated(): boolean {
    return this.handshake === undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    if (this.budgetWaiter) this.context.receiveBudget.cancel(this.budgetWaiter);
    this.budgetWaiter = undefined;
    this.releaseReservation();
    this.decoder.clear();
    this.socket.destroy();
    this.context.onClosed(this);
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    this.lastReceivedAtMs = this.context.env.nowMs();
    if (this.handshake) return this.handshakeStep(this.handshake.receive(chunk));
    if (this.awaitingFirstBytes) {
      this.awaitingFirstBytes = false;
      // Read as a frame, the handshake would be refused as an oversized one: say what it is.
      if (startsWithHandshake(chunk)) {
        return this.refuse(new KaiError('KAI_BAD_FRAME', 'the peer was started with a cluster secret and this node without one'));
      }
    }
    this.decoder.push(chunk);
    this.drain();
  }

  private handshakeStep(step: HandshakeStep): void {
    if (step.kind === 'failed') return this.refuse(new KaiError('KAI_BAD_FRAME', step.reason));
    if (step.send) this.socket.write(step.send);
    if (step.kind === 'pending') return;
    this.handshake = undefined;
    this.awaitingFirstBytes = false;
    this.timer?.cancel();
    if (!this.context.onAuthenticated(this)) return this.close();
    this.armIdleTimer(this.limits.idleTimeoutMs);
    this.decoder.push(step.rest);
    this.drain();
  }

  /** Closes the connection once it has had nothing in flight and received nothing for idleTimeoutMs. */
  private armIdleTimer(delayMs: number): void {
    this.timer = this.context.env.after(delayMs, () => {
      if (this.closed) return;
      const silentMs = this.context.env.nowMs() - this.lastReceivedAtMs;
      const { idleTimeoutMs } = this.limits;
      if (this.requestsInFlight === 0 && silentMs >= idleTimeoutMs) {
        this.context.log?.debug({ peer: this.peerName() }, `closing internal API connection idle for ${silentMs} ms`);
        this.close();
        return;
      }
      this.armIdleTimer(Math.max(1, idleTimeoutMs - silentMs));
    });
  }

  private peerName(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  /** Starts every complete request the in-flight bound allows, then reads on or pauses. */
  private drain(): void {
    while (!this.closed && this.requestsInFlight < this.limits.requestsInFlightPerConnectionMax) {
      const event = this.decoder.next();
      if (event.kind === 'needMore') break;
      if (event.kind === 'error') return this.refuse(event.error);
      this.releaseReservation();
      if (event.envelope.kind !== 'request') {
        return this.refuse(new KaiError('KAI_BAD_FRAME', 'a reply on a served connection'));
      }
      if (event.envelope.body.type === 'probe') this.reply(event.envelope.id, { type: 'probed' });
      else this.handle(event.envelope.id, event.envelope.body);
    }
    if (this.closed) return;
    this.reserveForFrameInProgress();
    const canRead =
      this.budgetWaiter === undefined &&
      this.requestsInFlight < this.limits.requestsInFlightPerConnectionMax &&
      !this.socket.writableNeedDrain;
    if (canRead) this.socket.resume();
    else this.socket.pause();
  }

  /**
   * A frame partly received holds its declared length in the node's receive budget; without room
   * the connection stops reading until it has some.
   */
  private reserveForFrameInProgress(): void {
    const declared = this.decoder.frameInProgressBytes;
    if (declared === undefined || this.reservedBytes > 0 || this.budgetWaiter) return;
    const granted = (): void => {
      this.budgetWaiter = undefined;
      this.reservedBytes = declared;
      if (!this.closed) this.drain();
    };
    if (this.context.receiveBudget.reserve(declared, granted)) this.reservedBytes = declared;
    else this.budgetWaiter = granted;
  }

  private releaseReservation(): void {
    if (this.reservedBytes === 0) return;
    const released = this.reservedBytes;
    this.reservedBytes = 0;
    this.context.receiveBudget.release(released);
  }

  private handle(id: number, request: RpcRequest): void {
    this.requestsInFlight++;
    Promise.resolve()
      .then(() => this.context.handler(request))
      .catch((error: unknown) => errorReply(asKaiError(error)))
      .then((reply) => {
        this.requestsInFlight--;
        if (this.closed) return;
        this.reply(id, reply);
        this.drain();
      })
      .catch((error: unknown) => this.context.log?.error({ err: error }, 'internal API reply failed'));
  }

  private reply(id: number, reply: RpcReply): void {
    const { frameBytesMax } = this.limits;
    let frame = encodeFrame({ id, kind: 'reply', body: reply }, frameBytesMax);
    // A reply that cannot be sent (over the cap, or not a well-formed reply) is answered as the
    // error it is, so the requester hears why instead of waiting out its timeout.
    if (frame instanceof KaiError) frame = encodeFrame({ id, kind: 'reply', body: errorReply(frame) }, frameBytesMax);
    if (frame instanceof KaiError) return this.refuse(frame);
    this.cork.gather();
    this.socket.write(frame);
  }

  private refuse(error: KaiError): void {
    this.context.log?.warn(
      { peer: this.peerName(), code: error.code, detail: error.detail },
      'closing internal API connection',
    );
    this.close();
  }
}
