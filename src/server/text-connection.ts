/** A client connection speaking the memcache text protocol. */
import type * as net from 'node:net';
import type { KaiError } from '../errors';
import type { Command, Reply } from '../protocol/command';
import { TextDecoder } from '../protocol/text/decoder';
import { encodeError, encodeReply } from '../protocol/text/encoder';
import { Connection, type ConnectionContext, type EncodedReply } from './connection';

function textFailure(error: KaiError): EncodedReply {
  return { chunks: [encodeError(error)], closeAfter: false };
}

export class TextConnection extends Connection {
  private readonly decoder: TextDecoder;

  constructor(socket: net.Socket, context: ConnectionContext) {
    super(socket, context);
    this.decoder = new TextDecoder({ valueBytesMax: context.valueBytesMax });
  }

  protected push(chunk: Buffer): void {
    this.decoder.push(chunk);
  }

  protected startNext(): boolean {
    const event = this.decoder.next();
    if (!event) return false;
    if (event.kind === 'error') {
      this.answer({ chunks: [encodeError(event.error)], closeAfter: event.close });
    } else {
      const command = event.command;
      this.run(
        () => this.context.dispatcher.execute(command),
        (reply) => encodeText(command, reply),
        textFailure,
      );
    }
    return true;
  }
}

function encodeText(command: Command, reply: Reply): EncodedReply {
  if (reply.kind === 'quit') return { chunks: [], closeAfter: true };
  return { chunks: encodeReply(command, reply), closeAfter: false };
}
