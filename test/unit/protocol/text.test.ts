import { KaiError } from '../../../src/errors';
import type { Command, Reply } from '../../../src/protocol/command';
import { ChunkList } from '../../../src/protocol/chunk-list';
import {
  TextDecoder,
  lineBytesMax,
  lineBytesWithoutNewlineMax,
  multigetLineBytesMaxDefault,
  type TextDecoderLimits,
  type TextEvent,
} from '../../../src/protocol/text/decoder';
import { encodeError, encodeReply, isNoreply } from '../../../src/protocol/text/encoder';
import { parseInt32, parseUint32, parseUint64 } from '../../../src/protocol/text/numbers';

const limits: TextDecoderLimits = { valueBytesMax: 1024 };
const eventsDrainedMax = 100_000;

/** A value comparable with toEqual and readable in a failure: Buffers as text, bigints as strings. */
function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof KaiError) return value.textReply();
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, plain(field)]));
  }
  return value;
}

function drain(decoder: TextDecoder): TextEvent[] {
  const events: TextEvent[] = [];
  for (let count = 0; count < eventsDrainedMax; count++) {
    const event = decoder.next();
    if (!event) return events;
    events.push(event);
  }
  throw new Error('decoder produced too many events');
}

/** Decodes `chunks` pushed one after another, draining events after each push. */
function decode(chunks: ReadonlyArray<string | Buffer>, decoderLimits = limits): unknown[] {
  const decoder = new TextDecoder(decoderLimits);
  const events: TextEvent[] = [];
  for (const chunk of chunks) {
    decoder.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    events.push(...drain(decoder));
  }
  return plain(events) as unknown[];
}

function commandsOf(input: string): unknown[] {
  return decode([input]).map((event) => (event as { command?: unknown; error?: unknown }).command ?? event);
}

/** The reply lines the errors in `input` produce, in order; commands show as their op. */
function outline(input: string | Buffer, decoderLimits = limits): string[] {
  return decode([input], decoderLimits).map((event) => {
    const typed = event as { kind: string; error?: string; close?: boolean; command?: { op: string } };
    if (typed.kind === 'error') return typed.close ? `${typed.error} +close` : String(typed.error);
    return `<${typed.command?.op}>`;
  });
}

