import {
  compare,
  contextNumber,
  defaultPruneLimits,
  descends,
  emptyClock,
  increment,
  merge,
  prune,
  reconcile,
  type ClockEntry,
  type PruneLimits,
  type VClock,
} from '../../../src/vclock';

function clockOf(...entries: Array<[string, number, number?]>): VClock {
  return entries.map(([node, counter, timestampMs = 0]) => ({ node, counter, timestampMs }));
}

// descends is a >= b: every counter of b is matched or exceeded in a.
test('descends', () => {
  const a = clockOf(['n1', 2], ['n2', 1]);
  expect(descends(a, emptyClock)).toBe(true);
  expect(descends(emptyClock, emptyClock)).toBe(true);
  expect(descends(emptyClock, a)).toBe(false);
  expect(descends(a, a)).toBe(true);
  expect(descends(a, clockOf(['n1', 1]))).toBe(true);
  expect(descends(a, clockOf(['n1', 2], ['n2', 1], ['n3', 1]))).toBe(false);
  expect(descends(a, clockOf(['n2', 2]))).toBe(false);
  // Entry order does not matter.
  expect(descends(clockOf(['n2', 1], ['n1', 2]), a)).toBe(true);
});

// compare gives all four orders, symmetric, and ignores timestamps.
test('compare', () => {
  const base = clockOf(['n1', 1]);
  const later = clockOf(['n1', 2]);
  const other = clockOf(['n2', 1]);
  expect(compare(base, clockOf(['n1', 1, 999]))).toBe('equal');
  expect(compare(emptyClock, emptyClock)).toBe('equal');
  expect(compare(base, later)).toBe('before');
  expect(compare(later, base)).toBe('after');
  expect(compare(emptyClock, base)).toBe('before');
  expect(compare(base, other)).toBe('concurrent');
  expect(compare(other, base)).toBe('concurrent');
  expect(compare(clockOf(['n1', 2], ['n2', 1]), clockOf(['n1', 1], ['n2', 2]))).toBe('concurrent');
});

// merge is the least upper bound: max counter per node, later timestamp on a tie, sorted by node.
test('merge', () => {
  const a = clockOf(['n2', 3, 30], ['n1', 1, 10]);
  const b = clockOf(['n1', 2, 5], ['n3', 1, 7]);
  const c = clockOf(['n2', 3, 40]);
  const merged = merge([a, b, c]);
  expect(merged).toEqual(clockOf(['n1', 2, 5], ['n2', 3, 40], ['n3', 1, 7]));
  for (const clock of [a, b, c]) expect(descends(merged, clock)).toBe(true);
  expect(merge([c, b, a])).toEqual(merged);
  expect(merge([])).toEqual([]);
  expect(merge([a, a])).toEqual(clockOf(['n1', 1, 10], ['n2', 3, 30]));
});

// increment advances only the named node, stamps it, and leaves the input untouched.
test('increment', () => {
  const start = clockOf(['n1', 4, 100], ['n2', 1, 50]);
  const snapshot = JSON.stringify(start);
  const next = increment(start, 'n1', 200);
  expect(next).toEqual(clockOf(['n1', 5, 200], ['n2', 1, 50]));
  expect(compare(next, start)).toBe('after');
  expect(JSON.stringify(start)).toBe(snapshot);
  expect(increment(emptyClock, 'n9', 7)).toEqual(clockOf(['n9', 1, 7]));
  expect(increment(start, 'n0', 300)).toEqual(clockOf(['n0', 1, 300], ['n1', 4, 100], ['n2', 1, 50]));
});

