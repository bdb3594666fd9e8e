// Writes as data: each spec survives the wire and decides as its mutation, and outcomes come back checked.
import { FlushDeadline } from '../../../src/coordinator/flush';
import type { MutationContext } from '../../../src/coordinator/mutations';
import {
  arithSpec,
  casUniqueOf,
  deleteSpec,
  fetchSpec,
  mutationOf,
  outcomeFromWire,
  outcomeToWire,
  storeSpec,
  touchSpec,
  type SpecKind,
  type SpecOf,
  type SpecOutcome,
} from '../../../src/coordinator/specs';
import { KaiError } from '../../../src/errors';
import { wirePackr } from '../../../src/rpc/frames';
import { isRpcRequest, requestProblem, timeMsMax } from '../../../src/rpc/message-shapes';
import { versionMarks, type Version } from '../../../src/storage/record';

const context: MutationContext = { nowMs: 10_000, valueBytesMax: 1024, actor: 'a' };

function live(value: string, writtenAtMs: number, node = 'a'): Version {
  return {
    clock: [{ node, counter: 1, timestampMs: writtenAtMs }],
    value: Buffer.from(value),
    flags: 7,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs,
  };
}

/** A spec as it arrives on a peer: packed, unpacked and checked as a coordinate request. */
function acrossTheWire<K extends SpecKind>(spec: SpecOf<K>): SpecOf<K> {
  const request = wirePackr.unpack(wirePackr.pack({ type: 'coordinate', key: Buffer.from('k'), mutation: spec })) as unknown;
  expect(isRpcRequest(request)).toBe(true);
  return (request as { mutation: SpecOf<K> }).mutation;
}

function outcomeAcross<K extends SpecKind>(kind: K, outcome: SpecOutcome<K>): SpecOutcome<K> {
  return outcomeFromWire(kind, wirePackr.unpack(wirePackr.pack(outcomeToWire(kind, outcome))));
}

describe('specs', () => {
  // Bigints travel as decimal strings, up to 2^64-1, and come back as the same numbers.
  test('bigints become decimals and survive the wire', () => {
    const spec = acrossTheWire(arithSpec({ incr: true, delta: 2n ** 64n - 1n, casUnique: 42n, initial: { value: 9n, expiresAtMs: 5 } }));
    expect(spec).toEqual({
      kind: 'arith',
      incr: true,
      delta: '18446744073709551615',
      casUnique: '42',
      initial: { value: '9', expiresAtMs: 5 },
    });
    expect(casUniqueOf(spec)).toBe(42n);
    expect(casUniqueOf(touchSpec(0))).toBe(0n);
  });

  // A store spec decides as the store mutation does: set writes, add over a live value does not.
  test('store specs decide as their mutations', () => {
    const request = { value: Buffer.from('v'), flags: 1, expiresAtMs: 0, casUnique: 0n };
    const set = mutationOf(acrossTheWire(storeSpec({ ...request, mode: 'set' })))([live('old', 1)], context);
    expect(set.result?.result).toBe('STORED');
    expect(set.write?.value.toString()).toBe('v');
    const add = mutationOf(acrossTheWire(storeSpec({ ...request, mode: 'add' })))([live('old', 1)], context);
    expect(add.result?.result).toBe('NOT_STORED');
    expect(add.write).toBeUndefined();
  });

  // The lookup reports expired-only keys and the size of the value a write started from.
  test('the lookup is computed on the coordinating node', () => {
    const expired = { ...live('gone', 1), expiresAtMs: 5 };
    const touch = mutationOf(touchSpec(0))([expired], context);
    expect(touch.result).toEqual({ result: undefined, lookup: { expired: true, previousValueBytes: -1 } });
    const incr = mutationOf(arithSpec({ incr: true, delta: 1n }))([live('41', 1)], context);
    expect(incr.result?.lookup).toEqual({ expired: false, previousValueBytes: 2 });
    expect(incr.result?.result).toEqual({ outcome: 'OK', value: 42n, created: false, previousExpiresAtMs: 0 });
  });

  // The flush deadline of the coordinating node hides versions written before it.
  test('a visibility filter applies before the decision', () => {
    const flush = new FlushDeadline();
    flush.deadlineMs = 5_000;
    const versions = [live('before', 4_000)];
    expect(mutationOf(deleteSpec(0n), flush.visible)(versions, context).result?.result).toBe('NOT_FOUND');
    expect(mutationOf(deleteSpec(0n))(versions, context).result?.result).toBe('DELETED');
  });

  // An operating error stays an error: nothing is written.
  test('errors pass through', () => {
    const decision = mutationOf(arithSpec({ incr: true, delta: 1n }))([live('abc', 1)], context);
    expect(decision.error?.code).toBe('KAI_NON_NUMERIC_VALUE');
  });

  // A decimal past 64 bits from a peer is refused before anything is decided.
  test('out-of-range decimals are refused', () => {
    expect(() => mutationOf({ kind: 'delete', casUnique: '18446744073709551616' })).toThrow(KaiError);
  });
});

