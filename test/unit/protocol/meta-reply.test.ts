// Meta replies are written as memcached 1.6.18 writes them: flags in request order, T and N acting in order for t, q per command.
import type { Command } from '../../../src/protocol/command';
import type { MetaItem, MetaReply, MetaStatus } from '../../../src/protocol/meta-command';
import { parseCommandLine } from '../../../src/protocol/text/command-line';
import { encodeMetaReply } from '../../../src/protocol/text/meta-reply';

/** Half a second into a second, so whole-second arithmetic is visible. */
const nowMs = 1_700_000_000_500;
const inHundredSecondsMs = nowMs + 100_000;

/** The command a line decodes to; an ms line with a one-byte value. */
function commandOf(line: string): Command {
  const parsed = parseCommandLine(Buffer.from(line, 'latin1'));
  if (parsed.kind === 'command') return parsed.command;
  if (parsed.kind === 'store' && parsed.header.meta) {
    return { op: 'meta_set', request: parsed.header.meta, value: Buffer.from('x'), noreply: false };
  }
  throw new Error(`${line} decodes to ${parsed.kind}`);
}

function encoded(line: string, reply: MetaReply): string {
  return Buffer.concat(encodeMetaReply(commandOf(line), reply)).toString('latin1');
}

function item(overrides: Partial<MetaItem> = {}): MetaItem {
  return {
    key: Buffer.from('k'),
    value: Buffer.from('hello'),
    flags: 7,
    cas: 99n,
    expiresAtMsBefore: 0,
    keyBase64: false,
    stale: false,
    winTokenSentBefore: false,
    fetchedBefore: false,
    lastAccessMs: nowMs - 3_000,
    ...overrides,
  };
}

function hit(overrides: Partial<MetaItem> = {}, outcome: { created?: boolean; won?: boolean } = {}): MetaReply {
  return { kind: 'meta_get', item: item(overrides), created: outcome.created ?? false, won: outcome.won ?? false, nowMs };
}

const miss: MetaReply = { kind: 'meta_get', created: false, won: false, nowMs };

function arith(status: MetaStatus, fields: { value?: bigint; created?: boolean; expiresAtMsBefore?: number } = {}): MetaReply {
  return {
    kind: 'meta_arith',
    status,
    value: fields.value,
    cas: 5n,
    created: fields.created ?? false,
    expiresAtMsBefore: fields.expiresAtMsBefore ?? 0,
    nowMs,
  };
}

