// The meta command lines (mg, ms, md, ma, mn, me) parse into memcached 1.6.18's errors, in its order, and into their fields.
import type { MetaCommand, MetaRequest, MetaSetRequest } from '../../../src/protocol/meta-command';
import { parseCommandLine, type LineOutcome } from '../../../src/protocol/text/command-line';
import { TextDecoder, type TextEvent } from '../../../src/protocol/text/decoder';
import { metaTokensMax, opaqueBytesMax } from '../../../src/protocol/text/meta';

const eventsDrainedMax = 1000;
const longKey = 'k'.repeat(251);
const longestKey = 'k'.repeat(250);
const opaqueTooLong = `O${'x'.repeat(opaqueBytesMax)}`;
const opaqueLongest = `O${'x'.repeat(opaqueBytesMax - 1)}`;
/** Distinct flags every keyed meta command's pre-pass accepts, in a fixed order. */
const acceptedFlags = ['v', 'k', 's', 't', 'c', 'f', 'l', 'h', 'Oa', 'Pb', 'Lc', 'u', 'q', 'T1', 'N1', 'R1', 'F1', 'C1'];

function parse(line: string | Buffer): LineOutcome {
  return parseCommandLine(typeof line === 'string' ? Buffer.from(line, 'latin1') : line);
}

/** One line's outcome in a word: the error code, a swallow with its block, or the command's op. */
function outcome(line: string | Buffer): string {
  const parsed = parse(line);
  switch (parsed.kind) {
    case 'error':
      return parsed.code;
    case 'swallow':
      return `swallow ${parsed.blockBytes} ${parsed.code}`;
    case 'store':
      return parsed.header.meta ? `<meta_set ${parsed.header.valueBytes}>` : '<store>';
    case 'command':
      return `<${parsed.command.op}>`;
    case 'hangup':
      return `hangup ${parsed.code}`;
  }
}

function command(line: string): MetaCommand {
  const parsed = parse(line);
  if (parsed.kind !== 'command') throw new Error(`${line} parsed as ${parsed.kind}`);
  return parsed.command as MetaCommand;
}

function metaRequest<K extends MetaCommand['op']>(line: string, op: K): Extract<MetaCommand, { op: K }> {
  const parsed = command(line);
  if (parsed.op !== op) throw new Error(`${line} parsed as ${parsed.op}`);
  return parsed as Extract<MetaCommand, { op: K }>;
}

function setRequest(line: string): { request: MetaSetRequest; valueBytes: number } {
  const parsed = parse(line);
  if (parsed.kind !== 'store' || !parsed.header.meta) throw new Error(`${line} parsed as ${parsed.kind}`);
  return { request: parsed.header.meta, valueBytes: parsed.header.valueBytes };
}

const tokens = (...texts: string[]): Buffer[] => texts.map((text) => Buffer.from(text, 'latin1'));

/** The parts every meta request has, as the parser should fill them. */
function common(key: string | Buffer, flags: string[], fields: Partial<MetaRequest> = {}): MetaRequest {
  return {
    key: typeof key === 'string' ? Buffer.from(key, 'latin1') : key,
    keyBase64: false,
    flags: tokens(...flags),
    quiet: false,
    opaqueTooLong: false,
    ...fields,
  };
}

/** Decodes a whole stream: each event as its command's op or its error's reply line. */
function decodeStream(input: string): string[] {
  const decoder = new TextDecoder({ valueBytesMax: 1024 });
  decoder.push(Buffer.from(input, 'latin1'));
  const events: TextEvent[] = [];
  for (let count = 0; count < eventsDrainedMax; count++) {
    const event = decoder.next();
    if (!event) break;
    events.push(event);
  }
  return events.map((event) => (event.kind === 'command' ? `<${event.command.op}>` : event.error.textReply()));
}

describe('meta lines: arity and names', () => {
  // A keyed meta command without its key is memcached's ERROR; ms without a length and me without a key are bad lines.
  test.each([
    ['mg', 'KAI_UNKNOWN_COMMAND'],
    ['ms', 'KAI_UNKNOWN_COMMAND'],
    ['md', 'KAI_UNKNOWN_COMMAND'],
    ['ma', 'KAI_UNKNOWN_COMMAND'],
    ['ms k', 'KAI_BAD_COMMAND_LINE'],
    ['me', 'KAI_BAD_COMMAND_LINE'],
    ['mx k', 'KAI_UNKNOWN_COMMAND'],
    ['mgx k v', 'KAI_UNKNOWN_COMMAND'],
    ['mn', '<meta_noop>'],
    ['mn anything at all', '<meta_noop>'],
  ])('%s', (line, expected) => {
    expect(outcome(line)).toBe(expected);
  });
});

