import { FlushDeadline } from '../../../src/coordinator/flush';
import type { MutationContext } from '../../../src/coordinator/mutations';
import {
  arithSpec,
  casUniqueOf,
  deleteSpec,
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
import { isRpcRequest } from '../../../src/rpc/message-shapes';
import type { Version } from '../../../src/storage/record';

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
