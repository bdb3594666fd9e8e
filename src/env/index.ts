/**
 * Everything a node's shells take from the outside world, injected so a whole cluster can run
 * in one process under simulated time and randomness (test/sim provides the simulated Env).
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Env {
  /** Wall-clock unix time in milliseconds. */
  nowMs(): number;
  /** A uniformly random number in [0, 1). */
  random(): number;
  /** Runs `action` once after `delayMs`. */
  after(delayMs: number, action: () => void): TimerHandle;
  /** Runs `action` every `intervalMs` until cancelled. */
  every(intervalMs: number, action: () => void): TimerHandle;
  /**
   * Runs `action` once the current turn of the event loop is over, after I/O already received:
   * how work accepted in one turn (writes to commit together) is gathered before it runs.
   */
  soon(action: () => void): void;
}

export const realEnv: Env = {
  nowMs: () => Date.now(),
  random: () => Math.random(),
  after(delayMs, action) {
    const timer = setTimeout(action, delayMs);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
  every(intervalMs, action) {
    const timer = setInterval(action, intervalMs);
    timer.unref();
    return { cancel: () => clearInterval(timer) };
  },
  soon(action) {
    setImmediate(action);
  },
};