describe('outcomes across the wire', () => {
  const lookup = { expired: false, previousValueBytes: 3 };

  // Each kind's result survives msgpack, bigints and buffers included.
  test('round trips', () => {
    expect(outcomeAcross('store', { result: 'EXISTS', lookup })).toEqual({ result: 'EXISTS', lookup });
    expect(outcomeAcross('delete', { result: 'DELETED', lookup })).toEqual({ result: 'DELETED', lookup });
    const item = { flags: 0xffffffff, value: Buffer.from([0, 255]) };
    expect(outcomeAcross('touch', { result: item, lookup })).toEqual({ result: item, lookup });
    expect(outcomeAcross('touch', { result: undefined, lookup })).toEqual({ result: undefined, lookup });
    const arith = { outcome: 'OK' as const, value: 2n ** 64n - 1n, created: true, previousExpiresAtMs: 0 };
    expect(outcomeAcross('arith', { result: arith, lookup })).toEqual({ result: arith, lookup });
  });

  // A result that is not one of the kind's is KAI_BAD_FRAME, not a wrong answer to the client.
  test.each([
    ['store', { result: 'DELETED', lookup }],
    ['delete', { result: 'STORED', lookup }],
    ['touch', { result: { flags: -1, value: Buffer.alloc(0) }, lookup }],
    ['arith', { result: { outcome: 'OK', value: '-1', created: false }, lookup }],
    ['arith', { result: { outcome: 'MAYBE', value: '1', created: false }, lookup }],
    ['store', { result: 'STORED', lookup: { expired: 'no', previousValueBytes: 0 } }],
    ['store', 'STORED'],
  ] as const)('refuses a bad %s outcome', (kind, raw) => {
    expect(() => outcomeFromWire(kind, raw)).toThrow(expect.objectContaining({ code: 'KAI_BAD_FRAME' }) as Error);
  });
});

