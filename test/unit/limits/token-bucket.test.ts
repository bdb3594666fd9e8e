import { TokenBucket } from '../../../src/limits/token-bucket';
import { checkProperty, ensure } from '../../support/property';

const startMs = 1_700_000_000_000;

describe('TokenBucket.tryTake', () => {
  // A new bucket holds one burst: that many single takes succeed at once, the next fails.
  test('starts full and empties', () => {
    const bucket = new TokenBucket(10);
    for (let i = 0; i < 10; i++) expect(bucket.tryTake(startMs)).toBe(true);
    expect(bucket.tryTake(startMs)).toBe(false);
  });

  // A refused take takes nothing: a smaller one that fits still succeeds.
  test('a refused take leaves the tokens there', () => {
    const bucket = new TokenBucket(10);
    expect(bucket.tryTake(startMs, 7)).toBe(true);
    expect(bucket.tryTake(startMs, 4)).toBe(false);
    expect(bucket.tryTake(startMs, 3)).toBe(true);
    expect(bucket.tryTake(startMs, 1)).toBe(false);
  });

  // Tokens come back at the rate: 10 per second is one per 100 ms, fractions included.
  test('refills at the rate', () => {
    const bucket = new TokenBucket(10);
    expect(bucket.tryTake(startMs, 10)).toBe(true);
    expect(bucket.tryTake(startMs + 99)).toBe(false);
    expect(bucket.tryTake(startMs + 100)).toBe(true);
    expect(bucket.tryTake(startMs + 100)).toBe(false);
    // 250 ms later: 2.5 tokens; two whole ones can be taken, a third not yet.
    expect(bucket.tryTake(startMs + 350, 2)).toBe(true);
    expect(bucket.tryTake(startMs + 350)).toBe(false);
    expect(bucket.tryTake(startMs + 400)).toBe(true);
  });

  // However long the bucket sits idle, it holds at most one burst.
  test('the burst caps what idle time accumulates', () => {
    const bucket = new TokenBucket(10, 3);
    expect(bucket.tryTake(startMs, 3)).toBe(true);
    expect(bucket.tryTake(startMs + 60_000, 4)).toBe(false);
    expect(bucket.tryTake(startMs + 60_000, 3)).toBe(true);
    expect(bucket.tryTake(startMs + 60_000)).toBe(false);
    // A burst larger than one second's worth lets a quiet bucket take more at once.
    const large = new TokenBucket(10, 50);
    expect(large.tryTake(startMs, 50)).toBe(true);
    expect(large.tryTake(startMs + 60_000, 51)).toBe(false);
    expect(large.tryTake(startMs + 60_000, 50)).toBe(true);
  });

  // A clock that steps back neither adds tokens nor moves the refill point back.
  test('time going backwards adds nothing', () => {
    const bucket = new TokenBucket(10);
    expect(bucket.tryTake(startMs, 10)).toBe(true);
    expect(bucket.tryTake(startMs - 5_000)).toBe(false);
    expect(bucket.tryTake(startMs + 99)).toBe(false);
    expect(bucket.tryTake(startMs + 100)).toBe(true);
  });

  // Over random takes, no window of time lets more through than one burst plus the rate times its length.
  test('property: takes never exceed burst plus rate times elapsed time', () => {
    checkProperty(60, (random) => {
      const ratePerSecond = random.pick([1, 5, 100, 1000]);
      const burst = random.pick([ratePerSecond, ratePerSecond / 2, ratePerSecond * 3]);
      const bucket = new TokenBucket(ratePerSecond, burst);
      let nowMs = startMs;
      let taken = 0;
      for (let i = 0; i < 500; i++) {
        nowMs += random.int(0, 50);
        const amount = random.int(1, Math.max(1, Math.ceil(burst / 2)));
        if (bucket.tryTake(nowMs, amount)) taken += amount;
        const allowed = burst + ((nowMs - startMs) * ratePerSecond) / 1000;
        ensure(taken <= allowed + 1e-9, `took ${taken} by ${nowMs - startMs} ms, at most ${allowed} allowed`);
      }
    });
  });
});

describe('TokenBucket.take', () => {
  // Within the tokens there is nothing to wait for.
  test('no wait while tokens last', () => {
    const bucket = new TokenBucket(10);
    expect(bucket.take(startMs, 4)).toBe(0);
    expect(bucket.take(startMs, 6)).toBe(0);
  });

  // Past the tokens, the take still happens, and the wait is how long the rate takes to pay the debt.
  test('goes into debt and says how long to wait', () => {
    const bucket = new TokenBucket(10);
    expect(bucket.take(startMs, 15)).toBe(500);
    // The debt is paid after the wait, no earlier: nothing can be taken before then.
    expect(bucket.tryTake(startMs + 499, 0.001)).toBe(false);
    expect(bucket.tryTake(startMs + 500, 0)).toBe(true);
    expect(bucket.tryTake(startMs + 500, 0.001)).toBe(false);
    expect(bucket.tryTake(startMs + 600)).toBe(true);
  });

  // Debt accumulates: each take past the tokens waits for all the debt before it, rounded up to a ms.
  test('successive takes wait longer', () => {
    const bucket = new TokenBucket(10);
    expect(bucket.take(startMs, 10)).toBe(0);
    expect(bucket.take(startMs, 1)).toBe(100);
    expect(bucket.take(startMs, 1)).toBe(200);
    expect(bucket.take(startMs + 200, 1)).toBe(100);
    const thirds = new TokenBucket(3);
    expect(thirds.take(startMs, 4)).toBe(334);
  });

  // A batch larger than the burst still goes; the refill after the debt is capped at the burst as usual.
  test('a take larger than the burst goes at once, then the bucket refills to the burst', () => {
    const bucket = new TokenBucket(100, 10);
    expect(bucket.take(startMs, 60)).toBe(500);
    expect(bucket.take(startMs + 500, 0)).toBe(0);
    expect(bucket.tryTake(startMs + 10_000, 10)).toBe(true);
    expect(bucket.tryTake(startMs + 10_000, 0.5)).toBe(false);
  });
});

describe('TokenBucket limits', () => {
  // A rate of Infinity never limits nor waits, whatever the amount.
  test('an infinite rate never limits', () => {
    const bucket = new TokenBucket(Infinity);
    for (let i = 0; i < 1000; i++) expect(bucket.tryTake(startMs, 1e12)).toBe(true);
    expect(bucket.take(startMs, 1e15)).toBe(0);
    expect(bucket.take(startMs, 1e15)).toBe(0);
  });

  // A rate or burst that is not positive is a programmer error.
  test('refuses rates and bursts that are not positive', () => {
    expect(() => new TokenBucket(0)).toThrow(/assertion failed/);
    expect(() => new TokenBucket(-1)).toThrow(/assertion failed/);
    expect(() => new TokenBucket(10, 0)).toThrow(/assertion failed/);
    expect(() => new TokenBucket(10, -5)).toThrow(/assertion failed/);
  });
});
