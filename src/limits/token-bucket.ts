/**
 * A token bucket, pure: time is an argument. Background work (repairs, handoff, anti-entropy)
 * takes tokens per key or per byte and waits or skips when there are none, so it never takes more
 * than its share of a node from the requests clients send.
 */
import { assert } from '../errors';

export class TokenBucket {
  private tokens: number;
  private updatedAtMs: number | undefined;

  /**
   * `ratePerSecond` tokens are added each second, up to `burst` (by default one second's worth).
   * A rate of Infinity never limits.
   */
  constructor(
    readonly ratePerSecond: number,
    readonly burst: number = ratePerSecond,
  ) {
    assert(ratePerSecond > 0, 'a token rate is positive');
    assert(burst > 0, 'a token burst is positive');
    this.tokens = burst;
  }

  private refill(nowMs: number): void {
    if (this.updatedAtMs !== undefined && nowMs > this.updatedAtMs) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.updatedAtMs) * this.ratePerSecond) / 1000);
    }
    if (this.updatedAtMs === undefined || nowMs > this.updatedAtMs) this.updatedAtMs = nowMs;
  }

  /** Takes `amount` tokens if there are that many; false (taking none) otherwise. */
  tryTake(nowMs: number, amount = 1): boolean {
    if (!Number.isFinite(this.ratePerSecond)) return true;
    this.refill(nowMs);
    if (this.tokens < amount) return false;
    this.tokens -= amount;
    return true;
  }

  /**
   * Takes `amount` tokens, going into debt if there are not enough, and returns how long to wait
   * before the debt is paid: for work that must go on but at a bounded rate (a batch larger than
   * the burst still goes, then the next waits longer).
   */
  take(nowMs: number, amount: number): number {
    if (!Number.isFinite(this.ratePerSecond)) return 0;
    this.refill(nowMs);
    this.tokens -= amount;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.ratePerSecond);
  }
}