describe('the meta specs', () => {
  const lookup = { expired: false, previousValueBytes: -1 };
  const coordinate = (mutation: unknown): unknown => ({ type: 'coordinate', key: Buffer.from('k'), mutation });

  // mg's steps cross in request order; a fetch names no cas unique.
  test('the fetch spec survives the wire', () => {
    const spec = acrossTheWire(fetchSpec([['T', 5_000], ['R', 9_000], ['N', 7_000]]));
    expect(spec).toEqual({ kind: 'fetch', steps: [['T', 5_000], ['R', 9_000], ['N', 7_000]] });
    expect(casUniqueOf(spec)).toBe(0n);
    expect(acrossTheWire(fetchSpec([]))).toEqual({ kind: 'fetch', steps: [] });
  });

  // More steps than an mg can send, a flag other than T, N or R, or a time out of range is refused at the shape check.
  test('fetch specs no mg sends are refused', () => {
    expect(requestProblem(coordinate({ kind: 'fetch', steps: [['T', 1], ['N', 1], ['R', 1], ['T', 1]] }))).toMatch(/steps/);
    expect(requestProblem(coordinate({ kind: 'fetch', steps: [['X', 1]] }))).toMatch(/steps\[0\]\[0\]/);
    expect(requestProblem(coordinate({ kind: 'fetch', steps: [['T', -1]] }))).toMatch(/steps\[0\]\[1\]/);
    expect(requestProblem(coordinate({ kind: 'fetch' }))).toMatch(/steps/);
  });

  // A fetch spec decides as fetchMutation does, seen through the coordinating node's flush deadline.
  test('the fetch spec decides as its mutation', () => {
    const vivify = mutationOf(acrossTheWire(fetchSpec([['N', 40_000]])))([], context);
    expect(vivify.result).toEqual({
      result: { item: { flags: 0, value: Buffer.alloc(0), expiresAtMs: 0, marks: 0, writtenAtMs: 0 }, created: true, won: true },
      lookup,
    });
    expect(vivify.write).toMatchObject({ expiresAtMs: 40_000, marks: versionMarks.winTokenSent });
    const staleItem: Version = { ...live('old', 4_000), marks: versionMarks.stale };
    const claim = mutationOf(fetchSpec([]))([staleItem], context);
    expect(claim.result?.result).toMatchObject({ created: false, won: true, item: { marks: versionMarks.stale } });
    expect(claim.result?.lookup).toEqual({ expired: false, previousValueBytes: 3 });
    // Flushed, the stale item is gone: N creates a new one.
    const flush = new FlushDeadline();
    flush.deadlineMs = 5_000;
    expect(mutationOf(fetchSpec([['N', 40_000]]), flush.visible)([staleItem], context).result?.result.created).toBe(true);
  });

  // ms I and b, and md I with its TTL, are carried by the store and delete specs and decide on the coordinating node.
  test('ms I, ms b and md I across the wire', () => {
    const held = [live('old', 1)];
    const store = acrossTheWire(
      storeSpec({ mode: 'cas', value: Buffer.from('v'), flags: 0, expiresAtMs: 0, casUnique: 1n, invalidate: true, keyBase64: true }),
    );
    expect(store).toMatchObject({ kind: 'store', invalidate: true, keyBase64: true });
    expect(mutationOf(store)(held, context).write?.marks).toBe(versionMarks.stale | versionMarks.keyBase64);
    const invalidate = acrossTheWire(deleteSpec(0n, { expiresAtMs: 60_000 }));
    expect(invalidate).toEqual({ kind: 'delete', casUnique: '0', invalidate: true, expiresAtMs: 60_000 });
    expect(mutationOf(invalidate)(held, context).write).toMatchObject({ marks: versionMarks.stale, expiresAtMs: 60_000, tombstone: false });
    expect(acrossTheWire(deleteSpec(0n, {}))).toEqual({ kind: 'delete', casUnique: '0', invalidate: true });
    expect(acrossTheWire(deleteSpec(0n))).toEqual({ kind: 'delete', casUnique: '0' });
  });

  // A fetch outcome survives msgpack: the item found with its marks and binary value, or none.
  test('the fetch outcome survives the wire', () => {
    const marks = versionMarks.stale | versionMarks.winTokenSent;
    const item = { flags: 0xffffffff, value: Buffer.from([0, 255]), expiresAtMs: 9_000, marks, writtenAtMs: 4_000 };
    const found = { result: { item, created: false, won: true }, lookup };
    expect(outcomeAcross('fetch', found)).toEqual(found);
    const missed = { result: { created: false, won: false }, lookup };
    expect(outcomeAcross('fetch', missed)).toEqual(missed);
  });

  const item = { flags: 0, value: Buffer.alloc(0), expiresAtMs: 0, marks: 0, writtenAtMs: 0 };
  // A fetch outcome no kai node sends is KAI_BAD_FRAME: unknown mark bits above all.
  test.each([
    ['unknown mark bits', { item: { ...item, marks: 8 }, created: false, won: false }],
    ['negative marks', { item: { ...item, marks: -1 }, created: false, won: false }],
    ['no marks', { item: { ...item, marks: undefined }, created: false, won: false }],
    ['a value that is not bytes', { item: { ...item, value: 'v' }, created: false, won: false }],
    ['a negative expiry', { item: { ...item, expiresAtMs: -1 }, created: false, won: false }],
    ['a write time out of range', { item: { ...item, writtenAtMs: timeMsMax + 1 }, created: false, won: false }],
    ['an item that is not a map', { item: 'item', created: false, won: false }],
    ['a win that is not a boolean', { item: null, created: false, won: 'yes' }],
  ])('refuses a fetch outcome with %s', (_name, result) => {
    expect(() => outcomeFromWire('fetch', { result, lookup })).toThrow(expect.objectContaining({ code: 'KAI_BAD_FRAME' }) as Error);
  });
});
