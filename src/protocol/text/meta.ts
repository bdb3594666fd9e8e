/**
 * The meta command lines (mg, ms, md, ma, mn, me) read as memcached 1.6.18 reads them: the same
 * checks in the same order, so a bad line gets the same error, and an ms refused after its length
 * was read has its data block swallowed as memcached swallows it. Pure: tokens in, outcome out.
 */
import type { ErrorCode } from '../../errors';
import { decodeBase64Key } from '../base64';
import { keyBytesMax } from '../command';
import type {
  MetaArithRequest,
  MetaCommand,
  MetaDeleteRequest,
  MetaGetRequest,
  MetaRequest,
  MetaSetMode,
  MetaSetRequest,
} from '../meta-command';
import { parseInt32, parseUint32, parseUint64 } from './numbers';

/** memcached refuses a meta line of more tokens than this, its terminator slot counted. */
export const metaTokensMax = 20;
/** memcached's longest opaque (`O`) token, the letter included. */
export const opaqueBytesMax = 32;
/** The largest data length ms accepts (INT_MAX less room for the CRLF). */
const metaValueBytesMax = 0x7fffffff - 2;

export type MetaLineOutcome =
  | { readonly kind: 'command'; readonly command: MetaCommand }
  /** ms: the data block of `valueBytes` completes the command. */
  | { readonly kind: 'meta_store'; readonly request: MetaSetRequest; readonly valueBytes: number }
  | { readonly kind: 'error'; readonly code: ErrorCode }
  /** ms refused once its length was known: the block is swallowed, then the error answered. */
  | { readonly kind: 'swallow'; readonly blockBytes: number; readonly code: ErrorCode };

/** What memcached's flag pre-pass learns from the tokens after the key (and ms's length). */
interface ParsedFlags {
  key: Buffer;
  keyBase64: boolean;
  quiet: boolean;
  withValue: boolean;
  noBump: boolean;
  invalidate: boolean;
  clientFlags: number;
  mode?: number;
  touchExptime?: number;
  vivifyExptime?: number;
  recacheExptime?: number;
  compareCas?: bigint;
  delta?: bigint;
  initial?: bigint;
  opaqueTooLong: boolean;
}

/** The flags whose token is a 64-bit unsigned number: the field each sets, the error a bad one gives. */
const uint64Flags: Readonly<Record<'C' | 'J' | 'D', readonly ['compareCas' | 'initial' | 'delta', ErrorCode]>> = {
  C: ['compareCas', 'KAI_META_BAD_TOKEN'],
  J: ['initial', 'KAI_META_INVALID_INITIAL'],
  D: ['delta', 'KAI_META_INVALID_DELTA'],
};

type PreParse = { readonly flags: ParsedFlags } | { readonly code: ErrorCode; readonly fatal: boolean };

const letter = (character: string): number => character.charCodeAt(0);
/** Flags that take no token or whose token memcached ignores (O, P, L are copied or skipped). */
const plainFlags: ReadonlySet<number> = new Set(['O', 'P', 'L', 'k', 's', 't', 'c', 'f', 'l', 'h'].map(letter));

/**
 * memcached's _meta_flag_preparse: a repeated flag (or a byte over 126) and an unknown flag stop
 * at once; a bad token is remembered and the rest still read, the last such error's words being
 * the ones answered.
 */
function preParse(keyToken: Buffer, flagTokens: readonly Buffer[]): PreParse {
  const seen = new Set<number>();
  const flags: ParsedFlags = {
    key: keyToken,
    keyBase64: false,
    quiet: false,
    withValue: false,
    noBump: false,
    invalidate: false,
    clientFlags: 0,
    opaqueTooLong: false,
  };
  let failed = false;
  let code: ErrorCode = 'KAI_BAD_COMMAND_LINE';
  const fail = (error?: ErrorCode): void => {
    failed = true;
    if (error) code = error;
  };
  for (const token of flagTokens) {
    const flag = token[0];
    if (flag >= 127 || seen.has(flag)) return { code: 'KAI_META_DUPLICATE_FLAG', fatal: true };
    seen.add(flag);
    const argument = token.subarray(1);
    switch (String.fromCharCode(flag)) {
      case 'b': {
        const decoded = decodeBase64Key(keyToken);
        if (decoded) flags.key = decoded;
        else fail('KAI_META_KEY_NOT_BASE64');
        flags.keyBase64 = true;
        break;
      }
      case 'N':
      case 'T':
      case 'R': {
        const exptime = parseInt32(argument);
        if (exptime === undefined) fail('KAI_META_BAD_TOKEN');
        else if (flag === letter('N')) flags.vivifyExptime = exptime;
        else if (flag === letter('T')) flags.touchExptime = exptime;
        else flags.recacheExptime = exptime;
        break;
      }
      case 'v':
        flags.withValue = true;
        break;
      case 'u':
        flags.noBump = true;
        break;
      case 'q':
        flags.quiet = true;
        break;
      case 'F': {
        const clientFlags = parseUint32(argument);
        if (clientFlags === undefined) fail();
        else flags.clientFlags = clientFlags;
        break;
      }
      case 'C':
      case 'J':
      case 'D': {
        const [field, error] = uint64Flags[String.fromCharCode(flag) as 'C' | 'J' | 'D'];
        const number = parseUint64(argument);
        if (number === undefined) fail(error);
        else flags[field] = number;
        break;
      }
      case 'M':
        if (token.length !== 2) fail('KAI_META_MODE_LENGTH');
        else flags.mode = token[1];
        break;
      case 'I':
        flags.invalidate = true;
        break;
      default:
        if (!plainFlags.has(flag)) return { code: 'KAI_META_INVALID_FLAG', fatal: true };
    }
    if (flag === letter('O') && token.length > opaqueBytesMax) flags.opaqueTooLong = true;
  }
  return failed ? { code, fatal: false } : { flags };
}

