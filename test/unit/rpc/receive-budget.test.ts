// The node-wide budget of partly received frames: reservations within the bound, granted in the order asked.
import { ReceiveBudget } from '../../../src/rpc/receive-budget';

it('grants within the bound and queues past it, granting in order as bytes are released', () => {
  const budget = new ReceiveBudget(100);
  const granted: string[] = [];
  expect(budget.reserve(60, () => granted.push('unexpected'))).toBe(true);
  expect(budget.reserve(30, () => granted.push('unexpected'))).toBe(true);
  expect(budget.reserve(50, () => granted.push('a'))).toBe(false);
  // A small request behind a waiting one waits too: nobody is starved by smaller frames.
  expect(budget.reserve(5, () => granted.push('b'))).toBe(false);
  expect(budget.waiters).toBe(2);
  budget.release(30);
  expect(granted).toEqual([]);
  budget.release(60);
  expect(granted).toEqual(['a', 'b']);
  expect(budget.reserved).toBe(55);
});

it('always grants one reservation when none is held, however large', () => {
  const budget = new ReceiveBudget(10);
  expect(budget.reserve(1000, () => undefined)).toBe(true);
  let granted = false;
  expect(budget.reserve(1000, () => (granted = true))).toBe(false);
  budget.release(1000);
  expect(granted).toBe(true);
  expect(budget.reserved).toBe(1000);
});

it('forgets a cancelled waiter', () => {
  const budget = new ReceiveBudget(10);
  budget.reserve(10, () => undefined);
  const gone = (): void => {
    throw new Error('a cancelled waiter is never granted');
  };
  budget.reserve(5, gone);
  budget.cancel(gone);
  budget.release(10);
  expect(budget.reserved).toBe(0);
  expect(budget.waiters).toBe(0);
});
