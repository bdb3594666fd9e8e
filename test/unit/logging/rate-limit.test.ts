// The log rate limiter: the first lines of a key per interval, then counted suppression and one summary per interval, keys bounded.
import { LogRateLimiter, overflowKey } from '../../../src/logging/rate-limit';

const limit = { linesPerInterval: 3, intervalMs: 1000, keysMax: 2 };

test('a key writes its first lines per interval; the rest are suppressed, counted and summarized once the interval is over', () => {
  const limiter = new LogRateLimiter<string>(limit);
  const written = Array.from({ length: 10 }, (_, index) => limiter.admit('bad frame', 100 + index, `summary ${index}`).write);
  expect(written).toEqual([true, true, true, false, false, false, false, false, false, false]);
  expect(limiter.suppressedTotal).toBe(7);
  expect(limiter.sweep(1099)).toEqual([]);
  expect(limiter.sweep(1100)).toEqual([{ key: 'bad frame', count: 7, summary: 'summary 9' }]);
  // A new interval starts afresh, and the swept one is not summarized twice.
  expect(limiter.admit('bad frame', 1200, 'next').write).toBe(true);
  expect(limiter.sweep(5000)).toEqual([]);
});

test('a line after the interval, before any sweep, brings back the ended interval to summarize first', () => {
  const limiter = new LogRateLimiter<string>(limit);
  for (let index = 0; index < 5; index++) limiter.admit('k', 0, 'k summary');
  const outcome = limiter.admit('k', 1000, 'k again');
  expect(outcome).toEqual({ write: true, ended: { key: 'k', count: 2, summary: 'k summary' } });
  expect(limiter.sweep(1500)).toEqual([]);
});

test('keys are independent, and past keysMax further keys share one overflow key', () => {
  const limiter = new LogRateLimiter<string>(limit);
  for (let index = 0; index < 4; index++) limiter.admit('a', 0, 'a');
  expect(limiter.admit('b', 0, 'b').write).toBe(true);
  // 'a' and 'b' fill the table: 'c' and 'd' share the overflow key and its budget.
  const overflow = ['c', 'd', 'c', 'd'].map((key) => limiter.admit(key, 0, key).write);
  expect(overflow).toEqual([true, true, true, false]);
  expect(limiter.drain().map((ended) => [ended.key, ended.count])).toEqual([
    ['a', 1],
    [overflowKey, 1],
  ]);
  expect(limiter.drain()).toEqual([]);
});
