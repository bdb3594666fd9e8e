/**
 * When a store starts a new commit worker after losing one, and when it gives up. A worker lost
 * now and then (a crash of the thread, a fault of the native module) is replaced after a short
 * backoff that doubles with each loss in the window; a worker lost again and again within the
 * window means the store cannot commit (a damaged file, a disk gone), and the node must stop
 * storing and say so rather than stay half-alive.
 *
 * Pure: the caller passes the time of each loss.
 */
import { assert } from '../errors';

export interface CommitRestartPolicy {
  /** Restarts allowed within `windowMs`; the next loss within the window is final. */
  readonly restartsMax: number;
  readonly windowMs: number;
  /** The backoff before the first restart in a window; each further one waits twice as long. */
  readonly backoffMsMin: number;
  readonly backoffMsMax: number;
}

export const commitRestartPolicyDefault: CommitRestartPolicy = {
  restartsMax: 5,
  windowMs: 60_000,
  backoffMsMin: 100,
  backoffMsMax: 5_000,
};

export type RestartDecision =
  | { readonly restart: true; readonly delayMs: number }
  | { readonly restart: false; readonly lossesInWindow: number };

export class CommitRestarts {
  /** When the losses within the current window happened. */
  private lossesAtMs: number[] = [];
  /** Workers started to replace one lost. */
  restarts = 0;

  constructor(readonly policy: CommitRestartPolicy = commitRestartPolicyDefault) {
    assert(Number.isSafeInteger(policy.restartsMax) && policy.restartsMax >= 0, 'restartsMax >= 0');
    assert(policy.windowMs > 0 && policy.backoffMsMin > 0 && policy.backoffMsMax >= policy.backoffMsMin, 'restart timings are positive');
  }

  /** A worker was lost at `nowMs`: whether to start another, and after how long. */
  lost(nowMs: number): RestartDecision {
    this.lossesAtMs = this.lossesAtMs.filter((atMs) => nowMs - atMs < this.policy.windowMs);
    this.lossesAtMs.push(nowMs);
    const losses = this.lossesAtMs.length;
    if (losses > this.policy.restartsMax) return { restart: false, lossesInWindow: losses };
    this.restarts += 1;
    const delayMs = Math.min(this.policy.backoffMsMax, this.policy.backoffMsMin * 2 ** (losses - 1));
    return { restart: true, delayMs };
  }
}
