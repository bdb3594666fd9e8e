/**
 * The memcache text protocol encoder: a command's reply as the exact bytes memcached 1.6 writes.
 * Values are passed through as their own chunks, never copied into a larger buffer.
 */
import { assert, type KaiError } from '../../errors';
import type { Command, ItemView, Reply } from '../command';
import { encodeMetaReply } from './meta-reply';

const crlf = Buffer.from('\r\n');
const endLine = Buffer.from('END\r\n');

function line(text: string): Buffer {
  return Buffer.from(`${text}\r\n`, 'latin1');
}

/** Whether the client asked for no reply: such a command is answered with nothing, even on success. */
export function isNoreply(command: Command): boolean {
  return 'noreply' in command && command.noreply;
}

/**
 * The chunks to write for `reply` to `command`, in order: empty for noreply commands and quit.
 * Errors are not replies: they go through encodeError.
 */
export function encodeReply(command: Command, reply: Reply): Buffer[] {
  if (isNoreply(command)) return [];
  switch (reply.kind) {
    case 'items':
      return encodeItems(reply.items, reply.withCas);
    case 'stored':
      return [line(reply.outcome)];
    case 'deleted':
      return [line(reply.outcome)];
    case 'arith':
      return [line(reply.outcome === 'OK' ? reply.value.toString() : reply.outcome)];
    case 'touched':
      return [line(reply.found ? 'TOUCHED' : 'NOT_FOUND')];
    case 'ok':
      return [line('OK')];
    case 'reset':
      return [line('RESET')];
    case 'version':
      return [line(`VERSION ${reply.version}`)];
    case 'stats':
      return [encodeStats(reply.stats)];
    case 'lines':
      return [Buffer.from(linesThenEnd(reply.lines), 'latin1')];
    case 'quit':
      return [];
    default:
      return encodeMetaReply(command, reply);
  }
}

/** `VALUE <key> <flags> <bytes>[ <cas>]` then the data and CRLF, for each item; then END. */
function encodeItems(items: readonly ItemView[], withCas: boolean): Buffer[] {
  const chunks = encodeItemLines(items, withCas);
  chunks.push(endLine);
  return chunks;
}

/** The items of a multiget without its END: a multiget answered window by window sends these. */
export function encodeItemLines(items: readonly ItemView[], withCas: boolean): Buffer[] {
  const chunks: Buffer[] = [];
  for (const item of items) {
    assert(item.flags >= 0 && item.flags <= 0xffffffff, 'item flags fit in 32 bits');
    const suffix = withCas ? ` ${item.flags} ${item.value.length} ${item.cas}\r\n` : ` ${item.flags} ${item.value.length}\r\n`;
    chunks.push(Buffer.concat([valuePrefix, item.key, Buffer.from(suffix, 'latin1')]), item.value, crlf);
  }
  return chunks;
}

/** The END that closes a multiget answered window by window. */
export function encodeItemsEnd(): Buffer[] {
  return [endLine];
}

const valuePrefix = Buffer.from('VALUE ');

/** Lines of text, each ended by CRLF, then END: `stats detail dump` as memcached writes it. */
export function linesThenEnd(lines: readonly string[]): string {
  return lines.map((text) => `${text}\r\n`).join('') + 'END\r\n';
}

function encodeStats(stats: ReadonlyArray<readonly [string, string]>): Buffer {
  let text = '';
  for (const [name, value] of stats) text += `STAT ${name} ${value}\r\n`;
  return Buffer.from(`${text}END\r\n`, 'latin1');
}

/** Errors memcached answers by closing the connection without a word; the decoder marks them closing. */
const unansweredErrors: ReadonlySet<string> = new Set(['KAI_LINE_TOO_LONG', 'KAI_HTTP_REQUEST_LINE']);

/**
 * The reply line for an error. An over-long line or one that looks like HTTP gets no reply at all:
 * memcached just closes the connection.
 */
export function encodeError(error: KaiError): Buffer {
  if (unansweredErrors.has(error.code)) return Buffer.alloc(0);
  return line(error.textReply());
}
