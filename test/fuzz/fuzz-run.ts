/**
 * Which seeds a fuzzer runs and for how long, and how a failure names its seed. By default a
 * fuzzer runs its fixed list of seeds, each for a fixed number of cases, so a CI run is bounded and
 * the same every time. KAI_FUZZ_SEED=<seed> replays one seed alone; KAI_FUZZ_SECONDS=<s> runs the
 * fixed seeds and then fresh ones until that many seconds have passed, for long runs by hand.
 * The seeds are printed as they are run, and a failure's message starts with its seed and the
 * command that replays it.
 */
import { randomInt } from 'node:crypto';
import * as path from 'node:path';
import { annotateError } from '../sim/seed';
import { SimRandom, seedMax } from '../sim/random';

export const seedVariable = 'KAI_FUZZ_SEED';
export const secondsVariable = 'KAI_FUZZ_SECONDS';
/** Bounds KAI_FUZZ_SECONDS, so a typo cannot start a run that never ends: one day. */
export const fuzzSecondsMax = 86_400;
/** Room a timed run leaves jest beyond its budget: the seed in progress finishes, then the test ends. */
const timedRunSlackMs = 120_000;
/** Fresh seeds printed per line in a timed run, so a long run's log stays readable. */
const seedsPerLogLine = 20;

function parseDecimal(name: string, text: string, max: number): number {
  const parsed = /^[0-9]{1,10}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(parsed) || parsed > max) throw new Error(`${name}=${text} is not an integer in [0, ${max}]`);
  return parsed;
}

/** The seed to replay, when KAI_FUZZ_SEED is set. */
function replaySeed(): number | undefined {
  const text = process.env[seedVariable];
  return text === undefined || text === '' ? undefined : parseDecimal(seedVariable, text, seedMax);
}

/**
 * Whether one seed is being replayed. Checks that the inputs reached every kind of outcome are
 * made over the whole seed list only: one seed alone may not reach them all.
 */
export function replaying(): boolean {
  return replaySeed() !== undefined;
}

/** How long a timed run lasts, when KAI_FUZZ_SECONDS is set. */
export function timedRunMs(): number | undefined {
  const text = process.env[secondsVariable];
  return text === undefined || text === '' ? undefined : parseDecimal(secondsVariable, text, fuzzSecondsMax) * 1000;
}

/** jest's timeout for a fuzz test: `boundedMs` normally, the whole budget and some in a timed run. */
export function fuzzTestTimeoutMs(boundedMs: number): number {
  const budgetMs = replaySeed() === undefined ? timedRunMs() : undefined;
  return budgetMs === undefined ? boundedMs : Math.max(boundedMs, budgetMs + timedRunSlackMs);
}

/** The test file being run, as a path to hand back to jest. */
function currentTestFile(): string {
  const testPath = typeof expect === 'undefined' ? undefined : expect.getState().testPath;
  return testPath ? path.relative(process.cwd(), testPath) : '<test file>';
}

export function replayCommand(seed: number): string {
  return `${seedVariable}=${seed} npx jest ${currentTestFile()}`;
}

export interface FuzzPlan {
  /** The name printed with the seeds. */
  readonly name: string;
  /** The seeds CI runs, in order. */
  readonly seeds: readonly number[];
}

/**
 * Runs `body` once per seed: the fixed seeds, the replayed one, or fixed then fresh ones until
 * the time budget is spent. The first failure ends the run, its message naming the seed.
 */
export async function forEachSeed(plan: FuzzPlan, body: (random: SimRandom, seed: number) => Promise<void> | void): Promise<void> {
  const replayed = replaySeed();
  if (replayed !== undefined) {
    console.log(`kai fuzz ${plan.name}: replaying seed ${replayed} from ${seedVariable}`);
    await runSeed(replayed, body);
    return;
  }
  // The fixed seeds are in the plan; a failure names its own, so a passing run prints nothing.
  for (const seed of plan.seeds) await runSeed(seed, body);
  const budgetMs = timedRunMs();
  if (budgetMs === undefined) return;
  const deadline = Date.now() + budgetMs;
  let pending: number[] = [];
  let runs = 0;
  while (Date.now() < deadline) {
    const seed = randomInt(0, seedMax + 1);
    pending.push(seed);
    if (pending.length === seedsPerLogLine) {
      console.log(`kai fuzz ${plan.name}: fresh seeds ${pending.join(' ')}`);
      pending = [];
    }
    await runSeed(seed, body);
    runs++;
  }
  if (pending.length > 0) console.log(`kai fuzz ${plan.name}: fresh seeds ${pending.join(' ')}`);
  console.log(`kai fuzz ${plan.name}: ${runs} fresh seeds passed in ${Math.round(budgetMs / 1000)} s`);
}

async function runSeed(seed: number, body: (random: SimRandom, seed: number) => Promise<void> | void): Promise<void> {
  try {
    await body(new SimRandom(seed), seed);
  } catch (error) {
    const note = `[fuzz seed ${seed}; replay: ${replayCommand(seed)}] `;
    if (error instanceof Error) {
      annotateError(error, note, '');
      throw error;
    }
    throw new Error(`${note}${String(error)}`);
  }
}
