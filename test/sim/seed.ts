/**
 * Where a simulation's seed comes from, and how a failure names it. A run takes its seed from
 * KAI_SIM_SEED when set (to replay a failure), or draws fresh ones. Each test names its seed, and a
 * failure's message starts with it and the command that replays it (`KAI_SIM_SEED=<seed> npx jest
 * <file>`), so a passing run prints nothing.
 */
import { randomInt } from 'node:crypto';
import * as path from 'node:path';
import { seedMax } from './random';

export const seedVariable = 'KAI_SIM_SEED';
/** Overrides how many seeds a multi-seed test runs, so CI can run many more than a local run. */
export const runsVariable = 'KAI_SIM_RUNS';
/** Bounds KAI_SIM_RUNS, so a typo cannot start a run that never ends. */
export const runsMax = 100_000;

function parseDecimal(name: string, text: string, max: number): number {
  const parsed = /^[0-9]{1,10}$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(parsed) || parsed > max) throw new Error(`${name}=${text} is not an integer in [0, ${max}]`);
  return parsed;
}

/** The test file being run, as a path to hand back to jest. */
function currentTestFile(): string {
  const testPath = typeof expect === 'undefined' ? undefined : expect.getState().testPath;
  return testPath ? path.relative(process.cwd(), testPath) : '<test file>';
}

/** The command that replays one seed of the current test file. */
export function replayCommand(seed: number): string {
  return `${seedVariable}=${seed} npx jest ${currentTestFile()}`;
}

/** The seeds to run: only KAI_SIM_SEED's when it is set, else `count` fresh ones (KAI_SIM_RUNS overrides the count). */
export function simSeeds(count: number): number[] {
  const fixed = process.env[seedVariable];
  if (fixed !== undefined && fixed !== '') {
    const seed = parseDecimal(seedVariable, fixed, seedMax);
    console.log(`kai sim: replaying seed ${seed} from ${seedVariable}`);
    return [seed];
  }
  const runs = process.env[runsVariable] ? parseDecimal(runsVariable, process.env[runsVariable] ?? '', runsMax) : count;
  return Array.from({ length: runs }, () => randomInt(0, seedMax + 1));
}

/** One seed: KAI_SIM_SEED's, or a fresh one. */
export function simSeed(): number {
  return simSeeds(1)[0];
}

/**
 * Runs `body` for one seed; when it fails, the error message starts with the seed and the command
 * that replays it, so the failure report alone is enough to reproduce the run.
 */
export async function withSeed<T>(seed: number, body: (seed: number) => Promise<T> | T): Promise<T> {
  try {
    return await body(seed);
  } catch (error) {
    const note = `[seed ${seed}; replay: ${replayCommand(seed)}]`;
    if (error instanceof Error) {
      // Errors from the toolkit already end with the seed and its replay command.
      if (!error.message.includes(`${seedVariable}=${seed} `)) annotateError(error, `${note} `, '');
      throw error;
    }
    throw new Error(`${note} ${String(error)}`);
  }
}

/**
 * Adds text around an error's message, in its stack too: jest prints the stack, which V8 formed
 * from the message when the error was created.
 */
export function annotateError(error: Error, prefix: string, suffix: string): void {
  const original = error.message;
  // Read first: V8 formats the stack lazily, from the message as it is on first access.
  const stack = error.stack;
  error.message = `${prefix}${original}${suffix}`;
  if (stack === undefined) return;
  error.stack = stack.includes(original) ? stack.replace(original, error.message) : `${prefix}${stack}${suffix}`;
}
