import { Pacer } from '../../../src/limits/pacer';
import { ManualEnv } from '../../support/manual-env';

/** Lets settled promises run their callbacks. */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Tracks whether a promise has resolved yet. */
function tracked(promise: Promise<void>): { readonly done: () => boolean } {
  let done = false;
  void promise.then(() => (done = true));
  return { done: () => done };
}

/** Advances the env by `deltaMs` and lets resolved waits run. */
async function advance(env: ManualEnv, deltaMs: number): Promise<void> {
  env.advance(deltaMs);
  await flushMicrotasks();
}

let env: ManualEnv;

beforeEach(() => {
  env = new ManualEnv();
});

// Steps within both budgets go at once, without arming a timer.
test('steps within the budgets resolve at once', async () => {
  const pacer = new Pacer(env, 10, 1000);
  const step = tracked(pacer.pace(5, 500));
  const empty = tracked(pacer.pace(0, 0));
  await flushMicrotasks();
  expect(step.done()).toBe(true);
  expect(empty.done()).toBe(true);
  expect(env.pendingTimers).toBe(0);
});

// Past the keys budget, a step resolves only once the Env's time has advanced by the debt.
test('the keys budget holds a step back until its time has passed', async () => {
  const pacer = new Pacer(env, 10, 1_000_000);
  const burst = tracked(pacer.pace(10, 0));
  const step = tracked(pacer.pace(5, 0));
  await flushMicrotasks();
  expect(burst.done()).toBe(true);
  expect(step.done()).toBe(false);
  await advance(env, 499);
  expect(step.done()).toBe(false);
  await advance(env, 1);
  expect(step.done()).toBe(true);
});

// Past the bytes budget the same: 3000 bytes at 1000 per second with a burst of 1000 wait 2 s.
test('the bytes budget holds a step back until its time has passed', async () => {
  const pacer = new Pacer(env, 1_000_000, 1000);
  const step = tracked(pacer.pace(1, 3000));
  await advance(env, 1999);
  expect(step.done()).toBe(false);
  await advance(env, 1);
  expect(step.done()).toBe(true);
});

// The step waits for the slower of the two budgets.
test('a step waits for the longer of the two waits', async () => {
  const pacer = new Pacer(env, 10, 1000);
  // Keys: 20 at 10/s from a burst of 10 is 1 s of debt; bytes: 1500 at 1000/s from 1000 is 0.5 s.
  const step = tracked(pacer.pace(20, 1500));
  await advance(env, 999);
  expect(step.done()).toBe(false);
  await advance(env, 1);
  expect(step.done()).toBe(true);
});

// A large step goes, and the next waits for its debt too: the rate holds over a sequence of steps.
test('the debt of a large step delays the next one', async () => {
  const pacer = new Pacer(env, 100, 1_000_000);
  const first = tracked(pacer.pace(150, 0));
  const second = tracked(pacer.pace(50, 0));
  await advance(env, 499);
  expect(first.done()).toBe(false);
  await advance(env, 1);
  expect(first.done()).toBe(true);
  expect(second.done()).toBe(false);
  await advance(env, 500);
  expect(second.done()).toBe(true);
  // By then the debt is paid, and 100 keys later the bucket is full again.
  await advance(env, 1000);
  const third = tracked(pacer.pace(100, 0));
  await flushMicrotasks();
  expect(third.done()).toBe(true);
});

// Rates of Infinity never hold anything back.
test('infinite rates never wait', async () => {
  const pacer = new Pacer(env, Infinity, Infinity);
  const steps = Array.from({ length: 100 }, () => tracked(pacer.pace(1e9, 1e12)));
  await flushMicrotasks();
  expect(steps.every((step) => step.done())).toBe(true);
  expect(env.pendingTimers).toBe(0);
});
