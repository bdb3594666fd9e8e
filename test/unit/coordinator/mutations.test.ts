import {
  arithMutation,
  casOfVersions,
  deleteMutation,
  latestLive,
  parseCounter,
  storeMutation,
  touchMutation,
  type ArithResult,
  type Decision,
  type Mutation,
  type StoreRequest,
} from '../../../src/coordinator/mutations';
import { KaiError } from '../../../src/errors';
import type { StorageMode } from '../../../src/protocol/command';
import type { Version } from '../../../src/storage/record';
import { contextNumber, merge } from '../../../src/vclock';

const nowMs = 1_000_000;
const valueBytesMax = 64;
const context = { nowMs, valueBytesMax, actor: 'a' };

function version(value: string, overrides: Partial<Version> = {}): Version {
  return {
    clock: [{ node: 'n1', counter: 1, timestampMs: nowMs - 100 }],
    value: Buffer.from(value, 'latin1'),
    flags: 7,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs: nowMs - 100,
    ...overrides,
  };
}

const live = version('hello', { expiresAtMs: nowMs + 5000 });
const expired = version('stale', { expiresAtMs: nowMs - 1 });
const expiringNow = version('edge', { expiresAtMs: nowMs });
const tombstone = version('', { tombstone: true });

/** The key states every mutation is checked against, with whether a client would see the key. */
const states: Array<[string, Version[], boolean]> = [
  ['missing', [], false],
  ['live', [live], true],
  ['expired', [expired], false],
  ['expiring at now', [expiringNow], false],
  ['tombstone', [tombstone], false],
];

function run<R>(mutation: Mutation<R>, versions: readonly Version[]): Decision<R> {
  return mutation(versions, context);
}

function request(mode: StorageMode, value = 'new', casUnique = 0n): StoreRequest {
  return { mode, value: Buffer.from(value), flags: 42, expiresAtMs: nowMs + 60_000, casUnique };
}

/** The decision is the operating error `code`, returned as a value, and writes nothing. */
function expectRefusal(decision: Decision<unknown>, code: string): void {
  expect(decision.write).toBeUndefined();
  expect(decision.error).toBeInstanceOf(KaiError);
  expect(decision.error?.code).toBe(code);
}

describe('latestLive and casOfVersions', () => {
  // Of several live siblings, the last written is the base; dead ones never are.
  test('latestLive picks the last written live version', () => {
    const older = version('older', { writtenAtMs: 10 });
    const newer = version('newer', { writtenAtMs: 20 });
    const newestDead = version('', { writtenAtMs: 30, tombstone: true });
    expect(latestLive([older, newer, newestDead], nowMs)).toBe(newer);
    expect(latestLive([newestDead, newer, older], nowMs)).toBe(newer);
    expect(latestLive([expired, tombstone], nowMs)).toBeUndefined();
    expect(latestLive([], nowMs)).toBeUndefined();
  });

  // The cas unique names the merged clock of every held version, live or not.
  test('casOfVersions is the context number of the merged clocks', () => {
    const a = version('a', { clock: [{ node: 'n1', counter: 2, timestampMs: 5 }] });
    const b = version('b', { clock: [{ node: 'n2', counter: 1, timestampMs: 6 }], tombstone: true });
    expect(casOfVersions([a, b])).toBe(contextNumber(merge([a.clock, b.clock])));
    expect(casOfVersions([b, a])).toBe(casOfVersions([a, b]));
    expect(casOfVersions([a])).not.toBe(casOfVersions([a, b]));
  });
});