describe('prune', () => {
  const limits: PruneLimits = { entriesMin: 2, entriesMax: 4, youngMs: 100, oldMs: 1000 };
  const nowMs = 1_000_000;
  /** A clock whose entries n0, n1, ... were last updated the given number of ms ago. */
  function agedClock(...agesMs: number[]): VClock {
    return agesMs.map((ageMs, index) => ({ node: `n${index}`, counter: 1, timestampMs: nowMs - ageMs }));
  }
  const nodes = (clock: VClock): string[] => clock.map((entry) => entry.node);

  // Riak's defaults: small_vclock 50, big_vclock 50, young 20 s, old one day.
  test('defaults are riak defaults', () => {
    expect(defaultPruneLimits).toEqual({ entriesMin: 50, entriesMax: 50, youngMs: 20_000, oldMs: 86_400_000 });
  });

  // A small clock is never pruned, however old its entries.
  test('small clocks are kept', () => {
    const clock = agedClock(5000, 9000);
    expect(prune(clock, nowMs, limits)).toEqual(clock);
  });

  // Between small and big, entries older than oldMs are dropped, oldest first, but not below small.
  test('old entries are dropped down to entriesMin', () => {
    expect(nodes(prune(agedClock(2000, 3000, 50), nowMs, limits))).toEqual(['n0', 'n2']);
    expect(nodes(prune(agedClock(2000, 3000, 4000), nowMs, limits))).toEqual(['n0', 'n1']);
    expect(nodes(prune(agedClock(2000, 3000, 4000, 1500), nowMs, limits))).toEqual(['n0', 'n3']);
  });

  // Between small and big, entries neither old nor past the cap are kept.
  test('entries younger than oldMs are kept within entriesMax', () => {
    const clock = agedClock(500, 999, 1000, 10);
    expect(prune(clock, nowMs, limits)).toEqual(clock);
  });

  // Past big, the oldest entries go until the clock is back at entriesMax, then old ones still go.
  test('big clocks are cut to entriesMax, oldest first', () => {
    expect(nodes(prune(agedClock(500, 600, 700, 800, 900, 400), nowMs, limits))).toEqual(['n0', 'n1', 'n2', 'n5']);
    expect(nodes(prune(agedClock(500, 600, 5000, 800, 900, 4000), nowMs, limits))).toEqual(['n0', 'n1', 'n3', 'n4']);
    expect(nodes(prune(agedClock(5000, 6000, 7000, 8000, 9000, 10), nowMs, limits))).toEqual(['n0', 'n5']);
  });

  // entriesMax is a hard bound: unlike riak, young entries do not hold a clock above it.
  test('young entries do not hold a clock above entriesMax', () => {
    expect(prune(agedClock(1, 2, 3, 4, 5, 6), nowMs, limits)).toHaveLength(4);
    expect(nodes(prune(agedClock(1, 2, 3, 4, 5, 6), nowMs, limits))).toEqual(['n0', 'n1', 'n2', 'n3']);
  });

  // When youngMs exceeds oldMs, a young oldest entry stops pruning within entriesMax.
  test('young entries are kept within entriesMax', () => {
    const generous: PruneLimits = { ...limits, youngMs: 5000 };
    expect(prune(agedClock(2000, 3000, 4000), nowMs, generous)).toHaveLength(3);
    expect(prune(agedClock(2000, 3000, 6000), nowMs, generous)).toHaveLength(2);
  });

  // Timestamp ties are broken by node name, so every replica prunes the same entries.
  test('ties drop the smaller node name first', () => {
    const tied: VClock = ['d', 'b', 'a', 'c'].map((node) => ({ node, counter: 1, timestampMs: 0 }));
    expect(nodes(prune(tied, nowMs, limits))).toEqual(['c', 'd']);
  });
});

interface TestVersion {
  readonly clock: VClock;
  readonly writtenAtMs: number;
  readonly name: string;
}

function version(name: string, clock: VClock, writtenAtMs = 0): TestVersion {
  return { name, clock, writtenAtMs };
}

function names(versions: readonly TestVersion[]): string[] {
  return versions.map((v) => v.name).sort();
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, index) =>
    permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [item, ...rest]),
  );
}

