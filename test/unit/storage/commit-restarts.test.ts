// The commit worker restart policy: backoff doubling within the window, a bounded number of restarts, and a window that forgets old losses.
import { CommitRestarts } from '../../../src/storage/commit-restarts';

const policy = { restartsMax: 3, windowMs: 10_000, backoffMsMin: 100, backoffMsMax: 300 };

test('losses within the window restart with a doubling, capped backoff, then give up', () => {
  const restarts = new CommitRestarts(policy);
  expect(restarts.lost(0)).toEqual({ restart: true, delayMs: 100 });
  expect(restarts.lost(1000)).toEqual({ restart: true, delayMs: 200 });
  expect(restarts.lost(2000)).toEqual({ restart: true, delayMs: 300 });
  expect(restarts.lost(3000)).toEqual({ restart: false, lossesInWindow: 4 });
  expect(restarts.restarts).toBe(3);
});

test('losses older than the window no longer count', () => {
  const restarts = new CommitRestarts(policy);
  for (const atMs of [0, 1000, 2000]) expect(restarts.lost(atMs).restart).toBe(true);
  // The first three are over 10 s old: this loss is the first of a new window.
  expect(restarts.lost(12_500)).toEqual({ restart: true, delayMs: 100 });
  expect(restarts.restarts).toBe(4);
});

test('with no restarts allowed, the first loss is final', () => {
  expect(new CommitRestarts({ ...policy, restartsMax: 0 }).lost(0)).toEqual({ restart: false, lossesInWindow: 1 });
});