describe('storeMutation', () => {
  // set always writes the new value, whatever the key held.
  test('set', () => {
    for (const [, versions] of states) {
      const decision = run(storeMutation(request('set')), versions);
      expect(decision.result).toBe('STORED');
      expect(decision.write).toEqual({
        value: Buffer.from('new'),
        flags: 42,
        expiresAtMs: nowMs + 60_000,
        tombstone: false,
      });
    }
  });

  // add stores only when no live value exists; replace only when one does.
  test('add and replace', () => {
    for (const [name, versions, present] of states) {
      const add = run(storeMutation(request('add')), versions);
      const replace = run(storeMutation(request('replace')), versions);
      expect([name, add.result]).toEqual([name, present ? 'NOT_STORED' : 'STORED']);
      expect(add.write === undefined).toBe(present);
      expect([name, replace.result]).toEqual([name, present ? 'STORED' : 'NOT_STORED']);
      expect(replace.write === undefined).toBe(!present);
      if (replace.write) expect(replace.write.value.toString()).toBe('new');
    }
  });

  // cas: NOT_FOUND without a live value, STORED on the current unique, EXISTS on any other.
  test('cas', () => {
    for (const [name, versions, present] of states) {
      const matching = run(storeMutation(request('cas', 'new', casOfVersions(versions))), versions);
      expect([name, matching.result]).toEqual([name, present ? 'STORED' : 'NOT_FOUND']);
      expect(matching.write === undefined).toBe(!present);
    }
    const stale = run(storeMutation(request('cas', 'new', casOfVersions([live]) + 1n)), [live]);
    expect(stale).toEqual({ write: undefined, result: 'EXISTS' });
  });

  // A cas naming one sibling only has not seen the other, so it must not overwrite both.
  test('cas with siblings needs the unique of all of them', () => {
    const left = version('left', { clock: [{ node: 'n1', counter: 1, timestampMs: 1 }] });
    const right = version('right', { clock: [{ node: 'n2', counter: 1, timestampMs: 2 }] });
    const siblings = [left, right];
    expect(run(storeMutation(request('cas', 'x', casOfVersions([left]))), siblings).result).toBe('EXISTS');
    expect(run(storeMutation(request('cas', 'x', casOfVersions(siblings))), siblings).result).toBe('STORED');
  });

  // A set, add or replace naming a cas unique is a cas (memcached's binary protocol): NOT_FOUND
  // without a live value, EXISTS on another unique, STORED on the key's own.
  test('set, add and replace with a cas unique behave as cas', () => {
    for (const mode of ['set', 'add', 'replace'] as const) {
      for (const [name, versions, present] of states) {
        const matching = run(storeMutation(request(mode, 'new', casOfVersions(versions) || 1n)), versions);
        expect([mode, name, matching.result]).toEqual([mode, name, present ? 'STORED' : 'NOT_FOUND']);
      }
      const stale = run(storeMutation(request(mode, 'new', casOfVersions([live]) + 1n)), [live]);
      expect([mode, stale]).toEqual([mode, { write: undefined, result: 'EXISTS' }]);
    }
  });

  // append and prepend naming a cas unique: EXISTS on another unique, joined on the key's own,
  // NOT_STORED without a live value.
  test('append and prepend with a cas unique', () => {
    for (const mode of ['append', 'prepend'] as const) {
      expect(run(storeMutation(request(mode, '+', casOfVersions([live]) + 1n)), [live])).toEqual({
        write: undefined,
        result: 'EXISTS',
      });
      expect(run(storeMutation(request(mode, '+', casOfVersions([live]))), [live]).result).toBe('STORED');
      expect(run(storeMutation(request(mode, '+', 9n)), []).result).toBe('NOT_STORED');
    }
  });

  // append and prepend join onto the live value and keep its flags and expiry, as memcached does.
  test('append and prepend keep flags and expiry', () => {
    for (const [mode, expected] of [
      ['append', 'hello-tail'],
      ['prepend', '-tailhello'],
    ] as const) {
      const decision = run(storeMutation(request(mode, '-tail')), [live]);
      expect(decision.result).toBe('STORED');
      expect(decision.write?.value.toString()).toBe(expected);
      expect(decision.write?.flags).toBe(live.flags);
      expect(decision.write?.expiresAtMs).toBe(live.expiresAtMs);
      expect(decision.write?.tombstone).toBe(false);
      for (const [name, versions, present] of states) {
        if (present) continue;
        expect([name, run(storeMutation(request(mode)), versions)]).toEqual([
          name,
          { write: undefined, result: 'NOT_STORED' },
        ]);
      }
    }
  });

  // append starts from the sibling written last.
  test('append onto the latest live sibling', () => {
    const older = version('old', { writtenAtMs: 1, clock: [{ node: 'a', counter: 1, timestampMs: 1 }] });
    const newer = version('new', { writtenAtMs: 2, clock: [{ node: 'b', counter: 1, timestampMs: 2 }], flags: 9 });
    const decision = run(storeMutation(request('append', '+')), [newer, older]);
    expect(decision.write?.value.toString()).toBe('new+');
    expect(decision.write?.flags).toBe(9);
  });

  // A joined value may reach valueBytesMax exactly; one byte more is memcached's out-of-memory error.
  test('append and prepend past valueBytesMax are refused with an error value', () => {
    const base = version('x'.repeat(valueBytesMax - 4));
    expect(run(storeMutation(request('append', 'abcd')), [base]).write?.value.length).toBe(valueBytesMax);
    expect(run(storeMutation(request('prepend', 'abcd')), [base]).write?.value.length).toBe(valueBytesMax);
    expectRefusal(run(storeMutation(request('append', 'abcde')), [base]), 'KAI_OUT_OF_MEMORY_STORING');
    expectRefusal(run(storeMutation(request('prepend', 'abcde')), [base]), 'KAI_OUT_OF_MEMORY_STORING');
  });
});

