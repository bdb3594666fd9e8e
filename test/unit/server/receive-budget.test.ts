// The receive budget: partly received requests are bounded node-wide beyond a small allowance per
// connection, asked for before they are read, never starved once granted, and all returned on close.
import type { AdmissionWaiter } from '../../../src/server/admission';
import {
  ReceiveBudget,
  newReceiveAccount,
  receiveAllowanceBytesPerConnection as allowance,
  type ReceiveAccount,
} from '../../../src/server/receive-budget';

const mib = 1024 * 1024;

interface TestConnection {
  readonly account: ReceiveAccount;
  readonly waiter: AdmissionWaiter;
}

function connection(resumed: string[], name: string, onResume?: () => void): TestConnection {
  return {
    account: newReceiveAccount(),
    waiter: {
      resumeAfterAdmission: () => {
        resumed.push(name);
        onResume?.();
      },
    },
  };
}

test('small requests within the allowance always go on, whatever the others hold', () => {
  const budget = new ReceiveBudget(mib);
  const resumed: string[] = [];
  const big = connection(resumed, 'big');
  expect(budget.settle(big.account, 0, mib + allowance, big.waiter)).toBe(true);
  const small = connection(resumed, 'small');
  expect(budget.settle(small.account, 100, 100, small.waiter)).toBe(true);
  expect(budget.settle(small.account, allowance, allowance, small.waiter)).toBe(true);
  expect(budget.bytesHeld).toBe(mib + 2 * allowance);
  expect(budget.waits).toBe(0);
});

test('a request the budget cannot grant waits before it is read, and goes on once bytes come back', () => {
  const budget = new ReceiveBudget(2 * mib);
  const resumed: string[] = [];
  const first = connection(resumed, 'first');
  const second = connection(resumed, 'second');
  expect(budget.settle(first.account, 0, 2 * mib, first.waiter)).toBe(true);
  // Only the bytes already received are counted for the one that waits.
  expect(budget.settle(second.account, 200, mib, second.waiter)).toBe(false);
  expect(second.account.chargedBytes).toBe(200);
  expect(budget.waits).toBe(1);
  // The first request is decoded: its bytes come back and the second is told.
  expect(budget.settle(first.account, 0, 0, first.waiter)).toBe(true);
  expect(resumed).toEqual(['second']);
  expect(budget.settle(second.account, 200, mib, second.waiter)).toBe(true);
  expect(budget.bytesHeld).toBe(mib);
});

test('a granted request is never refused part way: bytes already granted stay granted', () => {
  const budget = new ReceiveBudget(mib);
  const resumed: string[] = [];
  const holder = connection(resumed, 'holder');
  expect(budget.settle(holder.account, 10, mib, holder.waiter)).toBe(true);
  const other = connection(resumed, 'other');
  expect(budget.settle(other.account, 0, mib, other.waiter)).toBe(false);
  // The holder keeps receiving its value: each step stays within what it was granted.
  for (const held of [64 * 1024, mib / 2, mib]) expect(budget.settle(holder.account, held, mib, holder.waiter)).toBe(true);
});

test('bytes waiting connections read before they asked never keep a grant from others', () => {
  // Regression: 200 clients each read 64 KiB into a value past their allowance; counted against
  // the budget, those bytes alone filled it and no one was ever woken again.
  const budget = new ReceiveBudget(mib);
  const resumed: string[] = [];
  const waiting: TestConnection[] = [];
  for (let index = 0; index < 50; index++) {
    const each: TestConnection = connection(resumed, `w${index}`, () => budget.settle(each.account, 64 * 1024, mib, each.waiter));
    waiting.push(each);
  }
  const holder = connection(resumed, 'holder');
  expect(budget.settle(holder.account, 0, mib, holder.waiter)).toBe(true);
  for (const each of waiting) expect(budget.settle(each.account, 64 * 1024, mib, each.waiter)).toBe(false);
  expect(budget.bytesHeld).toBe(mib + 50 * 64 * 1024);
  budget.close(holder.account, holder.waiter);
  expect(resumed).toEqual(['w0']);
});

test('a request larger than the whole budget still goes when nothing else is granted', () => {
  const budget = new ReceiveBudget(mib);
  const resumed: string[] = [];
  const alone = connection(resumed, 'alone');
  expect(budget.settle(alone.account, 0, 4 * mib, alone.waiter)).toBe(true);
});

test('a closed connection gives back all it held and stops waiting', () => {
  const budget = new ReceiveBudget(mib);
  const resumed: string[] = [];
  const holder = connection(resumed, 'holder');
  const waiting = connection(resumed, 'waiting');
  const gone = connection(resumed, 'gone');
  budget.settle(holder.account, mib, mib, holder.waiter);
  expect(budget.settle(gone.account, 1000, mib, gone.waiter)).toBe(false);
  expect(budget.settle(waiting.account, 1000, mib, waiting.waiter)).toBe(false);
  budget.close(gone.account, gone.waiter);
  expect(gone.account.chargedBytes).toBe(0);
  expect(resumed).toEqual([]);
  budget.close(holder.account, holder.waiter);
  expect(resumed).toEqual(['waiting']);
  budget.close(waiting.account, waiting.waiter);
  expect(budget.bytesHeld).toBe(0);
  expect(budget.bytesGranted).toBe(0);
});

test('waiters are woken oldest first while what each asked for fits, each seeing the grants before it', () => {
  const budget = new ReceiveBudget(3 * mib);
  const resumed: string[] = [];
  const holder = connection(resumed, 'holder');
  budget.settle(holder.account, 0, 3 * mib + allowance, holder.waiter);
  const waiters: TestConnection[] = [];
  for (let index = 0; index < 4; index++) {
    // A woken connection asks again at once, as a connection's pump does.
    const each: TestConnection = connection(resumed, `w${index}`, () => budget.settle(each.account, 0, mib + allowance, each.waiter));
    waiters.push(each);
    expect(budget.settle(each.account, 0, mib + allowance, each.waiter)).toBe(false);
  }
  budget.settle(holder.account, 0, mib + allowance, holder.waiter);
  // Two megabytes came back: the two oldest are granted, and the pass stops at the third.
  expect(resumed).toEqual(['w0', 'w1']);
  expect(budget.bytesGranted).toBe(3 * mib);
});