describe('reconcile', () => {
  // A version whose clock another version's clock dominates is dropped.
  test('dominated versions are dropped', () => {
    const old = version('old', clockOf(['a', 1]));
    const newer = version('newer', clockOf(['a', 2]));
    expect(names(reconcile([old, newer]))).toEqual(['newer']);
    expect(names(reconcile([newer, old]))).toEqual(['newer']);
  });

  // Concurrent versions are all kept as siblings.
  test('concurrent versions are kept', () => {
    const left = version('left', clockOf(['a', 2], ['b', 1]));
    const right = version('right', clockOf(['a', 1], ['b', 2]));
    const third = version('third', clockOf(['c', 1]));
    expect(names(reconcile([left, right, third]))).toEqual(['left', 'right', 'third']);
  });

  // Equal clocks are one write seen twice: one copy is kept, the later-written one.
  test('equal clocks are deduplicated keeping the later write', () => {
    const first = version('first', clockOf(['a', 1]), 10);
    const second = version('second', clockOf(['a', 1]), 20);
    expect(names(reconcile([first, second]))).toEqual(['second']);
    expect(names(reconcile([second, first]))).toEqual(['second']);
    expect(names(reconcile([first, first]))).toEqual(['first']);
  });

  // A version that dominates several siblings replaces all of them.
  test('a descendant replaces every sibling it has seen', () => {
    const left = version('left', clockOf(['a', 1]));
    const right = version('right', clockOf(['b', 1]));
    const resolved = version('resolved', clockOf(['a', 2], ['b', 1]));
    expect(names(reconcile([left, right, resolved]))).toEqual(['resolved']);
  });

  // The result is the same set whatever order the versions arrive in.
  test('order independence', () => {
    const all = [
      version('a1', clockOf(['a', 1]), 1),
      version('a2', clockOf(['a', 2]), 2),
      version('b1', clockOf(['b', 1]), 3),
      version('b1-again', clockOf(['b', 1]), 4),
      version('a2b1', clockOf(['a', 2], ['b', 1]), 5),
      version('c1', clockOf(['c', 1]), 6),
      version('a1c2', clockOf(['a', 1], ['c', 2]), 7),
    ];
    const expected = ['a1c2', 'a2b1'];
    const results = new Set(permutations(all).map((order) => names(reconcile(order)).join(',')));
    expect([...results]).toEqual([expected.join(',')]);
  });

  // No versions reconcile to none.
  test('empty input', () => {
    expect(reconcile([])).toEqual([]);
  });
});

describe('contextNumber', () => {
  const clock = clockOf(['a', 3, 1000], ['b', 1, 2000]);

  // The same context always has the same number, whatever the entry order.
  test('stable and order-independent', () => {
    expect(contextNumber(clock)).toBe(contextNumber(clockOf(['b', 1, 2000], ['a', 3, 1000])));
    expect(contextNumber(clock)).toBe(contextNumber(clock));
  });

  // The number fits in 53 bits, so a JavaScript client reads it exactly, and is never 0.
  test('positive and below 2^53', () => {
    const outOfRange: bigint[] = [];
    for (let i = 0; i < 2000; i++) {
      const number = contextNumber(clockOf([`node-${i % 7}`, i, i * 13]));
      if (number <= 0n || number >= 1n << 53n) outOfRange.push(number);
    }
    expect(outOfRange).toEqual([]);
    expect(contextNumber(emptyClock) > 0n).toBe(true);
  });

  // Different counters or timestamps name different contexts.
  test('differs when counters or timestamps differ', () => {
    const seen = new Set<bigint>();
    for (let counter = 1; counter <= 50; counter++) {
      for (let timestampMs = 0; timestampMs < 50; timestampMs++) {
        seen.add(contextNumber([{ node: 'a', counter, timestampMs } satisfies ClockEntry]));
      }
    }
    expect(seen.size).toBe(2500);
    expect(contextNumber(clock)).not.toBe(contextNumber(clockOf(['a', 3, 1001], ['b', 1, 2000])));
    expect(contextNumber(clock)).not.toBe(contextNumber(clockOf(['a', 4, 1000], ['b', 1, 2000])));
    expect(contextNumber(clock)).not.toBe(contextNumber(clockOf(['a', 3, 1000])));
  });
});