describe('text decoder: well-formed commands', () => {
  // Every retrieval command decodes with all its keys, exptime and cas choice.
  test('get, gets, bget, gat and gats', () => {
    expect(commandsOf('get a\r\ngets a b c\r\nbget z\r\ngat 10 a b\r\ngats -1 k\r\n')).toEqual([
      { op: 'get', keys: ['a'], withCas: false },
      { op: 'get', keys: ['a', 'b', 'c'], withCas: true },
      { op: 'get', keys: ['z'], withCas: false },
      { op: 'gat', keys: ['a', 'b'], exptime: 10, withCas: false },
      { op: 'gat', keys: ['k'], exptime: -1, withCas: true },
    ]);
  });

  // Every storage mode decodes its header and binary-safe data block, noreply included.
  test('set, add, replace, append, prepend and cas', () => {
    const input =
      'set k 1 2 3\r\na\r\n\r\n' +
      'add k 4294967295 0 0\r\n\r\n' +
      'replace k 0 0 1 noreply\r\nx\r\n' +
      'append k 0 0 1\r\ny\r\n' +
      'prepend k 0 0 1\r\nz\r\n' +
      'cas k 0 0 1 18446744073709551615 noreply\r\nw\r\n';
    const store = (mode: string, flags: number, exptime: number, value: string, cas: string, noreply: boolean) => ({
      op: 'store',
      mode,
      key: 'k',
      flags,
      exptime,
      value,
      casUnique: cas,
      noreply,
    });
    expect(commandsOf(input)).toEqual([
      store('set', 1, 2, 'a\r\n', '0n', false),
      store('add', 4294967295, 0, '', '0n', false),
      store('replace', 0, 0, 'x', '0n', true),
      store('append', 0, 0, 'y', '0n', false),
      store('prepend', 0, 0, 'z', '0n', false),
      store('cas', 0, 0, 'w', '18446744073709551615n', true),
    ]);
  });

  // delete, incr/decr, touch, flush_all, verbosity, version, stats and quit decode with their options.
  test('the other commands', () => {
    const input =
      'delete a\r\ndelete a noreply\r\ndelete a 0\r\ndelete a 0 noreply\r\n' +
      'incr n 18446744073709551615\r\ndecr n 1 noreply\r\n' +
      'touch t 100\r\ntouch t 0 noreply\r\n' +
      'flush_all\r\nflush_all 30\r\nflush_all noreply\r\nflush_all 5 noreply\r\nflush_all -3\r\n' +
      'verbosity 1\r\nverbosity 2 noreply\r\nversion\r\nstats\r\nstats slabs\r\nquit\r\n';
    expect(commandsOf(input)).toEqual([
      { op: 'delete', key: 'a', casUnique: '0n', noreply: false },
      { op: 'delete', key: 'a', casUnique: '0n', noreply: true },
      { op: 'delete', key: 'a', casUnique: '0n', noreply: false },
      { op: 'delete', key: 'a', casUnique: '0n', noreply: true },
      { op: 'arith', incr: true, key: 'n', delta: '18446744073709551615n', casUnique: '0n', noreply: false },
      { op: 'arith', incr: false, key: 'n', delta: '1n', casUnique: '0n', noreply: true },
      { op: 'touch', key: 't', exptime: 100, noreply: false },
      { op: 'touch', key: 't', exptime: 0, noreply: true },
      { op: 'flush_all', delaySeconds: 0, noreply: false },
      { op: 'flush_all', delaySeconds: 30, noreply: false },
      { op: 'flush_all', delaySeconds: 0, noreply: true },
      { op: 'flush_all', delaySeconds: 5, noreply: true },
      { op: 'flush_all', delaySeconds: 0, noreply: false },
      { op: 'verbosity', level: 1, noreply: false },
      { op: 'verbosity', level: 2, noreply: true },
      { op: 'version' },
      { op: 'stats', group: '' },
      { op: 'stats', group: 'slabs' },
      { op: 'quit' },
    ]);
  });

  // Bare "\n" ends a line like CRLF; only one CR is dropped; a NUL cuts the line; extra spaces are ignored.
  test('line endings, spacing and NUL as memcached reads them', () => {
    expect(commandsOf('get a\nget b\r\r\n  get   c  d  \r\nget e\0 f\r\n')).toEqual([
      { op: 'get', keys: ['a'], withCas: false },
      { op: 'get', keys: ['b\r'], withCas: false },
      { op: 'get', keys: ['c', 'd'], withCas: false },
      { op: 'get', keys: ['e'], withCas: false },
    ]);
    // A header may end in a bare newline, the data block may not.
    expect(outline('set a 0 0 1\nx\r\nset a 0 0 1\nx\nget q\n')).toEqual([
      '<store>',
      'CLIENT_ERROR bad data chunk',
      'ERROR',
    ]);
  });

  // Keys are any bytes but space and newline, up to 250 of them; tabs and control bytes included.
  test('key bytes and key length', () => {
    const key250 = 'k'.repeat(250);
    expect(commandsOf(`get ${key250} a\tb \x01\xff\r\n`)).toEqual([
      { op: 'get', keys: [key250, 'a\tb', '\x01\xff'], withCas: false },
    ]);
    const key251 = 'k'.repeat(251);
    expect(outline(`get a ${key251}\r\nset ${key251} 0 0 1\r\nx\r\ndelete ${key251}\r\nincr ${key251} 1\r\n`)).toEqual([
      'CLIENT_ERROR bad command line format',
      'CLIENT_ERROR bad command line format',
      'ERROR',
      'CLIENT_ERROR bad command line format',
      'CLIENT_ERROR bad command line format',
    ]);
  });

  // A multiget keeps every key, well past memcached's 24-token window.
  test('multiget with many keys', () => {
    const keys = Array.from({ length: 100 }, (_, index) => `key${index}`);
    expect(commandsOf(`get ${keys.join(' ')}\r\n`)).toEqual([{ op: 'get', keys, withCas: false }]);
  });
});