describe('mg replies', () => {
  // A hit returns the asked flags in the order they were sent, and VA with the value for v.
  test('flags in request order', () => {
    expect(encoded('mg k s v t c f O123 k h l', hit())).toBe('VA 5 s5 t-1 c99 f7 O123 kk h0 l3\r\nhello\r\n');
    expect(encoded('mg k k f c', hit())).toBe('HD kk f7 c99\r\n');
    expect(encoded('mg k', hit())).toBe('HD\r\n');
    // Flags that only act (u, q, P, L, T, N, R) add nothing.
    expect(encoded('mg k u q Px L T30 N30 R30', hit())).toBe('HD\r\n');
    expect(encoded('mg k f', hit({ flags: 0 }))).toBe('HD f0\r\n');
    expect(encoded('mg k v s', hit({ value: Buffer.alloc(0) }))).toBe('VA 0 s0\r\n\r\n');
  });

  // A miss is EN, carrying only the opaque and the key; q leaves it out altogether.
  test('a miss', () => {
    expect(encoded('mg k v s t c', miss)).toBe('EN\r\n');
    expect(encoded('mg k v Oab k', miss)).toBe('EN Oab kk\r\n');
    expect(encoded('mg k q', miss)).toBe('');
    expect(encoded('mg k q Oab k', miss)).toBe('');
    expect(encoded('mg QUJD b k', miss)).toBe('EN kQUJD b\r\n');
  });

  // q on mg leaves out only EN: a hit is answered whatever it carries.
  test('q leaves out only the miss', () => {
    expect(encoded('mg k q', hit())).toBe('HD\r\n');
    expect(encoded('mg k q v', hit())).toBe('VA 5\r\nhello\r\n');
  });

  // t shows the TTL as it is when t is read: a T or an N (on a created item) before it has already acted.
  test('T and N act in order for t', () => {
    const expiring = { expiresAtMsBefore: inHundredSecondsMs };
    expect(encoded('mg k t', hit(expiring))).toBe('HD t100\r\n');
    expect(encoded('mg k t T30', hit(expiring))).toBe('HD t100\r\n');
    expect(encoded('mg k T30 t', hit(expiring))).toBe('HD t30\r\n');
    expect(encoded('mg k T0 t', hit(expiring))).toBe('HD t-1\r\n');
    // N sets the TTL only of an item it created.
    expect(encoded('mg k N30 t', hit(expiring))).toBe('HD t100\r\n');
    expect(encoded('mg k N30 t', hit({}, { created: true, won: true }))).toBe('HD t30 W\r\n');
    expect(encoded('mg k t N30', hit({}, { created: true, won: true }))).toBe('HD t-1 W\r\n');
    expect(encoded('mg k N30 T60 t', hit({}, { created: true, won: true }))).toBe('HD t60 W\r\n');
    expect(encoded('mg k T60 N30 t', hit({}, { created: true, won: true }))).toBe('HD t30 W\r\n');
    // A passed expiry prints as memcached's unsigned 32-bit difference.
    expect(encoded('mg k t', hit({ expiresAtMsBefore: nowMs - 1_000 }))).toBe(`HD t${2 ** 32 - 1}\r\n`);
  });

  // Z, X and W come after every asked flag, in that order; W is this client's win.
  test('the recache marks', () => {
    expect(encoded('mg k c Oq', hit({}, { won: true }))).toBe('HD c99 Oq W\r\n');
    expect(encoded('mg k', hit({ stale: true }, { won: true }))).toBe('HD X W\r\n');
    expect(encoded('mg k', hit({ stale: true, winTokenSentBefore: true }))).toBe('HD Z X\r\n');
    expect(encoded('mg k v', hit({ winTokenSentBefore: true }))).toBe('VA 5 Z\r\nhello\r\n');
  });

  // h says whether the item was read before, l the whole seconds since its last access (never negative).
  test('h and l', () => {
    expect(encoded('mg k h l', hit({ fetchedBefore: true, lastAccessMs: nowMs - 61_000 }))).toBe('HD h1 l61\r\n');
    // Whole seconds on both sides: 0.6 s ago in the previous second is one second.
    expect(encoded('mg k l', hit({ lastAccessMs: nowMs - 600 }))).toBe('HD l1\r\n');
    expect(encoded('mg k l', hit({ lastAccessMs: nowMs + 5_000 }))).toBe('HD l0\r\n');
  });

  // k shows a key written with b in base64, followed by b, whatever the request's own form.
  test('k with base64 keys', () => {
    const binary = { key: Buffer.from('ABC'), keyBase64: true };
    expect(encoded('mg QUJD b k', hit(binary))).toBe('HD kQUJD b\r\n');
    expect(encoded('mg QUJD b k', hit({ key: Buffer.from([0, 0xff]), keyBase64: true }))).toBe('HD kAP8= b\r\n');
    expect(encoded('mg ABC k', hit({ key: Buffer.from('ABC') }))).toBe('HD kABC\r\n');
  });
});

describe('ms replies', () => {
  // ms echoes O, k and c (the new cas unique, 0 when nothing was stored) in request order, nothing else.
  test('flags', () => {
    const stored: MetaReply = { kind: 'meta_set', status: 'HD', cas: 12n };
    expect(encoded('ms k 1 c Oab k', stored)).toBe('HD c12 Oab kk\r\n');
    expect(encoded('ms k 1 k c', stored)).toBe('HD kk c12\r\n');
    expect(encoded('ms k 1 v t s f h l T30 F5', stored)).toBe('HD\r\n');
    expect(encoded('ms k 1 c', { kind: 'meta_set', status: 'NS', cas: 0n })).toBe('NS c0\r\n');
    expect(encoded('ms QUJD 1 b k', stored)).toBe('HD kQUJD b\r\n');
  });

  // q leaves out HD only: NS, EX and NF are still answered.
  test('q', () => {
    expect(encoded('ms k 1 q c', { kind: 'meta_set', status: 'HD', cas: 12n })).toBe('');
    for (const status of ['NS', 'EX', 'NF'] as const) {
      expect(encoded('ms k 1 q Oab', { kind: 'meta_set', status, cas: 0n })).toBe(`${status} Oab\r\n`);
    }
  });
});

