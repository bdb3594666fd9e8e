/**
 * One text protocol command line (without its newline) to a command, with memcached 1.6's own
 * reading of it: tokens split on spaces only, at most 24 tokens counted, arity checked before
 * anything else (a wrong count is `ERROR`), `noreply` recognised only as the last token and then
 * silencing even the errors found after it. Pure: no buffering, no I/O.
 */
import type { ErrorCode } from '../../errors';
import { keyBytesMax, type Command, type StorageMode } from '../command';
import type { MetaSetRequest } from '../meta-command';
import { parseMetaLine, type MetaLineOutcome } from './meta';
import { parseInt32, parseUint32, parseUint64 } from './numbers';
import { parseLruCrawler, parseStats, parseWatch } from './tool-command-lines';

/** What a storage command line announces; the data block that follows completes the command. */
export interface StoreHeader {
  readonly mode: StorageMode;
  readonly key: Buffer;
  readonly flags: number;
  readonly exptime: number;
  readonly casUnique: bigint;
  readonly noreply: boolean;
  /** Length of the data block, without its trailing CRLF. */
  readonly valueBytes: number;
  /** An ms line: the block completes a meta set rather than a classic storage command. */
  readonly meta?: MetaSetRequest;
}

export type LineOutcome =
  | { readonly kind: 'command'; readonly command: Command }
  | { readonly kind: 'store'; readonly header: StoreHeader }
  /** `silent` when the line carried noreply: memcached then swallows the error reply too. */
  | { readonly kind: 'error'; readonly code: ErrorCode; readonly silent: boolean }
  /** The connection is closed at once, without a reply, and nothing after the line is read. */
  | { readonly kind: 'hangup'; readonly code: ErrorCode }
  /** A refused ms: its data block of `blockBytes` is swallowed, then the error is answered. */
  | { readonly kind: 'swallow'; readonly blockBytes: number; readonly code: ErrorCode };

/**
 * memcached tokenizes into an array of 24 slots: at most 23 tokens plus a terminator. Every arity
 * check sees that count, so a line with 30 tokens looks like one with 23.
 */
export const countedTokensMax = 23;
/** memcached rejects a data length above INT_MAX - 2 (room for the CRLF) as a bad command line. */
export const declaredValueBytesMax = 0x7fffffff - 2;

const space = 0x20;
const carriageReturn = 0x0d;
const nul = 0x00;

const storageModes: ReadonlyMap<string, StorageMode> = new Map<string, StorageMode>([
  ['set', 'set'],
  ['add', 'add'],
  ['replace', 'replace'],
  ['append', 'append'],
  ['prepend', 'prepend'],
  ['cas', 'cas'],
]);

/** The line as memcached sees it: one trailing CR dropped (if the line is longer than it), cut at a NUL. */
export function effectiveLine(line: Buffer): Buffer {
  let end = line.length;
  if (end > 1 && line[end - 1] === carriageReturn) end--;
  const nulAt = line.indexOf(nul);
  if (nulAt >= 0 && nulAt < end) end = nulAt;
  return line.subarray(0, end);
}

/** Space-separated tokens; other white space (tabs, CR) belongs to the token it is in. */
export function tokenize(line: Buffer): Buffer[] {
  const tokens: Buffer[] = [];
  let start = 0;
  while (start < line.length) {
    let end = line.indexOf(space, start);
    if (end < 0) end = line.length;
    if (end > start) tokens.push(line.subarray(start, end));
    start = end + 1;
  }
  return tokens;
}

function error(code: ErrorCode, silent = false): LineOutcome {
  return { kind: 'error', code, silent };
}

function command(value: Command): LineOutcome {
  return { kind: 'command', command: value };
}

/** Tokens as memcached reads them: the counted ones, and whether the last counted one is `noreply`. */
export class TokenView {
  /** memcached's ntokens: counted tokens plus its terminator slot. */
  readonly count: number;

  constructor(readonly tokens: readonly Buffer[]) {
    this.count = Math.min(tokens.length, countedTokensMax) + 1;
  }

  /** memcached's set_noreply_maybe: only the last counted token can be `noreply`. */
  get noreply(): boolean {
    const last = this.tokens[this.count - 2];
    return last !== undefined && last.equals(noreplyToken);
  }

  countIn(...allowed: number[]): boolean {
    return allowed.includes(this.count);
  }
}

const noreplyToken = Buffer.from('noreply');
const holdZeroToken = Buffer.from('0');