function request(flags: ParsedFlags, flagTokens: readonly Buffer[]): MetaRequest {
  return {
    key: flags.key,
    keyBase64: flags.keyBase64,
    flags: flagTokens,
    quiet: flags.quiet,
    opaqueTooLong: flags.opaqueTooLong,
  };
}

/**
 * A meta command line, already tokenized; `count` is memcached's ntokens (tokens counted, at most
 * 23, plus its terminator). Undefined when the line is not a meta command.
 */
export function parseMetaLine(tokens: readonly Buffer[], count: number): MetaLineOutcome | undefined {
  const name = tokens[0];
  if (name.length !== 2 || name[0] !== letter('m')) return undefined;
  switch (String.fromCharCode(name[1])) {
    case 'g':
      return parseGet(tokens, count);
    case 's':
      return parseSet(tokens, count);
    case 'd':
      return parseDelete(tokens, count);
    case 'a':
      return parseArith(tokens, count);
    case 'n':
      return { kind: 'command', command: { op: 'meta_noop' } };
    case 'e':
      return parseDebug(tokens, count);
    default:
      return { kind: 'error', code: 'KAI_UNKNOWN_COMMAND' };
  }
}

/** The checks every keyed meta command starts with: a key, not too long, not too many tokens. */
function checkKeyAndCount(tokens: readonly Buffer[], count: number, tooManyFlags: ErrorCode): MetaLineOutcome | undefined {
  if (count < 3) return { kind: 'error', code: 'KAI_UNKNOWN_COMMAND' };
  if (tokens[1].length > keyBytesMax) return { kind: 'error', code: 'KAI_BAD_COMMAND_LINE' };
  if (count > metaTokensMax) return { kind: 'error', code: tooManyFlags };
  return undefined;
}

/** The counted tokens from `start`: memcached never reads past its 23rd. */
function flagTokensOf(tokens: readonly Buffer[], count: number, start: number): Buffer[] {
  return tokens.slice(start, count - 1);
}

/**
 * The start mg, md and ma share: the key and token count checked, then the flags read. md and ma
 * answer every flag error in the same words (`flagErrorsAs`); mg answers each in its own.
 */
function parseKeyed(
  tokens: readonly Buffer[],
  count: number,
  tooManyFlags: ErrorCode,
  flagErrorsAs?: ErrorCode,
): { readonly flags: ParsedFlags; readonly flagTokens: Buffer[] } | { readonly refused: MetaLineOutcome } {
  const refused = checkKeyAndCount(tokens, count, tooManyFlags);
  if (refused) return { refused };
  const flagTokens = flagTokensOf(tokens, count, 2);
  const parsed = preParse(tokens[1], flagTokens);
  if ('code' in parsed) return { refused: { kind: 'error', code: flagErrorsAs ?? parsed.code } };
  return { flags: parsed.flags, flagTokens };
}

function parseGet(tokens: readonly Buffer[], count: number): MetaLineOutcome {
  const keyed = parseKeyed(tokens, count, 'KAI_META_GET_TOO_MANY_FLAGS');
  if ('refused' in keyed) return keyed.refused;
  const { flags, flagTokens } = keyed;
  const get: MetaGetRequest = {
    ...request(flags, flagTokens),
    withValue: flags.withValue,
    noBump: flags.noBump,
    touchExptime: flags.touchExptime,
    vivifyExptime: flags.vivifyExptime,
    recacheExptime: flags.recacheExptime,
  };
  return { kind: 'command', command: { op: 'meta_get', request: get, noreply: false } };
}

