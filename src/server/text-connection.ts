/**
 * A client connection speaking the memcache text protocol. When the node has an auth file, the
 * connection starts in memcached's ascii auth handshake and reaches the text decoder only once the
 * client has sent credentials from the file.
 */
import type * as net from 'node:net';
import { TextAuthHandshake, type HandshakeEvent } from '../auth/text-handshake';
import { KaiError, asKaiError, type ErrorCode } from '../errors';
import type { Command, Reply } from '../protocol/command';
import { commandName } from '../protocol/command-name';
import { TextDecoder } from '../protocol/text/decoder';
import type { ToolCommand } from '../protocol/tool-commands';
import { encodeError, encodeItemLines, encodeItemsEnd, encodeReply } from '../protocol/text/encoder';
import { Connection, outcomeOfError, type ConnectionContext, type EncodedReply } from './connection';
import { isWideMultiget, runOptionsOf } from './dispatch';
import { streamKeyDump, streamWatch } from './text-tools';

function textFailure(error: KaiError): EncodedReply {
  return { chunks: [encodeError(error)], closeAfter: false };
}

const storedReply: EncodedReply = { chunks: [Buffer.from('STORED\r\n')], closeAfter: false };
const closeReply: EncodedReply = { chunks: [], closeAfter: true };

const handshakeErrors: Readonly<Record<Exclude<HandshakeEvent['kind'], 'credentials' | 'close'>, ErrorCode>> = {
  unauthenticated: 'KAI_UNAUTHENTICATED',
  'bad-termination': 'KAI_BAD_COMMAND_LINE_TERMINATION',
  'bad-token-format': 'KAI_BAD_AUTHENTICATION_TOKEN',
};

export class TextConnection extends Connection {
  private readonly decoder: TextDecoder;
  /** Present until the client has authenticated; absent from the start when no auth file is set. */
  private handshake: TextAuthHandshake | undefined;

  constructor(socket: net.Socket, context: ConnectionContext) {
    super(socket, context);
    this.decoder = new TextDecoder({ valueBytesMax: context.valueBytesMax });
    if (context.authenticator.required) this.handshake = new TextAuthHandshake();
  }

  protected push(chunk: Buffer): void {
    if (this.handshake) this.handshake.push(chunk);
    else this.decoder.push(chunk);
  }

  protected bufferedBytes(): number {
    return this.handshake ? this.handshake.bufferedBytes() : this.decoder.bufferedBytes();
  }

  protected awaitedBytes(): number {
    return this.handshake ? 0 : this.decoder.awaitedBytes();
  }

  /** The handshake closes a connection past credentialsBlockBytesMax, well under the decoder's bound. */
  protected heldBytesMax(): number {
    return this.decoder.heldBytesMax();
  }

  protected releaseBuffers(): void {
    this.handshake?.release();
    this.decoder.release();
  }

  protected startNext(): boolean {
    if (this.handshake) return this.stepHandshake(this.handshake);
    const event = this.decoder.next();
    if (!event) return false;
    if (event.kind === 'error') {
      this.answer({ chunks: [encodeError(event.error)], closeAfter: event.close });
    } else if (isWideMultiget(event.command)) {
      this.multiget(event.command);
    } else if (event.command.op === 'tool') {
      this.startTool(event.command.tool);
    } else {
      const command = event.command;
      this.run(
        () => this.context.dispatcher.execute(command),
        (reply) => encodeText(command, reply),
        textFailure,
        runOptionsOf(command),
      );
    }
    return true;
  }

  /**
   * A wide multiget, answered window by window. A failure part way (a window's quorum not met)
   * ends the reply with the error line in place of END, which clients read as the error it is.
   */
  private multiget(command: Extract<Command, { op: 'get' | 'gat' }>): void {
    const { dispatcher, requestTimer } = this.context;
    const startedAtMs = requestTimer?.start() ?? 0;
    this.runStream(async (out) => {
      await out.ready();
      try {
        for await (const items of dispatcher.itemWindows(command)) await out.write(encodeItemLines(items, command.withCas));
      } catch (error) {
        const failure = asKaiError(error);
        requestTimer?.record(commandName(command), outcomeOfError(failure), startedAtMs);
        if (failure.code !== 'KAI_CLIENT_GONE') {
          out.end([encodeError(failure)]);
          return;
        }
        throw error;
      }
      requestTimer?.record(commandName(command), 'ok', startedAtMs);
      out.end(encodeItemsEnd());
    }, command.keys);
  }

  /**
   * A key dump or a watch, streamed. As memcached, `lru_crawler metadump` and `watch` refuse to
   * start behind replies not yet written (a cachedump, a stats command, does not). After `watch`
   * the connection only streams: what the client sends is read and dropped.
   */
  private startTool(tool: ToolCommand): void {
    const { tools } = this.context;
    if (tool.kind !== 'cachedump' && this.hasRepliesAhead()) {
      this.answer(textFailure(new KaiError(tool.kind === 'watch' ? 'KAI_WATCH_PIPELINED' : 'KAI_METADUMP_PIPELINED')));
      return;
    }
    if (tool.kind === 'watch') {
      const watcher = tools.watchers.add(tool.streams);
      if (watcher === undefined) {
        this.answer(textFailure(new KaiError('KAI_WATCHERS_FULL')));
        return;
      }
      this.toolStreaming = true;
      this.decoder.release();
      const inputEnd = this.inputHasEnded ? Promise.resolve() : new Promise<void>((resolve) => this.socket.once('end', () => resolve()));
      const leaving = Promise.race([this.closed, inputEnd, this.stopping]);
      this.runStream((out) => streamWatch(out, watcher, tools.watchers, leaving));
      return;
    }
    this.toolStreaming = tool.kind === 'metadump';
    this.runStream(async (out) => {
      try {
        await streamKeyDump(out, tool, tools);
      } finally {
        this.toolStreaming = false;
      }
    });
  }

  /**
   * One handshake event, answered as memcached answers it. Each refused line gets its own reply;
   * memcached 1.6 sends only the last of several refused lines that arrive in one read (they share
   * a reply buffer), which kai does not copy since it would leave a client's replies out of step.
   */
  private stepHandshake(handshake: TextAuthHandshake): boolean {
    const event = handshake.next();
    if (!event) return false;
    switch (event.kind) {
      case 'close':
        this.answer(closeReply);
        break;
      case 'credentials':
        this.authenticate(handshake, event.user, event.password);
        break;
      default:
        this.answer(textFailure(new KaiError(handshakeErrors[event.kind])));
    }
    return true;
  }

  private authenticate(handshake: TextAuthHandshake, user: Buffer, password: Buffer): void {
    const { stats, authenticator } = this.context;
    stats.authCmds++;
    if (!authenticator.verify(user, password)) {
      stats.authErrors++;
      this.answer(textFailure(new KaiError('KAI_AUTHENTICATION_FAILURE')));
      return;
    }
    this.answer(storedReply);
    // Commands pipelined behind the credentials are ordinary commands now.
    this.decoder.push(handshake.remaining());
    this.handshake = undefined;
  }
}

function encodeText(command: Command, reply: Reply): EncodedReply {
  if (reply.kind === 'quit') return { chunks: [], closeAfter: true };
  return { chunks: encodeReply(command, reply), closeAfter: false };
}