/** Decodes one line. The caller has already taken the line off the stream. */
export function parseCommandLine(rawLine: Buffer): LineOutcome {
  const view = new TokenView(tokenize(effectiveLine(rawLine)));
  if (view.tokens.length === 0) return error('KAI_UNKNOWN_COMMAND');
  const name = view.tokens[0].toString('latin1');
  const mode = storageModes.get(name);
  if (mode !== undefined) return parseStorage(view, mode);
  switch (name) {
    case 'get':
    case 'bget':
      return parseRetrieval(view, false, false);
    case 'gets':
      return parseRetrieval(view, true, false);
    case 'gat':
      return parseRetrieval(view, false, true);
    case 'gats':
      return parseRetrieval(view, true, true);
    case 'delete':
      return parseDelete(view);
    case 'incr':
    case 'decr':
      return parseArithmetic(view, name === 'incr');
    case 'touch':
      return parseTouch(view);
    case 'flush_all':
      return parseFlushAll(view);
    case 'verbosity':
      return parseVerbosity(view);
    case 'version':
      return command({ op: 'version' });
    case 'quit':
      return command({ op: 'quit' });
    case 'stats':
      return parseStats(view);
    case 'lru_crawler':
      return parseLruCrawler(view);
    case 'watch':
      return parseWatch(view);
    default: {
      const meta = parseMetaLine(view.tokens, view.count);
      if (meta) return metaOutcome(meta);
      // memcached's admin commands land here too.
      if (looksLikeHttp(view, view.tokens[0])) return { kind: 'hangup', code: 'KAI_HTTP_REQUEST_LINE' };
      return error('KAI_UNKNOWN_COMMAND');
    }
  }
}

/** A meta line's outcome as the decoder takes it: an ms becomes a store awaiting its block. */
function metaOutcome(meta: MetaLineOutcome): LineOutcome {
  switch (meta.kind) {
    case 'command':
      return command(meta.command);
    case 'error':
      return error(meta.code);
    case 'swallow':
      return meta;
    case 'meta_store': {
      const { request, valueBytes } = meta;
      const header: StoreHeader = {
        mode: request.mode,
        key: request.key,
        flags: request.clientFlags,
        exptime: request.exptime,
        casUnique: 0n,
        noreply: false,
        valueBytes,
        meta: request,
      };
      return { kind: 'store', header };
    }
  }
}

const httpVersionPrefix = Buffer.from('HTTP/');
/**
 * Where memcached 1.6 sends a line by its command's first letter (and `m` plus one letter, the
 * meta commands): those lines are answered by that branch, never taken for HTTP.
 */
const dispatchedFirstLetters: ReadonlySet<number> = new Set(Buffer.from('gsacidt'));
const metaLetter = 0x6d;
/** Commands memcached 1.6 knows by their whole name outside those branches. */
const namedCommands: ReadonlySet<string> = new Set([
  'replace',
  'prepend',
  'bget',
  'flush_all',
  'version',
  'quit',
  'lru_crawler',
  'watch',
  'verbosity',
  'lru',
  'extstore',
  'refresh_certs',
]);

/**
 * memcached's guard against cross-protocol requests (a browser made to POST to the port, its body
 * full of commands): an otherwise unknown command whose last counted token starts with `HTTP/`
 * (`GET / HTTP/1.1`, `POST /x HTTP/1.0`, even a lone `HTTP/1.0`) closes the connection unanswered.
 * Only lines that reach memcached's final fallback are judged: a command name of at least two
 * bytes that no branch of its dispatch takes, so `gx / HTTP/1.0` is still answered `ERROR`.
 */
export function looksLikeHttp(view: { readonly count: number; readonly tokens: readonly Buffer[] }, name: Buffer): boolean {
  if (name.length < 2 || dispatchedFirstLetters.has(name[0])) return false;
  if (name[0] === metaLetter && name.length === 2) return false;
  if (namedCommands.has(name.toString('latin1'))) return false;
  const last = view.tokens[view.count - 2];
  return last.length >= httpVersionPrefix.length && last.subarray(0, httpVersionPrefix.length).equals(httpVersionPrefix);
}

function keyTooLong(key: Buffer): boolean {
  return key.length > keyBytesMax;
}

/** get, gets, bget, gat, gats: every token after the command (and gat's exptime) is a key. */
function parseRetrieval(view: TokenView, withCas: boolean, touch: boolean): LineOutcome {
  if (view.count < 3) return error('KAI_UNKNOWN_COMMAND');
  let exptime = 0;
  if (touch) {
    const parsed = parseInt32(view.tokens[1]);
    if (parsed === undefined) return error('KAI_INVALID_EXPTIME');
    exptime = parsed;
  }
  const keys = view.tokens.slice(touch ? 2 : 1);
  if (keys.some(keyTooLong)) return error('KAI_BAD_COMMAND_LINE');
  return command(touch ? { op: 'gat', keys, exptime, withCas } : { op: 'get', keys, withCas });
}

