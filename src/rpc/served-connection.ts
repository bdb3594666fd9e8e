/**
 * One connection a peer opened to this node's internal API. Requests are handled concurrently
 * and answered as they finish, each reply carrying its request's id.
 *
 * At most `requestsInFlightPerConnectionMax` requests are handled at once; past it, and while
 * the peer is not reading its replies, the socket is not read, so TCP flow control holds the
 * peer back and memory stays bounded by what was received before the pause. A malformed frame
 * closes the connection: after one, nothing else on the stream can be trusted to be aligned.
 */
import type net from 'node:net';
import { KaiError, asKaiError } from '../errors';
import type { Logger } from '../log';
import { FrameDecoder, encodeFrame } from './frames';
import type { RpcReply, RpcRequest } from './messages';
import { TurnCork } from './cork';
import type { RequestHandler } from './transport';

export interface ServedConnectionLimits {
  readonly frameBytesMax: number;
  readonly requestsInFlightPerConnectionMax: number;
}

/** An error reply's detail is cut to this length: it is a diagnostic, not a payload. */
export const errorDetailCharsMax = 1024;

export function errorReply(error: KaiError): RpcReply {
  return { type: 'error', code: error.code, detail: (error.detail ?? '').slice(0, errorDetailCharsMax) };
}

export class ServedConnection {
  private readonly decoder: FrameDecoder;
  private requestsInFlight = 0;
  private closed = false;
  /** Gathers the replies of one turn into one write. */
  private readonly cork: TurnCork;

  constructor(
    private readonly socket: net.Socket,
    private readonly handler: RequestHandler,
    private readonly limits: ServedConnectionLimits,
    private readonly onClosed: (connection: ServedConnection) => void,
    private readonly log: Logger | undefined,
  ) {
    this.decoder = new FrameDecoder({ frameBytesMax: limits.frameBytesMax });
    this.cork = new TurnCork(socket);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      this.drain();
    });
    socket.on('drain', () => this.drain());
    // A reset or a write after the peer left is the peer's business; 'close' follows.
    socket.on('error', () => undefined);
    socket.on('close', () => this.close());
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.onClosed(this);
  }

  /** Starts every complete request the in-flight bound allows, then reads on or pauses. */
  private drain(): void {
    while (!this.closed && this.requestsInFlight < this.limits.requestsInFlightPerConnectionMax) {
      const event = this.decoder.next();
      if (event.kind === 'needMore') break;
      if (event.kind === 'error') return this.refuse(event.error);
      if (event.envelope.kind !== 'request') {
        return this.refuse(new KaiError('KAI_BAD_FRAME', 'a reply on a served connection'));
      }
      if (event.envelope.body.type === 'probe') this.reply(event.envelope.id, { type: 'probed' });
      else this.handle(event.envelope.id, event.envelope.body);
    }
    if (this.closed) return;
    const canRead =
      this.requestsInFlight < this.limits.requestsInFlightPerConnectionMax && !this.socket.writableNeedDrain;
    if (canRead) this.socket.resume();
    else this.socket.pause();
  }

  private handle(id: number, request: RpcRequest): void {
    this.requestsInFlight++;
    Promise.resolve()
      .then(() => this.handler(request))
      .catch((error: unknown) => errorReply(asKaiError(error)))
      .then((reply) => {
        this.requestsInFlight--;
        if (this.closed) return;
        this.reply(id, reply);
        this.drain();
      })
      .catch((error: unknown) => this.log?.error({ err: error }, 'internal API reply failed'));
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
    this.log?.warn(
      { peer: `${this.socket.remoteAddress}:${this.socket.remotePort}`, code: error.code, detail: error.detail },
      'closing internal API connection',
    );
    this.close();
  }
}
