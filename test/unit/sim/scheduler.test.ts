import { SimLivelockError, SimScheduler, simStartMs } from '../../sim/scheduler';
import { withSeed } from '../../sim/seed';

describe('SimScheduler', () => {
  // Events run in time order, and events due at the same moment in the order they were scheduled.
  test('orders events by time, then by scheduling order', async () => {
    const scheduler = new SimScheduler({ seed: 1, trace: true });
    const ran: string[] = [];
    for (const [delayMs, name] of [[20, 'c'], [10, 'a'], [20, 'd'], [10, 'b'], [5, 'first']] as const) {
      scheduler.schedule(delayMs, name, () => ran.push(`${scheduler.elapsedMs()} ${name}`));
    }
    await scheduler.runFor(100);
    expect(ran).toEqual(['5 first', '10 a', '10 b', '20 c', '20 d']);
    expect(scheduler.trace).toEqual(ran);
    expect(scheduler.elapsedMs()).toBe(100);
  });

  // runFor stops at its end, leaving later events queued; cancelled events never run.
  test('runs only what falls due, and skips cancelled events', async () => {
    const scheduler = new SimScheduler({ seed: 1 });
    const ran: string[] = [];
    scheduler.schedule(50, 'early', () => ran.push('early'));
    scheduler.schedule(150, 'late', () => ran.push('late'));
    scheduler.schedule(60, 'cancelled', () => ran.push('cancelled')).cancel();
    await scheduler.runFor(100);
    expect(ran).toEqual(['early']);
    expect(scheduler.nowMs()).toBe(simStartMs + 100);
    await scheduler.runFor(100);
    expect(ran).toEqual(['early', 'late']);
    expect(scheduler.eventsRun).toBe(2);
  });

  // runUntil stops at the event that makes the predicate true, or at its deadline.
  test('runs until a predicate holds or time runs out', async () => {
    const scheduler = new SimScheduler({ seed: 1 });
    let count = 0;
    for (let index = 1; index <= 10; index++) scheduler.schedule(index * 10, 'tick', () => count++);
    expect(await scheduler.runUntil(() => count === 3, 1_000)).toBe(true);
    expect(scheduler.elapsedMs()).toBe(30);
    expect(await scheduler.runUntil(() => count === 99, 500)).toBe(false);
    expect(scheduler.elapsedMs()).toBe(530);
    expect(await scheduler.runUntilIdle(10)).toBe(true);
  });

  // step runs exactly one event, even when another is due at the same moment.
  test('steps one event at a time', async () => {
    const scheduler = new SimScheduler({ seed: 1 });
    const ran: string[] = [];
    scheduler.schedule(10, 'a', () => ran.push('a'));
    scheduler.schedule(10, 'b', () => ran.push('b'));
    expect(await scheduler.step()).toBe(true);
    expect(ran).toEqual(['a']);
    expect(await scheduler.step()).toBe(true);
    expect(await scheduler.step()).toBe(false);
    expect(ran).toEqual(['a', 'b']);
  });

  // Promise continuations started by an event run before the next event, at that event's time.
  test('lets async code continue at the virtual time that woke it', async () => {
    const scheduler = new SimScheduler({ seed: 1 });
    const env = scheduler.env('n1');
    const seenMs: number[] = [];
    const sleep = (delayMs: number): Promise<void> => new Promise((resolve) => env.after(delayMs, resolve));
    const task = (async () => {
      await sleep(10);
      seenMs.push(env.nowMs() - simStartMs);
      await Promise.resolve();
      await sleep(5);
      seenMs.push(env.nowMs() - simStartMs);
    })();
    await scheduler.runFor(100);
    await task;
    expect(seenMs).toEqual([10, 15]);
  });

  // A timer that re-arms at the same instant forever is stopped, and the error names the seed.
  test('reports a livelock with its seed', async () => {
    const scheduler = new SimScheduler({ seed: 4242, eventsPerRunMax: 1_000 });
    const spin = (): void => void scheduler.schedule(0, 'spin', spin);
    spin();
    await expect(scheduler.runFor(10)).rejects.toThrow(SimLivelockError);
    await expect(scheduler.runFor(10)).rejects.toThrow(/more than 1000 events.*"spin".*seed 4242, replay: KAI_SIM_SEED=4242 npx jest/);
  });

  // An event that throws stops the run; the error names the event, its time and the seed.
  test('fails the run when an event throws', async () => {
    const scheduler = new SimScheduler({ seed: 77 });
    scheduler.schedule(25, 'broken', () => {
      throw new Error('boom');
    });
    await expect(scheduler.runFor(100)).rejects.toThrow(/event "25 broken" threw: boom; seed 77/);
  });

  // A failure reported from async code (scheduler.fail) stops the run at the next event.
  test('fails the run on a reported failure', async () => {
    const scheduler = new SimScheduler({ seed: 78 });
    scheduler.schedule(10, 'report', () => scheduler.fail(new Error('bad message')));
    scheduler.schedule(20, 'later', () => undefined);
    await expect(scheduler.runFor(100)).rejects.toThrow(/at 10 ms: bad message; seed 78/);
  });
});

