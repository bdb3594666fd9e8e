/**
 * Paces background work by two budgets at once, keys per second and bytes per second: `pace`
 * takes the tokens a step needs and resolves once the budgets allow it, through the Env's timers.
 */
import type { Env } from '../env';
import { TokenBucket } from './token-bucket';

export class Pacer {
  private readonly keysRate: TokenBucket;
  private readonly bytesRate: TokenBucket;

  constructor(
    private readonly env: Env,
    keysPerSecond: number,
    bytesPerSecond: number,
  ) {
    this.keysRate = new TokenBucket(keysPerSecond);
    this.bytesRate = new TokenBucket(bytesPerSecond);
  }

  /** Waits until `keys` keys and `bytes` bytes fit the budgets (a large step goes, and the next waits longer). */
  pace(keys: number, bytes: number): Promise<void> {
    const nowMs = this.env.nowMs();
    const waitMs = Math.max(keys > 0 ? this.keysRate.take(nowMs, keys) : 0, bytes > 0 ? this.bytesRate.take(nowMs, bytes) : 0);
    if (waitMs === 0) return Promise.resolve();
    return new Promise((resolve) => this.env.after(waitMs, resolve));
  }
}