const setModes: ReadonlyMap<number, MetaSetMode> = new Map([
  [letter('E'), 'add'],
  [letter('A'), 'append'],
  [letter('P'), 'prepend'],
  [letter('R'), 'replace'],
  [letter('S'), 'set'],
]);

function parseSet(tokens: readonly Buffer[], count: number): MetaLineOutcome {
  if (count < 3) return { kind: 'error', code: 'KAI_UNKNOWN_COMMAND' };
  if (tokens[1].length > keyBytesMax || count === 3) return { kind: 'error', code: 'KAI_BAD_COMMAND_LINE' };
  if (count > metaTokensMax) return { kind: 'error', code: 'KAI_META_TOO_MANY_FLAGS' };
  const valueBytes = parseInt32(tokens[2]);
  if (valueBytes === undefined || valueBytes < 0 || valueBytes > metaValueBytesMax) {
    return { kind: 'error', code: 'KAI_BAD_COMMAND_LINE' };
  }
  const blockBytes = valueBytes + 2;
  const flagTokens = flagTokensOf(tokens, count, 3);
  const parsed = preParse(tokens[1], flagTokens);
  if ('code' in parsed) return { kind: 'swallow', blockBytes, code: parsed.code };
  const { flags } = parsed;
  // memcached checks the mode after the opaque, and its words win.
  const mode = flags.mode === undefined ? 'set' : setModes.get(flags.mode);
  if (mode === undefined) return { kind: 'swallow', blockBytes, code: 'KAI_META_SET_MODE' };
  if (flags.opaqueTooLong) return { kind: 'swallow', blockBytes, code: 'KAI_META_OPAQUE_TOO_LONG' };
  const set: MetaSetRequest = {
    ...request(flags, flagTokens),
    mode,
    clientFlags: flags.clientFlags,
    exptime: flags.touchExptime ?? 0,
    compareCas: flags.compareCas,
    invalidate: flags.invalidate,
  };
  return { kind: 'meta_store', request: set, valueBytes };
}

function parseDelete(tokens: readonly Buffer[], count: number): MetaLineOutcome {
  const keyed = parseKeyed(tokens, count, 'KAI_META_TOO_MANY_FLAGS', 'KAI_META_INVALID_OR_DUPLICATE_FLAG');
  if ('refused' in keyed) return keyed.refused;
  const { flags, flagTokens } = keyed;
  if (flags.opaqueTooLong) return { kind: 'error', code: 'KAI_META_OPAQUE_TOO_LONG' };
  const remove: MetaDeleteRequest = {
    ...request(flags, flagTokens),
    compareCas: flags.compareCas,
    invalidate: flags.invalidate,
    exptime: flags.touchExptime,
  };
  return { kind: 'command', command: { op: 'meta_delete', request: remove, noreply: false } };
}

const incrModes: ReadonlyMap<number, boolean> = new Map([
  [letter('I'), true],
  [letter('+'), true],
  [letter('D'), false],
  [letter('-'), false],
]);

function parseArith(tokens: readonly Buffer[], count: number): MetaLineOutcome {
  const keyed = parseKeyed(tokens, count, 'KAI_META_TOO_MANY_FLAGS', 'KAI_META_INVALID_OR_DUPLICATE_FLAG');
  if ('refused' in keyed) return keyed.refused;
  const { flags, flagTokens } = keyed;
  const incr = flags.mode === undefined ? true : incrModes.get(flags.mode);
  if (incr === undefined) return { kind: 'error', code: 'KAI_META_ARITH_MODE' };
  const arith: MetaArithRequest = {
    ...request(flags, flagTokens),
    incr,
    delta: flags.delta ?? 1n,
    initial: flags.initial ?? 0n,
    vivifyExptime: flags.vivifyExptime,
    exptime: flags.touchExptime,
    compareCas: flags.compareCas,
    withValue: flags.withValue,
  };
  return { kind: 'command', command: { op: 'meta_arith', request: arith, noreply: false } };
}

const base64FlagToken = Buffer.from('b');

/** `me <key> [b]`: only a `b` right after the key is read; anything else is ignored. */
function parseDebug(tokens: readonly Buffer[], count: number): MetaLineOutcome {
  if (count < 3 || tokens[1].length > keyBytesMax) return { kind: 'error', code: 'KAI_BAD_COMMAND_LINE' };
  if (count >= 4 && tokens[2].equals(base64FlagToken)) {
    const key = decodeBase64Key(tokens[1]);
    if (!key) return { kind: 'error', code: 'KAI_BAD_COMMAND_LINE' };
    return { kind: 'command', command: { op: 'meta_debug', key, keyBase64: true } };
  }
  return { kind: 'command', command: { op: 'meta_debug', key: tokens[1], keyBase64: false } };
}
