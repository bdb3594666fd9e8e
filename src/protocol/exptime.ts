/**
 * memcached's reading of an exptime: 0 never expires, up to 30 days is relative to now, beyond is
 * an absolute unix time, and a negative value means already expired.
 */
export const relativeExptimeSecondsMax = 60 * 60 * 24 * 30;

/** An absolute expiry in unix ms (0 for never); an already-expired item gets 1, the earliest instant. */
export function expiresAtMsOf(exptime: number, nowMs: number): number {
  if (exptime === 0) return 0;
  if (exptime < 0) return 1;
  if (exptime > relativeExptimeSecondsMax) return Math.max(1, exptime * 1000);
  return nowMs + exptime * 1000;
}
