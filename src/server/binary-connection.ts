/**
 * A client connection speaking the memcache binary protocol. The decoder frames requests, the
 * pure functions of protocol/binary/requests turn them into commands and replies into packets;
 * this class adds authentication, the only per-connection state, and the socket.
 */
import type * as net from 'node:net';
import { parseSaslPlain, saslMechanisms } from '../auth';
import { BinaryStatus, authenticatedMessage, Opcode } from '../protocol/binary/constants';
import { BinaryDecoder, type BinaryEvent, type BinaryRequest } from '../protocol/binary/decoder';
import {
  actionOf,
  authenticatedPackets,
  emptySuccessPackets,
  errorPackets,
  failurePackets,
  loudOpcode,
  mechanismsPackets,
  replyPackets,
} from '../protocol/binary/requests';
import { encodeErrorResponse } from '../protocol/binary/encoder';
import type { Command } from '../protocol/command';
import { Connection, type ConnectionContext, type EncodedReply } from './connection';
import { runOptionsOf } from './dispatch';

/** Opcodes served before authentication, as memcached -S serves them. */
const servedUnauthenticated: ReadonlySet<number> = new Set([
  Opcode.saslListMechs,
  Opcode.saslAuth,
  Opcode.saslStep,
  Opcode.version,
]);

const saslPlainMechanism = 'PLAIN';

function open(chunks: Buffer[]): EncodedReply {
  return { chunks, closeAfter: false };
}

export class BinaryConnection extends Connection {
  private readonly decoder: BinaryDecoder;
  private authenticated = false;

  constructor(socket: net.Socket, context: ConnectionContext) {
    super(socket, context);
    this.decoder = new BinaryDecoder({ valueBytesMax: context.valueBytesMax });
  }

  protected push(chunk: Buffer): void {
    this.decoder.push(chunk);
  }

  protected bufferedBytes(): number {
    return this.decoder.bufferedBytes();
  }

  protected awaitedBytes(): number {
    return this.decoder.awaitedBytes();
  }

  protected heldBytesMax(): number {
    return this.decoder.heldBytesMax();
  }

  protected releaseBuffers(): void {
    this.decoder.stop();
  }

  protected startNext(): boolean {
    const event = this.decoder.next();
    if (!event) return false;
    switch (event.kind) {
      case 'error':
        this.answerHeaderError(event);
        break;
      case 'valueTooLarge':
        this.refuseTooLarge(event.request);
        break;
      case 'request':
        this.serve(event.request);
        break;
    }
    return true;
  }

  /** A request refused from its header; a bad magic byte closes without a reply, as in memcached. */
  private answerHeaderError(event: Extract<BinaryEvent, { kind: 'error' }>): void {
    const { header, status, close } = event;
    const chunks = header ? encodeErrorResponse(header.opcode, header.opaque, status) : [];
    this.answer({ chunks, closeAfter: close });
  }

  /**
   * A value over the limit is refused, and its body discarded by the decoder. Like memcached, a
   * refused SET also removes the key's old value, so no reader sees data the client meant to
   * replace; the dispatcher counts the refusal (store_too_large) and no delete.
   */
  private refuseTooLarge(request: BinaryRequest): void {
    if (this.mustAuthenticate(request)) return;
    const refusal: Command = {
      op: 'refuse_store',
      key: request.key,
      removeOld: loudOpcode(request.header.opcode) === Opcode.set,
      noreply: true,
    };
    this.run(
      () => this.context.dispatcher.execute(refusal),
      () => open([]),
      () => open([]),
      { keys: [refusal.key] },
    );
    this.answer(open(errorPackets(request, BinaryStatus.valueTooLarge)));
  }

  /**
   * With an auth file, every request other than SASL and VERSION is refused until the client has
   * authenticated; memcached -S closes the connection after the refusal, and so does kai.
   */
  private mustAuthenticate(request: BinaryRequest): boolean {
    const { authenticator } = this.context;
    if (!authenticator.required || this.authenticated || servedUnauthenticated.has(request.header.opcode)) return false;
    this.decoder.stop();
    this.answer({ chunks: errorPackets(request, BinaryStatus.authenticationError), closeAfter: true });
    return true;
  }

  private serve(request: BinaryRequest): void {
    if (this.mustAuthenticate(request)) return;
    const action = actionOf(request);
    switch (action.kind) {
      case 'command':
        this.run(
          () => this.context.dispatcher.execute(action.command),
          (reply) => open(replyPackets(request, reply)),
          (error) => open(failurePackets(request, error)),
          runOptionsOf(action.command),
        );
        return;
      case 'noop':
        this.answer(open(emptySuccessPackets(request)));
        return;
      case 'quit':
        this.decoder.stop();
        this.answer({ chunks: emptySuccessPackets(request), closeAfter: true });
        return;
      case 'saslListMechanisms':
        this.answer(open(this.saslEnabled(request) ?? mechanismsPackets(request, saslMechanisms)));
        return;
      case 'saslAuth':
        this.answer(open(this.saslEnabled(request) ?? this.saslAuth(request, action.mechanism, action.message)));
        return;
      case 'saslStep':
        // PLAIN completes in one step, so there is never a step to continue, as in memcached.
        this.answer(open(this.saslEnabled(request) ?? errorPackets(request, BinaryStatus.authenticationError)));
        return;
    }
  }

  /** Without an auth file SASL is off: memcached without -S answers its commands "unknown". */
  private saslEnabled(request: BinaryRequest): Buffer[] | undefined {
    return this.context.authenticator.required ? undefined : errorPackets(request, BinaryStatus.unknownCommand);
  }

  private saslAuth(request: BinaryRequest, mechanism: string, message: Buffer): Buffer[] {
    const { stats, authenticator } = this.context;
    stats.authCmds++;
    const credentials = mechanism === saslPlainMechanism ? parseSaslPlain(message) : undefined;
    if (!credentials || !authenticator.verify(credentials.user, credentials.password)) {
      stats.authErrors++;
      return errorPackets(request, BinaryStatus.authenticationError);
    }
    this.authenticated = true;
    return authenticatedPackets(request, authenticatedMessage);
  }
}