describe('md replies', () => {
  // md echoes O and k; q leaves out HD only.
  test('flags and q', () => {
    expect(encoded('md k Oab k c', { kind: 'meta_delete', status: 'HD' })).toBe('HD Oab kk\r\n');
    expect(encoded('md k q', { kind: 'meta_delete', status: 'HD' })).toBe('');
    expect(encoded('md k q Oab k', { kind: 'meta_delete', status: 'NF' })).toBe('NF Oab kk\r\n');
    expect(encoded('md k q', { kind: 'meta_delete', status: 'EX' })).toBe('EX\r\n');
    expect(encoded('md QUJD b k', { kind: 'meta_delete', status: 'HD' })).toBe('HD kQUJD b\r\n');
  });
});

describe('ma replies', () => {
  // The number follows VA as its data block, its length in digits; HD alone without v.
  test('VA with the number', () => {
    expect(encoded('ma k', arith('HD', { value: 42n }))).toBe('HD\r\n');
    expect(encoded('ma k v', arith('HD', { value: 42n }))).toBe('VA 2\r\n42\r\n');
    expect(encoded('ma k v c Oab k', arith('HD', { value: 2n ** 64n - 1n }))).toBe('VA 20 c5 Oab kk\r\n18446744073709551615\r\n');
    expect(encoded('ma QUJD b k', arith('HD', { value: 0n }))).toBe('HD kQUJD b\r\n');
  });

  // Without a number (NF, NS, EX) only O and k come back, v or not.
  test('failures', () => {
    expect(encoded('ma k v c t Oab k', arith('NF'))).toBe('NF Oab kk\r\n');
    expect(encoded('ma k', arith('EX'))).toBe('EX\r\n');
    expect(encoded('ma k', arith('NS'))).toBe('NS\r\n');
  });

  // q leaves out a success, value and all, but not one that created the key, nor a failure.
  test('q', () => {
    expect(encoded('ma k q v', arith('HD', { value: 42n }))).toBe('');
    expect(encoded('ma k q v N0', arith('HD', { value: 0n, created: true }))).toBe('VA 1\r\n0\r\n');
    expect(encoded('ma k q', arith('NF'))).toBe('NF\r\n');
    expect(encoded('ma k q', arith('EX'))).toBe('EX\r\n');
  });

  // t shows the counter's TTL as T and N have left it so far; a created counter starts with none.
  test('T and N act in order for t', () => {
    const expiring = { value: 1n, expiresAtMsBefore: inHundredSecondsMs };
    expect(encoded('ma k t', arith('HD', expiring))).toBe('HD t100\r\n');
    expect(encoded('ma k t T30', arith('HD', expiring))).toBe('HD t100\r\n');
    expect(encoded('ma k T30 t', arith('HD', expiring))).toBe('HD t30\r\n');
    expect(encoded('ma k N30 t', arith('HD', expiring))).toBe('HD t100\r\n');
    const created = { value: 0n, created: true, expiresAtMsBefore: inHundredSecondsMs };
    expect(encoded('ma k t N30', arith('HD', created))).toBe('HD t-1\r\n');
    expect(encoded('ma k N30 t', arith('HD', created))).toBe('HD t30\r\n');
  });
});

describe('me and mn replies', () => {
  // me prints memcached's fields: expiry as time since it, seconds since access, cas, fetched, one class, the item's size.
  test('me', () => {
    const debug = (overrides: Partial<MetaItem>): MetaReply => ({ kind: 'meta_debug', item: item(overrides), nowMs });
    // 56 bytes of header, the key and its NUL, 4 bytes of client flags, the value and its CRLF.
    expect(encoded('me k', debug({}))).toBe('ME k exp=-1 la=3 cas=99 fetch=no cls=1 size=69\r\n');
    expect(encoded('me k', debug({ flags: 0, fetchedBefore: true }))).toBe('ME k exp=-1 la=3 cas=99 fetch=yes cls=1 size=65\r\n');
    expect(encoded('me k', debug({ expiresAtMsBefore: inHundredSecondsMs }))).toBe('ME k exp=-100 la=3 cas=99 fetch=no cls=1 size=69\r\n');
    expect(encoded('me QUJD b', debug({ key: Buffer.from('ABC'), keyBase64: true }))).toBe(
      'ME QUJD exp=-1 la=3 cas=99 fetch=no cls=1 size=71\r\n',
    );
    expect(encoded('me k', { kind: 'meta_debug', nowMs })).toBe('EN\r\n');
  });

  // mn is answered MN whatever follows it.
  test('mn', () => {
    expect(encoded('mn', { kind: 'meta_noop' })).toBe('MN\r\n');
  });
});
