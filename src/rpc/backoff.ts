/**
 * How long a peer connection waits before trying again after consecutive failures: exponential,
 * capped, with jitter so that the nodes of a cluster that lost the same peer do not all come
 * back to it in the same instant. Pure: the random number is an argument.
 */

export interface BackoffLimits {
  /** The wait after the first failure, before jitter. */
  readonly backoffBaseMs: number;
  /** No wait is longer than this, whatever the number of failures. */
  readonly backoffMaxMs: number;
}

export const defaultBackoffLimits: BackoffLimits = { backoffBaseMs: 50, backoffMaxMs: 5_000 };

/** Doublings past which the cap is reached for any sane base; bounds the exponent. */
const doublingsMax = 30;

/**
 * The wait after `consecutiveFailures` (1 or more) failures, given `random01` in [0, 1). Half of
 * the exponential wait is fixed and half is random ("equal jitter"): the wait never drops to
 * nothing, so a peer that is down keeps failing fast instead of being dialled again at once.
 */
export function reconnectDelayMs(consecutiveFailures: number, random01: number, limits: BackoffLimits): number {
  const doublings = Math.min(Math.max(consecutiveFailures - 1, 0), doublingsMax);
  const ceilingMs = Math.min(limits.backoffMaxMs, limits.backoffBaseMs * 2 ** doublings);
  return Math.round(ceilingMs / 2 + (ceilingMs / 2) * random01);
}