describe('text decoder: malformed input gives memcached 1.6 replies', () => {
  // Each case was checked against memcached 1.6.18; a data line after a rejected header is read as a command.
  test.each<[string, string, string[]]>([
    ['empty line', '\r\n', ['ERROR']],
    ['bare newline', '\n', ['ERROR']],
    ['unknown command', 'foo bar\r\n', ['ERROR']],
    ['commands are case-sensitive', 'GET a\r\n', ['ERROR']],
    ['tab is not a separator', 'get\ta\r\n', ['ERROR']],
    ['meta commands are decoded', 'mn\r\nmg a v\r\nms a 1\r\nx\r\nmx a\r\n', ['<meta_noop>', '<meta_get>', '<meta_set>', 'ERROR']],
    ['get without key', 'get\r\nget \r\ngets\r\n', ['ERROR', 'ERROR', 'ERROR']],
    ['gat without exptime', 'gat\r\n', ['ERROR']],
    ['gat with only an exptime answers END', 'gat 10\r\n', ['<gat>']],
    ['gat with bad exptime', 'gat x a\r\n', ['CLIENT_ERROR invalid exptime argument']],
    ['set with too few tokens', 'set a 0 0\r\nx\r\n', ['ERROR', 'ERROR']],
    ['set with too many tokens', 'set a 0 0 1 noreply extra\r\nx\r\n', ['ERROR', 'ERROR']],
    ['set with a stray seventh token stores', 'set a 0 0 1 2\r\nx\r\n', ['<store>']],
    ['set with 30 tokens', `set a 0 0 1 ${'x '.repeat(25)}\r\nx\r\n`, ['ERROR', 'ERROR']],
    ['bad flags', 'set a x 0 1\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['negative flags', 'set a -1 0 1\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['bad exptime', 'set a 0 x 1\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['exptime beyond 64 bits', 'set a 0 99999999999999999999 1\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['negative length', 'set a 0 0 -1\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['length with junk', 'set a 0 0 1x\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['length 2^31 wraps negative', 'set a 0 0 2147483648\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['length above INT_MAX - 2', 'set a 0 0 2147483646\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['cas without unique', 'cas a 0 0 1\r\nx\r\n', ['ERROR', 'ERROR']],
    ['cas with bad unique', 'cas a 0 0 1 x\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['cas with negative unique', 'cas a 0 0 1 -1\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['cas unique of 2^64', 'cas a 0 0 1 18446744073709551616\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
    ['data block too long', 'set a 0 0 1\r\nxy\r\nget a\r\n', ['CLIENT_ERROR bad data chunk', 'ERROR', '<get>']],
    ['data block too short', 'set a 0 0 3\r\nx\r\nget a\r\n', ['CLIENT_ERROR bad data chunk', 'ERROR']],
    ['parsing resumes right after a bad block', 'set a 0 0 1\r\nxyzget a\r\n', ['CLIENT_ERROR bad data chunk', '<get>']],
    ['bad block with noreply is silent', 'set a 0 0 1 noreply\r\nxyz\r\n', ['ERROR']],
    ['delete without key', 'delete\r\n', ['ERROR']],
    ['delete with nonzero hold', 'delete a 1\r\n', ['CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]']],
    ['delete with word', 'delete a b\r\n', ['CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]']],
    ['delete with too many tokens', 'delete a 0 noreply x\r\n', ['ERROR']],
    ['bad delete with noreply is silent', 'delete a 1 noreply\r\n', []],
    ['incr arity', 'incr\r\nincr a\r\nincr a 1 2 3\r\n', ['ERROR', 'ERROR', 'ERROR']],
    ['incr stray token is ignored', 'incr a 1 2\r\n', ['<arith>']],
    ['incr negative delta', 'incr a -1\r\n', ['CLIENT_ERROR invalid numeric delta argument']],
    ['decr delta not a number', 'decr a x\r\n', ['CLIENT_ERROR invalid numeric delta argument']],
    ['incr delta of 2^64', 'incr a 18446744073709551616\r\n', ['CLIENT_ERROR invalid numeric delta argument']],
    ['bad delta with noreply is silent', 'incr a x noreply\r\n', []],
    ['touch arity', 'touch a\r\n', ['ERROR']],
    ['touch bad exptime', 'touch a x\r\n', ['CLIENT_ERROR invalid exptime argument']],
    ['touch bad exptime with noreply', 'touch a x noreply\r\n', []],
    ['flush_all bad delay', 'flush_all x\r\n', ['CLIENT_ERROR invalid exptime argument']],
    ['flush_all noreply first', 'flush_all noreply 5\r\n', ['CLIENT_ERROR invalid exptime argument']],
    ['flush_all bad delay with noreply', 'flush_all x noreply\r\n', []],
    ['flush_all too many tokens', 'flush_all 1 2 3\r\n', ['ERROR']],
    ['verbosity arity', 'verbosity\r\nverbosity 1 2 3\r\n', ['ERROR', 'ERROR']],
    ['verbosity not a number', 'verbosity x\r\n', ['CLIENT_ERROR bad command line format']],
    ['verbosity noreply alone is silent', 'verbosity noreply\r\n', []],
    ['noreply as the length silences the error', 'set a 0 0 noreply\r\nx\r\n', ['ERROR']],
    ['noreply only counts last', 'set a noreply 0 1\r\nx\r\n', ['CLIENT_ERROR bad command line format', 'ERROR']],
  ])('%s', (_name, input, expected) => {
    expect(outline(input)).toEqual(expected);
  });

  // quit ends decoding: nothing after it is read.
  test('quit stops the stream', () => {
    expect(outline('get a\r\nquit\r\nget b\r\n')).toEqual(['<get>', '<quit>']);
    expect(outline('quit now\r\n')).toEqual(['<quit>']);
  });
});

describe('text decoder: numbers as memcached parses them', () => {
  const token = (text: string) => Buffer.from(text, 'latin1');

  // Flags are parsed as 64 bits and truncated to 32, negative values refused.
  test('uint32 fields', () => {
    expect(parseUint32(token('4294967295'))).toBe(4294967295);
    expect(parseUint32(token('4294967296'))).toBe(0);
    expect(parseUint32(token('18446744073709551615'))).toBe(4294967295);
    expect(parseUint32(token('+5'))).toBe(5);
    expect(parseUint32(token('007'))).toBe(7);
    expect(parseUint32(token('1\t'))).toBe(1);
    expect(parseUint32(token('-0'))).toBe(0);
    for (const bad of ['-1', 'x', '', '1x', '+', '18446744073709551616', '0x10']) {
      expect(parseUint32(token(bad))).toBeUndefined();
    }
  });

  // Exptimes and lengths are parsed as 64-bit longs and truncated to int32.
  test('int32 fields', () => {
    expect(parseInt32(token('-1'))).toBe(-1);
    expect(parseInt32(token('2147483647'))).toBe(2147483647);
    expect(parseInt32(token('2147483648'))).toBe(-2147483648);
    expect(parseInt32(token('4294967297'))).toBe(1);
    expect(parseInt32(token('9223372036854775807'))).toBe(-1);
    expect(parseInt32(token('9223372036854775808'))).toBeUndefined();
    expect(parseInt32(token('\t12'))).toBe(12);
  });

  // cas uniques and deltas use the full unsigned 64-bit range.
  test('uint64 fields', () => {
    expect(parseUint64(token('18446744073709551615'))).toBe(18446744073709551615n);
    expect(parseUint64(token('18446744073709551616'))).toBeUndefined();
    expect(parseUint64(token('-1'))).toBeUndefined();
    expect(parseUint64(token(`${'0'.repeat(100)}42`))).toBe(42n);
    expect(parseUint64(token('9'.repeat(10_000)))).toBeUndefined();
    // strtoull negates modulo 2^64; a small result has no sign bit, so memcached keeps it.
    expect(parseUint64(token('-18446744073709551615'))).toBe(1n);
  });
});

/** A stream using every command, every framing case and several errors, all lines under 2048 bytes. */
function mixedStream(): Buffer {
  return Buffer.concat([
    Buffer.from('set k 5 0 6\r\nab\r\ncd\r\nget k other\r\ngets k\r\n', 'latin1'),
    Buffer.from('add k 0 0 0\r\n\r\nappend k 0 0 3 noreply\r\n\x00\xff\n\r\ncas k 1 2 1 99\r\nx\r\n'),
    Buffer.from('incr n 7\ndecr n 18446744073709551615 noreply\r\ntouch k 10\r\ngat 5 k\r\ngats 0 k j\r\n'),
    Buffer.from('delete k\r\ndelete k 0 noreply\r\nflush_all 10\r\nverbosity 1\r\nversion\r\nstats\r\n'),
    Buffer.from('bogus\r\n\r\nset a 0 0 1\r\nxyz\r\nset a 0 0 -1\r\nincr a x\r\n'),
    Buffer.from(`set big 0 0 2000\r\n${'v'.repeat(2000)}\r\nget ${'g'.repeat(250)}\r\n`),
    Buffer.from('set b 0 0 3\r\nb\r\n\r\nquit\r\nget never\r\n'),
  ]);
}

describe('text decoder: chunking does not change the events', () => {
  // Splitting the stream into two pieces at any byte gives the same events as the whole.
  test('split at every byte position', () => {
    const stream = mixedStream();
    const whole = decode([stream]);
    expect(whole.length).toBeGreaterThan(25);
    for (let at = 0; at <= stream.length; at++) {
      expect(decode([stream.subarray(0, at), stream.subarray(at)])).toEqual(whole);
    }
  });

  // One byte at a time gives the same events as the whole.
  test('one byte at a time', () => {
    const stream = mixedStream();
    const pieces = Array.from(stream, (_, index) => stream.subarray(index, index + 1));
    expect(decode(pieces)).toEqual(decode([stream]));
  });

  // Random splits into many pieces (seeded, printed) give the same events as the whole.
  test('random multi-way splits', () => {
    const stream = mixedStream();
    const whole = decode([stream]);
    let seed = 0x5eed;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let round = 0; round < 200; round++) {
      const pieces: Buffer[] = [];
      let at = 0;
      while (at < stream.length) {
        const size = 1 + Math.floor(random() * 700);
        pieces.push(stream.subarray(at, at + size));
        at += size;
      }
      expect(decode(pieces)).toEqual(whole);
    }
  });
});

describe('text decoder: limits', () => {
  // A value over the limit is refused at once without buffering, and answered only once its block is swallowed.
  test('value too large is swallowed, then answered', () => {
    const decoder = new TextDecoder({ valueBytesMax: 10 });
    decoder.push(Buffer.from('set k 0 0 11\r\n'));
    expect(plain(drain(decoder))).toEqual([{ kind: 'command', command: { op: 'refuse_store', key: 'k', removeOld: true, noreply: true } }]);
    decoder.push(Buffer.from('0123456'));
    expect(drain(decoder)).toEqual([]);
    expect(decoder.bufferedBytes()).toBe(0);
    // The swallowed block's CRLF is not checked: memcached discards exactly length + 2 bytes.
    decoder.push(Buffer.from('789aXYget k\r\n'));
    expect(plain(drain(decoder))).toEqual([
      { kind: 'error', error: 'SERVER_ERROR object too large for cache', close: false },
      { kind: 'command', command: { op: 'get', keys: ['k'], withCas: false } },
    ]);
    expect(outline('set k 0 0 10\r\n0123456789\r\n', { valueBytesMax: 10 })).toEqual(['<store>']);
    expect(outline('add k 0 0 11\r\n01234567890\r\n', { valueBytesMax: 10 })).toEqual([
      '<refuse_store>',
      'SERVER_ERROR object too large for cache',
    ]);
    expect(decode(['add k 0 0 11\r\n'], { valueBytesMax: 10 })).toEqual([
      { kind: 'command', command: { op: 'refuse_store', key: 'k', removeOld: false, noreply: true } },
    ]);
    expect(outline('set k 0 0 11 noreply\r\n01234567890\r\nversion\r\n', { valueBytesMax: 10 })).toEqual([
      '<refuse_store>',
      '<version>',
    ]);
  });

  // A non-get line without newline past 2048 bytes closes the connection; shorter ones wait.
  test('over-long line without newline closes', () => {
    const decoder = new TextDecoder(limits);
    decoder.push(Buffer.from(`set ${'k'.repeat(lineBytesWithoutNewlineMax - 4)}`));
    expect(decoder.next()).toBeUndefined();
    decoder.push(Buffer.from('k'));
    expect(plain(decoder.next())).toEqual({ kind: 'error', error: 'CLIENT_ERROR line too long', close: true });
    decoder.push(Buffer.from('\r\nversion\r\n'));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.bufferedBytes()).toBe(0);
  });

  // A get or gets line may grow past 2048 bytes (after up to 100 spaces), up to the multiget cap.
  test('long multiget lines wait, up to their cap', () => {
    const capped: TextDecoderLimits = { valueBytesMax: 1024, multigetLineBytesMax: 8000 };
    const keys = 'key '.repeat(1500);
    expect(outline(Buffer.concat([Buffer.from(`get ${keys}`)]), capped)).toEqual([]);
    expect(outline(`${' '.repeat(100)}gets ${keys}`, capped)).toEqual([]);
    expect(outline(`${' '.repeat(101)}get ${keys}`, capped)).toEqual(['CLIENT_ERROR line too long +close']);
    expect(outline(`gat 0 ${keys}`, capped)).toEqual(['CLIENT_ERROR line too long +close']);
    expect(outline(`get ${keys}\r\n`, capped)).toEqual(['<get>']);
    expect(outline(`get ${keys}${keys}`, capped)).toEqual(['CLIENT_ERROR line too long +close']);
  });

  // A complete line is read whatever its length up to memcached's 16 KiB read buffer, as memcached does.
  test('complete long lines', () => {
    expect(outline(`set ${'k'.repeat(3000)} 0 0 1\r\nx\r\n`)).toEqual(['CLIENT_ERROR bad command line format', 'ERROR']);
    expect(outline(`set ${'k'.repeat(lineBytesMax)} 0 0 1\r\nx\r\n`)).toEqual(['CLIENT_ERROR line too long +close']);
  });

  // A storage line announces its block: the decoder says how many bytes it awaits before they arrive.
  test('bytes awaited by a storage command', () => {
    const decoder = new TextDecoder({ valueBytesMax: 1000 });
    expect(decoder.awaitedBytes()).toBe(0);
    decoder.push(Buffer.from('set k 0 0 500\r\nabc'));
    expect(decoder.next()).toBeUndefined();
    expect(decoder.awaitedBytes()).toBe(502);
    decoder.push(Buffer.from(`${'x'.repeat(497)}\r\n`));
    expect(decoder.next()?.kind).toBe('command');
    expect(decoder.awaitedBytes()).toBe(0);
    // An over-limit block is swallowed as it comes, so nothing is awaited for it.
    decoder.push(Buffer.from('set k 0 0 5000\r\n'));
    decoder.next();
    expect(decoder.awaitedBytes()).toBe(0);
    expect(decoder.heldBytesMax()).toBe(multigetLineBytesMaxDefault + 1);
    decoder.release();
    expect(decoder.bufferedBytes()).toBe(0);
  });

  // A long line trickling in byte by byte is scanned once, not once per byte.
  test('trickled multiget line decodes in linear time', () => {
    const decoder = new TextDecoder({ valueBytesMax: 1024 });
    const line = Buffer.from(`get ${'abcdefghi '.repeat(20_000)}\r\n`);
    const startedMs = Date.now();
    let early = 0;
    for (let index = 0; index < line.length - 1; index++) {
      decoder.push(line.subarray(index, index + 1));
      if (decoder.next() !== undefined) early++;
    }
    decoder.push(line.subarray(line.length - 1));
    const event = decoder.next();
    expect(early).toBe(0);
    expect(event?.kind === 'command' && event.command.op === 'get' && event.command.keys.length).toBe(20_000);
    // Linear work is well under a second here; a rescan per byte would take minutes.
    expect(Date.now() - startedMs).toBeLessThan(5_000);
  });
});

describe('text decoder: request lines that look like HTTP', () => {
  // memcached's cross-protocol guard: an unknown command ending in HTTP/... closes at once, unanswered.
  test('HTTP request lines close the connection and nothing after them is decoded', () => {
    for (const line of ['GET / HTTP/1.0', 'POST /x HTTP/1.1', 'HEAD / HTTP/1.1', 'OPTIONS * HTTP/1.1', 'HTTP/1.0', 'mxx a HTTP/']) {
      expect(outline(`${line}\r\nset k 0 0 1\r\nx\r\n`)).toEqual(['CLIENT_ERROR HTTP request line +close']);
    }
    const decoder = new TextDecoder(limits);
    decoder.push(Buffer.from('POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\nset k 0 0 1\r\nx\r\n'));
    expect(drain(decoder).length).toBe(1);
    expect(decoder.bufferedBytes()).toBe(0);
  });

  // Only lines that reach memcached's final fallback are judged, and only on the last counted token.
  test('lines memcached dispatches elsewhere are answered as before', () => {
    for (const line of ['gx / HTTP/1.0', 'G / HTTP/1.0', 'mx / HTTP/1.0', 'replace / HTTP/1.0', 'FOO HTTP/1.0 x', 'FOO http/1.0', 'FOO HTTP']) {
      expect(outline(`${line}\r\n`)).toEqual(['ERROR']);
    }
    const tokens = Array.from({ length: 21 }, (_, index) => String(index));
    expect(outline(`AB ${tokens.join(' ')} HTTP/1 tail\r\n`)).toEqual(['CLIENT_ERROR HTTP request line +close']);
    expect(outline(`AB ${tokens.slice(1).join(' ')} HTTP/1 22 tail\r\n`)).toEqual(['ERROR']);
  });
});

describe('chunk list', () => {
  // Scans resume across pushes and restart after consuming; take copies across chunk borders.
  test('scan, take and skip across chunks', () => {
    const list = new ChunkList();
    list.push(Buffer.from('ab'));
    expect(list.scanFor(0x0a)).toBe(-1);
    list.push(Buffer.alloc(600, 0x63));
    list.push(Buffer.from('d\nef\n'));
    expect(list.scanFor(0x0a)).toBe(603);
    expect(list.take(3).toString()).toBe('abc');
    expect(list.scanFor(0x0a)).toBe(600);
    list.skip(601);
    expect(list.byteLength).toBe(3);
    expect(list.scanFor(0x0a)).toBe(2);
    expect(list.take(3).toString()).toBe('ef\n');
    expect(list.byteLength).toBe(0);
    list.push(Buffer.from('x'));
    expect(list.byteAt(0)).toBe(0x78);
  });
});

describe('text encoder', () => {
  const key = Buffer.from('k');
  const get: Command = { op: 'get', keys: [key], withCas: false };
  const bytes = (chunks: readonly Buffer[]) => Buffer.concat(chunks).toString('latin1');

  // VALUE lines carry flags, length and (for gets) the cas unique, then the raw data; END closes.
  test('items', () => {
    const items = [
      { key, flags: 4294967295, value: Buffer.from('a\r\nb'), cas: 18446744073709551615n },
      { key: Buffer.from('j'), flags: 0, value: Buffer.alloc(0), cas: 1n },
    ];
    expect(bytes(encodeReply(get, { kind: 'items', items, withCas: false }))).toBe(
      'VALUE k 4294967295 4\r\na\r\nb\r\nVALUE j 0 0\r\n\r\nEND\r\n',
    );
    expect(bytes(encodeReply(get, { kind: 'items', items, withCas: true }))).toBe(
      'VALUE k 4294967295 4 18446744073709551615\r\na\r\nb\r\nVALUE j 0 0 1\r\n\r\nEND\r\n',
    );
    expect(bytes(encodeReply(get, { kind: 'items', items: [], withCas: false }))).toBe('END\r\n');
  });

  // Every other reply kind is one line in memcached's words.
  test('single-line replies', () => {
    const store: Command = {
      op: 'store',
      mode: 'set',
      key,
      flags: 0,
      exptime: 0,
      value: Buffer.alloc(0),
      casUnique: 0n,
      noreply: false,
    };
    const deleteCommand: Command = { op: 'delete', key, casUnique: 0n, noreply: false };
    const arith = (incr: boolean): Command => ({ op: 'arith', incr, key, delta: 1n, casUnique: 0n, noreply: false });
    const cases: Array<[Command, Reply, string]> = [
      [store, { kind: 'stored', outcome: 'STORED', cas: 1n }, 'STORED\r\n'],
      [store, { kind: 'stored', outcome: 'NOT_STORED', cas: 0n }, 'NOT_STORED\r\n'],
      [store, { kind: 'stored', outcome: 'EXISTS', cas: 0n }, 'EXISTS\r\n'],
      [store, { kind: 'stored', outcome: 'NOT_FOUND', cas: 0n }, 'NOT_FOUND\r\n'],
      [deleteCommand, { kind: 'deleted', outcome: 'DELETED' }, 'DELETED\r\n'],
      [deleteCommand, { kind: 'deleted', outcome: 'NOT_FOUND' }, 'NOT_FOUND\r\n'],
      [deleteCommand, { kind: 'deleted', outcome: 'EXISTS' }, 'EXISTS\r\n'],
      [arith(true), { kind: 'arith', outcome: 'OK', value: 18446744073709551615n, cas: 1n }, '18446744073709551615\r\n'],
      [arith(false), { kind: 'arith', outcome: 'NOT_FOUND', value: 0n, cas: 0n }, 'NOT_FOUND\r\n'],
      [arith(false), { kind: 'arith', outcome: 'EXISTS', value: 0n, cas: 0n }, 'EXISTS\r\n'],
      [{ op: 'touch', key, exptime: 0, noreply: false }, { kind: 'touched', found: true }, 'TOUCHED\r\n'],
      [{ op: 'touch', key, exptime: 0, noreply: false }, { kind: 'touched', found: false }, 'NOT_FOUND\r\n'],
      [{ op: 'flush_all', delaySeconds: 0, noreply: false }, { kind: 'ok' }, 'OK\r\n'],
      [{ op: 'verbosity', level: 1, noreply: false }, { kind: 'ok' }, 'OK\r\n'],
      [{ op: 'version' }, { kind: 'version', version: '1.6.18' }, 'VERSION 1.6.18\r\n'],
      [{ op: 'stats', group: 'reset' }, { kind: 'reset' }, 'RESET\r\n'],
      [{ op: 'stats', group: '' }, { kind: 'stats', stats: [['pid', '1'], ['version', 'x y']] }, 'STAT pid 1\r\nSTAT version x y\r\nEND\r\n'],
      [{ op: 'stats', group: 'items' }, { kind: 'stats', stats: [] }, 'END\r\n'],
    ];
    for (const [command, reply, expected] of cases) expect(bytes(encodeReply(command, reply))).toBe(expected);
  });

  // noreply commands and quit write nothing.
  test('noreply and quit', () => {
    const silent: Command = { op: 'delete', key, casUnique: 0n, noreply: true };
    expect(isNoreply(silent)).toBe(true);
    expect(encodeReply(silent, { kind: 'deleted', outcome: 'DELETED' })).toEqual([]);
    expect(encodeReply({ op: 'flush_all', delaySeconds: 0, noreply: true }, { kind: 'ok' })).toEqual([]);
    expect(encodeReply({ op: 'quit' }, { kind: 'quit' })).toEqual([]);
    expect(isNoreply(get)).toBe(false);
  });

  // Errors are their registry line; an over-long line closes without a word, as in memcached.
  test('errors', () => {
    expect(encodeError(new KaiError('KAI_BAD_DATA_CHUNK')).toString()).toBe('CLIENT_ERROR bad data chunk\r\n');
    expect(encodeError(new KaiError('KAI_UNKNOWN_COMMAND')).toString()).toBe('ERROR\r\n');
    expect(encodeError(new KaiError('KAI_LINE_TOO_LONG')).length).toBe(0);
  });
});