describe('SimEnv', () => {
  // Each node's clock is the shared virtual clock plus its own skew.
  test('applies clock skew per node', async () => {
    const scheduler = new SimScheduler({ seed: 1 });
    const ahead = scheduler.env('ahead', { clockSkewMs: 250 });
    const behind = scheduler.env('behind', { clockSkewMs: -40 });
    await scheduler.runFor(1_000);
    expect(ahead.nowMs() - scheduler.nowMs()).toBe(250);
    expect(behind.nowMs() - scheduler.nowMs()).toBe(-40);
  });

  // every repeats at its interval until cancelled; after runs once.
  test('runs intervals and one-shot timers', async () => {
    const scheduler = new SimScheduler({ seed: 1 });
    const env = scheduler.env('n1');
    const ticksMs: number[] = [];
    const interval = env.every(100, () => ticksMs.push(scheduler.elapsedMs()));
    let fired = 0;
    env.after(250, () => fired++);
    expect(env.pendingTimers).toBe(2);
    await scheduler.runFor(350);
    expect(ticksMs).toEqual([100, 200, 300]);
    expect(fired).toBe(1);
    expect(env.pendingTimers).toBe(1);
    interval.cancel();
    await scheduler.runFor(1_000);
    expect(ticksMs).toEqual([100, 200, 300]);
    expect(env.pendingTimers).toBe(0);
  });

  // A halted env (its process died) loses its timers and arms no new ones.
  test('halts', async () => {
    const scheduler = new SimScheduler({ seed: 1 });
    const env = scheduler.env('n1');
    let fired = 0;
    env.every(10, () => fired++);
    env.after(15, () => fired++);
    env.halt();
    env.after(5, () => fired++);
    await scheduler.runFor(100);
    expect(fired).toBe(0);
    expect(env.pendingTimers).toBe(0);
    expect(env.isHalted).toBe(true);
  });

  // Nodes draw from their own streams, so the same seed gives each node the same numbers.
  test('gives each node a deterministic random stream', () => {
    const draws = (seed: number): number[] => {
      const scheduler = new SimScheduler({ seed });
      const envs = [scheduler.env('a'), scheduler.env('b')];
      return envs.flatMap((env) => [env.random(), env.random()]);
    };
    expect(draws(3)).toEqual(draws(3));
    expect(draws(3)).not.toEqual(draws(4));
    expect(new Set(draws(3)).size).toBe(4);
  });
});

describe('withSeed', () => {
  // A failure inside a seeded run is reported with the seed and the command that replays it.
  test('names the seed in failures', async () => {
    await expect(
      withSeed(31337, () => {
        throw new Error('replicas diverged');
      }),
    ).rejects.toThrow(/^\[seed 31337; replay: KAI_SIM_SEED=31337 npx jest \S*scheduler\.test\.js\] replicas diverged$/);
  });
});