describe('deleteMutation and touchMutation', () => {
  // delete writes a tombstone over a live value, and reports not found otherwise without writing.
  test('delete', () => {
    for (const [name, versions, present] of states) {
      const decision = run(deleteMutation(0n), versions);
      expect([name, decision.result]).toEqual([name, present ? 'DELETED' : 'NOT_FOUND']);
      if (present) {
        expect(decision.write).toEqual({ value: Buffer.alloc(0), flags: 0, expiresAtMs: 0, tombstone: true });
      } else {
        expect(decision.write).toBeUndefined();
      }
    }
  });

  // delete naming a cas unique removes the key only while that is its unique.
  test('delete with a cas unique', () => {
    expect(run(deleteMutation(casOfVersions([live]) + 1n), [live])).toEqual({ write: undefined, result: 'EXISTS' });
    expect(run(deleteMutation(casOfVersions([live])), [live]).result).toBe('DELETED');
    expect(run(deleteMutation(7n), []).result).toBe('NOT_FOUND');
  });

  // touch rewrites only the expiry of a live value and returns the value it touched.
  test('touch', () => {
    const newExpiresAtMs = nowMs + 99_000;
    for (const [name, versions, present] of states) {
      const decision = run(touchMutation(newExpiresAtMs), versions);
      expect([name, decision.result]).toEqual([name, present ? live : undefined]);
      if (!present) {
        expect(decision.write).toBeUndefined();
        continue;
      }
      expect(decision.write?.expiresAtMs).toBe(newExpiresAtMs);
      expect(decision.write?.value.toString()).toBe('hello');
      expect(decision.write?.flags).toBe(live.flags);
      expect(decision.write?.tombstone).toBe(false);
    }
  });
});

describe('parseCounter', () => {
  const parse = (text: string): bigint | undefined => parseCounter(Buffer.from(text, 'latin1'));

  // Accepted forms, as memcached's safe_strtoull reads them.
  test('accepts what safe_strtoull accepts', () => {
    expect(parse('0')).toBe(0n);
    expect(parse('42')).toBe(42n);
    expect(parse('007')).toBe(7n);
    expect(parse('   12')).toBe(12n);
    expect(parse('\t\n\v\f\r 12')).toBe(12n);
    expect(parse('+5')).toBe(5n);
    expect(parse('-0')).toBe(0n);
    expect(parse('12 ')).toBe(12n);
    expect(parse('12 abc')).toBe(12n);
    expect(parse('12\r\n')).toBe(12n);
    expect(parse('12\u0000abc')).toBe(12n);
    expect(parse('18446744073709551615')).toBe(18446744073709551615n);
    expect(parse('9223372036854775808')).toBe(9223372036854775808n);
    // strtoull negates in 64 bits; memcached refuses the '-' only when the result looks negative.
    expect(parse('-18446744073709551615')).toBe(1n);
    expect(parse('-9223372036854775809')).toBe(9223372036854775807n);
  });

  // Refused forms: memcached answers non-numeric for these.
  test('refuses what safe_strtoull refuses', () => {
    for (const text of [
      '',
      ' ',
      '+',
      '-',
      '-5',
      '-1',
      '-9223372036854775808',
      '18446744073709551616',
      '99999999999999999999999',
      '-18446744073709551616',
      '12abc',
      'abc',
      '0x10',
      '1.5',
      '+-1',
      '\u000012',
    ]) {
      expect([text, parse(text)]).toEqual([text, undefined]);
    }
  });
});

