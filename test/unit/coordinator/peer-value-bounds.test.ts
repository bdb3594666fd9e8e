// A replica keeps a key writable, in causal order, when a peer pushed its clock counter or counter totals to their bounds.
import { arithMutation, storeMutation } from '../../../src/coordinator/mutations';
import { LocalReplica } from '../../../src/coordinator/replica';
import { versionToWire, wireVersionProblem } from '../../../src/coordinator/wire';
import { counterTotalMax } from '../../../src/counter';
import type { Version } from '../../../src/storage/record';
import { clockCounterMax, compare, incrementable, increment } from '../../../src/vclock';
import { ManualEnv } from '../../support/manual-env';
import { MemoryStore } from '../../support/memory-store';

const valueBytesMax = 1024;
const key = Buffer.from('poisoned');
const bucket = 1;

function setOf(value: string) {
  return storeMutation({ mode: 'set', value: Buffer.from(value), flags: 0, expiresAtMs: 0, casUnique: 0n });
}

// The clock core refuses to move a counter past its bound, and says so beforehand.
test('incrementable and increment stop at clockCounterMax', () => {
  const atBound = [{ node: 'a', counter: clockCounterMax, timestampMs: 1 }];
  expect(incrementable(atBound, 'a')).toBe(false);
  expect(incrementable(atBound, 'b')).toBe(true);
  expect(incrementable([], 'a', clockCounterMax)).toBe(true);
  expect(incrementable([], 'a', clockCounterMax + 1)).toBe(false);
  expect(() => increment(atBound, 'a', 2)).toThrow(/assertion failed/);
  expect(increment(atBound, 'b', 2)).toEqual([...atBound, { node: 'b', counter: 1, timestampMs: 2 }]);
  // Every counter a kai node can hold stays an exact integer once incremented.
  expect(Number.isSafeInteger(clockCounterMax + 1)).toBe(true);
});

// The measured attack: a peer stored a version whose counter for this replica's own name was at
// the top; every later set of the key then failed an assertion. Now the replica takes a new name.
test('a set over a clock counter at its bound writes under a new name, after the poisoned version', async () => {
  const env = new ManualEnv();
  const store = new MemoryStore();
  const replica = new LocalReplica('node-a', store, env, valueBytesMax);
  const first = await replica.apply(key, bucket, setOf('one'));
  const actor = first.written!.clock[0].node;
  const poisoned: Version = { ...first.written!, value: Buffer.from('TAMPERED'), clock: [{ node: actor, counter: clockCounterMax, timestampMs: env.nowMs() }] };
  await replica.store(key, bucket, [poisoned]);
  expect(replica.fetchNow(key).map((v) => v.value.toString())).toEqual(['TAMPERED']);
  env.advance(5);
  const second = await replica.apply(key, bucket, setOf('two'));
  expect(second.error).toBeUndefined();
  expect(second.result).toBe('STORED');
  expect(compare(second.written!.clock, poisoned.clock)).toBe('after');
  const newActor = second.written!.clock.find((entry) => entry.node !== actor)!.node;
  expect(newActor).toMatch(/^node-a~/);
  expect(store.read(key)?.actor).toBe(newActor);
  expect(replica.fetchNow(key).map((v) => v.value.toString())).toEqual(['two']);
  // The new version passes every check a peer makes of it.
  expect(wireVersionProblem(versionToWire(second.written!), valueBytesMax)).toBeUndefined();
  // And the key goes on under the new name.
  env.advance(5);
  const third = await replica.apply(key, bucket, setOf('three'));
  expect(compare(third.written!.clock, second.written!.clock)).toBe('after');
});

// A peer's counter whose totals sit at their bound: an incr starts the counter again from the value it reads.
test('an incr over counter totals at their bound starts a new origin instead of an unsendable one', async () => {
  const env = new ManualEnv();
  const replica = new LocalReplica('node-a', new MemoryStore(), env, valueBytesMax);
  const forged: Version = {
    clock: [{ node: 'peer~x', counter: 5, timestampMs: env.nowMs() }],
    value: Buffer.from('0'),
    flags: 0,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs: env.nowMs(),
    // The sum is far below 0 (it reads 0): crediting an incr to this node would pass the bound.
    counter: { base: 0n, setAtMs: 1, actors: [{ actor: 'peer~x', added: 0n, taken: counterTotalMax, atMs: 1 }] },
  };
  await replica.store(key, bucket, [forged]);
  env.advance(1);
  const incr = await replica.apply(key, bucket, arithMutation({ incr: true, delta: 5n }));
  expect(incr.result).toMatchObject({ outcome: 'OK', value: 5n });
  expect(incr.written!.counter).toEqual({ base: 5n, setAtMs: env.nowMs(), actors: [] });
  expect(wireVersionProblem(versionToWire(incr.written!), valueBytesMax)).toBeUndefined();
  env.advance(1);
  const again = await replica.apply(key, bucket, arithMutation({ incr: true, delta: 3n }));
  expect(again.result).toMatchObject({ outcome: 'OK', value: 8n });
});
