/**
 * An Env whose clock only moves when the test says so: `advance` moves time forward and runs the
 * timers that fall due, in due order. Random numbers come from a fixed-seed generator.
 * For one node's synchronous paths; clusters, whose nodes await each other, run on test/sim.
 */
import type { Env, TimerHandle } from '../../src/env';

interface Timer {
  dueMs: number;
  readonly intervalMs: number | undefined;
  readonly action: () => void;
  cancelled: boolean;
  readonly order: number;
}

/** Bounds `advance`, so a timer that re-arms at interval 0 cannot loop forever. */
const timerRunsPerAdvanceMax = 100_000;

export class ManualEnv implements Env {
  private currentMs: number;
  private timers: Timer[] = [];
  private created = 0;
  private randomState: number;

  constructor(startMs = 1_700_000_000_000, seed = 1) {
    this.currentMs = startMs;
    this.randomState = seed >>> 0 || 1;
  }

  nowMs(): number {
    return this.currentMs;
  }

  random(): number {
    // xorshift32
    let state = this.randomState;
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    this.randomState = state >>> 0;
    return this.randomState / 2 ** 32;
  }

  after(delayMs: number, action: () => void): TimerHandle {
    return this.schedule(delayMs, undefined, action);
  }

  every(intervalMs: number, action: () => void): TimerHandle {
    return this.schedule(intervalMs, intervalMs, action);
  }

  soon(action: () => void): void {
    this.schedule(0, undefined, action);
  }

  /** Timers armed and not yet run (one-shot) or cancelled. */
  get pendingTimers(): number {
    return this.timers.filter((timer) => !timer.cancelled).length;
  }

  /** Moves the clock forward by `deltaMs`, running every timer due by then. */
  advance(deltaMs: number): void {
    const targetMs = this.currentMs + deltaMs;
    for (let runs = 0; ; runs++) {
      if (runs >= timerRunsPerAdvanceMax) throw new Error('too many timer runs in one advance');
      const next = this.nextDue(targetMs);
      if (!next) break;
      this.currentMs = Math.max(this.currentMs, next.dueMs);
      if (next.intervalMs === undefined) next.cancelled = true;
      // An interval timer that fell behind (see `stall`) runs once, then keeps its interval from
      // now, as Node's setInterval does.
      else next.dueMs = Math.max(next.dueMs, this.currentMs) + next.intervalMs;
      next.action();
      this.timers = this.timers.filter((timer) => !timer.cancelled);
    }
    this.currentMs = targetMs;
  }

  /**
   * Moves the clock forward by `deltaMs` without running any timer, as a process that was paused
   * or starved of CPU sees it: the timers that fell due run at the next `advance`, late.
   */
  stall(deltaMs: number): void {
    this.currentMs += deltaMs;
  }

  private nextDue(targetMs: number): Timer | undefined {
    let next: Timer | undefined;
    for (const timer of this.timers) {
      if (timer.cancelled || timer.dueMs > targetMs) continue;
      if (!next || timer.dueMs < next.dueMs || (timer.dueMs === next.dueMs && timer.order < next.order)) next = timer;
    }
    return next;
  }

  private schedule(delayMs: number, intervalMs: number | undefined, action: () => void): TimerHandle {
    const timer: Timer = {
      dueMs: this.currentMs + Math.max(0, delayMs),
      intervalMs,
      action,
      cancelled: false,
      order: this.created++,
    };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }
}