describe('arithMutation', () => {
  const counter = (text: string, overrides: Partial<Version> = {}): Version =>
    version(text, { flags: 3, expiresAtMs: nowMs + 1000, ...overrides });
  const incr = (delta: bigint) => arithMutation({ incr: true, delta });
  const decr = (delta: bigint) => arithMutation({ incr: false, delta });
  const text = (decision: Decision<ArithResult>): string | undefined => decision.write?.value.toString('latin1');
  const valueOf = (decision: Decision<ArithResult>): bigint | undefined =>
    decision.result?.outcome === 'OK' ? decision.result.value : undefined;

  // incr adds and keeps flags and expiry; decr subtracts.
  test('incr and decr', () => {
    const decision = run(incr(5n), [counter('10')]);
    expect(decision.result).toMatchObject({ outcome: 'OK', value: 15n, created: false });
    expect(text(decision)).toBe('15');
    expect(decision.write?.flags).toBe(3);
    expect(decision.write?.expiresAtMs).toBe(nowMs + 1000);
    expect(decision.write?.tombstone).toBe(false);
    expect(valueOf(run(decr(3n), [counter('10')]))).toBe(7n);
  });

  // incr wraps at 2^64; decr stops at 0.
  test('incr wraps and decr floors', () => {
    expect(valueOf(run(incr(1n), [counter('18446744073709551615')]))).toBe(0n);
    expect(valueOf(run(incr(10n), [counter('18446744073709551610')]))).toBe(4n);
    expect(valueOf(run(incr(18446744073709551615n), [counter('18446744073709551615')]))).toBe(
      18446744073709551614n,
    );
    expect(valueOf(run(decr(11n), [counter('10')]))).toBe(0n);
    expect(valueOf(run(decr(10n), [counter('10')]))).toBe(0n);
    expect(valueOf(run(decr(1n), [counter('0')]))).toBe(0n);
  });

  // A shorter result is padded with spaces to the old length; a longer one grows the value.
  test('result text length', () => {
    expect(text(run(decr(95n), [counter('100')]))).toBe('5  ');
    expect(text(run(decr(1n), [counter('10')]))).toBe('9 ');
    expect(text(run(incr(1n), [counter('99')]))).toBe('100');
    expect(text(run(incr(1n), [counter('18446744073709551615')]))).toBe('0' + ' '.repeat(19));
    expect(text(run(incr(1n), [counter(' 12\n ')]))).toBe('13   ');
    // The padded value parses back to the same number.
    expect(parseCounter(run(decr(95n), [counter('100')]).write!.value)).toBe(5n);
  });

  // A value that is not a number is memcached's non-numeric client error.
  test('non-numeric values are refused with an error value', () => {
    for (const value of ['abc', '', '-5', '12abc', '18446744073709551616']) {
      expectRefusal(run(incr(1n), [counter(value)]), 'KAI_NON_NUMERIC_VALUE');
      expectRefusal(run(decr(1n), [counter(value)]), 'KAI_NON_NUMERIC_VALUE');
    }
  });

  // Without a live value the answer is not found, and nothing is written.
  test('missing keys without initial', () => {
    for (const [name, versions, present] of states) {
      if (present) continue;
      expect([name, run(incr(1n), versions)]).toEqual([
        name,
        { write: undefined, result: { outcome: 'NOT_FOUND', value: 0n, created: false, previousExpiresAtMs: 0 } },
      ]);
    }
  });

  // The binary protocol's initial value creates a missing key with it, flags 0, and returns it as is.
  test('binary initial', () => {
    const mutation = arithMutation({ incr: true, delta: 5n, initial: { value: 100n, expiresAtMs: nowMs + 7000 } });
    for (const [name, versions, present] of states) {
      if (present) continue;
      const decision = run(mutation, versions);
      expect([name, decision.result]).toEqual([name, { outcome: 'OK', value: 100n, created: true, previousExpiresAtMs: 0 }]);
      expect(decision.write).toEqual({
        value: Buffer.from('100'),
        flags: 0,
        expiresAtMs: nowMs + 7000,
        tombstone: false,
        counter: { base: 100n, setAtMs: 0, actors: [] },
      });
    }
    // An existing counter ignores initial.
    const existing = run(mutation, [counter('1')]);
    expect(existing.result).toMatchObject({ outcome: 'OK', value: 6n, created: false });
    expect(existing.write?.expiresAtMs).toBe(nowMs + 1000);
  });

  // A cas unique that is not the key's is EXISTS, checked before the value is read; 0n or the
  // key's own unique applies the delta.
  test('cas unique', () => {
    const held = [counter('abc')];
    const mismatch = arithMutation({ incr: true, delta: 1n, casUnique: casOfVersions(held) + 1n });
    expect(run(mismatch, held)).toEqual({ write: undefined, result: { outcome: 'EXISTS', value: 0n, created: false, previousExpiresAtMs: 0 } });
    const numeric = [counter('41')];
    const matching = arithMutation({ incr: true, delta: 1n, casUnique: casOfVersions(numeric) });
    expect(run(matching, numeric).result).toMatchObject({ outcome: 'OK', value: 42n, created: false });
    // A missing key is not found (or created) whatever cas unique is named.
    expect(run(arithMutation({ incr: true, delta: 1n, casUnique: 5n }), []).result?.outcome).toBe('NOT_FOUND');
  });
});
