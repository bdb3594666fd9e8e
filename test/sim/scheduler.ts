/**
 * Virtual time for a simulated cluster. Every timer, message delivery and timeout is an event in
 * one priority queue ordered by (time, sequence), so events due at the same moment run in the order
 * they were scheduled and a run replays exactly from its seed. Time only moves when a test drives
 * the scheduler (`runFor`, `runUntil`, `runUntilIdle`), and then jumps from event to event.
 *
 * Between two events the scheduler lets the promise continuations that the first one started run
 * to completion (nodes are async code), so each continuation sees the virtual time of the event
 * that woke it. Simulated nodes must therefore do no real I/O that completes outside the
 * scheduler (timers, sockets, fs promises); synchronous SQLite is fine.
 */
import type { Env, TimerHandle } from '../../src/env';
import { assert } from '../../src/errors';
import { SimRandom } from './random';
import { annotateError, replayCommand } from './seed';

/** Virtual time at the start of a run: a plausible unix time, so dates in records look real. */
export const simStartMs = 1_700_000_000_000;
/** Events one run call may execute before it is declared a livelock. */
export const eventsPerRunMaxDefault = 500_000;
/** Events that may wait in the queue at once; more means something schedules without bound. */
export const eventsQueuedMax = 1_000_000;
/** Trace entries kept; a trace is for comparing runs, so a long run keeps only its digest. */
export const traceEntriesMax = 200_000;

export interface SimSchedulerOptions {
  readonly seed: number;
  readonly startMs?: number;
  readonly eventsPerRunMax?: number;
  /** Keep a list of `<ms since start> <label>` for every event run (determinism tests). */
  readonly trace?: boolean;
}

interface SimEvent {
  readonly atMs: number;
  readonly sequence: number;
  readonly label: string;
  readonly action: () => void;
  cancelled: boolean;
}

function runsBefore(a: SimEvent, b: SimEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.sequence < b.sequence);
}

/** A binary min-heap of events; cancelled events stay in it and are skipped when they come up. */
class EventQueue {
  private readonly heap: SimEvent[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(event: SimEvent): void {
    const heap = this.heap;
    heap.push(event);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!runsBefore(heap[index], heap[parent])) break;
      [heap[index], heap[parent]] = [heap[parent], heap[index]];
      index = parent;
    }
  }

  peek(): SimEvent | undefined {
    return this.heap[0];
  }

  pop(): SimEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let smallest = index;
        if (left < heap.length && runsBefore(heap[left], heap[smallest])) smallest = left;
        if (right < heap.length && runsBefore(heap[right], heap[smallest])) smallest = right;
        if (smallest === index) break;
        [heap[index], heap[smallest]] = [heap[smallest], heap[index]];
        index = smallest;
      }
    }
    return top;
  }
}

/** Thrown when a run executes more events than its bound: something re-arms without end. */
export class SimLivelockError extends Error {
  override name = 'SimLivelockError';
}

