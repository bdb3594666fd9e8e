/**
 * Rate limiting of repeated log lines, per key (kai keys a line by its level and message). In
 * each interval a key writes its first few lines; the rest are suppressed and counted, and one
 * summary line says how many once the interval is over. A peer or client that sends one bad
 * frame after another thus costs a few lines per interval, not one line per frame.
 *
 * Pure bookkeeping: time is an argument, and the caller writes the lines and runs the sweep.
 */
import { assert } from '../errors';

export interface LogRateLimit {
  /** Lines one key writes per interval; more are suppressed. */
  readonly linesPerInterval: number;
  readonly intervalMs: number;
  /** Keys tracked at once; lines of further keys share one overflow key. */
  readonly keysMax: number;
}

export const logRateLimitDefault: LogRateLimit = { linesPerInterval: 10, intervalMs: 10_000, keysMax: 1024 };

/** The key that lines share once `keysMax` keys are tracked. */
export const overflowKey = '(other messages)';

/** Lines a key suppressed during an interval now over, for its summary line. */
export interface Suppressed<Summary> {
  readonly key: string;
  readonly count: number;
  /** What the caller attached to the key's last suppressed line: how to write the summary. */
  readonly summary: Summary;
}

interface Window<Summary> {
  readonly startMs: number;
  lines: number;
  suppressed: number;
  summary: Summary | undefined;
}

export class LogRateLimiter<Summary> {
  private readonly windows = new Map<string, Window<Summary>>();
  /** Lines suppressed since the limiter was made. */
  suppressedTotal = 0;

  constructor(readonly limit: LogRateLimit = logRateLimitDefault) {
    assert(Number.isSafeInteger(limit.linesPerInterval) && limit.linesPerInterval > 0, 'linesPerInterval > 0');
    assert(Number.isSafeInteger(limit.intervalMs) && limit.intervalMs > 0, 'intervalMs > 0');
    assert(Number.isSafeInteger(limit.keysMax) && limit.keysMax > 0, 'keysMax > 0');
  }

  /**
   * Whether a line of `key` is written now. A suppressed line leaves `summary`, which the sweep
   * hands back once the interval is over. When the key's previous interval ended with lines
   * suppressed and the sweep has not run yet, those come back in `ended`, to be summarized first.
   */
  admit(key: string, nowMs: number, summary: Summary): { readonly write: boolean; readonly ended?: Suppressed<Summary> } {
    const trackedKey = this.windows.has(key) || this.windows.size < this.limit.keysMax ? key : overflowKey;
    let window = this.windows.get(trackedKey);
    let ended: Suppressed<Summary> | undefined;
    if (window !== undefined && nowMs - window.startMs >= this.limit.intervalMs) {
      ended = suppressedOf(trackedKey, window);
      window = undefined;
    }
    if (window === undefined) {
      window = { startMs: nowMs, lines: 0, suppressed: 0, summary: undefined };
      this.windows.set(trackedKey, window);
    }
    if (window.lines < this.limit.linesPerInterval) {
      window.lines += 1;
      return ended === undefined ? { write: true } : { write: true, ended };
    }
    window.suppressed += 1;
    window.summary = summary;
    this.suppressedTotal += 1;
    return ended === undefined ? { write: false } : { write: false, ended };
  }

  /** Forgets the intervals over by `nowMs`; returns those that suppressed lines, for their summaries. */
  sweep(nowMs: number): Suppressed<Summary>[] {
    const ended: Suppressed<Summary>[] = [];
    for (const [key, window] of this.windows) {
      if (nowMs - window.startMs < this.limit.intervalMs) continue;
      this.windows.delete(key);
      const suppressed = suppressedOf(key, window);
      if (suppressed !== undefined) ended.push(suppressed);
    }
    return ended;
  }

  /** Every interval, over or not, that suppressed lines: for a last summary at close. */
  drain(): Suppressed<Summary>[] {
    const ended: Suppressed<Summary>[] = [];
    for (const [key, window] of this.windows) {
      const suppressed = suppressedOf(key, window);
      if (suppressed !== undefined) ended.push(suppressed);
    }
    this.windows.clear();
    return ended;
  }
}

function suppressedOf<Summary>(key: string, window: Window<Summary>): Suppressed<Summary> | undefined {
  if (window.suppressed === 0 || window.summary === undefined) return undefined;
  return { key, count: window.suppressed, summary: window.summary };
}