describe('meta lines: errors and their precedence', () => {
  // The key's length is checked before anything else about the line: flags and token counts come after.
  test('a key over 250 bytes is refused before flag errors', () => {
    for (const name of ['mg', 'md', 'ma']) {
      expect(outcome(`${name} ${longKey} v v`)).toBe('KAI_BAD_COMMAND_LINE');
      expect(outcome(`${name} ${longKey} !`)).toBe('KAI_BAD_COMMAND_LINE');
      expect(outcome(`${name} ${longKey} ${acceptedFlags.join(' ')} v`)).toBe('KAI_BAD_COMMAND_LINE');
      expect(outcome(`${name} ${longestKey} v v`)).not.toBe('KAI_BAD_COMMAND_LINE');
    }
    // ms is refused before its length is read, so nothing is swallowed.
    expect(outcome(`ms ${longKey} 3 v v`)).toBe('KAI_BAD_COMMAND_LINE');
    expect(outcome(`ms ${longestKey} 3 v v`)).toBe('swallow 5 KAI_META_DUPLICATE_FLAG');
    expect(outcome(`me ${longKey}`)).toBe('KAI_BAD_COMMAND_LINE');
    // The length counts before base64 decoding: the encoded token is what is measured.
    expect(outcome(`mg ${'QUJD'.repeat(63)} b`)).toBe('KAI_BAD_COMMAND_LINE');
  });

  // memcached counts at most 23 tokens and refuses a meta line of 20 or more before reading its flags.
  test('token count limits', () => {
    const flags = (count: number): string => acceptedFlags.slice(0, count).join(' ');
    // mg <key> and 17 flags is 19 tokens: the most memcached takes.
    expect(metaTokensMax).toBe(20);
    expect(outcome(`mg k ${flags(17)}`)).toBe('<meta_get>');
    expect(outcome(`mg k ${flags(18)}`)).toBe('KAI_META_GET_TOO_MANY_FLAGS');
    expect(outcome(`md k ${flags(17)}`)).toBe('<meta_delete>');
    expect(outcome(`md k ${flags(18)}`)).toBe('KAI_META_TOO_MANY_FLAGS');
    expect(outcome(`ma k ${flags(17)}`)).toBe('<meta_arith>');
    expect(outcome(`ma k ${flags(18)}`)).toBe('KAI_META_TOO_MANY_FLAGS');
    // ms's length is a token too; refused before the length is read, so nothing is swallowed.
    expect(outcome(`ms k 2 ${flags(16)}`)).toBe('<meta_set 2>');
    expect(outcome(`ms k 2 ${flags(17)}`)).toBe('KAI_META_TOO_MANY_FLAGS');
    // Too many tokens is found before a duplicate among them, however long the line.
    expect(outcome(`mg k v v ${flags(16)}`)).toBe('KAI_META_GET_TOO_MANY_FLAGS');
    expect(outcome(`mg k ${'v '.repeat(40)}`)).toBe('KAI_META_GET_TOO_MANY_FLAGS');
    // me reads only its key and an optional `b`: any number of tokens after them is ignored.
    expect(outcome(`me k ${flags(18)}`)).toBe('<meta_debug>');
  });

  // A repeated flag (or a byte above 126) and an unknown flag end the pre-pass at once: earlier bad tokens are forgotten.
  test('duplicate and invalid flags stop at once', () => {
    expect(outcome('mg k v v')).toBe('KAI_META_DUPLICATE_FLAG');
    expect(outcome('mg k T1 T2')).toBe('KAI_META_DUPLICATE_FLAG');
    expect(outcome('mg k !')).toBe('KAI_META_INVALID_FLAG');
    expect(outcome('mg k E')).toBe('KAI_META_INVALID_FLAG');
    expect(outcome(Buffer.concat([Buffer.from('mg k '), Buffer.from([0x7f])]))).toBe('KAI_META_DUPLICATE_FLAG');
    expect(outcome(Buffer.concat([Buffer.from('mg k '), Buffer.from([0xc3, 0xa9])]))).toBe('KAI_META_DUPLICATE_FLAG');
    // The first fatal one wins; what comes after is never read.
    expect(outcome('mg k ! v v')).toBe('KAI_META_INVALID_FLAG');
    expect(outcome('mg k v v !')).toBe('KAI_META_DUPLICATE_FLAG');
    // A bad token before it does not: the fatal error's words are answered.
    expect(outcome('mg k Tx v v')).toBe('KAI_META_DUPLICATE_FLAG');
    expect(outcome('mg k Tx !')).toBe('KAI_META_INVALID_FLAG');
    expect(outcome('mg k b !')).toBe('KAI_META_INVALID_FLAG');
  });

  // A bad token is remembered and the flags after it still read: the last bad token's words are the ones answered.
  test('the last bad token wins', () => {
    expect(outcome('mg k Tx')).toBe('KAI_META_BAD_TOKEN');
    expect(outcome('mg k Nx')).toBe('KAI_META_BAD_TOKEN');
    expect(outcome('mg k R')).toBe('KAI_META_BAD_TOKEN');
    expect(outcome('mg k b')).toBe('KAI_META_KEY_NOT_BASE64');
    expect(outcome('mg k Tx b')).toBe('KAI_META_KEY_NOT_BASE64');
    expect(outcome('mg k b Tx')).toBe('KAI_META_BAD_TOKEN');
    expect(outcome('mg k MXY')).toBe('KAI_META_MODE_LENGTH');
    expect(outcome('mg k MXY Dx')).toBe('KAI_META_INVALID_DELTA');
    expect(outcome('mg k Dx MXY')).toBe('KAI_META_MODE_LENGTH');
    expect(outcome('mg k Cx Jx')).toBe('KAI_META_INVALID_INITIAL');
    expect(outcome('mg k Jx Cx')).toBe('KAI_META_BAD_TOKEN');
    // A bad F has no words of its own: it keeps those of an earlier bad token, or the generic ones.
    expect(outcome('mg k Fx')).toBe('KAI_BAD_COMMAND_LINE');
    expect(outcome('mg k Tx Fx')).toBe('KAI_META_BAD_TOKEN');
    expect(outcome('mg k Fx Tx')).toBe('KAI_META_BAD_TOKEN');
    expect(outcome('mg k F-1')).toBe('KAI_BAD_COMMAND_LINE');
    // C, D and J are unsigned 64-bit numbers.
    expect(outcome('mg k C-1')).toBe('KAI_META_BAD_TOKEN');
    expect(outcome('mg k D18446744073709551616')).toBe('KAI_META_INVALID_DELTA');
    expect(outcome('mg k D18446744073709551615')).toBe('<meta_get>');
  });

  // ms swallows its data block for any error found once its length is known, and for none found before.
  test('ms swallows its block after the length is known, not before', () => {
    expect(outcome('ms k 3 v v')).toBe('swallow 5 KAI_META_DUPLICATE_FLAG');
    expect(outcome('ms k 3 !')).toBe('swallow 5 KAI_META_INVALID_FLAG');
    expect(outcome('ms k 3 Tx')).toBe('swallow 5 KAI_META_BAD_TOKEN');
    expect(outcome('ms k 3 b')).toBe('swallow 5 KAI_META_KEY_NOT_BASE64');
    expect(outcome('ms k 0 Fx')).toBe('swallow 2 KAI_BAD_COMMAND_LINE');
    expect(outcome('ms k 3 Mxy')).toBe('swallow 5 KAI_META_MODE_LENGTH');
    // Before the length: a bad or out-of-range length, too many tokens, a long key.
    expect(outcome('ms k x v v')).toBe('KAI_BAD_COMMAND_LINE');
    expect(outcome('ms k -1 v')).toBe('KAI_BAD_COMMAND_LINE');
    expect(outcome('ms k 2147483646')).toBe('KAI_BAD_COMMAND_LINE');
    expect(outcome('ms k 2147483645')).toBe('<meta_set 2147483645>');
    // On the stream: a swallowed block is gone, a block not swallowed is read as the next command.
    expect(decodeStream('ms k 3 v v\r\nabc\r\nmn\r\n')).toEqual(['CLIENT_ERROR duplicate flag', '<meta_noop>']);
    // Exactly length + 2 bytes go, whatever they hold: here a line that would have been a command.
    expect(decodeStream('ms k 2 MZ\r\nmn\r\nmn\r\n')).toEqual(['CLIENT_ERROR invalid mode for ms M token', '<meta_noop>']);
    expect(decodeStream('ms k x v\r\nabc\r\nmn\r\n')).toEqual(['CLIENT_ERROR bad command line format', 'ERROR', '<meta_noop>']);
    expect(decodeStream(`ms ${longKey} 3\r\nabc\r\nmn\r\n`)).toEqual(['CLIENT_ERROR bad command line format', 'ERROR', '<meta_noop>']);
  });

  // memcached checks the opaque before the mode and overwrites its words, so a bad mode is answered over a long opaque.
  test('an ms mode error beats an opaque error', () => {
    expect(outcome(`ms k 1 MX ${opaqueTooLong}`)).toBe('swallow 3 KAI_META_SET_MODE');
    expect(outcome(`ms k 1 ${opaqueTooLong} MX`)).toBe('swallow 3 KAI_META_SET_MODE');
    expect(outcome(`ms k 1 ${opaqueTooLong}`)).toBe('swallow 3 KAI_META_OPAQUE_TOO_LONG');
    expect(outcome(`ms k 1 ${opaqueLongest}`)).toBe('<meta_set 1>');
    expect(outcome('ms k 1 Ms')).toBe('swallow 3 KAI_META_SET_MODE');
    // A pre-pass error comes before both.
    expect(outcome(`ms k 1 MX ${opaqueTooLong} Tx`)).toBe('swallow 3 KAI_META_BAD_TOKEN');
  });

  // md and ma answer every pre-pass error in one set of words, whatever the flag did wrong.
  test('md and ma say invalid or duplicate flag', () => {
    for (const name of ['md', 'ma']) {
      for (const flags of ['v v', '!', 'Tx', 'b', 'Fx', 'Cx', 'MXY', 'Dx', 'Jx']) {
        expect([name, flags, outcome(`${name} k ${flags}`)]).toEqual([name, flags, 'KAI_META_INVALID_OR_DUPLICATE_FLAG']);
      }
    }
    expect(outcome('ma k MX')).toBe('KAI_META_ARITH_MODE');
    expect(outcome('ma k MX Tx')).toBe('KAI_META_INVALID_OR_DUPLICATE_FLAG');
  });

  // md refuses a long opaque as it parses; mg and ma find it only while answering, so the line parses and says so.
  test('an opaque over 32 bytes', () => {
    expect(outcome(`md k ${opaqueTooLong}`)).toBe('KAI_META_OPAQUE_TOO_LONG');
    expect(outcome(`md k ${opaqueLongest}`)).toBe('<meta_delete>');
    expect(metaRequest(`mg k ${opaqueTooLong}`, 'meta_get').request.opaqueTooLong).toBe(true);
    expect(metaRequest(`mg k ${opaqueLongest}`, 'meta_get').request.opaqueTooLong).toBe(false);
    expect(metaRequest(`ma k ${opaqueTooLong}`, 'meta_arith').request.opaqueTooLong).toBe(true);
    // An md mode token means nothing to md, but a long opaque still does.
    expect(outcome(`md k MX ${opaqueTooLong}`)).toBe('KAI_META_OPAQUE_TOO_LONG');
  });

  // me decodes a base64 key only with a lone `b` right after it, and answers a bad one as a bad line.
  test('me', () => {
    expect(metaRequest('me k', 'meta_debug')).toEqual({ op: 'meta_debug', key: Buffer.from('k'), keyBase64: false });
    expect(metaRequest('me QUJD b', 'meta_debug')).toEqual({ op: 'meta_debug', key: Buffer.from('ABC'), keyBase64: true });
    expect(metaRequest('me QUJD x b', 'meta_debug')).toEqual({ op: 'meta_debug', key: Buffer.from('QUJD'), keyBase64: false });
    expect(metaRequest('me QUJD bb', 'meta_debug')).toEqual({ op: 'meta_debug', key: Buffer.from('QUJD'), keyBase64: false });
    expect(outcome('me !! b')).toBe('KAI_BAD_COMMAND_LINE');
    expect(outcome('me QUJ b')).toBe('KAI_BAD_COMMAND_LINE');
  });
});