/** Lets every promise continuation already queued run, before the next event. */
function drainContinuations(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class SimScheduler {
  readonly seed: number;
  /** The root generator; nodes and the network fork their own streams from it. */
  readonly random: SimRandom;
  private readonly startMs: number;
  private readonly eventsPerRunMax: number;
  private readonly queue = new EventQueue();
  private currentMs: number;
  private sequence = 0;
  private running = false;
  private executed = 0;
  private readonly traceEntries: string[] | undefined;
  private digest = 0x811c9dc5;
  private fatal: Error | undefined;

  constructor(options: SimSchedulerOptions) {
    this.seed = options.seed;
    this.random = new SimRandom(options.seed);
    this.startMs = options.startMs ?? simStartMs;
    this.currentMs = this.startMs;
    this.eventsPerRunMax = options.eventsPerRunMax ?? eventsPerRunMaxDefault;
    this.traceEntries = options.trace ? [] : undefined;
  }

  /** Virtual time, unix ms. */
  nowMs(): number {
    return this.currentMs;
  }

  /** Virtual ms since the scheduler started. */
  elapsedMs(): number {
    return this.currentMs - this.startMs;
  }

  /** Events run so far, over every run call. */
  get eventsRun(): number {
    return this.executed;
  }

  /** Events waiting, counting cancelled ones not yet skipped. */
  get eventsQueued(): number {
    return this.queue.size;
  }

  /** `<ms since start> <label>` of every event run, when created with `trace: true`. */
  get trace(): readonly string[] {
    assert(this.traceEntries, 'scheduler created with trace: true');
    return this.traceEntries;
  }

  /** An FNV-1a hash of every trace entry so far, kept even without `trace: true`. */
  traceDigest(): string {
    return (this.digest >>> 0).toString(16).padStart(8, '0');
  }

  /**
   * Stops the run with `error` at the next event boundary. For programmer errors found where
   * throwing would only reject a promise nobody awaits (a malformed message, a handler bug).
   */
  fail(error: Error): void {
    this.fatal ??= error;
  }

  /** Runs `action` at now + `delayMs` (at least now). `label` names the event in traces. */
  schedule(delayMs: number, label: string, action: () => void): TimerHandle {
    assert(Number.isFinite(delayMs), `event "${label}" has a finite delay`);
    if (this.queue.size >= eventsQueuedMax) {
      throw new SimLivelockError(`${eventsQueuedMax} events queued; ${this.seedNote()}`);
    }
    const event: SimEvent = {
      atMs: this.currentMs + Math.max(0, delayMs),
      sequence: this.sequence++,
      label,
      action,
      cancelled: false,
    };
    this.queue.push(event);
    return {
      cancel: () => {
        event.cancelled = true;
      },
    };
  }

  /** An Env for one node, sharing this scheduler's time; see SimEnv. */
  env(nodeId: string, options: { readonly clockSkewMs?: number } = {}): SimEnv {
    return new SimEnv(this, nodeId, this.random.fork(), options.clockSkewMs ?? 0);
  }

  /** Runs every event due within the next `durationMs`, then sets the clock to its end. */
  async runFor(durationMs: number): Promise<void> {
    const untilMs = this.currentMs + durationMs;
    await this.run(untilMs, () => false);
    this.currentMs = Math.max(this.currentMs, untilMs);
  }

  /**
   * Runs events until `predicate` holds (checked before the first event and after each one) or
   * `maxMs` of virtual time pass. Returns whether the predicate held; the clock stays where it
   * became true, or at the deadline.
   */
  async runUntil(predicate: () => boolean, maxMs: number): Promise<boolean> {
    const untilMs = this.currentMs + maxMs;
    if (predicate()) return true;
    const held = await this.run(untilMs, predicate);
    if (!held) this.currentMs = Math.max(this.currentMs, untilMs);
    return held;
  }

  /** Runs until no event is left, or `maxMs` pass; returns whether the queue emptied. */
  async runUntilIdle(maxMs: number): Promise<boolean> {
    return this.runUntil(() => this.nextLiveEvent() === undefined, maxMs);
  }

  /** Runs the next event, if there is one; returns whether one ran. For step-by-step tests. */
  async step(): Promise<boolean> {
    const next = this.nextLiveEvent();
    if (!next) return false;
    await this.run(next.atMs, () => false, 1);
    return true;
  }

  private nextLiveEvent(): SimEvent | undefined {
    for (let next = this.queue.peek(); next; next = this.queue.peek()) {
      if (!next.cancelled) return next;
      this.queue.pop();
    }
    return undefined;
  }

  private async run(untilMs: number, predicate: () => boolean, eventsMax = this.eventsPerRunMax): Promise<boolean> {
    assert(!this.running, 'one run at a time: an event must not drive the scheduler');
    this.running = true;
    try {
      // Continuations left over from the test's own code run first, at the current time.
      await drainContinuations();
      for (let ran = 0; ; ran++) {
        this.throwIfFailed();
        if (predicate()) return true;
        const next = this.nextLiveEvent();
        if (!next || next.atMs > untilMs) return false;
        if (ran >= eventsMax) {
          if (eventsMax < this.eventsPerRunMax) return false;
          throw new SimLivelockError(
            `more than ${eventsMax} events in one run, by ${this.elapsedMs()} ms (next: "${next.label}"); ` +
              this.seedNote(),
          );
        }
        this.queue.pop();
        this.execute(next);
        await drainContinuations();
      }
    } finally {
      this.running = false;
    }
  }

  private throwIfFailed(): void {
    const fatal = this.fatal;
    if (!fatal) return;
    this.fatal = undefined;
    annotateError(fatal, `at ${this.elapsedMs()} ms: `, `; ${this.seedNote()}`);
    throw fatal;
  }

  private execute(event: SimEvent): void {
    this.currentMs = event.atMs;
    this.executed++;
    const entry = `${this.elapsedMs()} ${event.label}`;
    this.record(entry);
    try {
      event.action();
    } catch (error) {
      if (error instanceof Error) {
        annotateError(error, `event "${entry}" threw: `, `; ${this.seedNote()}`);
        throw error;
      }
      throw new Error(`event "${entry}" threw ${String(error)}; ${this.seedNote()}`);
    }
  }

  private record(entry: string): void {
    for (let index = 0; index < entry.length; index++) {
      this.digest = Math.imul(this.digest ^ entry.charCodeAt(index), 0x01000193);
    }
    this.digest = Math.imul(this.digest ^ 0x0a, 0x01000193);
    if (this.traceEntries && this.traceEntries.length < traceEntriesMax) this.traceEntries.push(entry);
  }

  /** Names the seed and how to replay it, for error messages. */
  seedNote(): string {
    return `seed ${this.seed}, replay: ${replayCommand(this.seed)}`;
  }
}

/**
 * One node's view of the simulation: the shared virtual clock (shifted by this node's skew),
 * its own random stream, and timers that are scheduler events. `halt` models the process dying:
 * its timers stop and new ones are never armed.
 */
export class SimEnv implements Env {
  private readonly timers = new Set<TimerHandle>();
  private halted = false;

  constructor(
    readonly scheduler: SimScheduler,
    readonly nodeId: string,
    private readonly randomStream: SimRandom,
    /** Added to virtual time in `nowMs`; nodes disagree about wall-clock time as real ones do. */
    public clockSkewMs: number,
  ) {}

  nowMs(): number {
    return this.scheduler.nowMs() + this.clockSkewMs;
  }

  random(): number {
    return this.randomStream.next();
  }

  /** This node's generator, for helpers that want ints, picks or shuffles. */
  get randomSource(): SimRandom {
    return this.randomStream;
  }

  get isHalted(): boolean {
    return this.halted;
  }

  /** Timers armed and not yet run (one-shot) or cancelled. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  after(delayMs: number, action: () => void): TimerHandle {
    if (this.halted) return { cancel: () => undefined };
    let event: TimerHandle | undefined;
    const handle: TimerHandle = {
      cancel: () => {
        event?.cancel();
        this.timers.delete(handle);
      },
    };
    event = this.scheduler.schedule(delayMs, `${this.nodeId} timer`, () => {
      this.timers.delete(handle);
      action();
    });
    this.timers.add(handle);
    return handle;
  }

  every(intervalMs: number, action: () => void): TimerHandle {
    // setInterval treats intervals under 1 ms as 1 ms; so does the simulation, which also keeps
    // a zero interval from spinning at one instant.
    const periodMs = Math.max(1, intervalMs);
    if (this.halted) return { cancel: () => undefined };
    let event: TimerHandle | undefined;
    const handle: TimerHandle = {
      cancel: () => {
        event?.cancel();
        this.timers.delete(handle);
      },
    };
    const arm = (): void => {
      event = this.scheduler.schedule(periodMs, `${this.nodeId} interval`, () => {
        arm();
        action();
      });
    };
    arm();
    this.timers.add(handle);
    return handle;
  }

  soon(action: () => void): void {
    this.after(0, action);
  }

  /** The process died: every timer is cancelled and none will be armed again. */
  halt(): void {
    this.halted = true;
    for (const handle of [...this.timers]) handle.cancel();
  }
}