function parseStorage(view: TokenView, mode: StorageMode): LineOutcome {
  const withCas = mode === 'cas';
  if (!(withCas ? view.countIn(7, 8) : view.countIn(6, 7))) return error('KAI_UNKNOWN_COMMAND');
  const noreply = view.noreply;
  const [, key, flagsToken, exptimeToken, lengthToken, casToken] = view.tokens;
  if (keyTooLong(key)) return error('KAI_BAD_COMMAND_LINE', noreply);
  const flags = parseUint32(flagsToken);
  const exptime = parseInt32(exptimeToken);
  const valueBytes = parseInt32(lengthToken);
  if (flags === undefined || exptime === undefined || valueBytes === undefined) {
    return error('KAI_BAD_COMMAND_LINE', noreply);
  }
  let casUnique = 0n;
  if (withCas) {
    const parsed = parseUint64(casToken);
    if (parsed === undefined) return error('KAI_BAD_COMMAND_LINE', noreply);
    casUnique = parsed;
  }
  if (valueBytes < 0 || valueBytes > declaredValueBytesMax) return error('KAI_BAD_COMMAND_LINE', noreply);
  return { kind: 'store', header: { mode, key, flags, exptime, casUnique, noreply, valueBytes } };
}

/**
 * `delete <key> [0] [noreply]`: memcached still accepts the hold time of old clients, but only 0,
 * and answers anything else in its own words.
 */
function parseDelete(view: TokenView): LineOutcome {
  if (view.count < 3 || view.count > 5) return error('KAI_UNKNOWN_COMMAND');
  let noreply = false;
  if (view.count > 3) {
    const holdIsZero = view.tokens[2].equals(holdZeroToken);
    noreply = view.noreply;
    const valid = (view.count === 4 && (holdIsZero || noreply)) || (view.count === 5 && holdIsZero && noreply);
    if (!valid) return error('KAI_BAD_DELETE_FORMAT', noreply);
  }
  const key = view.tokens[1];
  if (keyTooLong(key)) return error('KAI_BAD_COMMAND_LINE', noreply);
  return command({ op: 'delete', key, casUnique: 0n, noreply });
}

/** `<command> <key> <number> [noreply]` (incr, decr, touch): the key checked, then the number parsed. */
function parseKeyAndNumber<T>(
  view: TokenView,
  parseNumber: (token: Buffer) => T | undefined,
  invalidNumber: ErrorCode,
  build: (key: Buffer, number: T, noreply: boolean) => Command,
): LineOutcome {
  if (!view.countIn(4, 5)) return error('KAI_UNKNOWN_COMMAND');
  const noreply = view.noreply;
  const key = view.tokens[1];
  if (keyTooLong(key)) return error('KAI_BAD_COMMAND_LINE', noreply);
  const number = parseNumber(view.tokens[2]);
  if (number === undefined) return error(invalidNumber, noreply);
  return command(build(key, number, noreply));
}

function parseArithmetic(view: TokenView, incr: boolean): LineOutcome {
  return parseKeyAndNumber(view, parseUint64, 'KAI_INVALID_DELTA', (key, delta, noreply) => ({
    op: 'arith',
    incr,
    key,
    delta,
    casUnique: 0n,
    noreply,
  }));
}

function parseTouch(view: TokenView): LineOutcome {
  return parseKeyAndNumber(view, parseInt32, 'KAI_INVALID_EXPTIME', (key, exptime, noreply) => ({ op: 'touch', key, exptime, noreply }));
}

/**
 * `flush_all [delay] [noreply]`. A delay of zero or less flushes now, as in memcached; a positive
 * delay is read like an exptime (relative, or an absolute unix time past 30 days).
 */
function parseFlushAll(view: TokenView): LineOutcome {
  if (view.count < 2 || view.count > 4) return error('KAI_UNKNOWN_COMMAND');
  const noreply = view.noreply;
  let delaySeconds = 0;
  if (view.count !== (noreply ? 3 : 2)) {
    const parsed = parseInt32(view.tokens[1]);
    if (parsed === undefined) return error('KAI_INVALID_EXPTIME', noreply);
    delaySeconds = Math.max(0, parsed);
  }
  return command({ op: 'flush_all', delaySeconds, noreply });
}

function parseVerbosity(view: TokenView): LineOutcome {
  if (!view.countIn(3, 4)) return error('KAI_UNKNOWN_COMMAND');
  const noreply = view.noreply;
  const level = parseUint32(view.tokens[1]);
  if (level === undefined) return error('KAI_BAD_COMMAND_LINE', noreply);
  return command({ op: 'verbosity', level, noreply });
}