describe('meta lines: the parsed fields', () => {
  // mg keeps every flag token in order, decodes a base64 key, and reads T, N and R as exptimes.
  test('mg', () => {
    const flags = ['b', 'v', 'u', 'q', 'T30', 'N-1', 'R5', 'k', 'Oxyz', 'Pignored', 'L'];
    expect(metaRequest(`mg Zm9v ${flags.join(' ')}`, 'meta_get')).toEqual({
      op: 'meta_get',
      request: {
        ...common('foo', flags, { keyBase64: true, quiet: true }),
        withValue: true,
        noBump: true,
        touchExptime: 30,
        vivifyExptime: -1,
        recacheExptime: 5,
      },
      noreply: false,
    });
    expect(metaRequest('mg k', 'meta_get').request).toEqual({
      ...common('k', []),
      withValue: false,
      noBump: false,
      touchExptime: undefined,
      vivifyExptime: undefined,
      recacheExptime: undefined,
    });
  });

  // ms reads its mode, client flags, TTL, compare cas and invalidation, with set, 0, never and none by default.
  test('ms', () => {
    const flags = ['MA', 'F42', 'T-1', 'C99', 'I', 'q', 'b'];
    expect(setRequest(`ms QUJD 5 ${flags.join(' ')}`)).toEqual({
      request: {
        ...common('ABC', flags, { keyBase64: true, quiet: true }),
        mode: 'append',
        clientFlags: 42,
        exptime: -1,
        compareCas: 99n,
        invalidate: true,
      },
      valueBytes: 5,
    });
    expect(setRequest('ms k 0')).toEqual({
      request: { ...common('k', []), mode: 'set', clientFlags: 0, exptime: 0, compareCas: undefined, invalidate: false },
      valueBytes: 0,
    });
    const modes = Object.fromEntries(['E', 'A', 'P', 'R', 'S'].map((mode) => [mode, setRequest(`ms k 1 M${mode}`).request.mode]));
    expect(modes).toEqual({ E: 'add', A: 'append', P: 'prepend', R: 'replace', S: 'set' });
    expect(setRequest('ms k 1 F4294967295').request.clientFlags).toBe(0xffffffff);
  });

  // md reads its compare cas, invalidation and the stale item's new TTL.
  test('md', () => {
    expect(metaRequest('md k C5 I T30 q', 'meta_delete').request).toEqual({
      ...common('k', ['C5', 'I', 'T30', 'q'], { quiet: true }),
      compareCas: 5n,
      invalidate: true,
      exptime: 30,
    });
    expect(metaRequest('md k', 'meta_delete').request).toEqual({
      ...common('k', []),
      compareCas: undefined,
      invalidate: false,
      exptime: undefined,
    });
  });

  // ma reads its mode, delta, initial value, vivify and new TTLs and compare cas, incrementing by 1 from 0 by default.
  test('ma', () => {
    const flags = ['MD', 'D18446744073709551615', 'J7', 'N60', 'T30', 'C3', 'v'];
    expect(metaRequest(`ma k ${flags.join(' ')}`, 'meta_arith').request).toEqual({
      ...common('k', flags),
      incr: false,
      delta: 2n ** 64n - 1n,
      initial: 7n,
      vivifyExptime: 60,
      exptime: 30,
      compareCas: 3n,
      withValue: true,
    });
    expect(metaRequest('ma k', 'meta_arith').request).toEqual({
      ...common('k', []),
      incr: true,
      delta: 1n,
      initial: 0n,
      vivifyExptime: undefined,
      exptime: undefined,
      compareCas: undefined,
      withValue: false,
    });
    const modes = Object.fromEntries(['I', '+', 'D', '-'].map((mode) => [mode, metaRequest(`ma k M${mode}`, 'meta_arith').request.incr]));
    expect(modes).toEqual({ I: true, '+': true, D: false, '-': false });
  });

  // The flags kept are the counted tokens only: memcached never reads past its 23rd token.
  test('flag tokens are the counted ones', () => {
    const request = metaRequest(`mg k ${acceptedFlags.slice(0, 17).join(' ')}`, 'meta_get').request;
    expect(request.flags).toEqual(tokens(...acceptedFlags.slice(0, 17)));
  });
});
