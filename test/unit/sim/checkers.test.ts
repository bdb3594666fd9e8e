import type { Version } from '../../../src/storage/record';
import { increment, type VClock } from '../../../src/vclock';
import {
  assertAlways,
  assertConverged,
  assertEventually,
  assertNoLostWrites,
  canonicalVersions,
  findDivergence,
  findLostOperations,
  History,
  type FinalVersion,
} from '../../sim/checkers';
import { SimScheduler } from '../../sim/scheduler';

/** A history driven by hand: `at` sets the virtual time of the next entries. */
function manualHistory(): { history: History; at: (ms: number) => void } {
  let nowMs = 0;
  return { history: new History(() => nowMs), at: (ms) => (nowMs = ms) };
}

function finals(table: Record<string, readonly FinalVersion[]>): (key: string) => readonly FinalVersion[] {
  return (key) => table[key] ?? [];
}

describe('virtual-time assertions', () => {
  // assertEventually returns once the predicate holds, and otherwise fails naming the seed.
  test('assertEventually', async () => {
    const scheduler = new SimScheduler({ seed: 11 });
    let done = false;
    scheduler.schedule(300, 'finish', () => (done = true));
    await assertEventually(scheduler, () => done, 1_000, 'finishes');
    expect(scheduler.elapsedMs()).toBe(300);
    await expect(assertEventually(scheduler, () => false, 200, 'pigs fly')).rejects.toThrow(
      /never true within 200 ms of virtual time \(from 300 ms\): pigs fly; seed 11/,
    );
    expect(scheduler.elapsedMs()).toBe(500);
  });

  // assertAlways checks after every event and reports the first moment the invariant breaks.
  test('assertAlways', async () => {
    const scheduler = new SimScheduler({ seed: 12 });
    let replicas = 3;
    scheduler.schedule(40, 'lose a replica', () => replicas--);
    await assertAlways(scheduler, () => (replicas === 3 ? undefined : `${replicas} replicas`), 30);
    await expect(assertAlways(scheduler, () => (replicas === 3 ? undefined : `${replicas} replicas`), 30)).rejects.toThrow(
      /invariant broken at 40 ms: 2 replicas; seed 12/,
    );
  });
});

describe('History', () => {
  // record notes invocation and completion times and the outcome of each client call.
  test('records operations', async () => {
    const { history, at } = manualHistory();
    at(5);
    const value = history.uniqueValue('c1');
    await history.record('c1', 'write', 'k', value, async () => {
      at(9);
      return 'STORED';
    });
    await history.record('c1', 'read', 'k', undefined, () => Promise.reject(new Error('quorum not met')));
    expect(history.uniqueValue('c1')).toBe('c1#2');
    expect(history.operations.map((operation) => [operation.kind, operation.outcome, operation.invokedAtMs, operation.completedAtMs])).toEqual([
      ['write', 'ok', 5, 9],
      ['read', 'failed', 9, 9],
    ]);
    expect(history.operations[1].error).toBe('quorum not met');
    expect(history.acknowledged('write')).toHaveLength(1);
  });
});

describe('lost writes', () => {
  const clockA: VClock = increment([], 'n1', 1);
  const clockB: VClock = increment(clockA, 'n2', 2);
  const clockC: VClock = increment([], 'n3', 3);

  // With clocks, a write survives exactly when some final version descends from its clock.
  test('uses clocks when it has them', () => {
    const { history } = manualHistory();
    const first = history.invoke('c1', 'write', 'k', 'v1');
    history.ok(first, { clock: clockA });
    const concurrent = history.invoke('c2', 'write', 'k', 'v2');
    history.ok(concurrent, { clock: clockC });
    // v1 superseded by a later version (clockB); v2, a concurrent sibling, was dropped.
    const lost = findLostOperations(history, finals({ k: [{ value: 'v3', clock: clockB }] }));
    expect(lost.map((loss) => loss.operation.value)).toEqual(['v2']);
    expect(findLostOperations(history, finals({ k: [{ value: 'v3', clock: clockB }, { value: 'v2', clock: clockC }] }))).toEqual([]);
  });

  // Without clocks, a write is lost when its value is gone and nothing could have replaced it.
  test('is conservative without clocks', () => {
    const { history, at } = manualHistory();
    at(0);
    const early = history.invoke('c1', 'write', 'k', 'v1');
    at(10);
    history.ok(early);
    at(20);
    const alone = history.invoke('c1', 'write', 'other', 'w1');
    at(30);
    history.ok(alone);
    expect(findLostOperations(history, finals({ k: [{ value: 'v1' }], other: [{ value: 'w1' }] }))).toEqual([]);
    expect(findLostOperations(history, finals({ k: [{ value: 'v1' }] })).map((loss) => loss.operation.value)).toEqual(['w1']);
    // A later write of k (even one that failed) may have superseded v1.
    at(40);
    history.fail(history.invoke('c2', 'write', 'k', 'v2'), new Error('timeout'));
    expect(findLostOperations(history, finals({ k: [], other: [{ value: 'w1' }] }))).toEqual([]);
  });

  // A delete is lost when a value acknowledged before it began comes back.
  test('finds resurrected values after a delete', () => {
    const { history, at } = manualHistory();
    at(0);
    const write = history.invoke('c1', 'write', 'k', 'v1');
    at(10);
    history.ok(write);
    at(20);
    const deletion = history.invoke('c1', 'delete', 'k');
    at(30);
    history.ok(deletion);
    expect(findLostOperations(history, finals({ k: [] }))).toEqual([]);
    expect(findLostOperations(history, finals({ k: [{ value: 'v1' }] })).map((loss) => loss.operation.kind)).toEqual(['delete']);
  });

  // The assertion lists what was lost and what appeared from nowhere, with the seed note.
  test('assertNoLostWrites explains failures', () => {
    const { history } = manualHistory();
    history.ok(history.invoke('c1', 'write', 'k', 'v1'));
    expect(() => assertNoLostWrites(history, finals({ k: [{ value: 'v1' }] }), 'seed 1')).not.toThrow();
    expect(() => assertNoLostWrites(history, finals({ k: [{ value: 'zz' }] }), 'seed 1')).toThrow(
      /1 acknowledged operation\(s\) lost:\n {2}- write k=v1 by c1 .*the key holds zz\n1 value\(s\) never written:\n {2}- k=zz\nseed 1/,
    );
  });
});

describe('convergence', () => {
  const version = (value: string, clock: VClock): Version => ({
    clock,
    value: Buffer.from(value),
    flags: 0,
    expiresAtMs: 0,
    tombstone: false,
    writtenAtMs: 1,
  });

  // Replicas agree when they hold the same versions in any order, and disagree otherwise.
  test('finds divergent keys', () => {
    const one = version('a', increment([], 'n1', 1));
    const two = version('b', increment([], 'n2', 1));
    const snapshots = new Map([
      ['n1', new Map([['k', canonicalVersions([one, two])], ['j', canonicalVersions([one])]])],
      ['n2', new Map([['k', canonicalVersions([two, one])], ['j', canonicalVersions([two])]])],
      ['n3', new Map([['k', canonicalVersions([one, two])]])],
    ]);
    expect(findDivergence(snapshots, () => ['n1', 'n2']).map((divergence) => divergence.key)).toEqual(['j']);
    expect(findDivergence(snapshots).map((divergence) => divergence.key)).toEqual(['j']);
    expect(() => assertConverged(snapshots, 'seed 5', () => ['n1', 'n2', 'n3'])).toThrow(/1 key\(s\) diverge.*\n {2}- j: n1=.*; n3=missing\nseed 5/);
  });
});
